package io.qcow4j.nbd.client;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;

/**
 * Big-endian reads and writes over the connection's channel (a socket, or TLS over it),
 * buffered both ways. Bulk data (a read's payload, a write's) goes straight between the
 * channel and the caller's buffer once the small buffer is drained.
 */
final class Wire {
    private static final int BUFFER = 64 * 1024;

    private ByteChannel channel;
    private final ByteBuffer in = ByteBuffer.allocateDirect(BUFFER).flip();
    private final ByteBuffer out = ByteBuffer.allocateDirect(BUFFER);

    Wire(ByteChannel channel) {
        this.channel = channel;
    }

    /** Switches to another channel (TLS over the same socket); nothing may be buffered. */
    void switchTo(ByteChannel next) {
        if (in.hasRemaining() || out.position() > 0) {
            throw new IllegalStateException("bytes buffered across the switch to TLS");
        }
        channel = next;
    }

    ByteChannel channel() {
        return channel;
    }

    // ---------------------------------------------------------------- reading

    /** Makes {@code n} (at most the buffer size) bytes available in {@code in}. */
    private void need(int n) throws IOException {
        if (in.remaining() >= n) {
            return;
        }
        in.compact();
        try {
            while (in.position() < n) {
                if (channel.read(in) < 0) {
                    throw new EOFException("the server closed the connection");
                }
            }
        } finally {
            in.flip();
        }
    }

    byte readByte() throws IOException {
        need(1);
        return in.get();
    }

    short readShort() throws IOException {
        need(2);
        return in.getShort();
    }

    int readInt() throws IOException {
        need(4);
        return in.getInt();
    }

    long readLong() throws IOException {
        need(8);
        return in.getLong();
    }

    /** Fills {@code dst} to its limit. */
    void readFully(ByteBuffer dst) throws IOException {
        if (in.hasRemaining()) {
            int n = Math.min(in.remaining(), dst.remaining());
            ByteBuffer slice = in.slice(in.position(), n);
            dst.put(slice);
            in.position(in.position() + n);
        }
        while (dst.hasRemaining()) {
            if (dst.remaining() < 4096) {
                // small pieces through the buffer: fewer system calls
                need(Math.min(dst.remaining(), BUFFER));
                readFully(dst);
                return;
            }
            if (channel.read(dst) < 0) {
                throw new EOFException("the server closed the connection");
            }
        }
    }

    byte[] readBytes(int n) throws IOException {
        byte[] b = new byte[n];
        readFully(ByteBuffer.wrap(b));
        return b;
    }

    /** Reads and drops {@code n} bytes, without allocating them. */
    void skip(long n) throws IOException {
        while (n > 0) {
            int k = (int) Math.min(n, BUFFER);
            need(k);
            in.position(in.position() + k);
            n -= k;
        }
    }

    // ---------------------------------------------------------------- writing

    private void room(int n) throws IOException {
        if (out.remaining() < n) {
            flush();
        }
    }

    void writeShort(int v) throws IOException {
        room(2);
        out.putShort((short) v);
    }

    void writeInt(int v) throws IOException {
        room(4);
        out.putInt(v);
    }

    void writeLong(long v) throws IOException {
        room(8);
        out.putLong(v);
    }

    /** Writes {@code src} (position to limit; the position is left unchanged). */
    void write(ByteBuffer src) throws IOException {
        ByteBuffer s = src.duplicate();
        if (s.remaining() <= out.remaining()) {
            out.put(s);
            return;
        }
        flush();
        while (s.hasRemaining()) {
            channel.write(s);
        }
    }

    void write(byte[] b) throws IOException {
        write(ByteBuffer.wrap(b));
    }

    void flush() throws IOException {
        out.flip();
        try {
            while (out.hasRemaining()) {
                channel.write(out);
            }
        } finally {
            out.clear();
        }
    }
}
