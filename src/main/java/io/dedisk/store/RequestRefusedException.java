package io.dedisk.store;

import java.io.IOException;

/**
 * An object-store request the store refused for a reason a retry will not change: access denied (403), a bad
 * request (400), a missing bucket, bad credentials or configuration. Distinct from a plain IOException (transient
 * failures, already retried to the store's bound, which a caller may retry later, e.g. a background upload after an
 * outage) and from the answers {@link ObjectStore.PreconditionFailedException} and NoSuchFileException.
 * Retrying wrappers rethrow it at once.
 */
public final class RequestRefusedException extends IOException {
    private static final long serialVersionUID = 1L;

    public RequestRefusedException(String message, Throwable cause) { super(message, cause); }
}
