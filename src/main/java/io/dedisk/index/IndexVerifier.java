package io.dedisk.index;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.store.Fs;
import io.dedisk.util.Sizes;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Read-only verification of an index directory, for {@code dedisk check} (like {@code vdoaudit}, but for the
 * dedup index): it reads every file of the index and checks it whole, and checks the files against each other,
 * without changing a byte (it sees the directory through {@link ReadOnlyFs}: nothing is created, written,
 * renamed or deleted) and without allocating the index's memory (it streams: one page or one block at a time).
 *
 * Checked:
 * <ul>
 * <li>the header: magic, format version, CRC32C, a possible geometry, and the configuration the pool expects;
 * <li>each chapter file: header and index page map, every index and record page (CRC32C, kind, page and chapter
 *     numbers, counts, sort order, targets), index page map against the pages, the index entries against the
 *     records, chunk ids against the header's max ({@link ChapterVerifier#verify});
 * <li>the save: header, every block, the whole structure against the geometry (the decoder the index loads it
 *     with, {@link SaveFile#readContent}), its chapter summaries against the chapter files, its max chunk id;
 * <li>the open chapter's checkpoint: header and every block; a torn last block (a crash during an append) is a
 *     note, not a problem;
 * <li>across files: max chunk ids never decrease with the chapter number; leftovers the next open deletes
 *     (interrupted writes, expired chapters, checkpoints of closed chapters, a save older than the chapters) are
 *     notes.
 * </ul>
 * A problem is advice lost (the pool stores a duplicate again), never data lost: the index only gives advice that
 * the pool verifies. The report also gives the figures an open would find (chapters, entries, disk bytes, max
 * chunk id), cheaply, for {@code dedisk stats} on a stopped pool.
 *
 * Threads: a static method; it holds no state between calls. The index must not be open for writing meanwhile
 * (files could change under it); a verification of a live index may report files that vanish.
 */
public final class IndexVerifier {
    private IndexVerifier() {}

    /** One thing wrong: the file, what was checked, what was expected and what was found. */
    public record Problem(String file, String what, String expected, String found) {
        @Override
        public String toString() { return file + ": " + what + ": expected " + expected + ", found " + found; }

        /** From a decoder's message ("file…: what expected E, found F"). */
        static Problem of(String file, String message) {
            String m = message.startsWith(file) ? message.substring(file.length()) : message;
            m = m.startsWith(": ") ? m.substring(2) : m.strip();
            int e = m.indexOf("expected ");
            int f = e < 0 ? -1 : m.indexOf(", found ", e);
            if (f < 0) return new Problem(file, m, "a valid file", "this");
            String what = m.substring(0, e).strip();
            if (what.endsWith(":")) what = what.substring(0, what.length() - 1);
            return new Problem(file, what.isEmpty() ? "content" : what, m.substring(e + "expected ".length(), f), m.substring(f + ", found ".length()));
        }
    }

    /**
     * What a verification found. {@code problems}: damage or inconsistency (each is advice lost); {@code notes}:
     * states the next open cleans up or that a crash leaves, not damage. The figures are those an open would find.
     */
    public record Report(String dir, List<Problem> problems, List<String> notes, long chapters, long entries, long diskBytes, long maxChunkId) {
        public boolean ok() { return problems.isEmpty(); }

        @Override
        public String toString() {
            StringBuilder b = new StringBuilder();
            b.append("index ").append(dir).append(": ").append(ok() ? "sound" : problems.size() + " problem(s)")
                    .append(String.format(java.util.Locale.ROOT, "; %d chapters, %d entries, %s on disk, max chunk id %d",
                            chapters, entries, Sizes.format(diskBytes), maxChunkId));
            for (Problem p : problems) b.append("\n  problem: ").append(p);
            for (String n : notes) b.append("\n  note: ").append(n);
            return b.toString();
        }
    }

    /** Verifies the index in {@code dir} against the configuration the pool expects it to have. Never throws for damage. */
    public static Report verify(Fs fs, String dir, IndexConfig config) { return verify(fs, dir, Geometry.of(config)); }

    static Report verify(Fs fs, String dir, Geometry configured) {
        Run run = new Run(new ReadOnlyFs(fs), dir);
        try {
            run.verify(configured);
        } catch (IOException | CorruptionException e) {
            run.problems.add(new Problem(dir, "reading the index", "readable files", e.toString()));
        }
        return new Report(dir, List.copyOf(run.problems), List.copyOf(run.notes), run.chapters, run.entries, run.diskBytes, run.maxChunkId);
    }

    private static final class Run {
        final Fs fs;
        final String dir;
        final List<Problem> problems = new ArrayList<>();
        final List<String> notes = new ArrayList<>();
        long chapters, entries, diskBytes, maxChunkId;

        Run(Fs fs, String dir) {
            this.fs = fs;
            this.dir = dir;
        }

        private String path(String f) { return dir + "/" + f; }

        void verify(Geometry configured) throws IOException {
            List<String> files = fs.list(dir);
            for (String f : files) diskBytes += size(path(f));
            String headerName = path(IndexHeader.FILE);
            if (!files.contains(IndexHeader.FILE)) {
                if (files.isEmpty()) {
                    notes.add("no index in " + dir + ": an empty one is created when the pool opens");
                } else if (files.stream().allMatch(f -> f.endsWith(".tmp"))) {
                    notes.add("no index in " + dir + " yet: its creation was interrupted (" + files + " left); the next open deletes them and creates it");
                } else {
                    problems.add(new Problem(headerName, "index header", "a header naming the index",
                            "none, beside " + files.size() + " other files (their advice cannot be used; the next open starts an empty index)"));
                }
                return;
            }
            IndexHeader header;
            try {
                header = IndexHeader.decode(fs.readAll(headerName), headerName);
            } catch (CorruptionException e) {
                problems.add(Problem.of(headerName, e.getMessage()));
                notes.add("without a valid header no other file can be attributed to the index; nothing else was checked");
                return;
            }
            Geometry g = header.geometry();
            if (g.memoryBytes() != configured.memoryBytes() || g.sparse() != configured.sparse()) {
                problems.add(new Problem(headerName, "index configuration", Sizes.format(configured.memoryBytes()) + (configured.sparse() ? " sparse" : " dense")
                        + " (the pool's)", Sizes.format(g.memoryBytes()) + (g.sparse() ? " sparse" : " dense")));
            }

            TreeMap<Long, String> chapterFiles = new TreeMap<>(), checkpointFiles = new TreeMap<>();
            for (String f : files) {
                long n = ChapterFile.parseFileName(f), o = OpenChapterFile.parseFileName(f);
                if (n >= 0) chapterFiles.put(n, f);
                else if (o >= 0) checkpointFiles.put(o, f);
                else if (f.endsWith(".tmp")) notes.add(path(f) + ": left by an interrupted write; the next open deletes it");
                else if (!f.equals(IndexHeader.FILE) && !f.equals(SaveFile.FILE)) notes.add(path(f) + ": not a file of the index; ignored");
            }

            long newest = chapterFiles.isEmpty() ? -1 : chapterFiles.lastKey();

            // The save first: whether it is usable decides the open chapter, hence which chapters are live.
            SaveFile.Header save = null;
            List<Summary> savedChapters = new ArrayList<>();
            LongList openNames = new LongList();
            long[] savedOpen = {0};
            String saveName = path(SaveFile.FILE);
            if (files.contains(SaveFile.FILE)) {
                int tables = g.sparse() ? 2 : 1;
                try (Fs.FileHandle h = fs.open(saveName, false)) {
                    SaveFile.Header head = SaveFile.readHeader(h, header.indexId(), tables, saveName);
                    if (newest >= head.openChapter()) {
                        notes.add(saveName + ": older than chapter " + newest + " (it was saved with chapter " + head.openChapter()
                                + " open): the next open deletes it and rebuilds from the chapters");
                    } else {
                        VolumeIndex.Shape[] shapes = g.sparse()
                                ? new VolumeIndex.Shape[] {VolumeIndex.Shape.of(g.fullTableEntries(), g.denseChapters()), VolumeIndex.Shape.of(g.hookTableEntries(), g.closedChapters())}
                                : new VolumeIndex.Shape[] {VolumeIndex.Shape.of(g.fullTableEntries(), g.denseChapters())};
                        SaveFile.readContent(h, head, g, shapes, new SaveFile.Sink() {
                            @Override public void chapter(ChapterFile summary) { savedChapters.add(Summary.of(summary)); }
                            @Override public void openRecord(OpenChapter.Encoded r) { openNames.add(digest(r.name())); savedOpen[0]++; }
                            @Override public void table(int table, long sweepCursor) { }
                            @Override public void bucket(int table, long bucket, long[] values, int count) { }
                        }, saveName);
                        if (openNames.distinct() != savedOpen[0]) {
                            problems.add(new Problem(saveName, "open chapter", "distinct names", (savedOpen[0] - openNames.distinct()) + " names repeated"));
                        }
                        save = head;
                    }
                } catch (CorruptionException e) {
                    problems.add(Problem.of(saveName, e.getMessage()));
                    notes.add(saveName + ": not usable, so the next open rebuilds from the chapters and the saved open chapter is lost");
                    savedChapters.clear();
                    openNames.clear();
                }
            }

            // The open chapter, as open decides it.
            long base = save != null ? save.openChapter() : newest + 1;
            long newestCheckpoint = checkpointFiles.isEmpty() ? -1 : checkpointFiles.lastKey();
            long open = Math.max(base, newestCheckpoint);
            if (save != null && open > base) {
                notes.add(saveName + ": its open chapter " + base + " was lost (never written); the checkpoint of chapter " + open + " follows it");
                openNames.clear();
            }
            long oldestLive = open - g.closedChapters();

            // The window's chapters, each whole; older ones are deleted by the next open.
            Map<Long, Summary> headerOk = new TreeMap<>(), whole = new TreeMap<>();
            for (long number : chapterFiles.keySet()) {
                String name = ChapterFile.fileName(dir, number);
                if (number < oldestLive) {
                    notes.add(name + ": expired (the window starts at chapter " + oldestLive + "): the next open deletes it");
                    continue;
                }
                int before = problems.size();
                ChapterFile c = ChapterVerifier.verify(fs, dir, header.indexId(), number, g.chapterRecords(), m -> problems.add(Problem.of(name, m)));
                if (c != null) headerOk.put(number, Summary.of(c));
                if (c != null && problems.size() == before) whole.put(number, Summary.of(c));
            }

            // The open chapter's checkpoint; those of other chapters are deleted by the next open.
            long checkpointMax = 0;
            for (long o : checkpointFiles.keySet()) {
                String name = OpenChapterFile.fileName(dir, o);
                if (o != open) {
                    notes.add(name + ": checkpoint of chapter " + o + ", which is closed (the open chapter is " + open + "): the next open deletes it");
                    continue;
                }
                long[] max = {0};
                try {
                    OpenChapterFile.Read r = OpenChapterFile.read(fs, dir, header.indexId(), o, g, e -> {
                        openNames.add(digest(e.name()));
                        max[0] = Math.max(max[0], e.chunkId());
                    });
                    checkpointMax = Math.max(max[0], r.maxChunkId());
                    if (r.stop() != null && r.stop().reachesEnd) {
                        notes.add(name + ": its last block does not verify (a checkpoint interrupted by a crash, so never acknowledged);"
                                + " the " + r.records() + " records before it are used: " + r.stop().getMessage());
                    } else if (r.stop() != null) {
                        problems.add(Problem.of(name, r.stop().getMessage()));
                    }
                } catch (CorruptionException e) {
                    problems.add(Problem.of(name, e.getMessage()));
                }
                checkpointMax = Math.max(checkpointMax, max[0]);
            }

            // Across files.
            long previousMax = -1, previousNumber = -1, liveRecords = 0;
            for (Summary c : headerOk.values()) {
                if (c.maxChunkId() < previousMax) {
                    problems.add(new Problem(ChapterFile.fileName(dir, c.number()), "max chunk id", "at least " + previousMax + " (chapter " + previousNumber + "'s)",
                            Long.toString(c.maxChunkId())));
                }
                previousMax = Math.max(previousMax, c.maxChunkId());
                previousNumber = c.number();
            }
            if (save != null) {
                java.util.Set<Long> inSave = new java.util.HashSet<>();
                for (Summary s : savedChapters) {
                    inSave.add(s.number());
                    if (s.number() < oldestLive) continue;
                    Summary f = whole.get(s.number());
                    if (f == null) {
                        if (!chapterFiles.containsKey(s.number())) {
                            problems.add(new Problem(saveName, "chapter " + s.number() + " (in the save)", "its file " + ChapterFile.fileName(dir, s.number()),
                                    "none (deleted or lost: that chapter's advice is lost)"));
                        }
                        continue;
                    }
                    if (!f.equals(s)) {
                        problems.add(new Problem(saveName, "summary of chapter " + s.number(), "the chapter file's: " + f, s.toString()));
                    }
                    if (s.maxChunkId() > save.maxChunkId()) {
                        problems.add(new Problem(saveName, "max chunk id", "at least " + s.maxChunkId() + " (chapter " + s.number() + "'s)", Long.toString(save.maxChunkId())));
                    }
                    liveRecords += s.records();
                    chapters++;
                }
                for (Summary c : headerOk.values()) {
                    if (c.number() < save.openChapter() && !inSave.contains(c.number())) {
                        notes.add(ChapterFile.fileName(dir, c.number()) + ": not in the save (dropped when it was saved): its advice is not used while the save is");
                    }
                }
                maxChunkId = save.maxChunkId();
            } else {
                for (Summary c : whole.values()) {
                    liveRecords += c.records();
                    chapters++;
                }
                for (Summary c : headerOk.values()) maxChunkId = Math.max(maxChunkId, c.maxChunkId());
            }
            maxChunkId = Math.max(maxChunkId, checkpointMax);
            entries = liveRecords + openNames.distinct();
        }

        private long size(String name) throws IOException {
            try (Fs.FileHandle h = fs.open(name, false)) {
                return h.size();
            }
        }
    }

    /**
     * What the verifier keeps of a chapter: its header's figures and a hash of its index page map (the map itself
     * is 4 B per 510 records: kept for every chapter it would grow with the index, as the index's memory does).
     */
    private record Summary(long number, int records, long maxChunkId, int indexPages, long mapHash) {
        static Summary of(ChapterFile c) {
            long h = 0;
            for (int k : c.firstKeys()) h = h * 0x9E3779B97F4A7C15L + (k & 0xffffffffL);
            return new Summary(c.number, c.records, c.maxChunkId, c.indexPages, h);
        }

        @Override
        public String toString() {
            return records + " records, max chunk id " + maxChunkId + ", " + indexPages + " index pages, index page map hash " + Long.toHexString(mapHash);
        }
    }

    /** A 64-bit digest of a name, for counting distinct names in 8 bytes each. */
    private static long digest(BlockName n) {
        long h = n.a() * 0x9E3779B97F4A7C15L ^ Long.rotateLeft(n.b(), 17) ^ Long.rotateLeft(n.c() * 0xC2B2AE3D27D4EB4FL, 31) ^ Long.rotateLeft(n.d(), 47);
        return h ^ (h >>> 29);
    }

    /** A growable list of longs that counts its distinct values. */
    private static final class LongList {
        private long[] values = new long[64];
        private int size;

        void add(long v) {
            if (size == values.length) values = Arrays.copyOf(values, size * 2);
            values[size++] = v;
        }

        void clear() { size = 0; }

        long distinct() {
            long[] sorted = Arrays.copyOf(values, size);
            Arrays.sort(sorted);
            long n = 0;
            for (int i = 0; i < sorted.length; i++) if (i == 0 || sorted[i] != sorted[i - 1]) n++;
            return n;
        }
    }
}
