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

/**
 * The save file: the in-memory state written at a clean shutdown so the next open loads it instead of rebuilding
 * the volume index from every chapter (UDS saves its volume index and open chapter the same way).
 *
 * File {@code <dir>/save}, little-endian:
 * <pre>
 *   header (64 bytes):  0 u64 magic "DDSKSAVE"   8 u32 format version (1)   12 u32 table count
 *                      16 u64+u64 index id      32 u64 open chapter number  40 u64 max chunk id
 *                      48 u64 file length       56 u32 reserved (0)         60 u32 CRC32C of [0, 60)
 *   then blocks, each:  u32 length (≤ 16 MiB) · u32 CRC32C of the bytes · the bytes
 *     state:           varints: open record count; per table: buckets, sweep cursor; chapter count;
 *                      per chapter: number, record count, max chunk id, index page map (count, first keys)
 *     open chapter:    records (a, b, c, d, chunk id, previous chapter or -1: 6 × u64) in arrival order, in blocks
 *     tables:          each volume index table's segments, raw, split into blocks
 * </pre>
 * A save is used only when no chapter file is numbered at or above its open chapter (else chapters closed after
 * it and the saved volume index lacks them: the caller rebuilds). Loading a save that is older than later
 * inserts is still consistent: those inserts only reached the open chapter, whose unsaved records are lost.
 *
 * Written like {@link Fs#writeAtomically}, streamed because the tables can exceed a Java array: temp file, sync,
 * rename, directory sync. Threads: none inside; the owner holds its write lock while saving and loading.
 */
final class SaveFile {
    static final String FILE = "save";
    static final long MAGIC = 0x455641534b534444L; // "DDSKSAVE" little-endian
    static final int VERSION = 1;
    static final int HEADER_BYTES = 64;
    static final int BLOCK = 16 << 20;
    static final int OPEN_RECORD_BYTES = 48;

    /** What a loaded save says besides what it put into the tables and the open chapter. */
    record Loaded(long openChapter, long maxChunkId, List<ChapterFile> chapters) {}

    private SaveFile() {}

    static void write(Fs fs, String dir, UUID indexId, long openChapter, long maxChunkId, List<ChapterFile> chapters,
                      OpenChapter open, VolumeIndex[] tables) throws IOException {
        ByteSink state = new ByteSink(1024);
        state.putVarLong(open.count());
        for (VolumeIndex t : tables) state.putVarLong(t.buckets).putVarLong(t.sweepCursor());
        state.putVarLong(chapters.size());
        for (ChapterFile c : chapters) {
            // Verify before write: only chapters of the window, as the loader will insist.
            Check.that(c.number < openChapter && c.number >= 0, "saved chapter %d precedes open chapter %d", c.number, openChapter);
            state.putVarLong(c.number).putVarLong(c.records).putVarLong(c.maxChunkId).putVarLong(c.indexPages);
            for (int q = 0; q < c.indexPages; q++) state.putInt(c.firstKey(q));
        }
        String name = dir + "/" + FILE, tmp = name + ".tmp";
        boolean done = false;
        try (Fs.FileHandle h = fs.open(tmp, true)) {
            h.truncate(0);
            Blocks out = new Blocks(h, HEADER_BYTES);
            out.write(state.toByteArray(), 0, state.size());
            byte[] records = new byte[Math.min(BLOCK / OPEN_RECORD_BYTES * OPEN_RECORD_BYTES, open.count() * OPEN_RECORD_BYTES)];
            ByteBuffer rb = ByteBuffer.wrap(records).order(ByteOrder.LITTLE_ENDIAN);
            for (int r = 0; r < open.count(); r++) {
                BlockName n = open.name(r);
                rb.putLong(n.a()).putLong(n.b()).putLong(n.c()).putLong(n.d()).putLong(open.id(r)).putLong(open.previous(r));
                if (!rb.hasRemaining() || r == open.count() - 1) {
                    out.write(records, 0, rb.position());
                    rb.clear();
                }
            }
            for (VolumeIndex t : tables) for (byte[] seg : t.segments()) out.writeAll(seg);
            ByteBuffer head = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(MAGIC).putInt(VERSION).putInt(tables.length)
                    .putLong(indexId.getMostSignificantBits()).putLong(indexId.getLeastSignificantBits())
                    .putLong(openChapter).putLong(maxChunkId).putLong(out.pos).putInt(0);
            head.putInt(Crc.of(head.array(), 0, HEADER_BYTES - 4));
            h.write(0, head.flip());
            h.sync();
            done = true;
        } finally {
            if (!done) fs.delete(tmp);
        }
        fs.rename(tmp, name);
        fs.syncDir(dir);
    }

