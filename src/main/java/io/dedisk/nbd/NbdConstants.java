package io.dedisk.nbd;

import java.nio.charset.StandardCharsets;

/**
 * Every number the NBD wire protocol uses, named as in the spec (NetworkBlockDevice/nbd doc/proto.md), plus the
 * limits this server chose. Pure constants: no state, no threads. All wire values are big-endian.
 */
final class NbdConstants {
    private NbdConstants() {}

    // --- Handshake magics -------------------------------------------------------------------------------------
    /** "NBDMAGIC", the INIT_PASSWD sent first by the server. */
    static final long NBDMAGIC = 0x4e42444d41474943L;
    /** "IHAVEOPT": second server magic of newstyle negotiation, and the magic opening every client option. */
    static final long IHAVEOPT = 0x49484156454F5054L;
    /** Magic opening every fixed-newstyle option reply. */
    static final long OPTION_REPLY_MAGIC = 0x3e889045565a9L;

    // --- Handshake flags (server, 16 bits) and client flags (32 bits) -------------------------------------------
    static final int NBD_FLAG_FIXED_NEWSTYLE = 1;
    static final int NBD_FLAG_NO_ZEROES = 1 << 1;
    static final int NBD_FLAG_C_FIXED_NEWSTYLE = 1;
    static final int NBD_FLAG_C_NO_ZEROES = 1 << 1;

    // --- Options --------------------------------------------------------------------------------------------------
    static final int NBD_OPT_EXPORT_NAME = 1;
    static final int NBD_OPT_ABORT = 2;
    static final int NBD_OPT_LIST = 3;
    static final int NBD_OPT_STARTTLS = 5;
    static final int NBD_OPT_INFO = 6;
    static final int NBD_OPT_GO = 7;
    static final int NBD_OPT_STRUCTURED_REPLY = 8;
    static final int NBD_OPT_LIST_META_CONTEXT = 9;
    static final int NBD_OPT_SET_META_CONTEXT = 10;
    static final int NBD_OPT_EXTENDED_HEADERS = 11;

    // --- Option reply types ---------------------------------------------------------------------------------------
    static final int NBD_REP_ACK = 1;
    static final int NBD_REP_SERVER = 2;
    static final int NBD_REP_INFO = 3;
    static final int NBD_REP_META_CONTEXT = 4;
    static final int NBD_REP_FLAG_ERROR = 1 << 31;
    static final int NBD_REP_ERR_UNSUP = NBD_REP_FLAG_ERROR | 1;
    static final int NBD_REP_ERR_POLICY = NBD_REP_FLAG_ERROR | 2;
    static final int NBD_REP_ERR_INVALID = NBD_REP_FLAG_ERROR | 3;
    static final int NBD_REP_ERR_TLS_REQD = NBD_REP_FLAG_ERROR | 5;
    static final int NBD_REP_ERR_UNKNOWN = NBD_REP_FLAG_ERROR | 6;
    static final int NBD_REP_ERR_TOO_BIG = NBD_REP_FLAG_ERROR | 9;

    // --- NBD_REP_INFO information types ---------------------------------------------------------------------------
    static final int NBD_INFO_EXPORT = 0;
    static final int NBD_INFO_NAME = 1;
    static final int NBD_INFO_DESCRIPTION = 2;
    static final int NBD_INFO_BLOCK_SIZE = 3;

    // --- Transmission flags (16 bits) -----------------------------------------------------------------------------
    static final int NBD_FLAG_HAS_FLAGS = 1;
    static final int NBD_FLAG_READ_ONLY = 1 << 1;
    static final int NBD_FLAG_SEND_FLUSH = 1 << 2;
    static final int NBD_FLAG_SEND_FUA = 1 << 3;
    static final int NBD_FLAG_SEND_TRIM = 1 << 5;
    static final int NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
    static final int NBD_FLAG_SEND_DF = 1 << 7;
    static final int NBD_FLAG_CAN_MULTI_CONN = 1 << 8;
    static final int NBD_FLAG_SEND_CACHE = 1 << 10;
    static final int NBD_FLAG_SEND_FAST_ZERO = 1 << 11;

