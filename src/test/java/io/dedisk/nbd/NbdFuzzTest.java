package io.dedisk.nbd;

import static io.dedisk.nbd.NbdConstants.*;
import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;

import org.junit.jupiter.api.Test;

/**
 * A seeded protocol fuzzer: clients that haggle with random, malformed and truncated options, then send random
 * (mostly well-framed, often invalid) transmission requests, break the framing on purpose now and then, or simply
 * stall and vanish, while one well-behaved client writes and verifies its own export throughout.
 *
 * Asserts: every framed request gets exactly one reply with its cookie (no hang: the test client times out after
 * 10 s), the well-behaved client is served correctly the whole time, and afterwards no connection, budget byte,
 * platform thread or memory is left behind. Default: 10^5 requests; -Ddedisk.long=true: 10^6. The seed is
 * -Ddedisk.fuzz.seed (printed), so a failing run replays.
 */
class NbdFuzzTest {
    private static final boolean LONG = Boolean.getBoolean("dedisk.long");
    private static final long REQUESTS = Long.getLong("dedisk.fuzz.requests", LONG ? 1_000_000 : 100_000);
    private static final long SEED = Long.getLong("dedisk.fuzz.seed", 0x5eed_0008L);
    private static final int FUZZERS = 2;
    private static final int FUZZ_SIZE = 4 << 20;
    private static final int GOOD_SIZE = 1 << 20;

    private final AtomicLong requests = new AtomicLong();
    private final AtomicLong options = new AtomicLong();
    private final AtomicLong connections = new AtomicLong();

