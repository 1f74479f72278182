package io.dedisk.index;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.store.Fs;
import io.dedisk.util.ByteSink;
import io.dedisk.util.ByteSource;
import io.dedisk.util.Check;
import io.dedisk.util.Crc;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.function.Consumer;

/**
 * The open chapter checkpoint file: what {@link UdsIndex#checkpoint} makes durable of the open chapter, so a crash
 * (process kill or power loss) does not forget the records posted since the last chapter close. One file per
 * open chapter, deleted once that chapter's own file is written or a save holds its records.
 *
 * File {@code <dir>/open-<chapter number, 16 hex digits>}, little-endian:
 * <pre>
 *   header (48 bytes):  0 u64 magic "DDSKOPEN"   8 u32 format version (2)   12 u32 flags (0)
 *                      16 u64+u64 index id      32 u64 chapter number       40 u32 reserved (0)
 *                      44 u32 CRC32C of [0, 44)
 *   then {@link BlockStream} blocks, each payload:
 *                       0 u64 chapter number    8 u64 max chunk id (the index's when the block was written)
 *                      16 u32 record count n ≥ 1
 *                      20 n records ({@link OpenChapter#encode}: 4 × u64 name · varint chunk id · varint previous age)
 * </pre>
 * The first checkpoint of a chapter in a process writes a <em>base</em>: every record of the open chapter, written
 * whole and atomically (temp file, sync, rename, directory sync), replacing any older file of that chapter. Later
 * checkpoints <em>append</em> blocks holding only the records posted since, then sync the file: a checkpoint costs
 * what was posted since the previous one (the base: what was posted since the chapter opened). A record whose
 * chunk id changed after it was checkpointed makes the next checkpoint a base again.
 *
 * Reading applies the blocks in order and stops at the first block that does not verify: a crash in the middle
 * of an append leaves such a block at the end, and its records were never acknowledged by a checkpoint. A name
 * may appear several times (its chunk id changed); the reader hands every record to the caller, which keeps the
 * largest chunk id (ids are never reused, so the largest is the newest chunk; any of them is true advice).
 *
 * Threads: none inside; {@link OpenChapterCheckpoint} writes under its checkpoint lock and reads at open.
 */
final class OpenChapterFile {
    static final String PREFIX = "open-";
    static final long MAGIC = 0x4e45504f4b534444L; // "DDSKOPEN" little-endian
    static final int VERSION = IndexHeader.VERSION;
    static final int HEADER_BYTES = 48;
    static final int BLOCK_HEADER = 20;

    private OpenChapterFile() {}

    static String fileName(String dir, long chapter) { return IndexFiles.fileName(dir, PREFIX, chapter); }

    /** The chapter number of a file name in the index directory, or -1 when it is not an open chapter file. */
    static long parseFileName(String name) { return IndexFiles.parseFileName(name, PREFIX); }

    static byte[] header(UUID indexId, long chapter) {
        ByteBuffer b = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(MAGIC).putInt(VERSION).putInt(0).putLong(indexId.getMostSignificantBits()).putLong(indexId.getLeastSignificantBits())
                .putLong(chapter).putInt(0);
        b.putInt(Crc.of(b.array(), 0, HEADER_BYTES - 4));
        return b.array();
    }

    /**
     * Encodes records [from, to) of the open chapter (number {@code chapter}) as block payloads of at most
     * {@link BlockStream#MAX_PAYLOAD} bytes; empty when from == to.
     */
    static List<byte[]> payloads(OpenChapter open, int from, int to, long chapter, long maxChunkId) {
        List<byte[]> out = new ArrayList<>();
        ByteSink records = new ByteSink(1 << 12);
        int count = 0;
        for (int r = from; r < to; r++) {
            open.encode(r, chapter, records);
            count++;
            if (records.size() > BlockStream.MAX_PAYLOAD - BLOCK_HEADER - OpenChapter.MAX_RECORD_BYTES || r == to - 1) {
                ByteSink p = new ByteSink(BLOCK_HEADER + records.size());
                p.putLong(chapter).putLong(maxChunkId).putInt(count).putBytes(records.toByteArray());
                out.add(p.toByteArray());
                records = new ByteSink(1 << 12);
                count = 0;
            }
        }
        return out;
    }

