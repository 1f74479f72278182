package io.dedisk.nbd;

import java.io.IOException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.TrustManagerFactory;

import io.dedisk.DediskException;

/**
 * The server's TLS policy for NBD_OPT_STARTTLS: the mode, the JDK {@link SSLContext} (server certificate and key,
 * and the CA that client certificates must chain to), and which exports each client certificate may open.
 *
 * Modes (the spec's names): {@link Mode#OFF} = NOTLS (STARTTLS is unsupported); {@link Mode#ON} = SELECTIVETLS
 * with no TLS-only export (a client may upgrade, or not); {@link Mode#REQUIRE} = FORCEDTLS (every option but
 * STARTTLS and ABORT is answered NBD_REP_ERR_TLS_REQD until TLS is up, as qemu-nbd does). Protocols: TLS 1.3,
 * and 1.2 because the NBD spec says implementations MUST support it (JDK 25 offers only forward-secret AEAD suites
 * for it).
 *
 * Authorisation: with an allow list ({@code --tls-allow CN=name:export,export}), a TLS client may open only the
 * exports listed for its certificate's CN ("*" = all); a CN not listed opens nothing. Without one, any client the
 * TLS handshake accepted may open any export.
 *
 * Immutable after construction; any thread. Invariants: ON/REQUIRE have a context; an allow list implies client
 * certificates are required (there is no CN otherwise).
 */
public final class NbdTls {
    public enum Mode { OFF, ON, REQUIRE }

    private static final String[] PROTOCOLS = {"TLSv1.3", "TLSv1.2"};

    private final Mode mode;
    private final SSLContext context;
    private final boolean verifyClients;
    /** CN → exports it may open; empty: no restriction. */
    private final Map<String, Set<String>> allow;

    private NbdTls(Mode mode, SSLContext context, boolean verifyClients, Map<String, Set<String>> allow) {
        this.mode = mode;
        this.context = context;
        this.verifyClients = verifyClients;
        this.allow = allow;
    }

    /** No TLS. */
    public static NbdTls off() {
        return new NbdTls(Mode.OFF, null, false, Map.of());
    }

    /**
     * Loads the server's PEM certificate chain and PKCS#8 key, and the CA bundle client certificates must chain to.
     * {@code caFile} is required when {@code verifyClients} or an allow list is given. {@code allowRules} are
     * "CN=name:export[,export...]" (export "*" for all).
     */
    public static NbdTls load(Mode mode, Path certFile, Path keyFile, Path caFile, boolean verifyClients,
                              List<String> allowRules) throws IOException {
        if (mode == Mode.OFF) return off();
        if (certFile == null || keyFile == null) {
            throw new DediskException.InvalidRequestException("--tls=" + mode.name().toLowerCase()
                    + " needs --tls-cert and --tls-key");
        }
        Map<String, Set<String>> allow = parseAllow(allowRules);
        boolean needClients = verifyClients || !allow.isEmpty();
        if (needClients && caFile == null) {
            throw new DediskException.InvalidRequestException("--tls-verify-clients and --tls-allow need --tls-ca "
                    + "(the CA client certificates must chain to)");
        }
        try {
            List<X509Certificate> chain = Pem.certificates(certFile);
            PrivateKey key = Pem.privateKey(keyFile);
            char[] password = new char[0];
            KeyStore keys = KeyStore.getInstance("PKCS12");
            keys.load(null, null);
            keys.setKeyEntry("server", key, password, chain.toArray(new X509Certificate[0]));
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(keys, password);
            TrustManagerFactory tmf = null;
            if (caFile != null) {
                KeyStore trust = KeyStore.getInstance("PKCS12");
                trust.load(null, null);
                int i = 0;
                for (X509Certificate ca : Pem.certificates(caFile)) trust.setCertificateEntry("ca" + i++, ca);
                tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
                tmf.init(trust);
            }
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(kmf.getKeyManagers(), tmf == null ? null : tmf.getTrustManagers(), null);
            return new NbdTls(mode, context, needClients, allow);
        } catch (GeneralSecurityException e) {
            throw new DediskException.InvalidRequestException("TLS setup from " + certFile + " and " + keyFile
                    + " failed: " + e.getMessage());
        }
    }

