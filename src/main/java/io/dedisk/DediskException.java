package io.dedisk;

/**
 * Root of dedisk's error taxonomy. Subclasses separate what went wrong so callers (the NBD server maps them to
 * NBD error codes, the CLI to exit statuses) can react: corruption, I/O failure, no space, read-only, misuse.
 * Messages say what was expected and what was found.
 */
public class DediskException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    public DediskException(String message) { super(message); }
    public DediskException(String message, Throwable cause) { super(message, cause); }

    /** Stored data failed verification (checksum, magic, length, decode). Never served as data. */
    public static class CorruptionException extends DediskException {
        private static final long serialVersionUID = 1L;
        public CorruptionException(String message) { super(message); }
        public CorruptionException(String message, Throwable cause) { super(message, cause); }
    }

    /** The storage below failed (EIO, fsync failure, backend error). The operation may be retried. */
    public static class StorageException extends DediskException {
        private static final long serialVersionUID = 1L;
        public StorageException(String message, Throwable cause) { super(message, cause); }
    }

    /** The storage below is full. */
    public static class NoSpaceException extends StorageException {
        private static final long serialVersionUID = 1L;
        public NoSpaceException(String message, Throwable cause) { super(message, cause); }
    }

    /** A write was refused because the volume or pool is read-only (snapshot, or metadata cannot be trusted). */
    public static class ReadOnlyException extends DediskException {
        private static final long serialVersionUID = 1L;
        public ReadOnlyException(String message) { super(message); }
    }

    /** The caller asked for something invalid: out-of-range I/O, unknown volume, bad size, existing pool. */
    public static class InvalidRequestException extends DediskException {
        private static final long serialVersionUID = 1L;
        public InvalidRequestException(String message) { super(message); }
    }
}
