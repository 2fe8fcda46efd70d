package io.qcow4j.nbd.client;

import java.io.IOException;

/**
 * An NBD request or option the server refused, with the error it sent ({@link #error()}:
 * the NBD error number, such as {@code Nbd.EINVAL}; or an option reply type such as
 * {@code Nbd.REP_ERR_UNKNOWN}). A server that breaks the protocol, or a connection that
 * is lost, is a plain {@link IOException}, after which the client is closed.
 */
public final class NbdException extends IOException {
    private static final long serialVersionUID = 1L;
    private final int error;

    public NbdException(String message, int error) {
        super(message);
        this.error = error;
    }

    /** The server's error number (a request) or error reply type (an option). */
    public int error() {
        return error;
    }
}
