package io.dedisk.sim;

import io.dedisk.pool.Pool;
import io.dedisk.pool.VolumeDevice;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;

/**
 * One step of the random workload: an NBD-like operation applied to the pool and to the model, in the order
 * that keeps the model honest under crashes (the model learns what may be written before the pool is called,
 * and what is durable only after the call returned).
 */
final class Workload {
    private Workload() {}

    /** Writes {@code data} at byte {@code off} of device d and of its model v (in flight until it returns). */
    static void write(VolumeDevice d, DiskModel.Vol v, int off, byte[] data, boolean fua) {
        byte[] after = v.current.clone();
        System.arraycopy(data, 0, after, off, data.length);
        v.mayWrite(off, data.length, after);
        d.write(off, ByteBuffer.wrap(data), fua);
        v.current = after;
        if (fua) v.durable(off, data.length);
    }

    /** Runs one random I/O operation against volume {@code name}. Returns a short description for failure messages. */
    static String step(Random r, Pool pool, DiskModel model, String name) {
        DiskModel.Vol v = model.volumes.get(name);
        VolumeDevice d = pool.volume(name).orElseThrow();
        int size = v.current.length;
        int op = r.nextInt(100);
        if (op < 50) { // WRITE, sometimes FUA, sometimes unaligned
            boolean aligned = r.nextInt(4) > 0;
            int off = aligned ? r.nextInt(v.blocks()) * DiskModel.BS : r.nextInt(size - 1);
            int len = aligned ? DiskModel.BS * (1 + r.nextInt(Math.min(64, (size - off) / DiskModel.BS)))
                    : 1 + r.nextInt(Math.min(3 * DiskModel.BS, size - off));
            boolean fua = r.nextInt(8) == 0;
            write(d, v, off, DiskModel.content(r, len), fua);
            return "write " + off + "+" + len + (fua ? " fua" : "");
        }
        if (op < 60) { // WRITE_ZEROES
            int off = r.nextInt(size - 1);
            int len = 1 + r.nextInt(Math.min(40 * DiskModel.BS, size - off));
            byte[] after = v.current.clone();
            Arrays.fill(after, off, off + len, (byte) 0);
            v.mayWrite(off, len, after);
            d.writeZeroes(off, len, r.nextBoolean(), false);
            v.current = after;
            return "zero " + off + "+" + len;
        }
        if (op < 67) { // TRIM: whole blocks only are released
            int off = r.nextInt(size - 1);
            int len = 1 + r.nextInt(Math.min(40 * DiskModel.BS, size - off));
            byte[] after = v.current.clone();
            long first = (off + DiskModel.BS - 1) / DiskModel.BS * DiskModel.BS;
            long end = (long) (off + len) / DiskModel.BS * DiskModel.BS;
            if (end > first) Arrays.fill(after, (int) first, (int) end, (byte) 0);
            v.mayWrite(off, len, after);
            d.trim(off, len, false);
            v.current = after;
            return "trim " + off + "+" + len;
        }
        if (op < 85) { // READ must equal the model exactly
            int off = r.nextInt(size - 1);
            int len = 1 + r.nextInt(Math.min(80 * DiskModel.BS, size - off));
            ByteBuffer b = ByteBuffer.allocate(len);
            d.read(off, b);
            if (!Arrays.equals(b.array(), Arrays.copyOfRange(v.current, off, off + len))) {
                throw new AssertionError("read " + off + "+" + len + " of " + name + " differs from what was written");
            }
            return "read " + off + "+" + len;
        }
        d.flush(); // FLUSH
        v.flushed();
        return "flush";
    }
}
