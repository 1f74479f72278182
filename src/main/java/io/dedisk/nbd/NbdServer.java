package io.dedisk.nbd;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

import io.dedisk.pool.VolumeProvider;
/**
 * The NBD server: listens on one TCP address and serves the volumes of a {@link VolumeProvider} to any number of
 * concurrent connections (several may use the same export; CAN_MULTI_CONN is advertised because the device's
 * flush is global), within the {@link NbdLimits} it was given.
 *
 * Threads: {@link #start} launches the accept loop on a virtual thread and the deadline watchdog on a platform
 * daemon thread; every accepted connection has one reader, a virtual thread that hands the request loop to a
 * platform thread while fewer than {@link NbdConnection#PLATFORM_READERS} connections have one
 * ({@link NbdConnection}), and every request runs on its own virtual thread. Public methods may be called from any
 * thread.
 *
 * Hostile clients: connections over {@link NbdLimits#maxConnections} or over the per-address limit are closed
 * before the greeting; the watchdog closes connections whose handshake, payload, reply or idle deadline passed
 * (it scans every {@link #WATCHDOG_PERIOD}); all request memory comes from one {@link BufferPool} paid for from one
 * {@link ByteBudget}. The accept loop survives every error, out of memory included: it logs (rate-limited), backs
 * off briefly and goes on accepting.
 *
 * Lifecycle invariant: after {@link #close} returns, no connection thread is running and no request is inside a
 * {@link io.dedisk.pool.VolumeDevice} method, so the caller may close the volumes.
 */