    /**
     * Loads the save into {@code open} and {@code tables} (both empty), or returns null when there is no save or
     * it is older than the chapters on disk ({@code newestOnDisk}, -1 when none). Throws CorruptionException
     * (or IOException) when it cannot be trusted; {@code open} and {@code tables} may then hold partial data.
     */
    static Loaded load(Fs fs, String dir, UUID indexId, long newestOnDisk, OpenChapter open, VolumeIndex[] tables) throws IOException {
        String name = dir + "/" + FILE;
        if (!fs.exists(name)) return null;
        try (Fs.FileHandle h = fs.open(name, false)) {
            byte[] head = new byte[HEADER_BYTES];
            h.readFully(0, ByteBuffer.wrap(head));
            ByteSource src = new ByteSource(ByteBuffer.wrap(head), name);
            long magic = src.getLong();
            src.expect(magic == MAGIC, "bad magic %016x (not a save file)", magic);
            int computed = Crc.of(head, 0, HEADER_BYTES - 4), stored = ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).getInt(HEADER_BYTES - 4);
            src.expect(stored == computed, "header CRC32C expected %08x, found %08x", computed, stored);
            int version = src.getInt();
            src.expect(version == VERSION, "format version %d is not supported (this dedisk reads %d)", version, VERSION);
            int tableCount = src.getInt();
            src.expect(tableCount == tables.length, "%d tables, expected %d", tableCount, tables.length);
            UUID id = new UUID(src.getLong(), src.getLong());
            src.expect(id.equals(indexId), "belongs to index %s, expected %s", id, indexId);
            long openChapter = src.getLong(), maxChunkId = src.getLong(), length = src.getLong();
            src.expect(openChapter >= 0 && maxChunkId >= 0, "open chapter %d, max chunk id %d", openChapter, maxChunkId);
            if (newestOnDisk >= openChapter) return null;
            src.expect(length == h.size(), "file is %d bytes, header says %d", h.size(), length);

            Blocks in = new Blocks(h, HEADER_BYTES);
            ByteSource st = new ByteSource(ByteBuffer.wrap(in.read()), name + " state");
            long records = st.getVarLong();
            st.expect(records <= open.capacity, "open chapter of %d records, capacity %d", records, open.capacity);
            for (VolumeIndex t : tables) {
                long buckets = st.getVarLong(), cursor = st.getVarLong();
                st.expect(buckets == t.buckets && cursor < buckets, "table of %d buckets (cursor %d), expected %d", buckets, cursor, t.buckets);
                t.setSweepCursor(cursor);
            }
            long count = st.getVarLong();
            st.expect(count <= Integer.MAX_VALUE, "%d chapters", count);
            List<ChapterFile> chapters = new ArrayList<>();
            for (long i = 0; i < count; i++) {
                long number = st.getVarLong(), n = st.getVarLong(), max = st.getVarLong(), q = st.getVarLong();
                st.expect(number < openChapter && n >= 1 && n <= open.capacity
                        && q == ChapterFile.pagesFor((int) n, ChapterFile.ENTRIES_PER_INDEX_PAGE),
                        "chapter %d of %d records with %d index pages (open chapter %d)", number, n, q, openChapter);
                int[] keys = new int[(int) q];
                for (int k = 0; k < q; k++) {
                    keys[k] = st.getInt();
                    st.expect(k == 0 || Integer.compareUnsigned(keys[k - 1], keys[k]) <= 0, "chapter %d index page map not sorted", number);
                }
                chapters.add(new ChapterFile(number, (int) n, max, keys));
            }
            st.expect(st.remaining() == 0, "%d stray bytes after the state", st.remaining());

            ByteSource recs = null;
            for (long r = 0; r < records; r++) {
                if (recs == null || recs.remaining() == 0) recs = new ByteSource(ByteBuffer.wrap(in.read()), name + " open chapter");
                BlockName n = new BlockName(recs.getLong(), recs.getLong(), recs.getLong(), recs.getLong());
                long chunk = recs.getLong(), previous = recs.getLong();
                recs.expect(chunk > 0 && chunk <= maxChunkId && previous >= -1 && previous < openChapter && open.find(n) < 0,
                        "open record %d (chunk %d, previous chapter %d) invalid or repeated", r, chunk, previous);
                open.add(n, chunk, previous);
            }
            src.expect(recs == null || recs.remaining() == 0, "stray bytes after the open chapter");
            for (VolumeIndex t : tables) for (byte[] seg : t.segments()) in.readAll(seg);
            src.expect(in.pos == length, "%d bytes read of %d", in.pos, length);
            return new Loaded(openChapter, maxChunkId, chapters);
        }
    }

    /** The block stream after the header: u32 length, u32 CRC32C, bytes. */
    private static final class Blocks {
        private final Fs.FileHandle h;
        long pos;

        Blocks(Fs.FileHandle h, long pos) { this.h = h; this.pos = pos; }

        void write(byte[] src, int off, int len) throws IOException {
            Check.that(len <= BLOCK, "save block of %d bytes", len);
            ByteBuffer head = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(len).putInt(Crc.of(src, off, len));
            h.write(pos, head.flip());
            h.write(pos + 8, ByteBuffer.wrap(src, off, len));
            pos += 8 + len;
        }

        void writeAll(byte[] src) throws IOException {
            for (int off = 0; off < src.length; off += BLOCK) write(src, off, Math.min(BLOCK, src.length - off));
        }

        private int blockLen, blockCrc;

        private void readHead(String what) throws IOException {
            ByteBuffer head = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            h.readFully(pos, head);
            blockLen = head.getInt(0);
            blockCrc = head.getInt(4);
            if (blockLen < 0 || blockLen > BLOCK) throw new CorruptionException("save file: " + what + " block at " + pos + " has length " + blockLen);
        }

        private void readBody(byte[] dst, int off) throws IOException {
            h.readFully(pos + 8, ByteBuffer.wrap(dst, off, blockLen));
            int computed = Crc.of(dst, off, blockLen);
            if (computed != blockCrc) throw new CorruptionException(String.format("save file: block at %d CRC32C expected %08x, found %08x", pos, computed, blockCrc));
            pos += 8 + blockLen;
        }

        byte[] read() throws IOException {
            readHead("a");
            byte[] out = new byte[blockLen];
            readBody(out, 0);
            return out;
        }

        void readAll(byte[] dst) throws IOException {
            for (int off = 0; off < dst.length; off += BLOCK) {
                readHead("a table");
                int expected = Math.min(BLOCK, dst.length - off);
                if (blockLen != expected) throw new CorruptionException("save file: table block at " + pos + " has " + blockLen + " bytes, expected " + expected);
                readBody(dst, off);
            }
        }
    }
}
