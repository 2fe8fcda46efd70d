package io.qcow4j.nbd.server;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;

/**
 * A blocking socket channel (TCP or Unix). Reads go through a 64 KiB buffer so that a
 * stream of small requests costs one system call per buffer, not one per request; a large
 * payload past what is buffered is read straight into its destination.
 */
final class PlainTransport implements Transport {
    private static final int BUFFER = 64 << 10;
    private final SocketChannel channel;
    private final ByteBuffer in = ByteBuffer.allocateDirect(BUFFER).flip();

    PlainTransport(SocketChannel channel) {
        this.channel = channel;
    }

    SocketChannel channel() {
        return channel;
    }

    /** Bytes read ahead and not yet consumed (the start of a TLS handshake, after STARTTLS). */
    ByteBuffer buffered() {
        return in;
    }

    @Override
    public void readFully(ByteBuffer dst) throws IOException {
        if (in.hasRemaining()) {
            int n = Math.min(in.remaining(), dst.remaining());
            ByteBuffer slice = in.slice().limit(n);
            dst.put(slice);
            in.position(in.position() + n);
        }
        while (dst.hasRemaining()) {
            if (dst.remaining() >= BUFFER) {
                if (channel.read(dst) < 0) {
                    throw new EOFException("client closed the connection");
                }
                continue;
            }
            in.clear();
            int n = channel.read(in);
            in.flip();
            if (n < 0) {
                throw new EOFException("client closed the connection");
            }
            int take = Math.min(in.remaining(), dst.remaining());
            ByteBuffer slice = in.slice().limit(take);
            dst.put(slice);
            in.position(in.position() + take);
        }
    }

    /** Reads once into {@code dst} what the socket has (at least one byte); -1 at end of stream. */
    int readSome(ByteBuffer dst) throws IOException {
        if (in.hasRemaining()) {
            int n = Math.min(in.remaining(), dst.remaining());
            dst.put(in.slice().limit(n));
            in.position(in.position() + n);
            return n;
        }
        return channel.read(dst);
    }

    @Override
    public void write(ByteBuffer... srcs) throws IOException {
        long left = 0;
        for (ByteBuffer b : srcs) {
            left += b.remaining();
        }
        while (left > 0) {
            left -= channel.write(srcs);
        }
    }

    /** Sends {@code count} bytes of {@code file} from {@code position} straight to the socket (sendfile). */
    void transferFrom(FileChannel file, long position, long count) throws IOException {
        while (count > 0) {
            long n = file.transferTo(position, count, channel);
            if (n <= 0) {
                throw new EOFException("image file ends at " + position + " inside a data cluster");
            }
            position += n;
            count -= n;
        }
    }

    @Override
    public void shutdownInput() {
        try {
            channel.shutdownInput();
        } catch (IOException e) {
            // already closed: reads end anyway
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
