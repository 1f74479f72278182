package io.dedisk.nbd;

import static io.dedisk.nbd.NbdConstants.*;
import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A deliberately dumb raw-socket NBD client for tests: it sends exactly the bytes it is told to (including
 * malformed ones) and decodes what comes back, asserting nothing itself. Single-threaded; every read times out
 * after 10 s so a misbehaving server fails a test instead of hanging it.
 */
final class TestNbdClient implements AutoCloseable {
    /** One option reply: the option it answers, its type, and its data. */
    record OptionReply(int option, int type, byte[] data) {
        boolean isError() {
            return (type & NBD_REP_FLAG_ERROR) != 0;
        }

        String text() {
            return new String(data, UTF_8);
        }
    }

    /** What NBD_OPT_GO / NBD_OPT_EXPORT_NAME told us; {@code infos} are all NBD_REP_INFO payloads received. */
    record Export(long size, int flags, List<byte[]> infos) {}

    /**
     * One transmission reply (one structured chunk, or a simple reply). For structured chunks: {@code chunkType},
     * {@code chunkFlags}, and per type the data (OFFSET_DATA), the descriptors as [length, status] pairs and the
     * context id (BLOCK_STATUS), or the error and message (ERROR).
     */
    record Reply(long cookie, boolean structured, int chunkFlags, int chunkType, int error, byte[] data,
                 long dataOffset, String message, int contextId, long[][] descriptors) {
        boolean done() {
            return !structured || (chunkFlags & NBD_REPLY_FLAG_DONE) != 0;
        }
    }

    private Socket socket;
    private DataInputStream in;
    private DataOutputStream out;
    private final int handshakeFlags;
    /** Cookie → length of reads sent but not answered, to know whether a simple reply carries data. */
    private final Map<Long, Long> pendingReads = new ConcurrentHashMap<>();

