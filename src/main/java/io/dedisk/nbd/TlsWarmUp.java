package io.dedisk.nbd;

import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.security.cert.X509Certificate;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLEngineResult.HandshakeStatus;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * Pushes TLS traffic through an in-memory pair of engines (the server's, and a client that trusts anything: no
 * byte of it leaves the process) once at server start, on a daemon thread, so that the JIT has compiled the JDK's
 * AES-GCM path with its intrinsics before the first client arrives. Until then the JDK runs AES-CTR and GHASH as
 * plain Java, byte by byte: bench/limits.sh's first TLS round gave 11,039 fio IOPS (server 761 cs) and 101 MB/s
 * of nbdcopy (91 cs per 256 MiB) against ~19,000 IOPS and 33–46 cs in later rounds. The traffic mimics the
 * server's: records sealed in a heap buffer from several 4 KiB direct replies and from full 16 KiB ones, small
 * client records decrypted into direct and heap buffers. About 100 MB each way; a second or two of one CPU.
 */
final class TlsWarmUp implements Runnable {
    private static final System.Logger LOG = System.getLogger("dedisk.nbd");
    static final int ROUNDS = 4000;
    private final SSLEngine server;

    TlsWarmUp(SSLEngine server) {
        this.server = server;
    }

    /** Starts the warm-up of {@code server} (an engine made like the connections' ones) on a daemon thread. */
    static void start(SSLEngine server) {
        Thread thread = new Thread(new TlsWarmUp(server), "dedisk-tls-warm-up");
        thread.setDaemon(true);
        thread.start();
    }

    @Override
    public void run() {
        long start = System.nanoTime();
        try {
            warmUp();
            LOG.log(Level.DEBUG, "TLS warm-up done in {0} ms", (System.nanoTime() - start) / 1_000_000);
        } catch (Exception | AssertionError e) {
            LOG.log(Level.WARNING, "TLS warm-up failed (harmless: only the first clients are slower): {0}", e.toString());
        }
    }

    /** The warm-up itself, on the calling thread; throws if the engines could not talk. */
    void warmUp() throws Exception {
        SSLContext trusting = SSLContext.getInstance("TLS");
        trusting.init(null, new TrustManager[] {new TrustAll()}, null);
        SSLEngine client = trusting.createSSLEngine("localhost", 10809);
        client.setUseClientMode(true);
        server.setNeedClientAuth(false); // the in-memory client has no certificate
        int packet = server.getSession().getPacketBufferSize();
        ByteBuffer toServer = ByteBuffer.allocate(4 * packet).limit(0); // drain mode: nothing pending
        ByteBuffer toClient = ByteBuffer.allocate(4 * packet).limit(0);
        ByteBuffer clientApp = ByteBuffer.allocate(2 * packet);
        ByteBuffer serverApp = ByteBuffer.allocate(2 * packet);
        ByteBuffer none = ByteBuffer.allocate(0);
        client.beginHandshake();
        server.beginHandshake();
        for (int i = 0; i < 1000 && !(done(client) && done(server)); i++) {
            step(client, none, toServer, toClient, clientApp);
            step(server, none, toClient, toServer, serverApp);
        }
        if (!done(client) || !done(server)) throw new IllegalStateException("handshake did not finish");
        while (toClient.hasRemaining()) { // post-handshake messages (TLS 1.3 session tickets)
            if (client.unwrap(toClient, clientApp.clear()).bytesConsumed() == 0) break;
        }

        ByteBuffer[] replies = new ByteBuffer[8];
        for (int i = 0; i < replies.length; i++) replies[i] = ByteBuffer.allocateDirect(4096 + 16);
        ByteBuffer[] big = {ByteBuffer.allocateDirect(16384)};
        ByteBuffer scratch = ByteBuffer.allocate(packet);
        ByteBuffer request = ByteBuffer.allocate(28);
        ByteBuffer directIn = ByteBuffer.allocateDirect(Wire.LARGE_INPUT);
        for (int round = 0; round < ROUNDS; round++) {
            for (ByteBuffer r : replies) r.clear();
            big[0].clear();
            sealAndOpen(replies, scratch, client, clientApp);
            sealAndOpen(big, scratch, client, clientApp);
            for (int i = 0; i < 2; i++) {
                toServer.clear();
                client.wrap(request.clear(), toServer);
                toServer.flip();
                ByteBuffer dst = i == 0 ? directIn.clear() : serverApp.clear();
                server.unwrap(toServer, dst);
            }
        }
        server.closeOutbound();
        client.closeOutbound();
    }

    /** Server seals srcs the way TlsTransport does (heap scratch, one record a wrap); the client opens each record. */
    private void sealAndOpen(ByteBuffer[] srcs, ByteBuffer scratch, SSLEngine client, ByteBuffer clientApp)
            throws Exception {
        int first = 0;
        while (first < srcs.length) {
            scratch.clear();
            check(server.wrap(srcs, first, srcs.length - first, scratch));
            while (first < srcs.length && !srcs[first].hasRemaining()) first++;
            scratch.flip();
            clientApp.clear();
            check(client.unwrap(scratch, clientApp));
        }
    }

    private static void check(SSLEngineResult result) {
        if (result.getStatus() != SSLEngineResult.Status.OK) {
            throw new IllegalStateException("TLS warm-up: " + result);
        }
    }

    private static boolean done(SSLEngine engine) {
        HandshakeStatus hs = engine.getHandshakeStatus();
        return hs == HandshakeStatus.NOT_HANDSHAKING || hs == HandshakeStatus.FINISHED;
    }

    /** Runs {@code engine}'s handshake as far as it goes without the peer: out collects its records, in feeds it. */
    private static void step(SSLEngine engine, ByteBuffer none, ByteBuffer out, ByteBuffer in, ByteBuffer app)
            throws Exception {
        while (true) {
            switch (engine.getHandshakeStatus()) {
                case NEED_TASK -> {
                    Runnable task;
                    while ((task = engine.getDelegatedTask()) != null) task.run();
                }
                case NEED_WRAP -> {
                    out.compact(); // out is kept in drain mode
                    try {
                        check(engine.wrap(none, out));
                    } finally {
                        out.flip();
                    }
                }
                case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
                    SSLEngineResult result = engine.unwrap(in, app.clear());
                    if (result.getStatus() == SSLEngineResult.Status.BUFFER_UNDERFLOW
                            || result.bytesConsumed() == 0 && result.bytesProduced() == 0) {
                        return;
                    }
                }
                default -> {
                    return;
                }
            }
        }
    }

    /** For the in-memory client only: it talks to this process's own engine. */
    private static final class TrustAll implements X509TrustManager {
        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) { }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) { }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return new X509Certificate[0];
        }
    }
}
