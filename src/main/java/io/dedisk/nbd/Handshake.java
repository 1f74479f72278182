package io.dedisk.nbd;

import static io.dedisk.nbd.NbdConstants.*;
import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import io.dedisk.pool.VolumeDevice;
import io.dedisk.pool.VolumeProvider;

/**
 * Fixed newstyle negotiation (option haggling) for one connection, up to the start of the transmission phase.
 *
 * Wire: S: NBDMAGIC u64, IHAVEOPT u64, handshake flags u16 (FIXED_NEWSTYLE | NO_ZEROES); C: client flags u32.
 * Then repeatedly C: IHAVEOPT u64, option u32, data length u32, data; S: replies of OPTION_REPLY_MAGIC u64,
 * option u32, reply type u32, length u32, data. Ends with NBD_OPT_GO + NBD_REP_ACK, with NBD_OPT_EXPORT_NAME +
 * size u64, transmission flags u16 and (unless NO_ZEROES) 124 zero bytes, with NBD_OPT_ABORT, or with a close.
 *
 * TLS ({@link NbdTls}): NBD_OPT_STARTTLS is acknowledged, then the TLS handshake runs on this thread and every
 * later byte is encrypted; negotiation state from before it (structured replies, metadata context) is forgotten,
 * since a man in the middle could have chosen it. In require mode every other option before TLS is answered
 * NBD_REP_ERR_TLS_REQD (NBD_OPT_EXPORT_NAME, which cannot fail with a reply, disconnects). Over TLS with an allow
 * list, exports the client certificate's CN may not open are refused with NBD_REP_ERR_POLICY and left out of
 * NBD_OPT_LIST.
 *
 * Threads: runs on the connection's reader thread only; all fields are confined to it.
 * Invariants: a reply is sent for every option except NBD_OPT_EXPORT_NAME; option data is always consumed in
 * full, so the stream stays in sync after an error reply; metadata contexts are only ever selected after
 * structured replies were negotiated.
 */
final class Handshake {
    private static final int CLIENT_FLAGS_KNOWN = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES;

    private final Wire wire;
    private final VolumeProvider volumes;
    private final RateLimitedLog log;
    private final NbdTls tls;
    /** Set once TLS is up: the client certificate's CN, if it sent a certificate. */
    private Optional<String> clientName = Optional.empty();
    private TlsTransport secure;
    /** Set by the connection before {@link #run}; TLS handshakes are counted there. */
    io.dedisk.metrics.NbdMetrics metrics = io.dedisk.metrics.NbdMetrics.NOOP;

    private boolean noZeroes;
    private boolean structuredReplies;
    /** Name of the volume the last NBD_OPT_SET_META_CONTEXT selected base:allocation for, or null. */
    private String metaContextVolume;
    /** Set by a successful NBD_OPT_GO or NBD_OPT_EXPORT_NAME: negotiation is over. */
    private Session session;
    private boolean aborted;

    Handshake(Wire wire, VolumeProvider volumes, RateLimitedLog log, NbdTls tls) {
        this.wire = wire;
        this.volumes = volumes;
        this.log = log;
        this.tls = tls;
    }

    /** After {@link #run}: "TLSv1.3, CN=alice" or "plain", for the connection's log line. */
    String security() {
        if (secure == null) return "plain";
        return secure.engine().getSession().getProtocol() + " " + secure.engine().getSession().getCipherSuite()
                + clientName.map(cn -> ", CN=" + cn).orElse("");
    }

