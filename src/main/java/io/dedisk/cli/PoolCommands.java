package io.dedisk.cli;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.pool.Pool;
import io.dedisk.pool.VolumeInfo;
import io.dedisk.util.Sizes;
import java.util.Locale;
import java.util.Map;

/**
 * The pool operations the CLI offers, in one place whether they run in this process (pool opened here) or in the
 * serving process (through {@link ControlServer}). Each takes string arguments and returns the text to print.
 */
final class PoolCommands {
    private PoolCommands() {}

    /** The names of the volumes and snapshots, one a line (import and export check names with it, cheaply). */
    static final String VOLUME_NAMES = "volume/names";

    /** Operations that only read: run offline, they open the pool read-only (nothing on disk changes). */
    static boolean readsOnly(String op) { return op.equals("stats") || op.equals("volume/list") || op.equals("snapshot/list") || op.equals(VOLUME_NAMES); }

    static String run(Pool pool, String op, Map<String, String> args) {
        boolean json = "true".equals(args.get("json"));
        return switch (op) {
            case "stats" -> json ? pool.stats().toJson() + "\n" : pool.stats().toText();
            case "volume/list" -> listVolumes(pool.volumeInfos(), null, json);
            case VOLUME_NAMES -> pool.volumeNames().stream().map(n -> n + "\n").collect(java.util.stream.Collectors.joining());
            case "snapshot/list" -> listVolumes(pool.volumeInfos(), args.getOrDefault("volume", ""), json);
            case "snapshot/create" -> {
                String volume = required(args, "volume");
                try {
                    pool.createSnapshot(volume, required(args, "snapshot"));
                } catch (java.io.IOException e) {
                    throw new io.dedisk.DediskException.StorageException("snapshot failed: " + e, e);
                }
                yield "created snapshot " + volume + "@" + args.get("snapshot") + "\n";
            }
            case "snapshot/delete" -> {
                String name = required(args, "volume") + "@" + required(args, "snapshot"); // only snapshots have '@' in their names
                pool.deleteVolume(name);
                yield "deleted snapshot " + name + "\n";
            }
            case "clone" -> {
                pool.cloneSnapshot(required(args, "snapshot"), required(args, "name"));
                yield "created clone " + args.get("name") + " of " + args.get("snapshot") + "\n";
            }
            case "volume/rollback" -> {
                pool.rollback(required(args, "snapshot"));
                String snap = args.get("snapshot");
                yield "rolled back " + snap.substring(0, snap.indexOf('@')) + " to " + snap + "\n";
            }
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
                yield String.format(Locale.ROOT, "cleaned %d segments; segments hold %s, %s before (%s not live: segments 95%% live or more are not worth"
                        + " moving); index gave back %s (%d records of dead chunks, %d chapters rewritten, %d deleted)%n",
                        r.segmentsCleaned(), Sizes.format(r.bytesAfter()), Sizes.format(r.bytesBefore()), Sizes.format(r.notLiveAfter()), Sizes.format(r.index().bytes()),
                        r.index().records(), r.index().chaptersRewritten(), r.index().chaptersDeleted());
            }
            default -> throw new InvalidRequestException("unknown pool operation '" + op + "'");
        };
    }

    private static String required(Map<String, String> args, String key) {
        String v = args.get(key);
        if (v == null || v.isEmpty()) throw new InvalidRequestException("missing argument '" + key + "'");
        return v;
    }

    /**
     * Volumes (all, when {@code snapshotsOf} is null) or the snapshots of one volume ({@code ""}: every snapshot),
     * with their parents and the bytes each holds alone (what deleting it would give back).
     */
    private static String listVolumes(java.util.List<VolumeInfo> all, String snapshotsOf, boolean json) {
        java.util.List<VolumeInfo> vols = all.stream()
                .filter(v -> snapshotsOf == null || v.snapshot() && (snapshotsOf.isEmpty() || v.name().startsWith(snapshotsOf + "@"))).toList();
        StringBuilder b = new StringBuilder();
        if (json) {
            b.append('[');
            for (int i = 0; i < vols.size(); i++) {
                VolumeInfo v = vols.get(i);
                if (i > 0) b.append(',');
                b.append(String.format(Locale.ROOT, "{\"name\":\"%s\",\"sizeBytes\":%d,\"logicalUsedBytes\":%d,\"snapshot\":%b,\"parent\":%s,\"aloneBytes\":%d}",
                        v.name(), v.sizeBytes(), v.logicalUsedBytes(), v.snapshot(), v.parent() == null ? "null" : "\"" + v.parent() + "\"", v.aloneBytes()));
            }
            return b.append("]\n").toString();
        }
        b.append(String.format(Locale.ROOT, "%-24s %-9s %14s %14s %14s  %s%n", "NAME", "TYPE", "SIZE", "USED", "ALONE", "PARENT"));
        for (VolumeInfo v : vols) {
            String type = v.snapshot() ? "snapshot" : v.parent() != null ? "clone" : "volume";
            b.append(String.format(Locale.ROOT, "%-24s %-9s %14s %14s %14s  %s%n", v.name(), type, Sizes.format(v.sizeBytes()), Sizes.format(v.logicalUsedBytes()),
                    Sizes.format(v.aloneBytes()), v.parent() == null ? "-" : v.parent()));
        }
        return b.toString();
    }
}
