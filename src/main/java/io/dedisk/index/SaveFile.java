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
import java.util.Comparator;
import java.util.List;
import java.util.UUID;

/**
 * The save file: the in-memory state written at a clean shutdown so the next open loads it instead of rebuilding
 * the volume index from every chapter (UDS saves its volume index and open chapter the same way). Its size follows
 * what the index holds, not its configured memory: only live volume index entries are written, bucket by bucket,
 * so a nearly empty index saves a few hundred bytes and a full one about its tables' size.
 *
 * File {@code <dir>/save}, little-endian:
 * <pre>
 *   header (64 bytes):  0 u64 magic "DDSKSAVE"   8 u32 format version (2)   12 u32 table count (1 dense, 2 sparse)
 *                      16 u64+u64 index id      32 u64 open chapter number  40 u64 max chunk id
 *                      48 u64 file length       56 u32 block count          60 u32 CRC32C of [0, 60)
 *   then {@link BlockStream} blocks; their payloads, in order, hold a sequence of items, and an item never spans
 *   two blocks (a block is cut at an item boundary once it passes 15.75 MiB):
 *     1 item            varint open record count R · varint chapter count K
 *     K items           chapter summary, ascending numbers: varint number · varint record count · varint max chunk
 *                       id · varint index pages Q · Q × u32 first key of each index page
 *     R items           open record, arrival order ({@link OpenChapter#encode}: 4 × u64 name · varint chunk id ·
 *                       varint previous age)
 *     per table (full table, then the hook table when sparse):
 *       1 item          varint buckets · varint sweep cursor
 *       per bucket holding live entries, ascending:
 *                       varint gap (bucket − previous such bucket − 1; the first: its bucket number) ·
 *                       u8 entry count (1 .. slots per bucket) · count × slot value (ceil(slot bits / 8) bytes each)
 *       1 item          varint 0 · u8 0 (the end) · varint buckets written B · varint entries written E
 * </pre>
 * A dense entry costs 3 bytes plus its bucket's gap and count (≈ 5–6 bytes while the table is sparse, ≈ 3.1 when
 * full); an open record ≈ 36 bytes; a chapter summary ≈ 8 bytes + 4 per 510 records.
 *
 * A save is used only when no chapter file is numbered at or above its open chapter (else chapters closed after
 * it and the saved volume index lacks them: the caller rebuilds). Loading a save that is older than later inserts
 * is still consistent: those inserts only reached the open chapter, and its checkpoint file brings them back
 * ({@link OpenChapterFile}).
 *
 * Written streamed through {@link Fs#writeAtomically(String, Fs.Writer)} (temp file, sync, rename, directory sync).
 * Reading checks everything against the geometry (counts, numbers, entry liveness, exhaustion of the blocks), so
 * the loader and {@link IndexVerifier} share one decoder that calls a {@link Sink}. Threads: none inside; the
 * owner holds its write lock while saving and loading.
 */
final class SaveFile {
    static final String FILE = "save";
    static final long MAGIC = 0x455641534b534444L; // "DDSKSAVE" little-endian
    static final int VERSION = IndexHeader.VERSION;
    static final int HEADER_BYTES = 64;
    /** Bound on one item's encoding (a chapter summary of 2^24 records: ≈ 131 KB). */
    static final int ITEM_MAX = 256 << 10;

    /** What a loaded save says besides what it put into the tables and the open chapter. */
    record Loaded(long openChapter, long maxChunkId, List<ChapterFile> chapters) {}

    /** The header's fields. */
    record Header(long openChapter, long maxChunkId, long length, int blocks) {}

    /** Receives a save's content as it is decoded and checked. */
    interface Sink {
        void chapter(ChapterFile summary);

        void openRecord(OpenChapter.Encoded record);

        void table(int table, long sweepCursor);

        void bucket(int table, long bucket, long[] values, int count);
    }

    private SaveFile() {}

