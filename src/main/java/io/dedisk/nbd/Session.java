package io.dedisk.nbd;

import io.dedisk.pool.VolumeDevice;
import io.dedisk.util.Check;

/**
 * What option haggling settled for one connection, fixed for the whole transmission phase.
 *
 * Made once by {@link Handshake} on the reader thread; immutable and shared with the request threads afterwards.
 * Invariants: {@code size} is the export size sent to the client; {@code baseAllocation} implies
 * {@code structuredReplies}; {@code transmissionFlags} is exactly what the client was sent.
 *
 * @param volume            the export
 * @param size              export size in bytes, as sent in NBD_INFO_EXPORT / the NBD_OPT_EXPORT_NAME reply
 * @param transmissionFlags the 16-bit transmission flags sent to the client
 * @param structuredReplies NBD_OPT_STRUCTURED_REPLY was acknowledged
 * @param baseAllocation    base:allocation was selected by NBD_OPT_SET_META_CONTEXT for this export
 */
record Session(VolumeDevice volume, long size, int transmissionFlags, boolean structuredReplies,
               boolean baseAllocation) {
    Session {
        Check.that(!baseAllocation || structuredReplies, "base:allocation without structured replies");
    }
}
