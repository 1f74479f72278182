package io.dedisk.pool;

/** A place in the log: the record at {@code offset} of segment {@code segment} carries LSN {@code nextLsn}. */
record LogPosition(long segment, long offset, long nextLsn) {}
