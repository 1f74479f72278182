package io.dedisk.nbd;

import java.io.IOException;

/**
 * The client broke a mandatory rule of the protocol in a way that leaves no sane reply (bad magic, unknown client
 * flags, oversized write payload, unknown NBD_OPT_EXPORT_NAME export). Thrown on the reader thread; the connection
 * logs it at WARNING with the peer address and closes (the spec's hard disconnect). The message says what was
 * expected and what was found.
 */
final class ProtocolViolation extends IOException {
    private static final long serialVersionUID = 1L;

    ProtocolViolation(String message) {
        super(message);
    }
}