public final class NbdServer implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("dedisk.nbd");
    /** How long {@link #close} lets connections finish their in-flight requests before disconnecting them. */
    private static final Duration GRACE = Duration.ofSeconds(5);
    private static final Duration ACCEPT_RETRY = Duration.ofMillis(100);
    static final Duration WATCHDOG_PERIOD = Duration.ofMillis(200);

    private final VolumeProvider volumes;
    private final InetSocketAddress listen;
    private final NbdLimits limits;
    private final NbdTls tls;
    private final ByteBudget budget;
    private final BufferPool pool;
    private final RateLimitedLog log = RateLimitedLog.server(LOG);
    private final Map<NbdConnection, Thread> connections = new ConcurrentHashMap<>();
    /** Open connections per client address; an entry exists exactly while its count is positive. */
    private final Map<InetAddress, Integer> perClient = new ConcurrentHashMap<>();
    private final AtomicLong refused = new AtomicLong();
    private final java.util.concurrent.Semaphore platformReaders =
            new java.util.concurrent.Semaphore(NbdConnection.PLATFORM_READERS);
    private final Object lifecycle = new Object();
    // Guarded by lifecycle.
    private ServerSocketChannel server;
    private InetSocketAddress bound;
    private Thread acceptor;
    private Thread watchdog;
    private volatile boolean closed;
    /** Where traffic is reported (`serve --metrics`); set before {@link #start}. */
    private volatile io.dedisk.metrics.NbdMetrics metrics = io.dedisk.metrics.NbdMetrics.NOOP;

    /** Reports connections and requests to {@code metrics} (default: nowhere). Call before {@link #start}. */
    public void setMetrics(io.dedisk.metrics.NbdMetrics metrics) { this.metrics = metrics; }

    /** With {@link NbdLimits#defaults()}. Does not bind yet; see {@link #start}. */
    public NbdServer(VolumeProvider volumes, InetSocketAddress listen) {
        this(volumes, listen, NbdLimits.defaults());
    }

    /** Does not bind yet; see {@link #start}. */
    public NbdServer(VolumeProvider volumes, InetSocketAddress listen, NbdLimits limits) {
        this(volumes, listen, limits, NbdTls.off());
    }

    /** With TLS (NBD_OPT_STARTTLS) as {@code tls} says. Does not bind yet; see {@link #start}. */
    public NbdServer(VolumeProvider volumes, InetSocketAddress listen, NbdLimits limits, NbdTls tls) {
        this.volumes = volumes;
        this.listen = listen;
        this.limits = limits;
        this.tls = tls;
        this.budget = new ByteBudget(limits.globalInflightBytes());
        this.pool = new BufferPool(limits.globalInflightBytes() / 4);
    }

    /** Binds the listening socket and starts accepting connections. May be called once. */
    public void start() throws IOException {
        synchronized (lifecycle) {
            if (server != null || closed) {
                throw new IllegalStateException("NbdServer.start called twice or after close");
            }
            ServerSocketChannel channel = ServerSocketChannel.open();
            try {
                channel.setOption(StandardSocketOptions.SO_REUSEADDR, true);
                channel.bind(listen, 1024);
            } catch (IOException | RuntimeException e) {
                channel.close();
                throw e;
            }
            server = channel;
            bound = (InetSocketAddress) channel.getLocalAddress();
            acceptor = Thread.ofVirtual().name("nbd-accept").start(this::acceptLoop);
            watchdog = Thread.ofPlatform().daemon().name("nbd-watchdog").start(this::watchdogLoop);
            LOG.log(Level.INFO, "NBD server listening on {0} ({1}; limits: {2})", bound, tls, limits);
        }
    }

    /** The bound address (with the real port if the configured port was 0). Only after {@link #start}. */
    public InetSocketAddress localAddress() {
        synchronized (lifecycle) {
            if (bound == null) throw new IllegalStateException("NbdServer.localAddress called before start");
            return bound;
        }
    }

    /** Connections currently open, in handshake or transmission. */
    public int activeConnections() {
        return connections.size();
    }

    /** Connections closed at accept because a connection limit was reached, since start. */
    public long refusedConnections() {
        return refused.get();
    }

    /** Bytes of the global in-flight budget in use now. */
    long budgetUsed() {
        return budget.used();
    }

    NbdLimits limits() {
        return limits;
    }

    /**
     * Stops accepting, lets open connections finish the requests they already read (up to a few seconds; the
     * spec's "wait for inflight requests to be serviced prior to initiating a hard disconnect"), disconnects them,
     * and waits until every connection thread has ended. Idempotent.
     */
    @Override
    public void close() {
        Thread accepting;
        Thread watching;
        InetSocketAddress address;
        synchronized (lifecycle) {
            if (closed) return;
            closed = true;
            accepting = acceptor;
            watching = watchdog;
            address = bound == null ? listen : bound;
            if (server != null) {
                try {
                    server.close();
                } catch (IOException e) {
                    LOG.log(Level.WARNING, "closing the NBD listening socket failed: {0}", e.toString());
                }
            }
        }
        if (accepting != null) joinUninterruptibly(accepting, null);
        // No new connection can appear now: the acceptor has ended. The watchdog keeps enforcing deadlines
        // during the grace period.
        connections.keySet().forEach(NbdConnection::shutdownInput);
        long deadline = System.nanoTime() + GRACE.toNanos();
        connections.forEach((connection, thread) -> {
            if (!joinUninterruptibly(thread, Duration.ofNanos(Math.max(1, deadline - System.nanoTime())))) {
                connection.abort();
            }
        });
        connections.values().forEach(thread -> joinUninterruptibly(thread, null));
        if (watching != null) {
            watching.interrupt();
            joinUninterruptibly(watching, null);
        }
        LOG.log(Level.INFO, "NBD server on {0} closed", address);
    }

    private void acceptLoop() {
        ServerSocketChannel channel;
        synchronized (lifecycle) {
            channel = server;
        }
        while (!closed) {
            SocketChannel client;
            try {
                client = channel.accept();
            } catch (ClosedChannelException e) {
                return; // close() closed the listening socket.
            } catch (Throwable e) {
                // E.g. out of file descriptors or of memory: keep serving the connections we have, retry shortly.
                if (closed) return;
                log.log(Level.WARNING, () -> "accepting an NBD connection failed", e);
                sleep(ACCEPT_RETRY);
                continue;
            }
            try {
                admit(client);
            } catch (Throwable e) {
                // This client only (e.g. it reset the connection before we could look at it); no back-off, or a
                // client resetting in a loop would slow down accepting for everyone. Out of memory backs off.
                closeQuietly(client);
                log.log(Level.INFO, () -> "dropping a connection that failed during setup", e);
                if (e instanceof OutOfMemoryError) sleep(ACCEPT_RETRY);
            }
        }
    }

    /** Checks the connection limits and starts the connection's reader, or closes it. Accept thread. */
    private void admit(SocketChannel client) throws IOException {
        InetAddress address = ((InetSocketAddress) client.getRemoteAddress()).getAddress();
        String peer = String.valueOf(client.getRemoteAddress());
        int open = connections.size();
        if (open >= limits.maxConnections()) {
            refuse(client, peer, open + " connections open, the server's limit is " + limits.maxConnections());
            return;
        }
        int fromClient = perClient.merge(address, 1, Integer::sum);
        if (fromClient > limits.maxConnectionsPerClient()) {
            release(address);
            refuse(client, peer, (fromClient - 1) + " connections open from " + address.getHostAddress()
                    + ", the per-client limit is " + limits.maxConnectionsPerClient());
            return;
        }
        boolean started = false;
        try {
            client.setOption(StandardSocketOptions.TCP_NODELAY, true);
            client.setOption(StandardSocketOptions.SO_KEEPALIVE, true); // notice clients that vanished
            NbdConnection connection = new NbdConnection(new Transport.Plain(client), volumes, pool, budget, limits,
                    tls, platformReaders, log, peer);
            connection.metrics = metrics;
            Thread thread = Thread.ofVirtual().name("nbd-conn " + peer).unstarted(() -> {
                connection.metrics.connectionOpened();
                try {
                    connection.run();
                } finally {
                    connection.metrics.connectionClosed();
                    connections.remove(connection);
                    release(address);
                }
            });
            connections.put(connection, thread);
            try {
                thread.start();
                started = true;
            } finally {
                if (!started) connections.remove(connection);
            }
        } finally {
            if (!started) release(address);
        }
    }

    private void refuse(SocketChannel client, String peer, String why) {
        refused.incrementAndGet();
        closeQuietly(client);
        log.log(Level.WARNING, "refused connection from " + peer + ": " + why);
    }

    private void release(InetAddress address) {
        perClient.computeIfPresent(address, (a, n) -> n == 1 ? null : n - 1);
    }

    /** Closes connections whose deadlines passed, until the server has closed. Watchdog thread. */
    private void watchdogLoop() {
        while (true) {
            try {
                Thread.sleep(WATCHDOG_PERIOD);
            } catch (InterruptedException e) {
                if (closed) return;
            }
            try {
                long now = System.nanoTime();
                for (NbdConnection connection : connections.keySet()) connection.checkDeadlines(now);
            } catch (Throwable e) {
                log.log(Level.ERROR, () -> "NBD watchdog pass failed", e);
            }
            if (closed && connections.isEmpty()) return;
        }
    }

    /** Joins {@code thread}, waiting at most {@code timeout} (null: forever). Returns whether it ended. */
    private static boolean joinUninterruptibly(Thread thread, Duration timeout) {
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    if (timeout == null) {
                        thread.join();
                        return true;
                    }
                    return thread.join(timeout);
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        } finally {
            if (interrupted) Thread.currentThread().interrupt();
        }
    }

    private static void sleep(Duration duration) {
        try {
            Thread.sleep(duration);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void closeQuietly(SocketChannel channel) {
        try {
            channel.close();
        } catch (IOException e) {
            LOG.log(Level.DEBUG, "close failed: {0}", e.toString());
        }
    }
}
