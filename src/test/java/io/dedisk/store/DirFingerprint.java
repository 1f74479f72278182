package io.dedisk.store;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.TreeMap;

/** For tests that must prove a directory unchanged: every entry under it with size, mtime and SHA-256. */
public final class DirFingerprint {
    private DirFingerprint() {}

    public static TreeMap<String, String> of(Path dir) throws Exception {
        TreeMap<String, String> out = new TreeMap<>();
        try (var s = Files.walk(dir)) {
            for (Path p : s.toList()) {
                BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class);
                out.put(dir.relativize(p).toString(), a.isDirectory() ? "dir" : a.size() + " " + a.lastModifiedTime().toMillis() + " "
                        + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(p))));
            }
        }
        return out;
    }
}
