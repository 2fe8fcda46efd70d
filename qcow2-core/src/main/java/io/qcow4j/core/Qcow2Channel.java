package io.qcow4j.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.NonWritableChannelException;
import java.nio.channels.SeekableByteChannel;

/** The virtual disk as a {@link SeekableByteChannel}. Closing it leaves the image open. */
final class Qcow2Channel implements SeekableByteChannel {
    private final Qcow2Image image;
    private long position;
    private boolean open = true;

    Qcow2Channel(Qcow2Image image) {
        this.image = image;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        ensureOpen();
        long size = image.size();
        if (position >= size) {
            return -1;
        }
        int n = (int) Math.min(dst.remaining(), size - position);
        ByteBuffer part = dst.duplicate();
        part.limit(part.position() + n);
        image.read(position, part);
        dst.position(dst.position() + n);
        position += n;
        return n;
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        ensureOpen();
        if (image.isReadOnly()) {
            throw new NonWritableChannelException();
        }
        int n = src.remaining();
        if (position + n > image.size()) {
            throw new IOException("Write past the end of the virtual disk (size " + image.size() + "); resize first");
        }
        image.write(position, src);
        position += n;
        return n;
    }

    @Override
    public long position() throws IOException {
        ensureOpen();
        return position;
    }

    @Override
    public SeekableByteChannel position(long newPosition) throws IOException {
        ensureOpen();
        if (newPosition < 0) {
            throw new IllegalArgumentException("negative position");
        }
        position = newPosition;
        return this;
    }

    @Override
    public long size() throws IOException {
        ensureOpen();
        return image.size();
    }

    @Override
    public SeekableByteChannel truncate(long size) throws IOException {
        ensureOpen();
        if (size < image.size()) {
            image.resize(size);
        }
        position = Math.min(position, size);
        return this;
    }

    @Override
    public boolean isOpen() {
        return open;
    }

    @Override
    public void close() {
        open = false;
    }

    private void ensureOpen() throws IOException {
        if (!open) {
            throw new ClosedChannelException();
        }
    }
}
