package io.qcow4j.nbd.server;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;

/**
 * TLS over a blocking socket channel (TCP or Unix: the JDK's SSLSocket cannot wrap a Unix
 * socket, so this drives an {@link SSLEngine} itself). Reads come from one thread, writes
 * under {@link #writeLock}; an engine may unwrap and wrap at the same time.
 */
final class TlsTransport implements Transport {
    private final SocketChannel channel;
    private final SSLEngine engine;
    private final Object writeLock = new Object();
    private ByteBuffer netIn;
    private ByteBuffer appIn;
    private final ByteBuffer netOut;
    private final ByteBuffer empty = ByteBuffer.allocate(0);

    TlsTransport(PlainTransport plain, SSLEngine engine) {
        this.channel = plain.channel();
        this.engine = engine;
        int packet = engine.getSession().getPacketBufferSize();
        this.netIn = ByteBuffer.allocate(Math.max(packet, plain.buffered().remaining()));
        this.netIn.put(plain.buffered()); // what the client sent right after STARTTLS
        this.appIn = ByteBuffer.allocate(engine.getSession().getApplicationBufferSize());
        this.netOut = ByteBuffer.allocate(packet);
    }

    /** Runs the TLS handshake; a failure (a certificate the CA did not sign) ends the session. */
    void handshake() throws IOException {
        engine.beginHandshake();
        while (true) {
            switch (engine.getHandshakeStatus()) {
                case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> unwrapOnce();
                case NEED_WRAP -> wrapHandshake();
                case NEED_TASK -> runTasks();
                default -> {
                    return;
                }
            }
        }
    }

    @Override
    public void readFully(ByteBuffer dst) throws IOException {
        while (dst.hasRemaining()) {
            if (appIn.position() > 0) {
                appIn.flip();
                int n = Math.min(appIn.remaining(), dst.remaining());
                dst.put(appIn.slice().limit(n));
                appIn.position(appIn.position() + n);
                appIn.compact();
                continue;
            }
            unwrapOnce();
        }
    }

    /** One unwrap, reading from the socket first when no whole record is buffered. */
    private void unwrapOnce() throws IOException {
        netIn.flip();
        SSLEngineResult r;
        try {
            r = engine.unwrap(netIn, appIn);
        } finally {
            netIn.compact();
        }
        switch (r.getStatus()) {
            case BUFFER_UNDERFLOW -> {
                if (!netIn.hasRemaining()) {
                    netIn = grow(netIn, engine.getSession().getPacketBufferSize());
                }
                if (channel.read(netIn) < 0) {
                    engine.closeInbound();
                    throw new EOFException("client closed the connection");
                }
            }
            case BUFFER_OVERFLOW -> appIn = grow(appIn, engine.getSession().getApplicationBufferSize());
            case CLOSED -> throw new EOFException("client closed the TLS session");
            default -> {
                // OK: maybe the engine wants to answer (a key update, the end of the handshake)
                switch (r.getHandshakeStatus()) {
                    case NEED_TASK -> runTasks();
                    case NEED_WRAP -> wrapHandshake();
                    default -> {
                    }
                }
            }
        }
    }

    private void wrapHandshake() throws IOException {
        synchronized (writeLock) {
            netOut.clear();
            SSLEngineResult r = engine.wrap(empty, netOut);
            flushNetOut();
            if (r.getStatus() == SSLEngineResult.Status.CLOSED && netOut.position() == 0) {
                throw new SSLException("TLS session closed during the handshake");
            }
            if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_TASK) {
                runTasks();
            }
        }
    }

    private void runTasks() {
        Runnable task;
        while ((task = engine.getDelegatedTask()) != null) {
            task.run();
        }
    }

    @Override
    public void write(ByteBuffer... srcs) throws IOException {
        synchronized (writeLock) {
            while (remaining(srcs)) {
                netOut.clear();
                SSLEngineResult r = engine.wrap(srcs, netOut);
                if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                    throw new IOException("TLS session closed");
                }
                flushNetOut();
            }
        }
    }

    private void flushNetOut() throws IOException {
        netOut.flip();
        while (netOut.hasRemaining()) {
            channel.write(netOut);
        }
    }

    private static boolean remaining(ByteBuffer[] srcs) {
        for (ByteBuffer b : srcs) {
            if (b.hasRemaining()) {
                return true;
            }
        }
        return false;
    }

    private static ByteBuffer grow(ByteBuffer b, int atLeast) {
        ByteBuffer n = ByteBuffer.allocate(Math.max(b.capacity() * 2, atLeast));
        b.flip();
        n.put(b);
        return n;
    }

    @Override
    public void shutdownInput() {
        try {
            channel.shutdownInput();
        } catch (IOException e) {
            // closed already
        }
    }

    @Override
    public void close() throws IOException {
        try {
            synchronized (writeLock) {
                engine.closeOutbound();
                netOut.clear();
                engine.wrap(empty, netOut);
                flushNetOut();
            }
        } catch (IOException | RuntimeException e) {
            // the peer is gone: nothing to tell it
        } finally {
            channel.close();
        }
    }
}
