package io.qcow4j.tools.dump;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import io.qcow4j.core.format.HostOffsets;

/**
 * The image file, read by position and never written. Every read is checked against the
 * file's length first and is at most {@link #MAX_READ} bytes, so an offset or size taken
 * from a hostile file can neither allocate much nor read past the end.
 */
public final class ImageFile implements Closeable {
    /** Largest single read: a 2 MiB cluster, or one chunk of a table. */
    public static final int MAX_READ = 2 << 20;

    private final FileChannel channel;
    private final long length;

    private ImageFile(FileChannel channel) throws IOException {
        this.channel = channel;
        this.length = channel.size();
    }

    public static ImageFile open(Path path) throws IOException {
        return new ImageFile(FileChannel.open(path, StandardOpenOption.READ));
    }

    public long length() {
        return length;
    }

    /** True when [offset, offset + size) lies inside the file. */
    public boolean contains(long offset, long size) {
        return HostOffsets.fits(offset, size, length);
    }

    /** Fails unless [offset, offset + size) lies inside the file. */
    public void checkRange(String what, long offset, long size) throws DumpException {
        if (!contains(offset, size)) {
            throw new DumpException(what + " at 0x" + Long.toHexString(offset) + " (" + Long.toUnsignedString(size)
                    + " bytes) lies outside the file (" + length + " bytes)");
        }
    }

    /** {@code size} bytes at {@code offset}, big-endian; {@code what} names the structure in errors. */
    public ByteBuffer read(String what, long offset, int size) throws DumpException, IOException {
        if (size > MAX_READ) {
            throw new IllegalArgumentException("read of " + size + " bytes");
        }
        checkRange(what, offset, size);
        ByteBuffer b = ByteBuffer.allocate(size);
        long pos = offset;
        while (b.hasRemaining()) {
            int n = channel.read(b, pos);
            if (n < 0) {
                throw new EOFException(what + ": the file ended at " + pos + " while reading it");
            }
            pos += n;
        }
        return b.flip();
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