    TestNbdClient(InetSocketAddress address) throws IOException {
        socket = new Socket(address.getAddress(), address.getPort());
        socket.setSoTimeout(10_000);
        socket.setTcpNoDelay(true);
        in = new DataInputStream(new BufferedInputStream(socket.getInputStream()));
        out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream()));
        long magic = in.readLong();
        long option = in.readLong();
        if (magic != NBDMAGIC || option != IHAVEOPT) {
            throw new IOException(String.format("bad greeting %x %x", magic, option));
        }
        handshakeFlags = in.readUnsignedShort();
    }

    /** Connects, sends fixed-newstyle + no-zeroes client flags, and (if structured) negotiates structured replies. */
    static TestNbdClient negotiated(InetSocketAddress address, boolean structured) throws IOException {
        TestNbdClient client = new TestNbdClient(address);
        client.clientFlags(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
        if (structured) client.expectAck(client.option(NBD_OPT_STRUCTURED_REPLY, new byte[0]));
        return client;
    }

    /**
     * After NBD_OPT_STARTTLS was acknowledged: runs the TLS handshake (verifying the server's certificate against
     * 127.0.0.1) and continues over TLS.
     */
    void startTls(javax.net.ssl.SSLContext context) throws IOException {
        javax.net.ssl.SSLSocket tls = (javax.net.ssl.SSLSocket) context.getSocketFactory()
                .createSocket(socket, "127.0.0.1", socket.getPort(), true);
        tls.setUseClientMode(true);
        javax.net.ssl.SSLParameters parameters = tls.getSSLParameters();
        parameters.setEndpointIdentificationAlgorithm("HTTPS");
        tls.setSSLParameters(parameters);
        tls.startHandshake();
        socket = tls;
        in = new DataInputStream(new BufferedInputStream(tls.getInputStream()));
        out = new DataOutputStream(new BufferedOutputStream(tls.getOutputStream()));
    }

    /** The TLS protocol in use ("TLSv1.3"), or null on a plain connection. */
    String tlsProtocol() {
        return socket instanceof javax.net.ssl.SSLSocket tls ? tls.getSession().getProtocol() : null;
    }

    int handshakeFlags() {
        return handshakeFlags;
    }

    void clientFlags(int flags) throws IOException {
        out.writeInt(flags);
        out.flush();
    }

    // --- Option haggling -----------------------------------------------------------------------------------------

    void sendOption(long magic, int option, byte[] data) throws IOException {
        out.writeLong(magic);
        out.writeInt(option);
        out.writeInt(data.length);
        out.write(data);
        out.flush();
    }

    OptionReply readOptionReply() throws IOException {
        long magic = in.readLong();
        if (magic != OPTION_REPLY_MAGIC) throw new IOException(String.format("bad option reply magic %x", magic));
        int option = in.readInt();
        int type = in.readInt();
        byte[] data = new byte[in.readInt()];
        in.readFully(data);
        return new OptionReply(option, type, data);
    }

    /** Sends an option and reads replies up to the final one (ACK or an error), returning all of them. */
    List<OptionReply> option(int option, byte[] data) throws IOException {
        sendOption(IHAVEOPT, option, data);
        List<OptionReply> replies = new ArrayList<>();
        while (true) {
            OptionReply reply = readOptionReply();
            replies.add(reply);
            if (reply.option() != option) {
                throw new IOException("reply for option " + reply.option() + ", sent " + option);
            }
            if (reply.type() == NBD_REP_ACK || reply.isError()) return replies;
        }
    }

    void expectAck(List<OptionReply> replies) throws IOException {
        OptionReply last = replies.getLast();
        if (last.type() != NBD_REP_ACK) {
            throw new IOException("expected ACK, got type " + last.type() + ": " + last.text());
        }
    }

    /** NBD_OPT_GO; returns the export or throws with the error reply's text. */
    Export go(String name, int... infoRequests) throws IOException {
        List<OptionReply> replies = option(NBD_OPT_GO, infoData(name, infoRequests));
        expectAck(replies);
        return export(replies);
    }

    static Export export(List<OptionReply> replies) {
        long size = -1;
        int flags = -1;
        List<byte[]> infos = new ArrayList<>();
        for (OptionReply reply : replies) {
            if (reply.type() != NBD_REP_INFO) continue;
            infos.add(reply.data());
            ByteBuffer b = ByteBuffer.wrap(reply.data());
            if (b.getShort() == NBD_INFO_EXPORT) {
                size = b.getLong();
                flags = Short.toUnsignedInt(b.getShort());
            }
        }
        return new Export(size, flags, infos);
    }

    /** NBD_OPT_EXPORT_NAME; returns size and flags, reading the 124 zero bytes unless noZeroes was negotiated. */
    Export exportName(String name, boolean noZeroes) throws IOException {
        sendOption(IHAVEOPT, NBD_OPT_EXPORT_NAME, name.getBytes(UTF_8));
        long size = in.readLong();
        int flags = in.readUnsignedShort();
        if (!noZeroes) {
            byte[] zeroes = new byte[124];
            in.readFully(zeroes);
        }
        return new Export(size, flags, List.of());
    }

    static byte[] infoData(String name, int... infoRequests) {
        byte[] bytes = name.getBytes(UTF_8);
        ByteBuffer b = ByteBuffer.allocate(4 + bytes.length + 2 + 2 * infoRequests.length);
        b.putInt(bytes.length).put(bytes).putShort((short) infoRequests.length);
        for (int info : infoRequests) b.putShort((short) info);
        return b.array();
    }

    static byte[] metaData(String name, String... queries) {
        byte[] bytes = name.getBytes(UTF_8);
        int length = 4 + bytes.length + 4;
        for (String q : queries) length += 4 + q.getBytes(UTF_8).length;
        ByteBuffer b = ByteBuffer.allocate(length).putInt(bytes.length).put(bytes).putInt(queries.length);
        for (String q : queries) {
            byte[] qb = q.getBytes(UTF_8);
            b.putInt(qb.length).put(qb);
        }
        return b.array();
    }

    // --- Transmission ------------------------------------------------------------------------------------------

    void send(int flags, int type, long cookie, long offset, long length, byte[] payload) throws IOException {
        out.writeInt(NBD_REQUEST_MAGIC);
        out.writeShort(flags);
        out.writeShort(type);
        out.writeLong(cookie);
        out.writeLong(offset);
        out.writeInt((int) length);
        if (payload != null) out.write(payload);
        out.flush();
        if (type == NBD_CMD_READ) pendingReads.put(cookie, length);
    }

    void sendRaw(byte[] bytes) throws IOException {
        out.write(bytes);
        out.flush();
    }

    /** Reads one reply (simple) or one chunk (structured). */
    Reply readReply() throws IOException {
        int magic = in.readInt();
        if (magic == NBD_SIMPLE_REPLY_MAGIC) {
            int error = in.readInt();
            long cookie = in.readLong();
            Long readLength = pendingReads.remove(cookie);
            byte[] data = null;
            if (readLength != null && error == 0) {
                data = new byte[(int) (long) readLength];
                in.readFully(data);
            }
            return new Reply(cookie, false, 0, -1, error, data, -1, null, -1, null);
        }
        if (magic != NBD_STRUCTURED_REPLY_MAGIC) throw new IOException(String.format("bad reply magic %08x", magic));
        int flags = in.readUnsignedShort();
        int type = in.readUnsignedShort();
        long cookie = in.readLong();
        int length = in.readInt();
        byte[] payload = new byte[length];
        in.readFully(payload);
        if ((flags & NBD_REPLY_FLAG_DONE) != 0) pendingReads.remove(cookie);
        ByteBuffer b = ByteBuffer.wrap(payload);
        return switch (type) {
            case NBD_REPLY_TYPE_OFFSET_DATA -> {
                long offset = b.getLong();
                byte[] data = new byte[b.remaining()];
                b.get(data);
                yield new Reply(cookie, true, flags, type, 0, data, offset, null, -1, null);
            }
            case NBD_REPLY_TYPE_BLOCK_STATUS -> {
                int id = b.getInt();
                long[][] descriptors = new long[b.remaining() / 8][];
                for (int i = 0; i < descriptors.length; i++) {
                    long extent = Integer.toUnsignedLong(b.getInt());
                    descriptors[i] = new long[] {extent, Integer.toUnsignedLong(b.getInt())};
                }
                yield new Reply(cookie, true, flags, type, 0, null, -1, null, id, descriptors);
            }
            case NBD_REPLY_TYPE_ERROR -> {
                int error = b.getInt();
                byte[] text = new byte[b.getShort()];
                b.get(text);
                yield new Reply(cookie, true, flags, type, error, null, -1, new String(text, UTF_8), -1, null);
            }
            default -> new Reply(cookie, true, flags, type, 0, payload, -1, null, -1, null);
        };
    }

    Reply request(int flags, int type, long offset, long length, byte[] payload) throws IOException {
        long cookie = System.nanoTime();
        send(flags, type, cookie, offset, length, payload);
        Reply reply = readReply();
        if (reply.cookie() != cookie) throw new IOException("reply cookie " + reply.cookie() + ", expected " + cookie);
        return reply;
    }

    byte[] read(long offset, int length) throws IOException {
        Reply reply = request(0, NBD_CMD_READ, offset, length, null);
        if (reply.error() != 0) throw new IOException("read failed: error " + reply.error() + " " + reply.message());
        return reply.data();
    }

    void write(long offset, byte[] data) throws IOException {
        Reply reply = request(0, NBD_CMD_WRITE, offset, data.length, data);
        if (reply.error() != 0) throw new IOException("write failed: error " + reply.error() + " " + reply.message());
    }

    /** True if the server closed the connection (end of stream or reset) within the read timeout. */
    boolean closedByServer() throws IOException {
        try {
            while (true) {
                if (in.read() < 0) return true;
            }
        } catch (EOFException | java.net.SocketException e) {
            return true;
        } catch (SocketTimeoutException e) {
            return false;
        }
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