    /**
     * Negotiates. Returns the session to serve, or empty if the client aborted or closed the connection.
     * Throws {@link ProtocolViolation} when the connection must be dropped.
     */
    Optional<Session> run() throws IOException {
        wire.writeFully(ByteBuffer.allocate(18).putLong(NBDMAGIC).putLong(IHAVEOPT)
                .putShort((short) (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)).flip());
        int clientFlags = wire.readInt();
        if ((clientFlags & ~CLIENT_FLAGS_KNOWN) != 0) {
            throw new ProtocolViolation(String.format("client flags 0x%x: expected only bits of 0x%x",
                    clientFlags, CLIENT_FLAGS_KNOWN));
        }
        if ((clientFlags & NBD_FLAG_C_FIXED_NEWSTYLE) == 0) {
            throw new ProtocolViolation(String.format("client flags 0x%x: expected NBD_FLAG_C_FIXED_NEWSTYLE, "
                    + "this server speaks fixed newstyle only", clientFlags));
        }
        noZeroes = (clientFlags & NBD_FLAG_C_NO_ZEROES) != 0;

        while (session == null && !aborted && idleThenAwait(16)) {
            long magic = wire.readLong();
            if (magic != IHAVEOPT) {
                throw new ProtocolViolation(String.format("option magic 0x%x, expected IHAVEOPT 0x%x",
                        magic, IHAVEOPT));
            }
            int option = wire.readInt();
            long length = Integer.toUnsignedLong(wire.readInt());
            if (length > MAX_OPTION_DATA) {
                if (option == NBD_OPT_EXPORT_NAME) {
                    throw new ProtocolViolation("NBD_OPT_EXPORT_NAME with " + length
                            + " bytes of name, expected at most " + MAX_OPTION_DATA);
                }
                wire.skip(length);
                error(option, NBD_REP_ERR_TOO_BIG, "option data of " + length + " bytes, this server accepts at most "
                        + MAX_OPTION_DATA);
                continue;
            }
            ByteBuffer data = ByteBuffer.wrap(wire.readBytes((int) length));
            log.log(Level.DEBUG, () -> optionName(option) + " with " + length + " bytes of data", null);
            if (tls.required() && secure == null && option != NBD_OPT_STARTTLS && option != NBD_OPT_ABORT) {
                if (option == NBD_OPT_EXPORT_NAME) {
                    throw new ProtocolViolation("NBD_OPT_EXPORT_NAME without TLS, expected NBD_OPT_STARTTLS first: "
                            + "this server requires TLS");
                }
                error(option, NBD_REP_ERR_TLS_REQD, "this server requires TLS: send NBD_OPT_STARTTLS first");
                continue;
            }
            switch (option) {
                case NBD_OPT_EXPORT_NAME -> exportName(data);
                case NBD_OPT_ABORT -> abort();
                case NBD_OPT_INFO, NBD_OPT_GO -> infoOrGo(option, data);
                case NBD_OPT_LIST -> list(data);
                case NBD_OPT_STARTTLS -> {
                    if (tls.offered()) startTls(data);
                    else error(option, NBD_REP_ERR_UNSUP, "NBD_OPT_STARTTLS: TLS is not configured on this server");
                }
                case NBD_OPT_STRUCTURED_REPLY -> structuredReply(data);
                case NBD_OPT_LIST_META_CONTEXT, NBD_OPT_SET_META_CONTEXT -> metaContext(option, data);
                default -> error(option, NBD_REP_ERR_UNSUP, optionName(option) + " is not supported by this server");
            }
        }
        return Optional.ofNullable(session);
    }

    private void startTls(ByteBuffer data) throws IOException {
        if (data.hasRemaining()) {
            invalid(NBD_OPT_STARTTLS, "NBD_OPT_STARTTLS with " + data.remaining() + " bytes of data, expected none");
            return;
        }
        if (secure != null) {
            invalid(NBD_OPT_STARTTLS, "TLS is already running on this connection");
            return;
        }
        reply(NBD_OPT_STARTTLS, NBD_REP_ACK, ByteBuffer.allocate(0));
        // From here on there is no way back to plain text: a failed TLS handshake ends the connection.
        try {
            secure = wire.startTls(tls.newEngine());
        } catch (IOException | RuntimeException e) {
            metrics.tlsHandshake(false);
            throw e;
        }
        metrics.tlsHandshake(true);
        clientName = NbdTls.peerCommonName(secure.engine());
        structuredReplies = false;
        metaContextVolume = null;
        log.log(Level.DEBUG, () -> "TLS started: " + security(), null);
    }