    /** Writes a base: the header and the payloads, atomically replacing any file of that chapter; returns its size. */
    static long writeBase(Fs fs, String dir, UUID indexId, long chapter, List<byte[]> payloads) throws IOException {
        return fs.writeAtomically(fileName(dir, chapter), h -> {
            h.write(0, ByteBuffer.wrap(header(indexId, chapter)));
            BlockStream.Writer w = new BlockStream.Writer(h, HEADER_BYTES, 0);
            for (byte[] p : payloads) w.write(p, 0, p.length);
            return w.pos();
        });
    }

    /**
     * Appends payloads to the file of that chapter, which this process wrote as a base and which is
     * {@code size} bytes long holding {@code blocks} blocks, then syncs it; returns the new size.
     */
    static long append(Fs fs, String dir, long chapter, long size, int blocks, List<byte[]> payloads) throws IOException {
        try (Fs.FileHandle h = fs.open(fileName(dir, chapter), false)) {
            Check.that(h.size() == size, "open chapter file %d is %d bytes as last written (%d)", chapter, h.size(), size);
            BlockStream.Writer w = new BlockStream.Writer(h, size, blocks);
            for (byte[] p : payloads) w.write(p, 0, p.length);
            h.sync();
            return w.pos();
        }
    }

    /**
     * What reading a file found: records and blocks applied, the largest max chunk id of those blocks, the file's
     * size; {@code stop} is null when every block verified, else the first block that did not.
     */
    record Read(long records, int blocks, long maxChunkId, long size, BlockStream.BadBlock stop) {}

    /**
     * Reads the file of chapter {@code chapter} (untrusted), handing each record of each verified block to
     * {@code each}, in file order. Throws CorruptionException when the header is bad (then nothing was handed
     * over); a block that does not verify or whose content does not fit ends the reading and is returned in
     * {@link Read#stop}: the blocks before it were applied, nothing of it or after it.
     */
    static Read read(Fs fs, String dir, UUID indexId, long chapter, Geometry g, Consumer<OpenChapter.Encoded> each) throws IOException {
        String name = fileName(dir, chapter);
        try (Fs.FileHandle h = fs.open(name, false)) {
            long size = h.size();
            ByteSource src = IndexFiles.readHeader(h, HEADER_BYTES, MAGIC, "DDSKOPEN", VERSION, "an open chapter file", name);
            int flags = src.getInt();
            src.expect(flags == 0, "flags expected 0, found %x", flags);
            UUID id = new UUID(src.getLong(), src.getLong());
            src.expect(id.equals(indexId), "index id expected %s, found %s (a file of another index)", indexId, id);
            long number = src.getLong();
            src.expect(number == chapter, "chapter number expected %d (the file name), found %d", chapter, number);

            BlockStream.Reader in = new BlockStream.Reader(h, HEADER_BYTES, size, name);
            long records = 0, max = 0;
            while (!in.atEnd()) {
                int blockNumber = in.blocks();
                long at = in.pos();
                List<OpenChapter.Encoded> decoded;
                long blockMax;
                try {
                    byte[] payload = in.next();
                    // The block verified (CRC): a content that does not fit is a bug, or damage that kept the CRC;
                    // either way the rest of the file is refused.
                    ByteSource b = new ByteSource(ByteBuffer.wrap(payload), name + " block " + blockNumber);
                    long blockChapter = b.getLong();
                    blockMax = b.getLong();
                    int n = b.getInt();
                    b.expect(blockChapter == chapter, "chapter number expected %d, found %d", chapter, blockChapter);
                    b.expect(n >= 1 && n <= g.chapterRecords(), "record count expected in [1, %d], found %d", g.chapterRecords(), n);
                    decoded = new ArrayList<>(n);
                    for (int i = 0; i < n; i++) decoded.add(OpenChapter.decode(b, chapter, g.closedChapters(), blockMax));
                    b.expect(b.remaining() == 0, "end expected after %d records, found %d more bytes", n, b.remaining());
                } catch (BlockStream.BadBlock bad) {
                    return new Read(records, blockNumber, max, size, bad);
                } catch (CorruptionException e) {
                    return new Read(records, blockNumber, max, size, new BlockStream.BadBlock(e.getMessage(), at, blockNumber, false));
                }
                decoded.forEach(each);
                records += decoded.size();
                max = Math.max(max, blockMax);
            }
            return new Read(records, in.blocks(), max, size, null);
        }
    }
}
