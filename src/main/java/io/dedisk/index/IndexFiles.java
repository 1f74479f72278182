package io.dedisk.index;

import io.dedisk.DediskException.CorruptionException;
import io.dedisk.store.Fs;
import io.dedisk.util.ByteSource;
import io.dedisk.util.Crc;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * What the index's numbered files and fixed headers have in common (ChapterFile, OpenChapterFile, SaveFile): names
 * {@code <prefix><16 hex digits>}, and a header that starts with a u64 magic and a u32 format version and ends with
 * the CRC32C of the bytes before it. Stateless.
 */
final class IndexFiles {
    private IndexFiles() {}

    static String fileName(String dir, String prefix, long number) { return dir + "/" + prefix + String.format("%016x", number); }

    /** The number in a file name with this prefix, or -1 when the name is not one. */
    static long parseFileName(String name, String prefix) {
        if (!name.startsWith(prefix) || name.length() != prefix.length() + 16) return -1;
        try {
            return Long.parseUnsignedLong(name.substring(prefix.length()), 16);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /**
     * Reads a header of {@code bytes} from the start of an (untrusted) file and checks its magic, CRC32C and format
     * version; returns a source positioned after the version. {@code kind} names the file kind in messages.
     */
    static ByteSource readHeader(Fs.FileHandle h, int bytes, long magic, String magicName, int version, String kind, String name) throws IOException {
        long size = h.size();
        if (size < bytes) throw new CorruptionException(name + ": expected a " + bytes + "-byte header, found " + size + " bytes");
        byte[] head = new byte[bytes];
        h.readFully(0, ByteBuffer.wrap(head));
        ByteSource src = new ByteSource(ByteBuffer.wrap(head), name);
        long found = src.getLong();
        src.expect(found == magic, "magic expected %016x (%s), found %016x (not %s)", magic, magicName, found, kind);
        int computed = Crc.of(head, 0, bytes - 4), stored = ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).getInt(bytes - 4);
        src.expect(stored == computed, "header CRC32C expected %08x, found %08x", computed, stored);
        int v = src.getInt();
        src.expect(v == version, "format version expected %d (the only one this dedisk reads), found %d", version, v);
        return src;
    }
}
