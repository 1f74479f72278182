package io.dedisk.index;

import static org.junit.jupiter.api.Assertions.*;

import io.dedisk.DediskException.ReadOnlyException;
import io.dedisk.sim.SimFs;
import io.dedisk.store.Fs;
import io.dedisk.store.LocalFs;
import io.dedisk.util.Crc;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** {@link IndexVerifier} and {@link UdsIndex#openReadOnly}: they find what is wrong and change nothing. */
@Timeout(300)
class IndexVerifierTest {
    /** 4 chapters of 64 records: expiry after 3 closed chapters. */
    static final Geometry G = Geometry.sized(false, 4, 3, 64, 16, 0);
    static final List<BlockName> NAMES = UdsIndexTest.names(50, 64 * 8 + 40);

    @TempDir Path tmp;

    /** SHA-256 of every file under the root, by relative name (directories too, as entries). */
    Map<String, String> hashes() throws Exception {
        Map<String, String> out = new TreeMap<>();
        try (Stream<Path> files = Files.walk(tmp)) {
            for (Path p : files.toList()) {
                String name = tmp.relativize(p).toString();
                if (Files.isDirectory(p)) {
                    out.put(name + "/", "dir");
                } else {
                    byte[] digest = MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p));
                    out.put(name, HexFormat.of().formatHex(digest) + " " + Files.getLastModifiedTime(p).toMillis());
                }
            }
        }
        return out;
    }

    /** An Fs that fails the test on any mutating call, whatever the code under test does with its own guards. */
    static Fs forbidWrites(Fs inner) {
        return new DelegatingFs(inner) {
            @Override
            public FileHandle open(String name, boolean create) throws IOException {
                FileHandle h = super.open(name, false);
                return new FileHandle() {
                    @Override public int read(long pos, ByteBuffer dst) throws IOException { return h.read(pos, dst); }
                    @Override public void write(long pos, ByteBuffer src) { throw new AssertionError("write " + name); }
                    @Override public void sync() { throw new AssertionError("sync " + name); }
                    @Override public long size() throws IOException { return h.size(); }
                    @Override public void truncate(long size) { throw new AssertionError("truncate " + name); }
                    @Override public void close() throws IOException { h.close(); }
                };
            }

            @Override public void mkdirs(String dir) { throw new AssertionError("mkdirs " + dir); }
            @Override public void delete(String name) { throw new AssertionError("delete " + name); }
            @Override public void rename(String from, String to) { throw new AssertionError("rename " + from); }
            @Override public void syncDir(String dir) { throw new AssertionError("syncDir " + dir); }
            @Override public void writeAtomically(String name, byte[] content) { throw new AssertionError("writeAtomically " + name); }
        };
    }

    /** Expired chapters, a save, a checkpoint: every kind of file, left as after a kill -9. */
    static void build(Fs fs) throws IOException {
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            for (int i = 0; i < 64 * 6 + 10; i++) index.insert(NAMES.get(i), 1 + i);
            index.save();
            for (int i = 64 * 6 + 10; i < 64 * 6 + 30; i++) index.insert(NAMES.get(i), 1 + i);
            index.checkpoint();
            for (int i = 64 * 6 + 30; i < 64 * 6 + 35; i++) index.insert(NAMES.get(i), 1 + i);
            index.checkpoint(); // an appended block
        }
    }

    @Test
    void aSoundIndexVerifiesAndNothingChanges() throws Exception {
        Fs fs = new LocalFs(tmp);
        build(fs);
        Map<String, String> before = hashes();
        IndexVerifier.Report r = verify(fs);
        assertTrue(r.ok(), r.toString());
        assertEquals(before, hashes(), "verify changed no byte, no file, no time stamp");
        long readOnlyEntries, readOnlyMax;
        try (UdsIndex ro = UdsIndex.openReadOnly(forbidWrites(fs), "index", G)) {
            ro.awaitRebuild();
            readOnlyEntries = ro.entries();
            readOnlyMax = ro.maxChunkId();
            assertEquals(r.diskBytes(), ro.diskBytes());
            for (int i = 64 * 3; i < 64 * 6 + 35; i++) assertEquals(1 + i, ro.lookup(NAMES.get(i)), "name " + i);
        }
        assertEquals(before, hashes(), "a read-only open changed no byte");
        assertEquals(readOnlyEntries, r.entries());
        assertEquals(readOnlyMax, r.maxChunkId());
        assertEquals(3 * 64 + 10 + 25, r.entries());
        assertEquals(64 * 6 + 35, r.maxChunkId());
        assertEquals(3, r.chapters());
        assertEquals(SaveFileTest.filesBytes(fs, "index"), r.diskBytes());
    }

    /** The package entry takes the geometry (Geometry.sized indexes have no IndexConfig); the public one, a config. */
    IndexVerifier.Report verify(Fs fs) { return IndexVerifier.verify(forbidWrites(fs), "index", G); }

    /** The one problem of a report: on the given file, mentioning the words, with expected and found filled. */
    static IndexVerifier.Problem problem(IndexVerifier.Report r, String file, String... words) {
        assertFalse(r.ok(), "a problem expected: " + r);
        IndexVerifier.Problem p = r.problems().stream().filter(x -> x.file().equals(file)).findFirst()
                .orElseThrow(() -> new AssertionError("no problem on " + file + ": " + r));
        for (String w : words) assertTrue(p.toString().contains(w), "'" + w + "' in " + p);
        assertFalse(p.expected().isBlank() || p.found().isBlank(), p.toString());
        return p;
    }

    void flip(Fs fs, String name, long offsetFromEnd) throws IOException {
        byte[] b = fs.readAll(name);
        int at = (int) (offsetFromEnd < 0 ? b.length + offsetFromEnd : offsetFromEnd);
        b[at] ^= 0x10;
        Files.write(tmp.resolve(name), b);
    }

    @Test
    void damageIsReportedNamingTheFileAndExpectedAgainstFound() throws Exception {
        Fs fs = new LocalFs(tmp);
        String chapter = ChapterFile.fileName("index", 5), save = "index/" + SaveFile.FILE, header = "index/" + IndexHeader.FILE;
        String checkpoint = OpenChapterFile.fileName("index", 6);

        build(fs);
        flip(fs, chapter, -100); // a record page
        Map<String, String> before = hashes();
        IndexVerifier.Report r = verify(fs);
        problem(r, chapter, "record page", "CRC32C");
        assertEquals(before, hashes());

        Files.write(tmp.resolve(chapter), Files.readAllBytes(tmp.resolve(chapter)), java.nio.file.StandardOpenOption.APPEND); // too long
        problem(verify(fs), chapter, "file size", "expected " + 3 * ChapterFile.PAGE);

        wipe();
        build(fs);
        flip(fs, save, 70); // the first block
        problem(verify(fs), save, "CRC32C");

        wipe();
        build(fs);
        Files.delete(tmp.resolve(chapter)); // the save lists it
        problem(verify(fs), save, "chapter 5", "none");

        wipe();
        build(fs);
        flip(fs, checkpoint, 60); // the first of two blocks: damage in the middle, not a torn tail
        problem(verify(fs), checkpoint, "block 0", "CRC32C");

        wipe();
        build(fs);
        Files.write(tmp.resolve(checkpoint), new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, java.nio.file.StandardOpenOption.APPEND);
        IndexVerifier.Report torn = verify(fs);
        assertTrue(torn.ok(), "a torn last block is what a crash during an append leaves: " + torn);
        assertTrue(torn.notes().stream().anyMatch(n -> n.contains(checkpoint) && n.contains("interrupted")), torn.toString());

        wipe();
        build(fs);
        Files.write(tmp.resolve(ChapterFile.fileName("index", 4)), Files.readAllBytes(tmp.resolve(chapter))); // chapter 5 as 4
        problem(verify(fs), ChapterFile.fileName("index", 4), "chapter number", "expected 4", "found 5");

        wipe();
        build(fs);
        byte[] h = fs.readAll(header);
        ByteBuffer.wrap(h).order(ByteOrder.LITTLE_ENDIAN).putInt(8, 1).putInt(IndexHeader.SIZE - 4, Crc.of(h, 0, IndexHeader.SIZE - 4));
        Files.write(tmp.resolve(header), h);
        IndexVerifier.Problem old = problem(verify(fs), header, "format version");
        assertTrue(old.expected().startsWith("2") && old.found().startsWith("1"), old.toString());

        wipe();
        build(fs);
        IndexVerifier.Report other = IndexVerifier.verify(forbidWrites(fs), "index", Geometry.of(IndexConfig.parse("16M", false)));
        problem(other, header, "index configuration", "16.0 MiB dense");
    }

    private void wipe() throws IOException {
        try (Stream<Path> files = Files.walk(tmp.resolve("index"))) {
            for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) Files.delete(p);
        }
    }

    @Test
    void readOnlyOpenChangesNothingAndRefusesWrites() throws Exception {
        Fs fs = new LocalFs(tmp);
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) {
            for (int i = 0; i < 64 * 6 + 20; i++) index.insert(NAMES.get(i), 1 + i);
            index.checkpoint();
        } // no save: a crash as far as the index can tell
        fs.writeAtomically("index/save.tmp", new byte[100]);                  // an interrupted save
        fs.writeAtomically(ChapterFile.fileName("index", 0), new byte[4096]); // an expired chapter that came back
        fs.writeAtomically(OpenChapterFile.fileName("index", 2), new byte[10]); // a closed chapter's checkpoint
        Map<String, String> before = hashes();
        try (UdsIndex ro = UdsIndex.openReadOnly(fs, "index", G)) {
            ro.awaitRebuild();
            assertTrue(ro.readOnly());
            for (int i = 64 * 3; i < 64 * 6 + 20; i++) assertEquals(1 + i, ro.lookup(NAMES.get(i)), "name " + i);
            ReadOnlyException e = assertThrows(ReadOnlyException.class, () -> ro.insert(NAMES.getLast(), 9));
            assertTrue(e.getMessage().contains("read-only") && e.getMessage().contains("insert"), e.getMessage());
            assertThrows(ReadOnlyException.class, ro::save);
            assertThrows(ReadOnlyException.class, ro::checkpoint);
            assertEquals(SaveFileTest.filesBytes(fs, "index"), ro.diskBytes(), "the leftovers count: they are on disk");
        }
        assertEquals(before, hashes(), "nothing created, written, renamed or deleted");
        IndexVerifier.Report r = verify(fs);
        assertTrue(r.ok(), r.toString());
        assertEquals(3, r.notes().size(), r.toString());
        try (UdsIndex index = UdsIndex.open(fs, "index", G)) { // a writable open cleans up
            assertFalse(fs.exists("index/save.tmp") || fs.exists(ChapterFile.fileName("index", 0)) || fs.exists(OpenChapterFile.fileName("index", 2)));
            assertEquals(64 * 6 + 20, index.lookup(NAMES.get(64 * 6 + 19)));
        }
    }

    @Test
    void thePublicEntryVerifiesAConfiguredIndex() throws Exception {
        Fs fs = new LocalFs(tmp);
        IndexConfig config = IndexConfig.parse("16M", true);
        try (UdsIndex index = UdsIndex.open(fs, "index", config)) {
            for (int i = 0; i < 10_000; i++) index.insert(UdsIndexTest.random(new java.util.SplittableRandom(i)), 1 + i);
            index.save();
            index.insert(NAMES.getFirst(), 10_001);
            index.checkpoint();
        }
        Map<String, String> before = hashes();
        IndexVerifier.Report r = UdsIndex.verify(forbidWrites(fs), "index", config);
        assertTrue(r.ok(), r.toString());
        assertEquals(10_001, r.entries());
        assertEquals(10_001, r.maxChunkId());
        long chapters = 10_000 / Geometry.of(config).chapterRecords();
        assertTrue(r.toString().startsWith("index index: sound; " + chapters + " chapters, 10001 entries"), r.toString());
        assertEquals(before, hashes());
    }

    @Test
    void aMissingIndexOpensEmptyReadOnlyAndCreatesNothing() throws Exception {
        Fs fs = new LocalFs(tmp);
        try (UdsIndex ro = UdsIndex.openReadOnly(fs, "index", G)) {
            assertEquals(0, ro.entries());
            assertEquals(0, ro.diskBytes());
            assertEquals(DedupIndex.NONE, ro.lookup(NAMES.getFirst()));
        }
        assertFalse(Files.exists(tmp.resolve("index")));
        IndexVerifier.Report r = verify(fs);
        assertTrue(r.ok() && r.entries() == 0 && r.notes().size() == 1, r.toString());
    }

    /** A crash leaves notes (leftovers, a torn append), never a problem, and verify predicts what open finds. */
    @Test
    void noCrashPointLeavesAProblem() throws Exception {
        int runs = 0;
        for (long seed = 21; seed <= 23; seed++) {
            long ops = CheckpointTest.opsOf(seed, 8, 0, 0);
            for (long k = 1; k <= ops + 1; k++) {
                for (boolean power : new boolean[] {false, true}) {
                    SimFs sim = new SimFs(seed);
                    try {
                        CheckpointTest.generation(new KillableFs(sim).killAfter(k), seed, new CheckpointTest.Model(), 8);
                    } catch (KillableFs.Killed expected) {
                        // the crash point
                    }
                    Fs after = power ? sim.machineCrash(seed * 104729 + k) : sim;
                    String what = "seed " + seed + (power ? ", power loss" : ", kill") + " at op " + k;
                    IndexVerifier.Report r = IndexVerifier.verify(after, "index", CheckpointTest.G);
                    assertTrue(r.ok(), what + ": " + r);
                    if (!after.exists("index/" + IndexHeader.FILE)) continue;
                    try (UdsIndex index = UdsIndex.open(after, "index", CheckpointTest.G)) {
                        index.awaitRebuild();
                        assertEquals(r.entries(), index.entries(), what + ": entries");
                        assertEquals(r.maxChunkId(), index.maxChunkId(), what + ": max chunk id");
                    }
                    runs++;
                }
            }
        }
        assertTrue(runs > 200, "crash points covered: " + runs);
    }
}
