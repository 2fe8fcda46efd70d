package io.qcow4j.nbd.server;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * One client's byte stream, plain or TLS. Reads come from the connection's one reader
 * thread; writes from whichever thread holds the connection's reply lock.
 */
interface Transport extends Closeable {

    /** Fills {@code dst} completely; {@link java.io.EOFException} when the peer closes first. */
    void readFully(ByteBuffer dst) throws IOException;

    /** Writes every remaining byte of {@code srcs}, in order. */
    void write(ByteBuffer... srcs) throws IOException;

    /** Stops reading: a blocked or later read sees end of stream. Replies can still go out. */
    void shutdownInput();

    @Override
    void close() throws IOException;
}
