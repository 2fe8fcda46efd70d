package io.qcow4j.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.core.api.FileImage;
import io.qcow4j.core.storage.ImageLock;

/** A raw disk image: a backing file, or the target of {@code convert -O raw}. */
public final class RawImage implements FileImage {
    private final Path path;
    private final FileChannel channel;
    private final boolean readOnly;
    private final ImageLock lock;
    private long size;

    private RawImage(Path path, FileChannel channel, boolean readOnly, ImageLock lock) throws IOException {
        this.path = path;
        this.channel = channel;
        this.readOnly = readOnly;
        this.lock = lock;
        this.size = channel.size();
    }

    /** Opens a raw image, taking QEMU's locks for it. */
    public static RawImage open(Path path, boolean readOnly) throws IOException {
        return open(path, readOnly, false, path);
    }

    /** Opens a raw image; {@code forceShare} (read-only only) takes no locks, like qemu-img -U. */
    public static RawImage open(Path path, boolean readOnly, boolean forceShare) throws IOException {
        return open(path, readOnly, forceShare, path);
    }

    static RawImage open(Path path, boolean readOnly, boolean forceShare, Path name) throws IOException {
        if (forceShare && !readOnly) {
            throw new IllegalArgumentException("force-share=on can only be used with read-only images");
        }
        ImageLock lock = forceShare ? null : ImageLock.raw(name, readOnly);
        try {
            FileChannel ch = readOnly
                    ? FileChannel.open(path, StandardOpenOption.READ)
                    : FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
            return new RawImage(path, ch, readOnly, lock);
        } catch (IOException | RuntimeException | Error e) {
            if (lock != null) {
                lock.close();
            }
            throw e;
        }
    }

    /**
     * Creates (or empties) a sparse raw file of {@code size} bytes. An existing file is
     * emptied only once QEMU's locks show nobody else uses it.
     */
    public static RawImage create(Path path, long size) throws IOException {
        FileChannel ch = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE,
                StandardOpenOption.CREATE);
        ImageLock lock = null;
        try {
            lock = ImageLock.create(path);
            ch.truncate(0);
            lock.close();
            // from here on held as an open raw image
            lock = ImageLock.raw(path, false);
            RawImage img = new RawImage(path, ch, false, lock);
            img.resize(size);
            return img;
        } catch (IOException | RuntimeException | Error e) {
            ch.close();
            if (lock != null) {
                lock.close();
            }
            throw e;
        }
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public boolean isReadOnly() {
        return readOnly;
    }

    @Override
    public String formatName() {
        return "raw";
    }

    /** None: a raw file has no clusters. */
    @Override
    public int clusterSize() {
        return 0;
    }

    /** None: raw has no versions. */
    @Override
    public int version() {
        return 0;
    }

    @Override
    public boolean isEncrypted() {
        return false;
    }

    @Override
    public String dataFile() {
        return null;
    }

    /** {@code offset}: the guest bytes are the file's bytes (past its end, the caller checks, they read as zeros). */
    @Override
    public long hostRun(long offset, long length) {
        return offset;
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

    @Override
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
        } else if (newSize > channel.size()
                && !io.qcow4j.core.storage.HostFile.truncate(path, newSize)) {
            // a one-byte write at the end makes a sparse file of the right length (with one block at the end)
            channel.write(ByteBuffer.allocate(1), newSize - 1);
        }
        size = newSize;
    }

    @Override
    public BlockStatus blockStatus(long offset, long length) {
        long len = Math.max(0, Math.min(length, size - offset));
        return new BlockStatus(offset, len, true, false, true, 0, offset, false);
    }

    @Override
    public void flush() throws IOException {
        channel.force(false);
    }

    @Override
    public void close() throws IOException {
        try {
            channel.close();
        } finally {
            if (lock != null) {
                lock.close();
            }
        }
    }
}