    /** Writes the save durably and atomically; returns its size in bytes. */
    static long write(Fs fs, String dir, UUID indexId, long openChapter, long maxChunkId, List<ChapterFile> chapters,
                      OpenChapter open, VolumeIndex[] tables) throws IOException {
        List<ChapterFile> sorted = new ArrayList<>(chapters);
        sorted.sort(Comparator.comparingLong(c -> c.number));
        return fs.writeAtomically(dir + "/" + FILE, h -> {
            BlockStream.Writer w = new BlockStream.Writer(h, HEADER_BYTES, 0);
            Items out = new Items(w);
            out.buf.putVarLong(open.count()).putVarLong(sorted.size());
            out.end();
            for (ChapterFile c : sorted) {
                // Verify before write: only chapters of the window, as the loader will insist.
                Check.that(c.number < openChapter && c.number >= 0, "saved chapter %d precedes open chapter %d", c.number, openChapter);
                out.buf.putVarLong(c.number).putVarLong(c.records).putVarLong(c.maxChunkId).putVarLong(c.indexPages);
                for (int q = 0; q < c.indexPages; q++) out.buf.putInt(c.firstKey(q));
                out.end();
            }
            for (int r = 0; r < open.count(); r++) {
                open.encode(r, openChapter, out.buf);
                out.end();
            }
            for (VolumeIndex t : tables) writeTable(t, openChapter, out);
            out.flush();
            long length = w.pos();
            ByteBuffer head = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(MAGIC).putInt(VERSION).putInt(tables.length)
                    .putLong(indexId.getMostSignificantBits()).putLong(indexId.getLeastSignificantBits())
                    .putLong(openChapter).putLong(maxChunkId).putLong(length).putInt(w.blocks());
            head.putInt(Crc.of(head.array(), 0, HEADER_BYTES - 4));
            h.write(0, head.flip());
            Check.that(h.size() == length, "save file is %d bytes as its header says (%d)", h.size(), length);
            return length;
        });
    }

    private static void writeTable(VolumeIndex t, long openChapter, Items out) throws IOException {
        out.buf.putVarLong(t.buckets).putVarLong(t.sweepCursor());
        out.end();
        long[] values = new long[t.slotsPerBucket];
        int valueBytes = t.shape.valueBytes();
        long previous = -1, buckets = 0, entries = 0;
        for (long b = 0; b < t.buckets; b++) {
            int n = t.liveEntries(b, openChapter, values);
            if (n == 0) continue;
            out.buf.putVarLong(b - previous - 1).putByte(n);
            for (int i = 0; i < n; i++) {
                long v = values[i];
                for (int k = 0; k < valueBytes; k++) out.buf.putByte((int) (v >>> (8 * k)));
            }
            out.end();
            previous = b;
            buckets++;
            entries += n;
        }
        out.buf.putVarLong(0).putByte(0).putVarLong(buckets).putVarLong(entries);
        out.end();
    }

    /**
     * Loads the save into {@code open} and {@code tables} (both empty), or returns null when there is no save or
     * it is older than the chapters on disk ({@code newestOnDisk}, -1 when none). Throws CorruptionException
     * (or IOException) when it cannot be trusted; {@code open} and {@code tables} may then hold partial data.
     */
    static Loaded load(Fs fs, String dir, UUID indexId, Geometry g, long newestOnDisk, OpenChapter open, VolumeIndex[] tables) throws IOException {
        String name = dir + "/" + FILE;
        if (!fs.exists(name)) return null;
        try (Fs.FileHandle h = fs.open(name, false)) {
            Header head = readHeader(h, indexId, tables.length, name);
            if (newestOnDisk >= head.openChapter()) return null;
            List<ChapterFile> chapters = new ArrayList<>();
            VolumeIndex.Shape[] shapes = new VolumeIndex.Shape[tables.length];
            for (int t = 0; t < tables.length; t++) shapes[t] = tables[t].shape;
            readContent(h, head, g, shapes, new Sink() {
                @Override
                public void chapter(ChapterFile summary) { chapters.add(summary); }

                @Override
                public void openRecord(OpenChapter.Encoded r) {
                    if (open.find(r.name()) >= 0) throw new CorruptionException(name + ": open record " + r.name() + ": expected once, found twice");
                    open.add(r.name(), r.chunkId(), r.previous());
                }

                @Override
                public void table(int table, long sweepCursor) { tables[table].setSweepCursor(sweepCursor); }

                @Override
                public void bucket(int table, long bucket, long[] values, int count) { tables[table].setBucket(bucket, values, count); }
            }, name);
            return new Loaded(head.openChapter(), head.maxChunkId(), chapters);
        }
    }