    // --- Transmission messages ------------------------------------------------------------------------------------
    static final int NBD_REQUEST_MAGIC = 0x25609513;
    static final int NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
    static final int NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;
    /** Request header: magic u32, flags u16, type u16, cookie u64, offset u64, length u32. */
    static final int REQUEST_HEADER_SIZE = 28;
    /** Simple reply: magic u32, error u32, cookie u64. */
    static final int SIMPLE_REPLY_HEADER_SIZE = 16;
    /** Structured reply chunk: magic u32, flags u16, type u16, cookie u64, length u32. */
    static final int STRUCTURED_REPLY_HEADER_SIZE = 20;

    // --- Commands -------------------------------------------------------------------------------------------------
    static final int NBD_CMD_READ = 0;
    static final int NBD_CMD_WRITE = 1;
    static final int NBD_CMD_DISC = 2;
    static final int NBD_CMD_FLUSH = 3;
    static final int NBD_CMD_TRIM = 4;
    static final int NBD_CMD_CACHE = 5;
    static final int NBD_CMD_WRITE_ZEROES = 6;
    static final int NBD_CMD_BLOCK_STATUS = 7;

    // --- Command flags (16 bits) ----------------------------------------------------------------------------------
    static final int NBD_CMD_FLAG_FUA = 1;
    static final int NBD_CMD_FLAG_NO_HOLE = 1 << 1;
    static final int NBD_CMD_FLAG_DF = 1 << 2;
    static final int NBD_CMD_FLAG_REQ_ONE = 1 << 3;
    static final int NBD_CMD_FLAG_FAST_ZERO = 1 << 4;

    // --- Structured reply flags and chunk types -------------------------------------------------------------------
    static final int NBD_REPLY_FLAG_DONE = 1;
    static final int NBD_REPLY_TYPE_OFFSET_DATA = 1;
    static final int NBD_REPLY_TYPE_BLOCK_STATUS = 5;
    static final int NBD_REPLY_TYPE_ERROR = (1 << 15) | 1;

    // --- base:allocation metadata context -------------------------------------------------------------------------
    static final String BASE_ALLOCATION = "base:allocation";
    static final int NBD_STATE_HOLE = 1;
    static final int NBD_STATE_ZERO = 1 << 1;

    // --- Error values ---------------------------------------------------------------------------------------------
    static final int NBD_EPERM = 1;
    static final int NBD_EIO = 5;
    static final int NBD_EINVAL = 22;
    static final int NBD_ENOSPC = 28;
    static final int NBD_EOVERFLOW = 75;

    // --- Limits chosen by this server -----------------------------------------------------------------------------
    /** NBD_INFO_BLOCK_SIZE: minimum block size (dedisk accepts any byte range). */
    static final int MIN_BLOCK_SIZE = 1;
    /** NBD_INFO_BLOCK_SIZE: preferred block size (dedisk's block, avoids read-modify-write). */
    static final int PREFERRED_BLOCK_SIZE = 4096;
    /** NBD_INFO_BLOCK_SIZE: maximum payload (2^25, the size every client may rely on). */
    static final int MAX_PAYLOAD = 32 << 20;
    /** Option data larger than this is skipped and answered with NBD_REP_ERR_TOO_BIG. */
    static final int MAX_OPTION_DATA = 64 << 10;
    /** Human-readable messages (option error replies, error chunks) are cut to this many chars: ≤ 4096 bytes. */
    private static final int MAX_MESSAGE_CHARS = 1000;
    /** Upper bound on descriptors in one NBD_REPLY_TYPE_BLOCK_STATUS chunk (the spec allows up to 2^20). */
    static final int MAX_BLOCK_STATUS_DESCRIPTORS = 4096;
    /** Metadata context id this server assigns to base:allocation in NBD_OPT_SET_META_CONTEXT. */
    static final int BASE_ALLOCATION_ID = 1;

    /**
     * A message for humans as an NBD string: UTF-8, and short enough for the spec's "MUST be no longer than
     * 4096 bytes" (at most 4 bytes per code point, 2 chars per 4 bytes above the BMP).
     */
    static byte[] message(String text) {
        return (text.length() > MAX_MESSAGE_CHARS ? text.substring(0, MAX_MESSAGE_CHARS) : text)
                .getBytes(StandardCharsets.UTF_8);
    }
}