    static Map<String, Set<String>> parseAllow(List<String> rules) {
        Map<String, Set<String>> allow = new TreeMap<>();
        if (rules == null) return allow;
        for (String rule : rules) {
            int colon = rule.lastIndexOf(':');
            if (!rule.startsWith("CN=") || colon <= 3 || colon == rule.length() - 1) {
                throw new DediskException.InvalidRequestException("invalid --tls-allow '" + rule
                        + "': expected CN=name:export[,export...] (export * for all)");
            }
            Set<String> exports = allow.computeIfAbsent(rule.substring(3, colon), cn -> new TreeSet<>());
            for (String export : rule.substring(colon + 1).split(",")) {
                if (!export.isBlank()) exports.add(export.trim());
            }
        }
        return allow;
    }

    public Mode mode() {
        return mode;
    }

    boolean offered() {
        return mode != Mode.OFF;
    }

    boolean required() {
        return mode == Mode.REQUIRE;
    }

    /** A server-side engine for one connection. */
    SSLEngine newEngine() {
        SSLEngine engine = context.createSSLEngine();
        engine.setUseClientMode(false);
        SSLParameters parameters = engine.getSSLParameters();
        parameters.setProtocols(PROTOCOLS);
        parameters.setCipherSuites(cipherSuites(parameters.getCipherSuites()));
        parameters.setUseCipherSuitesOrder(true);
        parameters.setNeedClientAuth(verifyClients);
        engine.setSSLParameters(parameters);
        return engine;
    }

    /**
     * Starts compiling the TLS hot path (a daemon thread pushes in-memory traffic through a server engine, see
     * {@link TlsWarmUp}); for `dedisk serve`, so that its first TLS clients are not served by interpreted AES-GCM.
     */
    public void warmUp() {
        if (context != null) TlsWarmUp.start(newEngine());
    }

    /** Whether a TLS client whose certificate CN is {@code cn} (empty: no certificate) may open {@code export}. */
    boolean allows(Optional<String> cn, String export) {
        if (allow.isEmpty()) return true;
        Set<String> exports = cn.map(allow::get).orElse(null);
        return exports != null && (exports.contains("*") || exports.contains(export));
    }

    boolean restricted() {
        return !allow.isEmpty();
    }

    /**
     * The JDK's suites with AES-128-GCM first: with AES-NI it is the fastest the JDK offers (about 45% more
     * throughput than AES-256-GCM through SSLEngine here, docs/decisions.md); the order is otherwise the JDK's.
     */
    private static String[] cipherSuites(String[] defaults) {
        List<String> ordered = new java.util.ArrayList<>(List.of(defaults));
        for (String preferred : List.of("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_AES_128_GCM_SHA256")) {
            if (ordered.remove(preferred)) ordered.addFirst(preferred);
        }
        return ordered.toArray(new String[0]);
    }

    /** The CN of the peer's certificate, if it sent one. */
    static Optional<String> peerCommonName(SSLEngine engine) {
        try {
            X509Certificate leaf = (X509Certificate) engine.getSession().getPeerCertificates()[0];
            for (Rdn rdn : new LdapName(leaf.getSubjectX500Principal().getName()).getRdns()) {
                if (rdn.getType().equalsIgnoreCase("CN")) return Optional.of(String.valueOf(rdn.getValue()));
            }
            return Optional.empty();
        } catch (SSLPeerUnverifiedException | InvalidNameException e) {
            return Optional.empty();
        }
    }

    @Override
    public String toString() {
        return "TLS " + mode.name().toLowerCase() + (verifyClients ? ", client certificates required" : "")
                + (allow.isEmpty() ? "" : ", exports by CN " + allow);
    }
}
