package io.dedisk.nbd;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.dedisk.DediskException;

/**
 * Reads PEM certificates and PKCS#8 private keys with the JDK alone (no BouncyCastle), for {@link NbdTls}.
 *
 * Accepted: "-----BEGIN CERTIFICATE-----" blocks (a chain, leaf first), and an unencrypted
 * "-----BEGIN PRIVATE KEY-----" block (PKCS#8; RSA, EC, Ed25519/Ed448 or RSASSA-PSS). Traditional
 * "BEGIN RSA PRIVATE KEY"/"BEGIN EC PRIVATE KEY" (PKCS#1/SEC1) and encrypted keys are refused with the openssl
 * command that converts them. Stateless; any thread.
 */
final class Pem {
    private static final Pattern BLOCK = Pattern.compile(
            "-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\\s]*?)-----END \\1-----");
    private static final String[] KEY_ALGORITHMS = {"RSA", "EC", "Ed25519", "Ed448", "RSASSA-PSS"};

    private Pem() {}

    /** Every certificate in the file, in order. */
    static List<X509Certificate> certificates(Path file) throws IOException {
        List<X509Certificate> certificates = new ArrayList<>();
        try {
            CertificateFactory factory = CertificateFactory.getInstance("X.509");
            for (Block block : blocks(file)) {
                if (!block.type.equals("CERTIFICATE")) continue;
                certificates.add((X509Certificate) factory.generateCertificate(new ByteArrayInputStream(block.der)));
            }
        } catch (CertificateException e) {
            throw new DediskException.InvalidRequestException("certificate file " + file + " is not valid PEM X.509: "
                    + e.getMessage());
        }
        if (certificates.isEmpty()) {
            throw new DediskException.InvalidRequestException("certificate file " + file
                    + ": expected at least one '-----BEGIN CERTIFICATE-----' block, found none");
        }
        return certificates;
    }

    /** The one PKCS#8 private key in the file. */
    static PrivateKey privateKey(Path file) throws IOException {
        List<Block> blocks = blocks(file);
        for (Block block : blocks) {
            switch (block.type) {
                case "PRIVATE KEY" -> {
                    return decode(file, block.der);
                }
                case "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY" ->
                        throw new DediskException.InvalidRequestException("key file " + file + " holds '" + block.type
                                + "'; expected an unencrypted PKCS#8 'PRIVATE KEY'. Convert it with: openssl pkcs8 "
                                + "-topk8 -nocrypt -in " + file + " -out key-pkcs8.pem");
                default -> { }
            }
        }
        throw new DediskException.InvalidRequestException("key file " + file
                + ": expected a '-----BEGIN PRIVATE KEY-----' block (PKCS#8), found "
                + (blocks.isEmpty() ? "no PEM block" : blocks.stream().map(b -> b.type).toList()));
    }

    private static PrivateKey decode(Path file, byte[] der) {
        PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(der);
        for (String algorithm : KEY_ALGORITHMS) {
            try {
                return KeyFactory.getInstance(algorithm).generatePrivate(spec);
            } catch (GeneralSecurityException | IllegalArgumentException e) {
                // Not this algorithm; try the next one.
            }
        }
        throw new DediskException.InvalidRequestException("key file " + file
                + ": PKCS#8 key of an unsupported algorithm (expected one of RSA, EC, Ed25519, Ed448, RSASSA-PSS)");
    }

    private record Block(String type, byte[] der) {}

    private static List<Block> blocks(Path file) throws IOException {
        String text = Files.readString(file, StandardCharsets.US_ASCII);
        List<Block> blocks = new ArrayList<>();
        Matcher m = BLOCK.matcher(text);
        while (m.find()) {
            try {
                blocks.add(new Block(m.group(1), Base64.getMimeDecoder().decode(m.group(2))));
            } catch (IllegalArgumentException e) {
                throw new DediskException.InvalidRequestException(file + ": '" + m.group(1)
                        + "' block is not valid base64: " + e.getMessage());
            }
        }
        return blocks;
    }
}
