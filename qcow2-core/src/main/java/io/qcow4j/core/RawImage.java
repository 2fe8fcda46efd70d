package io.qcow4j.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** A raw disk image: a backing file, or the target of {@code convert -O raw}. */
public final class RawImage implements BlockDevice {
    private final Path path;
    private final FileChannel channel;
    private final boolean readOnly;
    private long size;

    private RawImage(Path path, FileChannel channel, boolean readOnly) throws IOException {
        this.path = path;
        this.channel = channel;
        this.readOnly = readOnly;
        this.size = channel.size();
    }

    public static RawImage open(Path path, boolean readOnly) throws IOException {
        FileChannel ch = readOnly
                ? FileChannel.open(path, StandardOpenOption.READ)
                : FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
        return new RawImage(path, ch, readOnly);
    }

    /** Creates (or truncates) a sparse raw file of {@code size} bytes. */
    public static RawImage create(Path path, long size) throws IOException {
        FileChannel ch = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE,
                StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING);
        RawImage img = new RawImage(path, ch, false);
        img.resize(size);
        return img;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public String formatName() {
        return "raw";
    }

    @Override
    public Path path() {
        return path;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        long pos = offset;
        while (dst.hasRemaining()) {
            int n = pos >= size ? -1 : channel.read(dst, pos);
            if (n < 0) {
                while (dst.hasRemaining()) {
                    dst.put((byte) 0);
                }
                return;
            }
            pos += n;
        }
    }

    public void write(long offset, ByteBuffer src) throws IOException {
        if (readOnly) {
            throw new IOException("Image is read-only");
        }
        long end = Math.addExact(offset, src.remaining());
        long pos = offset;
        while (src.hasRemaining()) {
            pos += channel.write(src, pos);
        }
        size = Math.max(size, end);
    }

    public void resize(long newSize) throws IOException {
        if (newSize < channel.size()) {
            channel.truncate(newSize);
        } else if (newSize > channel.size()) {
            // a one-byte write at the end makes a sparse file of the right length
            channel.write(ByteBuffer.allocate(1), newSize - 1);
        }
        size = newSize;
    }

    @Override
    public BlockStatus blockStatus(long offset, long length) {
        long len = Math.max(0, Math.min(length, size - offset));
        return new BlockStatus(offset, len, true, false, true, 0, offset, false);
    }

    public void flush() throws IOException {
        channel.force(false);
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
