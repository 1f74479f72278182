package io.dedisk.store;

import java.io.IOException;

/**
 * This writer lost the pool: another writer took a newer epoch (its conditional manifest write won) or wrote the
 * next segment first. Nothing this writer writes reaches the store any more; the pool goes read-only.
 */
public final class FencedException extends IOException {
    private static final long serialVersionUID = 1L;

    public FencedException(String why) { super(why); }
}
