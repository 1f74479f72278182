package io.dedisk.util;

/**
 * Always-on invariant checks (TigerBeetle style). Java's {@code assert} is off in production; these are not.
 * A failed check is a bug in dedisk, never a user error: it throws {@link InvariantViolation}.
 */
public final class Check {
    private Check() {}

    /** A broken internal invariant. Distinct from corruption (bad data found) and misuse (bad input). */
    public static final class InvariantViolation extends Error {
        private static final long serialVersionUID = 1L;
        public InvariantViolation(String message) { super(message); }
    }

    public static void that(boolean condition, String what) {
        if (!condition) throw new InvariantViolation("invariant violated: " + what);
    }

    public static void that(boolean condition, String format, Object... args) {
        if (!condition) throw new InvariantViolation("invariant violated: " + String.format(format, args));
    }
}
