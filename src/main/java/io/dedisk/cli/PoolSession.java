package io.dedisk.cli;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.nbd.NbdServer;
import io.dedisk.nbd.NbdTls;
import io.dedisk.pool.PoolStats;
import io.dedisk.pool.VolumeDevice;
import io.dedisk.util.Check;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The pool a command of several steps (import, export) works on, with an NBD export of its volumes on loopback
 * for qemu-img: when the pool is served, the running server's (operations go through its control endpoint, whose
 * {@value #NBD_OPERATION} operation names the NBD listener); otherwise the pool opened here, exclusively, with an
 * in-process {@link NbdServer} on 127.0.0.1 and an ephemeral port. One code path for both: everything the command
 * does is a pool operation ({@link PoolCommands}) or NBD traffic.
 *
 * Threads: {@link #run} from one thread at a time; {@link #counters} from any thread.
 */
final class PoolSession implements AutoCloseable {
    /** The control operation that tells the CLI where the server's NBD listener is and whether it requires TLS. */
    static final String NBD_OPERATION = "nbd";

    /** Write counters, for the progress bar's dedup figure. */
    record Counters(long blocksWritten, long dedupHits, long dedupMisses) {
        Counters minus(Counters o) { return new Counters(blocksWritten - o.blocksWritten, dedupHits - o.dedupHits, dedupMisses - o.dedupMisses); }

        /** Share of the non-zero blocks written that were duplicates, 0..1. */
        double dedupShare() { return dedupHits + dedupMisses == 0 ? 0 : (double) dedupHits / (dedupHits + dedupMisses); }
    }

    private final ControlClient control; // served: the server's control endpoint; else null
    private final PoolDirectory opened;  // offline: the pool opened here; else null
    private final NbdServer nbd;         // offline: the in-process listener; else null
    private final InetSocketAddress nbdAddress;
    /** Why qemu-img cannot reach the listener (a server that requires TLS), or null. A served raw import needs no NBD. */
    private final String noNbdReason;

    private PoolSession(ControlClient control, PoolDirectory opened, NbdServer nbd, InetSocketAddress nbdAddress, String noNbdReason) {
        this.control = control;
        this.opened = opened;
        this.nbd = nbd;
        this.nbdAddress = nbdAddress;
        this.noNbdReason = noNbdReason;
    }

    static PoolSession open(PoolLocation dir) throws IOException, InterruptedException {
        Optional<ControlClient> control = PoolDirectory.runningControl(dir);
        if (control.isPresent()) {
            String answer = control.get().call(NBD_OPERATION, Map.of()).trim();
            String[] parts = answer.split(" ");
            if (parts.length != 2) throw new InvalidRequestException("the server at " + control.get() + " answered '" + answer + "' to " + NBD_OPERATION + "; expected HOST:PORT TLS-MODE");
            String tlsRequired = parts[1].equals(NbdTls.Mode.REQUIRE.name()) ? "the server holding pool " + dir + " requires TLS on NBD (--tls=require),"
                    + " and qemu-img is run without certificates; stop the server and run this offline, or serve with --tls=on" : null;
            return new PoolSession(control.get(), null, null, Main.parseListen(parts[0]), tlsRequired);
        }
        PoolDirectory p = PoolDirectory.open(dir, io.dedisk.pool.Pool.OpenOptions.defaults());
        NbdServer server = new NbdServer(p.pool, new InetSocketAddress("127.0.0.1", 0));
        try {
            server.start();
        } catch (IOException | RuntimeException e) {
            p.close();
            throw e;
        }
        return new PoolSession(null, p, server, server.localAddress(), null);
    }

    /** What the running server answers to {@value #NBD_OPERATION}: its listener, reachable from this machine, and its TLS mode. */
    static String describeListener(InetSocketAddress bound, NbdTls.Mode tls) {
        String host = bound.getAddress().isAnyLocalAddress() ? "127.0.0.1" : bound.getAddress().getHostAddress();
        return host + ":" + bound.getPort() + " " + tls.name() + "\n";
    }

    boolean served() { return control != null; }

    /** Served only: the server's control endpoint. */
    ControlClient control() {
        Check.that(served(), "a served session");
        return control;
    }

    /** Offline only: the volume itself, for writing without the NBD hop ({@link RawImageCopy}). */
    Optional<VolumeDevice> localVolume(String name) { return served() ? Optional.empty() : opened.pool.volume(name); }

    /** Where the pool is, for messages. */
    String where() { return served() ? "through the server (control " + control + ")" : "offline"; }

    /** The NBD URI of {@code export} for qemu-img; refused when the server requires TLS. */
    String uri(String export) {
        if (noNbdReason != null) throw new InvalidRequestException(noNbdReason);
        String host = nbdAddress.getHostString();
        return "nbd://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + nbdAddress.getPort() + "/" + export;
    }

    String run(String op, Map<String, String> args) throws IOException, InterruptedException {
        return served() ? control.call(op, args) : PoolCommands.run(opened.pool, op, args);
    }

    /** The names of the volumes and snapshots now (not `volume list`, which walks what each holds alone). */
    Set<String> volumeNames() throws IOException, InterruptedException {
        return Set.of(run(PoolCommands.VOLUME_NAMES, Map.of()).lines().toArray(String[]::new));
    }

    private static final Pattern INDEX_COUNTERS = Pattern.compile("\"index\":\\{.*?\"hits\":(\\d+),\"misses\":(\\d+)");
    private static final Pattern BLOCKS_WRITTEN = Pattern.compile("\"blocksWritten\":(\\d+)");

    Counters counters() throws IOException, InterruptedException {
        if (!served()) {
            PoolStats s = opened.pool.stats();
            return new Counters(s.blocksWritten(), s.index().hits(), s.index().misses());
        }
        String json = run("stats", Map.of("json", "true"));
        Matcher w = BLOCKS_WRITTEN.matcher(json), i = INDEX_COUNTERS.matcher(json);
        if (!w.find() || !i.find()) throw new InvalidRequestException("the server's stats lack blocksWritten or index hits/misses: " + json);
        return new Counters(Long.parseLong(w.group(1)), Long.parseLong(i.group(1)), Long.parseLong(i.group(2)));
    }

    /** Offline: stops the in-process listener and closes the pool cleanly (a checkpoint). Served: nothing to do. */
    @Override
    public void close() throws IOException {
        if (nbd != null) nbd.close();
        if (opened != null) opened.close();
    }
}