    /** Whether this client may open {@code name} (resolved volume name): TLS allow list, if any. */
    private boolean allowed(String name) {
        return secure == null || tls.allows(clientName, name);
    }

    /** The export names this client may see (all, unless a TLS allow list restricts it). */
    private List<String> visibleNames() {
        return volumes.volumeNames().stream().filter(this::allowed).toList();
    }

    private String notAllowed(String name) {
        return "export '" + name + "' may not be opened with " + clientName.map(cn -> "certificate CN=" + cn)
                .orElse("no client certificate");
    }

    /** Between options the connection holds only the wire's small buffer. */
    private boolean idleThenAwait(int n) throws IOException {
        wire.idle();
        return wire.await(n);
    }

    private void exportName(ByteBuffer data) throws IOException {
        String name = UTF_8.decode(data).toString();
        // This option cannot fail with a reply: the spec says the server "MUST terminate the session".
        VolumeDevice volume = resolve(name).orElseThrow(() -> new ProtocolViolation(
                "NBD_OPT_EXPORT_NAME for unknown export '" + name + "', expected one of " + visibleNames()));
        if (!allowed(volume.name())) throw new ProtocolViolation("NBD_OPT_EXPORT_NAME: " + notAllowed(volume.name()));
        Session chosen = session(volume);
        ByteBuffer reply = ByteBuffer.allocate(10 + (noZeroes ? 0 : 124))
                .putLong(chosen.size()).putShort((short) chosen.transmissionFlags());
        wire.writeFully(reply.position(reply.limit()).flip());
        session = chosen;
    }

    private void abort() {
        aborted = true;
        try {
            reply(NBD_OPT_ABORT, NBD_REP_ACK, ByteBuffer.allocate(0));
        } catch (IOException e) {
            // The spec lets the client close right after NBD_OPT_ABORT without reading the reply.
            log.log(Level.DEBUG, "NBD_OPT_ABORT reply not delivered: " + e);
        }
    }

    /** NBD_OPT_INFO and NBD_OPT_GO: name length u32, name, info request count u16, info requests u16 each. */
    private void infoOrGo(int option, ByteBuffer data) throws IOException {
        String what = optionName(option);
        if (data.remaining() < 6) {
            invalid(option, what + " data of " + data.remaining() + " bytes, expected at least 6");
            return;
        }
        long nameLength = Integer.toUnsignedLong(data.getInt());
        if (nameLength > data.remaining() - 2) {
            invalid(option, what + " name length " + nameLength
                    + " exceeds the option data length - 6 (" + (data.remaining() - 2) + ")");
            return;
        }
        String name = string(data, (int) nameLength);
        int requests = Short.toUnsignedInt(data.getShort());
        if (data.remaining() != 2 * requests) {
            invalid(option, what + " announces " + requests + " information requests ("
                    + 2 * requests + " bytes) but " + data.remaining() + " bytes follow");
            return;
        }
        boolean wantName = false;
        boolean wantDescription = false;
        for (int i = 0; i < requests; i++) {
            switch (Short.toUnsignedInt(data.getShort())) {
                case NBD_INFO_NAME -> wantName = true;
                case NBD_INFO_DESCRIPTION -> wantDescription = true;
                default -> { } // NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE are always sent; unknown ones are ignored.
            }
        }
        Optional<VolumeDevice> found = resolve(name);
        if (found.isEmpty()) {
            error(option, NBD_REP_ERR_UNKNOWN, "no export named '" + name + "'; exports: " + visibleNames());
            return;
        }
        VolumeDevice volume = found.get();
        if (!allowed(volume.name())) {
            error(option, NBD_REP_ERR_POLICY, notAllowed(volume.name()));
            return;
        }
        Session offered = session(volume);
        info(option, ByteBuffer.allocate(12).putShort((short) NBD_INFO_EXPORT).putLong(offered.size())
                .putShort((short) offered.transmissionFlags()).flip());
        if (wantName) info(option, infoString(NBD_INFO_NAME, volume.name()));
        if (wantDescription) info(option, infoString(NBD_INFO_DESCRIPTION, description(volume)));
        info(option, ByteBuffer.allocate(14).putShort((short) NBD_INFO_BLOCK_SIZE).putInt(MIN_BLOCK_SIZE)
                .putInt(PREFERRED_BLOCK_SIZE).putInt(MAX_PAYLOAD).flip());
        reply(option, NBD_REP_ACK, ByteBuffer.allocate(0));
        if (option == NBD_OPT_GO) session = offered;
    }