    /** Reads and checks the 64-byte header (untrusted) of a save of an index with {@code tables} tables. */
    static Header readHeader(Fs.FileHandle h, UUID indexId, int tables, String name) throws IOException {
        long size = h.size();
        ByteSource src = IndexFiles.readHeader(h, HEADER_BYTES, MAGIC, "DDSKSAVE", VERSION, "a save file", name);
        int tableCount = src.getInt();
        src.expect(tableCount == tables, "table count expected %d, found %d", tables, tableCount);
        UUID id = new UUID(src.getLong(), src.getLong());
        src.expect(id.equals(indexId), "index id expected %s, found %s (a save of another index)", indexId, id);
        long openChapter = src.getLong(), maxChunkId = src.getLong(), length = src.getLong();
        int blocks = src.getInt();
        src.expect(openChapter >= 0 && maxChunkId >= 0, "open chapter %d, max chunk id %d (expected ≥ 0)", openChapter, maxChunkId);
        src.expect(length == size, "file length expected %d (the header), found %d", length, size);
        src.expect(blocks >= 1, "block count expected ≥ 1, found %d", blocks);
        return new Header(openChapter, maxChunkId, length, blocks);
    }

    /**
     * Decodes and checks everything after the header against the geometry and the table shapes, calling the sink
     * with each part; throws CorruptionException at the first thing that does not fit.
     */
    static void readContent(Fs.FileHandle h, Header head, Geometry g, VolumeIndex.Shape[] shapes, Sink sink, String name) throws IOException {
        long open = head.openChapter(), max = head.maxChunkId();
        ItemReader in = new ItemReader(new BlockStream.Reader(h, HEADER_BYTES, head.length(), name), name);
        ByteSource st = in.item();
        long records = st.getVarLong(), count = st.getVarLong();
        st.expect(records <= g.chapterRecords(), "open chapter of %d records, expected at most %d", records, g.chapterRecords());
        st.expect(count <= g.closedChapters(), "%d chapter summaries, expected at most %d", count, g.closedChapters());
        long previousNumber = -1;
        for (long i = 0; i < count; i++) {
            ByteSource c = in.item();
            long number = c.getVarLong(), n = c.getVarLong(), chunkMax = c.getVarLong(), q = c.getVarLong();
            c.expect(number > previousNumber && number < open && number >= open - g.closedChapters(),
                    "chapter summary %d: number %d expected in [%d, %d) and above %d", i, number, Math.max(0, open - g.closedChapters()), open, previousNumber);
            c.expect(n >= 1 && n <= g.chapterRecords(), "chapter %d: record count expected in [1, %d], found %d", number, g.chapterRecords(), n);
            long pages = ChapterFile.pagesFor((int) n, ChapterFile.ENTRIES_PER_INDEX_PAGE);
            c.expect(q == pages, "chapter %d: index pages expected %d for %d records, found %d", number, pages, n, q);
            c.expect(chunkMax <= max, "chapter %d: max chunk id expected at most %d (the save's), found %d", number, max, chunkMax);
            int[] keys = new int[(int) q];
            for (int k = 0; k < q; k++) {
                keys[k] = c.getInt();
                c.expect(k == 0 || Integer.compareUnsigned(keys[k - 1], keys[k]) <= 0, "chapter %d: index page map expected sorted, found key %d out of order", number, k);
            }
            sink.chapter(new ChapterFile(number, (int) n, chunkMax, keys));
            previousNumber = number;
        }
        for (long r = 0; r < records; r++) sink.openRecord(OpenChapter.decode(in.item(), open, g.closedChapters(), max));
        for (int t = 0; t < shapes.length; t++) {
            VolumeIndex.Shape shape = shapes[t];
            ByteSource th = in.item();
            long buckets = th.getVarLong(), cursor = th.getVarLong();
            th.expect(buckets == shape.buckets() && cursor < buckets, "table %d: %d buckets (sweep cursor %d), expected %d", t, buckets, cursor, shape.buckets());
            sink.table(t, cursor);
            long[] values = new long[shape.slotsPerBucket()];
            long bucket = -1, written = 0, entries = 0;
            while (true) {
                ByteSource b = in.item();
                long gap = b.getVarLong();
                int n = b.getByte();
                if (gap == 0 && n == 0) {
                    long wb = b.getVarLong(), we = b.getVarLong();
                    b.expect(wb == written && we == entries, "table %d: buckets and entries expected %d and %d (its end item), found %d and %d", t, wb, we, written, entries);
                    break;
                }
                b.expect(gap < shape.buckets() && bucket + 1 + gap < shape.buckets(), "table %d: next bucket expected below %d, found %d + 1 + gap %d", t, shape.buckets(), bucket, gap);
                bucket += 1 + gap;
                b.expect(n >= 1 && n <= shape.slotsPerBucket(), "table %d bucket %d: entry count expected in [1, %d], found %d", t, bucket, shape.slotsPerBucket(), n);
                for (int i = 0; i < n; i++) {
                    long v = 0;
                    for (int k = 0; k < shape.valueBytes(); k++) v |= (long) b.getByte() << (8 * k);
                    b.expect(shape.isLiveValue(v, open), "table %d bucket %d slot %d: value expected a live entry for open chapter %d, found %x", t, bucket, i, open, v);
                    values[i] = v;
                }
                sink.bucket(t, bucket, values, n);
                written++;
                entries += n;
            }
        }
        if (!in.exhausted()) throw new CorruptionException(name + ": content expected to end, found more (at offset " + in.pos() + ")");
        if (in.blocks() != head.blocks()) throw new CorruptionException(name + ": block count expected " + head.blocks() + " (the header's), found " + in.blocks());
    }

