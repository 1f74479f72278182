package io.dedisk.nbd;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * Test certificates made with the openssl command (Debian package openssl; a missing one fails the test with that
 * name): a CA, a server certificate for 127.0.0.1/localhost, and client certificates by CN. Layout of a client's
 * directory is what qemu's tls-creds-x509 and libnbd's tls-certificates expect: ca-cert.pem, client-cert.pem,
 * client-key.pem. Keys are EC P-256 in PKCS#8 (OpenSSL 3's default output).
 */
public final class TestCertificates {
    final Path dir;
    final Path caCert;
    public final Path serverCert;
    public final Path serverKey;

    private TestCertificates(Path dir) {
        this.dir = dir;
        this.caCert = dir.resolve("ca-cert.pem");
        this.serverCert = dir.resolve("server-cert.pem");
        this.serverKey = dir.resolve("server-key.pem");
    }

    /** A CA and a server certificate in {@code dir}. */
    public static TestCertificates make(Path dir) throws IOException, InterruptedException {
        TestCertificates c = new TestCertificates(dir);
        c.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", "ca-key.pem", "-out", "ca-cert.pem", "-days", "2", "-subj", "/CN=dedisk test CA",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
        c.signed("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
                + "keyUsage=critical,digitalSignature,keyEncipherment\n");
        return c;
    }

    /**
     * A directory for one client, as qemu and libnbd read it: ca-cert.pem, and (if {@code cn} is not null)
     * client-cert.pem and client-key.pem for that CN.
     */
    Path client(String name, String cn) throws IOException, InterruptedException {
        Path clientDir = Files.createDirectories(dir.resolve("client-" + name));
        Files.copy(caCert, clientDir.resolve("ca-cert.pem"));
        if (cn != null) {
            signed(name, cn, "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n");
            Files.copy(dir.resolve(name + "-cert.pem"), clientDir.resolve("client-cert.pem"));
            Files.copy(dir.resolve(name + "-key.pem"), clientDir.resolve("client-key.pem"));
        }
        return clientDir;
    }

    /** A JDK client context trusting the CA, presenting the client directory's certificate if it has one. */
    static SSLContext clientContext(Path clientDir) throws Exception {
        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        trust.setCertificateEntry("ca", Pem.certificates(clientDir.resolve("ca-cert.pem")).getFirst());
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        KeyManagerFactory kmf = null;
        if (Files.exists(clientDir.resolve("client-cert.pem"))) {
            KeyStore keys = KeyStore.getInstance("PKCS12");
            keys.load(null, null);
            keys.setKeyEntry("client", Pem.privateKey(clientDir.resolve("client-key.pem")), new char[0],
                    Pem.certificates(clientDir.resolve("client-cert.pem")).toArray(new X509Certificate[0]));
            kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(keys, new char[0]);
        }
        SSLContext context = SSLContext.getInstance("TLSv1.3");
        context.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        return context;
    }

    private void signed(String name, String cn, String extensions) throws IOException, InterruptedException {
        Files.writeString(dir.resolve(name + ".ext"), extensions);
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                name + "-key.pem", "-out", name + ".csr", "-subj", "/CN=" + cn);
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-out", name + "-cert.pem", "-days", "2", "-extfile", name + ".ext");
    }

    void openssl(String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>(List.of("openssl"));
        command.addAll(List.of(args));
        Process p;
        try {
            p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
        } catch (IOException e) {
            fail("openssl is needed to make test certificates: install the Debian package openssl (" + e + ")");
            return;
        }
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "openssl did not finish");
        assertEquals(0, p.exitValue(), String.join(" ", command) + ":\n" + out);
    }
}