    @Test
    void randomClientsNeitherCrashNorHangNorLeakAndAGoodClientIsServedThroughout() throws Exception {
        System.out.println("NbdFuzzTest: seed " + SEED + ", " + REQUESTS + " requests");
        Logger jul = Logger.getLogger("dedisk.nbd");
        Level level = jul.getLevel();
        jul.setLevel(Level.SEVERE); // refusals are the point here; their rate limiting is RateLimitedLogTest's
        NbdLimits limits = NbdLimits.defaults().withTimeouts(Duration.ofSeconds(2), Duration.ofSeconds(2),
                Duration.ofMillis(500), 64L << 20);
        MemoryVolume good = new MemoryVolume("good", GOOD_SIZE);
        MemoryVolumeProvider volumes = new MemoryVolumeProvider(new MemoryVolume("fuzz", FUZZ_SIZE), good,
                new MemoryVolume("ro", 64 << 10, true));
        warmUp(volumes); // virtual-thread carriers and pollers start once per JVM: not growth
        long threadsBefore = platformThreads();
        long heapBefore = usedHeap();
        long directBefore = directMemory();
        NbdServer server = new NbdServer(volumes, new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), limits);
        try (ExecutorService workers = Executors.newFixedThreadPool(FUZZERS + 1)) {
            server.start();
            InetSocketAddress address = server.localAddress();
            AtomicBoolean done = new AtomicBoolean();
            Future<Long> served = workers.submit(() -> wellBehaved(address, done));
            List<Future<?>> fuzzers = new ArrayList<>();
            for (int f = 0; f < FUZZERS; f++) {
                long seed = SEED + f;
                fuzzers.add(workers.submit(() -> {
                    fuzz(address, new SplittableRandom(seed));
                    return null;
                }));
            }
            try {
                for (Future<?> f : fuzzers) f.get(LONG ? 60 : 5, TimeUnit.MINUTES);
            } finally {
                done.set(true);
            }
            long goodOps = served.get(1, TimeUnit.MINUTES);
            assertTrue(goodOps > 0, "the well-behaved client did nothing");
            TransmissionTest.awaitNoConnections(server);
            assertEquals(0, server.budgetUsed(), "budget still in use with no connection");
            System.out.println("NbdFuzzTest: " + requests + " requests and " + options + " options on "
                    + connections + " connections; the good client did " + goodOps + " verified operations");
        } finally {
            server.close();
            jul.setLevel(level);
        }
        assertTrue(requests.get() >= REQUESTS, requests + " requests sent, expected at least " + REQUESTS);
        long threadsAfter = platformThreads();
        assertTrue(threadsAfter <= threadsBefore + 2, "platform threads " + threadsBefore + " -> " + threadsAfter
                + ": " + Thread.getAllStackTraces().keySet().stream().map(Thread::getName).sorted().toList());
        long heapAfter = usedHeap();
        assertTrue(heapAfter < heapBefore + (64L << 20), "heap " + heapBefore + " -> " + heapAfter);
        long directAfter = directMemory();
        assertTrue(directAfter < directBefore + (48L << 20), "direct memory " + directBefore + " -> " + directAfter);
    }

    /** Writes random blocks to its own export and reads each back, until the fuzzers are done. */
    private static long wellBehaved(InetSocketAddress address, AtomicBoolean done) throws IOException {
        SplittableRandom random = new SplittableRandom(SEED ^ 0x600d);
        byte[] model = new byte[GOOD_SIZE];
        long ops = 0;
        try (TestNbdClient client = TestNbdClient.negotiated(address, true)) {
            client.go("good");
            while (!done.get() || ops < 10) {
                int block = random.nextInt(GOOD_SIZE / 4096);
                byte[] data = new byte[4096];
                random.nextBytes(data);
                client.write(block * 4096L, data);
                System.arraycopy(data, 0, model, block * 4096, 4096);
                int check = random.nextInt(GOOD_SIZE / 4096);
                byte[] read = client.read(check * 4096L, 4096);
                assertArrayEquals(Arrays.copyOfRange(model, check * 4096, check * 4096 + 4096), read,
                        "good client block " + check);
                ops += 2;
            }
        }
        return ops;
    }

    private void fuzz(InetSocketAddress address, SplittableRandom random) throws IOException {
        while (requests.get() < REQUESTS) {
            connections.incrementAndGet();
            try (TestNbdClient client = new TestNbdClient(address)) {
                session(client, random);
            }
        }
    }

    /** One connection: the handshake phase, then (if an export was opened) the transmission phase. */
    private void session(TestNbdClient client, SplittableRandom random) throws IOException {
        int roll = random.nextInt(100);
        if (roll < 2) { // garbage instead of client flags, then vanish
            byte[] junk = new byte[random.nextInt(1, 64)];
            random.nextBytes(junk);
            client.sendRaw(junk);
            return;
        }
        if (roll < 4) {
            client.clientFlags(random.nextInt()); // random flags: mostly refused
            return;
        }
        client.clientFlags(NBD_FLAG_C_FIXED_NEWSTYLE | (random.nextBoolean() ? NBD_FLAG_C_NO_ZEROES : 0));
        boolean structured = false;
        int count = random.nextInt(6);
        for (int i = 0; i < count; i++) {
            options.incrementAndGet();
            int kind = random.nextInt(100);
            if (kind < 3) { // broken framing: bad magic or a truncated option, then the connection is useless
                if (random.nextBoolean()) client.sendOption(random.nextLong(), NBD_OPT_LIST, new byte[0]);
                else client.sendRaw(Arrays.copyOf(TestNbdClient.infoData("fuzz"), random.nextInt(1, 10)));
                return;
            }
            List<TestNbdClient.OptionReply> replies;
            if (kind < 15) {
                replies = client.option(NBD_OPT_STRUCTURED_REPLY, new byte[0]);
                if (replies.getLast().type() == NBD_REP_ACK) structured = true;
            } else if (kind < 30) {
                String query = random.nextBoolean() ? BASE_ALLOCATION : randomString(random);
                int option = random.nextBoolean() ? NBD_OPT_SET_META_CONTEXT : NBD_OPT_LIST_META_CONTEXT;
                replies = client.option(option, TestNbdClient.metaData(random.nextInt(4) == 0 ? "nope" : "fuzz",
                        query));
            } else if (kind < 45) {
                replies = client.option(NBD_OPT_INFO, TestNbdClient.infoData(randomExport(random),
                        random.nextInt(5), random.nextInt(5)));
            } else if (kind < 60) {
                byte[] data = new byte[random.nextInt(4) == 0 ? random.nextInt(1, 200) : 0];
                random.nextBytes(data);
                replies = client.option(NBD_OPT_LIST, data);
            } else {
                // Any option number, random data, sometimes a body that contradicts its own length fields.
                int option = random.nextInt(4) == 0 ? random.nextInt() : random.nextInt(1, 16);
                if (option == NBD_OPT_EXPORT_NAME || option == NBD_OPT_GO || option == NBD_OPT_ABORT) option = 4;
                byte[] data = new byte[random.nextInt(0, 300)];
                random.nextBytes(data);
                if (data.length >= 4 && random.nextBoolean()) ByteBuffer.wrap(data).putInt(random.nextInt());
                replies = client.option(option, data);
                if (option == NBD_OPT_STRUCTURED_REPLY && replies.getLast().type() == NBD_REP_ACK) structured = true;
            }
            assertFalse(replies.isEmpty());
        }
        if (random.nextInt(10) == 0) { // stall mid-handshake and vanish, or abort
            if (random.nextBoolean()) client.option(NBD_OPT_ABORT, new byte[0]);
            return;
        }
        String export = random.nextInt(8) == 0 ? "ro" : "fuzz";
        List<TestNbdClient.OptionReply> replies = client.option(NBD_OPT_GO, TestNbdClient.infoData(export));
        if (replies.getLast().type() != NBD_REP_ACK) return;
        transmission(client, random, structured, export.equals("ro") ? 64 << 10 : FUZZ_SIZE);
    }

    /** Batches of pipelined random requests; each must be answered exactly once, by cookie. */
    private void transmission(TestNbdClient client, SplittableRandom random, boolean structured, long size)
            throws IOException {
        int batches = random.nextInt(1, 40);
        long cookie = random.nextLong();
        for (int b = 0; b < batches && requests.get() < REQUESTS; b++) {
            int n = random.nextInt(1, 17);
            Set<Long> waiting = new HashSet<>();
            for (int i = 0; i < n; i++) {
                requests.incrementAndGet();
                int breakFraming = random.nextInt(1000);
                if (breakFraming < 3) { // bad magic: the server must hang up
                    client.sendRaw(new byte[] {1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                            0, 0, 0, 0, 0, 0});
                    assertTrue(client.closedByServer(), "bad request magic did not close the connection");
                    return;
                }
                if (breakFraming < 5) { // a write declared but never completed: vanish
                    client.send(0, NBD_CMD_WRITE, cookie, 0, 1 << 20, new byte[random.nextInt(1000)]);
                    return;
                }
                if (breakFraming < 6) {
                    client.send(0, NBD_CMD_DISC, cookie, 0, 0, null);
                    assertTrue(client.closedByServer(), "NBD_CMD_DISC did not close the connection");
                    return;
                }
                cookie++;
                int type = random.nextInt(100) < 95 ? random.nextInt(8) : random.nextInt(0, 1 << 16);
                if (type == NBD_CMD_DISC) type = NBD_CMD_READ;
                int flags = random.nextInt(4) == 0 ? random.nextInt(1 << 16) & ~0 : 0;
                long offset = random.nextInt(10) == 0 ? random.nextLong() : random.nextLong(size + 1);
                long length = random.nextInt(10) == 0 ? random.nextInt(Integer.MAX_VALUE) & 0xffffffffL
                        : random.nextInt(0, 65537);
                if (type == NBD_CMD_READ && length > 65536 && random.nextBoolean()) length = 65536;
                byte[] payload = null;
                if (type == NBD_CMD_WRITE) {
                    length = Math.min(length, 65536);
                    payload = new byte[(int) length];
                    random.nextBytes(payload);
                }
                if (type == NBD_CMD_READ && length > MAX_PAYLOAD) {
                    // A refused read: answered without data, so the client must not expect any.
                    client.send(flags, type, cookie, offset, length, null);
                } else {
                    client.send(flags, type, cookie, offset, length, payload);
                }
                waiting.add(cookie);
            }
            while (!waiting.isEmpty()) {
                TestNbdClient.Reply reply = client.readReply();
                assertTrue(waiting.contains(reply.cookie()), "reply for unknown cookie " + reply.cookie());
                if (reply.done()) waiting.remove(reply.cookie());
                if (!structured) assertFalse(reply.structured(), "structured reply without negotiation");
            }
        }
        if (random.nextBoolean()) client.send(0, NBD_CMD_DISC, cookie + 1, 0, 0, null);
    }

    private static String randomExport(SplittableRandom random) {
        return switch (random.nextInt(4)) {
            case 0 -> "fuzz";
            case 1 -> "ro";
            case 2 -> "";
            default -> randomString(random);
        };
    }

    private static String randomString(SplittableRandom random) {
        char[] chars = new char[random.nextInt(0, 20)];
        for (int i = 0; i < chars.length; i++) chars[i] = (char) random.nextInt(1, 0x3000);
        return new String(chars);
    }

    private static void warmUp(MemoryVolumeProvider volumes) throws Exception {
        try (NbdServer server = new NbdServer(volumes, new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))) {
            server.start();
            for (int i = 0; i < 4; i++) {
                try (TestNbdClient client = TestNbdClient.negotiated(server.localAddress(), i % 2 == 0)) {
                    client.go("fuzz");
                    client.write(0, new byte[4096]);
                    assertEquals(4096, client.read(0, 4096).length);
                }
            }
            TransmissionTest.awaitNoConnections(server);
        }
    }

    private static long platformThreads() throws InterruptedException {
        Thread.sleep(300);
        return ManagementFactory.getThreadMXBean().getThreadCount();
    }

    private static long usedHeap() throws InterruptedException {
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(50);
        }
        Runtime rt = Runtime.getRuntime();
        return rt.totalMemory() - rt.freeMemory();
    }

    private static long directMemory() {
        return ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class).stream()
                .filter(b -> b.getName().equals("direct")).mapToLong(BufferPoolMXBean::getMemoryUsed).sum();
    }
}
