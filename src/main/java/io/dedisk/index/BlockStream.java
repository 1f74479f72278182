package io.dedisk.index;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.store.Fs;
import io.dedisk.util.Check;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * The block framing of the index's streamed files ({@link SaveFile}, {@link OpenChapterFile}): after a file's fixed
 * header come CRC'd blocks, numbered from 0 in file order. A block, little-endian:
 * <pre>
 *   0 u32 payload length L (1 ≤ L ≤ 16 MiB)
 *   4 u32 CRC32C of (u32 block number ‖ u32 L ‖ payload)
 *   8 L bytes of payload
 * </pre>
 * The block number is covered by the CRC but not stored, so a block found at another position (a misdirected or
 * reordered write, a block of another file) fails its check; an all-zero region (the unwritten sectors of a torn
 * append) fails too, since L = 0 is refused.
 *
 * A {@link Reader} that meets a block it cannot trust throws {@link BadBlock}, a CorruptionException that also
 * says whether the bad block runs to the end of the file (what an interrupted append leaves) or has good-looking
 * bytes after it (damage in the middle).
 *
 * Threads: none inside; a Writer or Reader is used by one thread at a time.
 */
final class BlockStream {
    static final int HEAD = 8;
    static final int MAX_PAYLOAD = 16 << 20;

    private BlockStream() {}

    static int crc(int number, int length, byte[] payload, int off, int len) {
        CRC32C c = new CRC32C();
        byte[] head = new byte[8];
        ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).putInt(number).putInt(length);
        c.update(head, 0, 8);
        c.update(payload, off, len);
        return (int) c.getValue();
    }

    /** A block that failed verification, at {@code offset}; {@code reachesEnd} when nothing follows it in the file. */
    static final class BadBlock extends CorruptionException {
        private static final long serialVersionUID = 1L;
        final long offset;
        final int number;
        final boolean reachesEnd;

        BadBlock(String message, long offset, int number, boolean reachesEnd) {
            super(message);
            this.offset = offset;
            this.number = number;
            this.reachesEnd = reachesEnd;
        }
    }

    /** Writes blocks one after another from a position of an open file. */
    static final class Writer {
        private final Fs.FileHandle h;
        private long pos;
        private int blocks;

        Writer(Fs.FileHandle h, long pos, int firstNumber) {
            this.h = h;
            this.pos = pos;
            this.blocks = firstNumber;
        }

        void write(byte[] payload, int off, int len) throws IOException {
            Check.that(len >= 1 && len <= MAX_PAYLOAD, "block payload of %d bytes in [1, %d]", len, MAX_PAYLOAD);
            ByteBuffer head = ByteBuffer.allocate(HEAD).order(ByteOrder.LITTLE_ENDIAN);
            head.putInt(len).putInt(crc(blocks, len, payload, off, len));
            h.write(pos, head.flip());
            h.write(pos + HEAD, ByteBuffer.wrap(payload, off, len));
            pos += HEAD + len;
            blocks++;
        }

        long pos() { return pos; }

        /** Number of the next block (= blocks written when the first was number 0). */
        int blocks() { return blocks; }
    }

    /** Reads and verifies the blocks from a position up to {@code end} (the file's size). */
    static final class Reader {
        private final Fs.FileHandle h;
        private final long end;
        private final String what;
        private long pos;
        private int blocks;

        Reader(Fs.FileHandle h, long pos, long end, String what) {
            this.h = h;
            this.pos = pos;
            this.end = end;
            this.what = what;
        }

        boolean atEnd() { return pos >= end; }

        long pos() { return pos; }

        /** Blocks read so far (the number of the next one). */
        int blocks() { return blocks; }

        /** The next block's payload; throws {@link BadBlock} when it does not verify (also when the file ends early). */
        byte[] next() throws IOException {
            Check.that(!atEnd(), "%s: block read past the end", what);
            if (end - pos < HEAD) {
                throw new BadBlock(String.format("%s: block %d at offset %d: expected a %d-byte block header, found %d bytes before the end",
                        what, blocks, pos, HEAD, end - pos), pos, blocks, true);
            }
            ByteBuffer head = ByteBuffer.allocate(HEAD).order(ByteOrder.LITTLE_ENDIAN);
            h.readFully(pos, head);
            int len = head.getInt(0), stored = head.getInt(4);
            if (len < 1 || len > MAX_PAYLOAD) {
                throw new BadBlock(String.format("%s: block %d at offset %d: length expected in [1, %d], found %d",
                        what, blocks, pos, MAX_PAYLOAD, len), pos, blocks, true);
            }
            if (end - pos - HEAD < len) {
                throw new BadBlock(String.format("%s: block %d at offset %d: expected %d payload bytes, found %d before the end",
                        what, blocks, pos, len, end - pos - HEAD), pos, blocks, true);
            }
            byte[] payload = new byte[len];
            h.readFully(pos + HEAD, ByteBuffer.wrap(payload));
            int computed = crc(blocks, len, payload, 0, len);
            if (computed != stored) {
                boolean last = pos + HEAD + len == end;
                throw new BadBlock(String.format("%s: block %d at offset %d: CRC32C expected %08x, found %08x",
                        what, blocks, pos, computed, stored), pos, blocks, last);
            }
            pos += HEAD + len;
            blocks++;
            return payload;
        }
    }
}