    private void list(ByteBuffer data) throws IOException {
        if (data.hasRemaining()) {
            invalid(NBD_OPT_LIST, "NBD_OPT_LIST with " + data.remaining() + " bytes of data, expected none");
            return;
        }
        for (String name : volumes.volumeNames()) {
            if (!allowed(name)) continue;
            byte[] bytes = name.getBytes(UTF_8);
            reply(NBD_OPT_LIST, NBD_REP_SERVER,
                    ByteBuffer.allocate(4 + bytes.length).putInt(bytes.length).put(bytes).flip());
        }
        reply(NBD_OPT_LIST, NBD_REP_ACK, ByteBuffer.allocate(0));
    }

    private void structuredReply(ByteBuffer data) throws IOException {
        if (data.hasRemaining()) {
            invalid(NBD_OPT_STRUCTURED_REPLY, "NBD_OPT_STRUCTURED_REPLY with " + data.remaining()
                    + " bytes of data, expected none");
        } else if (structuredReplies) {
            invalid(NBD_OPT_STRUCTURED_REPLY, "structured replies were already negotiated");
        } else {
            structuredReplies = true;
            reply(NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, ByteBuffer.allocate(0));
        }
    }

    /**
     * NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: export name length u32, name, query count u32, then
     * per query a length u32 and the query string. Only base:allocation exists; "base:" is a wildcard when listing.
     */
    private void metaContext(int option, ByteBuffer data) throws IOException {
        boolean set = option == NBD_OPT_SET_META_CONTEXT;
        String what = optionName(option);
        // SET "replaces all previously-set metadata contexts (including when this command fails)".
        if (set) metaContextVolume = null;
        if (set && !structuredReplies) {
            invalid(option, what + " before NBD_OPT_STRUCTURED_REPLY was negotiated");
            return;
        }
        if (data.remaining() < 8) {
            invalid(option, what + " data of " + data.remaining() + " bytes, expected at least 8");
            return;
        }
        long nameLength = Integer.toUnsignedLong(data.getInt());
        if (nameLength > data.remaining() - 4L) {
            invalid(option, what + " export name length " + nameLength + " leaves no room for the query count");
            return;
        }
        String name = string(data, (int) nameLength);
        long count = Integer.toUnsignedLong(data.getInt());
        List<String> queries = new ArrayList<>();
        for (long i = 0; i < count; i++) {
            if (data.remaining() < 4) {
                invalid(option, what + " announces " + count + " queries but only " + i + " are present");
                return;
            }
            long length = Integer.toUnsignedLong(data.getInt());
            if (length > data.remaining()) {
                invalid(option, what + " query length " + length + " exceeds the " + data.remaining()
                        + " bytes of option data left");
                return;
            }
            String query = string(data, (int) length);
            if (query.indexOf(':') <= 0) {
                invalid(option, what + " query '" + query + "' does not start with a namespace and a colon");
                return;
            }
            queries.add(query);
        }
        if (data.hasRemaining()) {
            invalid(option, what + " has " + data.remaining() + " bytes after its last query, expected none");
            return;
        }
        Optional<VolumeDevice> volume = resolve(name);
        if (volume.isEmpty()) {
            error(option, NBD_REP_ERR_UNKNOWN, "no export named '" + name + "'; exports: " + visibleNames());
            return;
        }
        if (!allowed(volume.get().name())) {
            error(option, NBD_REP_ERR_POLICY, notAllowed(volume.get().name()));
            return;
        }
        // Listing: no query lists everything; "base:" is the wildcard for the base namespace. Setting: only the
        // exact name selects ("base:" MUST be ignored there); unknown namespaces and leaf names are ignored.
        boolean match = queries.stream().anyMatch(q -> q.equals(BASE_ALLOCATION) || (!set && q.equals("base:")))
                || (!set && queries.isEmpty());
        if (match) {
            byte[] contextName = BASE_ALLOCATION.getBytes(UTF_8);
            reply(option, NBD_REP_META_CONTEXT, ByteBuffer.allocate(4 + contextName.length)
                    .putInt(set ? BASE_ALLOCATION_ID : 0).put(contextName).flip());
        }
        if (set && match) metaContextVolume = volume.get().name();
        reply(option, NBD_REP_ACK, ByteBuffer.allocate(0));
    }

