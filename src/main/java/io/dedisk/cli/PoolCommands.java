package io.dedisk.cli;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.pool.Pool;
import io.dedisk.pool.PoolStats;
import io.dedisk.util.Sizes;
import java.util.Locale;
import java.util.Map;

/**
 * The pool operations the CLI offers, in one place whether they run in this process (pool opened here) or in the
 * serving process (through {@link ControlServer}). Each takes string arguments and returns the text to print.
 */
final class PoolCommands {
    private PoolCommands() {}

    /** Operations that only read: run offline, they open the pool read-only (nothing on disk changes). */
    static boolean readsOnly(String op) { return op.equals("stats") || op.equals("volume/list"); }

    static String run(Pool pool, String op, Map<String, String> args) {
        boolean json = "true".equals(args.get("json"));
        return switch (op) {
            case "stats" -> json ? pool.stats().toJson() + "\n" : pool.stats().toText();
            case "volume/list" -> listVolumes(pool.stats(), json);
            case "volume/create" -> {
                pool.createVolume(required(args, "name"), Sizes.parse(required(args, "size")));
                yield "created volume " + args.get("name") + " (" + Sizes.format(Sizes.parse(args.get("size"))) + ")\n";
            }
            case "volume/delete" -> {
                pool.deleteVolume(required(args, "name"));
                yield "deleted volume " + args.get("name") + "\n";
            }
            case "volume/resize" -> {
                pool.resizeVolume(required(args, "name"), Sizes.parse(required(args, "size")));
                yield "resized volume " + args.get("name") + " to " + Sizes.format(Sizes.parse(args.get("size"))) + "\n";
            }
            case "volume/rename" -> {
                pool.renameVolume(required(args, "from"), required(args, "to"));
                yield "renamed volume " + args.get("from") + " to " + args.get("to") + "\n";
            }
            case "gc" -> {
                Pool.GcResult r;
                try {
                    r = pool.gc();
                } catch (java.io.IOException e) {
                    throw new io.dedisk.DediskException.StorageException("gc failed: " + e, e);
                }
                yield String.format(Locale.ROOT, "cleaned %d segments; segments hold %s, %s before%n", r.segmentsCleaned(),
                        Sizes.format(r.bytesAfter()), Sizes.format(r.bytesBefore()));
            }
            default -> throw new InvalidRequestException("unknown pool operation '" + op + "'");
        };
    }

    private static String required(Map<String, String> args, String key) {
        String v = args.get(key);
        if (v == null || v.isEmpty()) throw new InvalidRequestException("missing argument '" + key + "'");
        return v;
    }

    private static String listVolumes(PoolStats stats, boolean json) {
        StringBuilder b = new StringBuilder();
        if (json) {
            b.append('[');
            for (int i = 0; i < stats.volumes().size(); i++) {
                PoolStats.VolumeStats v = stats.volumes().get(i);
                if (i > 0) b.append(',');
                b.append(String.format(Locale.ROOT, "{\"name\":\"%s\",\"sizeBytes\":%d,\"logicalUsedBytes\":%d}", v.name(), v.sizeBytes(), v.logicalUsedBytes()));
            }
            return b.append("]\n").toString();
        }
        b.append(String.format(Locale.ROOT, "%-24s %14s %14s%n", "NAME", "SIZE", "USED"));
        for (PoolStats.VolumeStats v : stats.volumes()) {
            b.append(String.format(Locale.ROOT, "%-24s %14s %14s%n", v.name(), Sizes.format(v.sizeBytes()), Sizes.format(v.logicalUsedBytes())));
        }
        return b.toString();
    }
}
