package io.dedisk.store;

import java.io.IOException;

/**
 * ENOSPC (or EDQUOT) from the storage below, as its own type: the JDK reports it only as an IOException whose
 * message is the OS's text, so {@link LocalFs} recognises it there, once, and everything above keys on the type.
 */
public final class NoSpaceLeftException extends IOException {
    private static final long serialVersionUID = 1L;

    public NoSpaceLeftException(String message, Throwable cause) { super(message, cause); }

    /** The exception as thrown, or a NoSpaceLeftException when it is the OS saying the disk is full. */
    static IOException classify(IOException e) {
        if (e instanceof NoSpaceLeftException) return e;
        String msg = String.valueOf(e.getMessage());
        if (msg.contains("No space left") || msg.contains("Disk quota exceeded")) return new NoSpaceLeftException(msg, e);
        return e;
    }
}
