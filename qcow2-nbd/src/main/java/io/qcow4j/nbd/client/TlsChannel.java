package io.qcow4j.nbd.client;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLEngineResult.HandshakeStatus;
import javax.net.ssl.SSLException;

/**
 * TLS over the connection's blocking channel, with the JDK's {@link SSLEngine}: what
 * NBD's OPT_STARTTLS switches to. One thread at a time reads or writes (the client's).
 */
final class TlsChannel implements ByteChannel {
    private static final ByteBuffer EMPTY = ByteBuffer.allocate(0);

    private final ByteChannel net;
    private final SSLEngine engine;
    /** Bytes from the network not yet unwrapped (read mode). */
    private final ByteBuffer netIn;
    /** Wrapped bytes on their way out. */
    private ByteBuffer netOut;
    /** Unwrapped bytes not yet given to the reader (read mode). */
    private ByteBuffer appIn;
    private boolean closed;

    private TlsChannel(ByteChannel net, SSLEngine engine) {
        this.net = net;
        this.engine = engine;
        int packet = engine.getSession().getPacketBufferSize();
        this.netIn = ByteBuffer.allocate(packet).flip();
        this.netOut = ByteBuffer.allocate(packet);
        this.appIn = ByteBuffer.allocate(engine.getSession().getApplicationBufferSize()).flip();
    }

    /** Runs the TLS handshake as the client over {@code net}. */
    static TlsChannel handshake(ByteChannel net, SSLEngine engine) throws IOException {
        TlsChannel c = new TlsChannel(net, engine);
        engine.setUseClientMode(true);
        engine.beginHandshake();
        c.runHandshake();
        return c;
    }

    private void runHandshake() throws IOException {
        while (true) {
            HandshakeStatus hs = engine.getHandshakeStatus();
            switch (hs) {
                case NEED_WRAP -> wrap(EMPTY);
                case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
                    if (unwrapInto(appIn) < 0) {
                        throw new EOFException("the server closed the connection during the TLS handshake");
                    }
                }
                case NEED_TASK -> {
                    Runnable task;
                    while ((task = engine.getDelegatedTask()) != null) {
                        task.run();
                    }
                }
                default -> {
                    return; // FINISHED, NOT_HANDSHAKING
                }
            }
        }
    }

    /**
     * Unwraps one record into {@code dst} (write mode for appIn, which is kept in read mode
     * outside this method), reading from the network as needed. Returns the bytes produced,
     * or -1 at the end of the stream.
     */
    private int unwrapInto(ByteBuffer dstReadMode) throws IOException {
        while (true) {
            ByteBuffer dst = dstReadMode.compact();
            SSLEngineResult r;
            try {
                r = engine.unwrap(netIn, dst);
            } finally {
                dst.flip();
            }
            switch (r.getStatus()) {
                case OK -> {
                    if (r.bytesProduced() > 0 || r.getHandshakeStatus() != HandshakeStatus.NEED_UNWRAP) {
                        return r.bytesProduced();
                    }
                }
                case BUFFER_UNDERFLOW -> {
                    if (!fill()) {
                        return -1;
                    }
                }
                case BUFFER_OVERFLOW -> {
                    if (dstReadMode != appIn) {
                        throw new SSLException("TLS record larger than the buffer");
                    }
                    ByteBuffer bigger = ByteBuffer.allocate(appIn.capacity() * 2);
                    bigger.put(appIn).flip();
                    appIn = bigger;
                    dstReadMode = appIn;
                }
                case CLOSED -> {
                    closed = true;
                    return -1;
                }
                default -> throw new SSLException("unexpected TLS state " + r.getStatus());
            }
        }
    }

    /** Reads more network bytes into netIn; false at the end of the stream. */
    private boolean fill() throws IOException {
        netIn.compact();
        try {
            if (!netIn.hasRemaining()) {
                throw new SSLException("TLS record larger than " + netIn.capacity() + " bytes");
            }
            return net.read(netIn) >= 0;
        } finally {
            netIn.flip();
        }
    }

    private void wrap(ByteBuffer src) throws IOException {
        while (true) {
            netOut.clear();
            SSLEngineResult r = engine.wrap(src, netOut);
            netOut.flip();
            while (netOut.hasRemaining()) {
                net.write(netOut);
            }
            switch (r.getStatus()) {
                case OK -> {
                    if (r.getHandshakeStatus() == HandshakeStatus.NEED_TASK) {
                        Runnable task;
                        while ((task = engine.getDelegatedTask()) != null) {
                            task.run();
                        }
                    }
                    return;
                }
                case BUFFER_OVERFLOW -> netOut = ByteBuffer.allocate(netOut.capacity() * 2);
                case CLOSED -> throw new SSLException("TLS connection closed");
                default -> throw new SSLException("unexpected TLS state " + r.getStatus());
            }
        }
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        while (!appIn.hasRemaining()) {
            if (closed) {
                return -1;
            }
            int n = unwrapInto(appIn);
            if (n < 0) {
                return -1;
            }
            // a post-handshake message (TLS 1.3 session ticket, key update) may want an answer
            if (engine.getHandshakeStatus() != HandshakeStatus.NOT_HANDSHAKING
                    && engine.getHandshakeStatus() != HandshakeStatus.FINISHED) {
                runHandshake();
            }
        }
        int n = Math.min(dst.remaining(), appIn.remaining());
        ByteBuffer slice = appIn.slice(appIn.position(), n);
        dst.put(slice);
        appIn.position(appIn.position() + n);
        return n;
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        int n = src.remaining();
        while (src.hasRemaining()) {
            wrap(src);
        }
        return n;
    }

    @Override
    public boolean isOpen() {
        return net.isOpen();
    }

    /** Sends close_notify (best effort) and closes the socket. */
    @Override
    public void close() throws IOException {
        try {
            engine.closeOutbound();
            if (net.isOpen()) {
                netOut.clear();
                engine.wrap(EMPTY, netOut);
                netOut.flip();
                while (netOut.hasRemaining()) {
                    net.write(netOut);
                }
            }
        } catch (IOException e) {
            // the peer may be gone already; the socket is closed below either way
        } finally {
            net.close();
        }
    }
}
