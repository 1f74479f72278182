package io.dedisk.nbd;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

/**
 * The byte stream under a {@link Wire}: the plain socket, or (after NBD_OPT_STARTTLS) a TLS session over it.
 *
 * Threads: {@link #read} is called by the connection's reader thread only; {@link #write} by one writer at a time
 * (the handshake, then {@link ReplyWriter} under its lock), possibly while a read is blocked; {@link #close} and
 * {@link #shutdownInput} by any thread, any number of times. Invariant: after {@link #close} every blocked or later
 * read and write fails promptly.
 */
interface Transport {
    /** Reads at least one byte into {@code dst} (blocking), or returns -1 at end of stream. */
    int read(ByteBuffer dst) throws IOException;

    /** Writes {@code count} buffers from {@code srcs[0]} completely (blocking). */
    void write(ByteBuffer[] srcs, int count) throws IOException;

    void shutdownInput();

    void close();

    boolean isOpen();

    /** A plain TCP connection. */
    final class Plain implements Transport {
        private static final System.Logger LOG = System.getLogger("dedisk.nbd");
        private final SocketChannel channel;

        Plain(SocketChannel channel) {
            this.channel = channel;
        }

        SocketChannel channel() {
            return channel;
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            int n;
            do {
                n = channel.read(dst);
            } while (n == 0 && dst.hasRemaining());
            return n;
        }

        @Override
        public void write(ByteBuffer[] srcs, int count) throws IOException {
            int first = 0;
            while (first < count) {
                channel.write(srcs, first, count - first);
                while (first < count && !srcs[first].hasRemaining()) first++;
            }
        }

        @Override
        public void shutdownInput() {
            try {
                channel.shutdownInput();
            } catch (IOException e) {
                close();
            }
        }

        @Override
        public void close() {
            try {
                channel.close();
            } catch (IOException e) {
                LOG.log(Level.DEBUG, "close failed: {0}", e.toString());
            }
        }

        @Override
        public boolean isOpen() {
            return channel.isOpen();
        }
    }
}
