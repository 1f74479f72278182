package io.dedisk.pool;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.util.Crc;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.UUID;

/**
 * Reads records out of a segment image, trusting nothing: a record is returned only when its header is
 * well-formed, its CRC matches, it fits in the segment and carries the expected LSN. Used by replay (which stops
 * at the first record that fails) and by the checker (which reports it). Stateless.
 */
final class LogReader {
    /** Accepts a record whatever its LSN (scanning past damage). */
    static final long ANY_LSN = -1;

    private LogReader() {}

    /** A verified record: its type, payload (little-endian view), CRC-covered length, and where it sits. */
    record RecordAt(int type, long lsn, ByteBuffer payload, int covered, long payloadOffset, long end) {}

    /** The record at offset if it is whole and verified (and has the expected LSN); else null. */
    static RecordAt readRecord(byte[] segment, long offset, long expectedLsn, long seq, UUID poolId) {
        if (offset + LogRecord.HEADER_SIZE > segment.length) return null;
        ByteBuffer headerUntrusted = ByteBuffer.wrap(segment, (int) offset, LogRecord.HEADER_SIZE).slice();
        LogRecord.Header h = LogRecord.Header.parseUntrusted(headerUntrusted);
        if (h == null || offset + LogRecord.HEADER_SIZE + h.length() > segment.length) return null;
        ByteBuffer whole = ByteBuffer.wrap(segment, (int) offset, LogRecord.HEADER_SIZE + h.length()).slice();
        if (!h.verify(whole) || expectedLsn != ANY_LSN && h.lsn() != expectedLsn) return null;
        ByteBuffer payload = whole.slice(LogRecord.HEADER_SIZE, h.length()).order(ByteOrder.LITTLE_ENDIAN);
        if (h.type() == LogRecord.SEGMENT_HEADER) {
            UUID id = new UUID(payload.getLong(0), payload.getLong(8));
            if (!id.equals(poolId) || payload.getLong(16) != seq) {
                throw new CorruptionException("log: segment " + seq + " header names pool " + id + " segment " + payload.getLong(16));
            }
        }
        return new RecordAt(h.type(), h.lsn(), payload, h.covered(), offset + LogRecord.HEADER_SIZE, offset + LogRecord.HEADER_SIZE + h.length());
    }

    /** What a walk of a segment saw at its end. */
    record WalkEnd(long offset, long nextLsn, boolean sealed) {}

    /** Sees each verified record of a walk; returns false to stop before it (the walk then ends at its offset). */
    interface RecordVisitor {
        boolean visit(RecordAt record);
    }

    /**
     * The one walker of the log: visits the records of one segment image from {@code offset}, each verified and
     * carrying the next LSN ({@code firstLsn}, or whatever the first record carries when {@link #ANY_LSN}), until a
     * record does not verify, the visitor stops, or a SEAL (visited too) ends the segment.
     */
    static WalkEnd walk(byte[] segment, long offset, long firstLsn, long seq, UUID poolId, RecordVisitor visitor) {
        long lsn = firstLsn;
        while (true) {
            RecordAt r = readRecord(segment, offset, lsn, seq, poolId);
            if (r == null || offset == 0 && r.type() != LogRecord.SEGMENT_HEADER || !visitor.visit(r)) return new WalkEnd(offset, lsn, false);
            lsn = r.lsn() + 1;
            offset = r.end();
            if (r.type() == LogRecord.SEAL) return new WalkEnd(offset, lsn, true);
        }
    }

    /** Whether every NEW chunk body of a WRITE record matches the CRC32C its entry gives. */
    static boolean bodiesIntact(RecordAt r) {
        if (r.type() == LogRecord.RELOCATE) {
            for (RelocateRecord.Entry e : RelocateRecord.parse(r.payload(), r.covered()).entries()) {
                if (Crc.of(r.payload().array(), r.payload().arrayOffset() + e.bodyPosition(), e.length()) != e.crc()) return false;
            }
            return true;
        }
        if (r.type() != LogRecord.WRITE) return true;
        for (WriteRecord.Entry e : WriteRecord.parse(r.payload(), r.covered()).entries()) {
            if (e.kind() == WriteRecord.KIND_NEW && Crc.of(r.payload().array(), r.payload().arrayOffset() + e.bodyPosition(), e.length()) != e.crc()) {
                return false;
            }
        }
        return true;
    }
}