    private Optional<VolumeDevice> resolve(String name) {
        return name.isEmpty() ? volumes.defaultVolume() : volumes.volume(name);
    }

    private Session session(VolumeDevice volume) {
        int flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM
                | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO | NBD_FLAG_CAN_MULTI_CONN | NBD_FLAG_SEND_CACHE;
        if (structuredReplies) flags |= NBD_FLAG_SEND_DF;
        if (volume.readOnly()) flags |= NBD_FLAG_READ_ONLY;
        boolean baseAllocation = volume.name().equals(metaContextVolume);
        return new Session(volume, volume.size(), flags, structuredReplies, baseAllocation);
    }

    private static String description(VolumeDevice volume) {
        return "dedisk volume " + volume.name() + (volume.readOnly() ? " (read-only)" : "");
    }

    private static String string(ByteBuffer data, int length) {
        String s = UTF_8.decode(data.slice(data.position(), length)).toString();
        data.position(data.position() + length);
        return s;
    }

    private static ByteBuffer infoString(int type, String value) {
        byte[] bytes = value.getBytes(UTF_8);
        return ByteBuffer.allocate(2 + bytes.length).putShort((short) type).put(bytes).flip();
    }

    private void info(int option, ByteBuffer payload) throws IOException {
        reply(option, NBD_REP_INFO, payload);
    }

    private void invalid(int option, String why) throws IOException {
        error(option, NBD_REP_ERR_INVALID, why);
    }

    /** An error reply carrying {@code why} as its message. */
    private void error(int option, int type, String why) throws IOException {
        // Unsupported options are routine capability probing; the other refusals are client mistakes.
        log.log(type == NBD_REP_ERR_UNSUP ? Level.DEBUG : Level.WARNING, () -> "refused " + optionName(option) + ": "
                + why, null);
        reply(option, type, ByteBuffer.wrap(message(why)));
    }

    private void reply(int option, int type, ByteBuffer payload) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(20).putLong(OPTION_REPLY_MAGIC).putInt(option).putInt(type)
                .putInt(payload.remaining()).flip();
        wire.writeFully(new ByteBuffer[] {header, payload}, 2);
    }

    static String optionName(int option) {
        return switch (option) {
            case NBD_OPT_EXPORT_NAME -> "NBD_OPT_EXPORT_NAME";
            case NBD_OPT_ABORT -> "NBD_OPT_ABORT";
            case NBD_OPT_LIST -> "NBD_OPT_LIST";
            case NBD_OPT_STARTTLS -> "NBD_OPT_STARTTLS";
            case NBD_OPT_INFO -> "NBD_OPT_INFO";
            case NBD_OPT_GO -> "NBD_OPT_GO";
            case NBD_OPT_STRUCTURED_REPLY -> "NBD_OPT_STRUCTURED_REPLY";
            case NBD_OPT_LIST_META_CONTEXT -> "NBD_OPT_LIST_META_CONTEXT";
            case NBD_OPT_SET_META_CONTEXT -> "NBD_OPT_SET_META_CONTEXT";
            case NBD_OPT_EXTENDED_HEADERS -> "NBD_OPT_EXTENDED_HEADERS";
            default -> "option " + option;
        };
    }
}