    /** Item writer: a block is cut at an item boundary once its payload passes MAX_PAYLOAD − ITEM_MAX. */
    private static final class Items {
        private final BlockStream.Writer w;
        ByteSink buf = new ByteSink(1 << 16);
        private int itemStart;

        Items(BlockStream.Writer w) { this.w = w; }

        void end() throws IOException {
            Check.that(buf.size() - itemStart <= ITEM_MAX, "save item of %d bytes (at most %d)", buf.size() - itemStart, ITEM_MAX);
            if (buf.size() >= BlockStream.MAX_PAYLOAD - ITEM_MAX) flush();
            itemStart = buf.size();
        }

        void flush() throws IOException {
            if (buf.size() == 0) return;
            w.write(buf.view().array(), 0, buf.size());
            buf = new ByteSink(1 << 16);
            itemStart = 0;
        }
    }

    /** Item reader: the next item starts in the current block, or in the next one when the current is used up. */
    private static final class ItemReader {
        private final BlockStream.Reader r;
        private final String name;
        private ByteSource cur;

        ItemReader(BlockStream.Reader r, String name) {
            this.r = r;
            this.name = name;
        }

        ByteSource item() throws IOException {
            if (cur == null || cur.remaining() == 0) {
                if (r.atEnd()) throw new CorruptionException(name + ": content expected to go on, found the end of the file (after " + r.blocks() + " blocks, at offset " + r.pos() + ")");
                int number = r.blocks();
                cur = new ByteSource(ByteBuffer.wrap(r.next()), name + " block " + number);
            }
            return cur;
        }

        boolean exhausted() { return (cur == null || cur.remaining() == 0) && r.atEnd(); }

        long pos() { return r.pos(); }

        int blocks() { return r.blocks(); }
    }
}
