package io.qcow4j.core.storage;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Storage through positional I/O only. Used for read-only inspection, where mapping
 * costs start-up time and buys nothing, as the data path of {@link MappedStorage} and
 * {@link ChannelMappedStorage}, and for a whole read-write image under
 * {@code -Dqcow4j.mapping=off} ({@link MappingSupport}).
 */
public class FileStorage implements Storage {
    private static final int ZERO_CHUNK = 1 << 20;
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(ZERO_CHUNK).asReadOnlyBuffer();

    protected final Path path;
    protected final FileChannel channel;
    protected final boolean readOnly;
    protected long length;
    private final ByteBuffer scratch = ByteBuffer.allocate(8);

    public FileStorage(Path path, boolean readOnly) throws IOException {
        this.path = path;
        this.readOnly = readOnly;
        this.channel = readOnly
                ? FileChannel.open(path, StandardOpenOption.READ)
                : FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
        this.length = channel.size();
    }

    public Path path() {
        return path;
    }

    public FileChannel channel() {
        return channel;
    }

    @Override
    public boolean isReadOnly() {
        return readOnly;
    }

    @Override
    public long length() {
        return length;
    }

    @Override
    public void reserve(long offset, long len) throws IOException {
        checkWritable();
        long end = Math.addExact(offset, len);
        long pos = offset;
        while (pos < end) {
            ByteBuffer z = ZEROS.duplicate();
            z.limit((int) Math.min(ZERO_CHUNK, end - pos));
            while (z.hasRemaining()) {
                pos += channel.write(z, pos);
            }
        }
        length = Math.max(length, end);
    }

    @Override
    public void extend(long newLength) throws IOException {
        checkWritable();
        if (newLength > length) {
            if (newLength > channel.size()) {
                try (java.io.RandomAccessFile raf = new java.io.RandomAccessFile(path.toFile(), "rw")) {
                    raf.setLength(newLength);
                }
            }
            length = newLength;
        }
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        long pos = offset;
        while (dst.hasRemaining()) {
            int n = pos >= length ? -1 : readSome(dst, pos);
            if (n < 0) {
                while (dst.hasRemaining()) {
                    dst.put((byte) 0);
                }
                return;
            }
            pos += n;
        }
    }

    private int readSome(ByteBuffer dst, long pos) throws IOException {
        // never read bytes of the file past the image end (mapping padding, stale tail)
        long avail = length - pos;
        if (dst.remaining() <= avail) {
            return channel.read(dst, pos);
        }
        int oldLimit = dst.limit();
        dst.limit(dst.position() + (int) avail);
        try {
            return channel.read(dst, pos);
        } finally {
            dst.limit(oldLimit);
        }
    }

    @Override
    public void write(long offset, ByteBuffer src) throws IOException {
        checkWritable();
        long end = Math.addExact(offset, src.remaining());
        long pos = offset;
        while (src.hasRemaining()) {
            pos += channel.write(src, pos);
        }
        length = Math.max(length, end);
    }

    @Override
    public long readLong(long offset) throws IOException {
        scratch.clear();
        read(offset, scratch);
        return scratch.getLong(0);
    }

    @Override
    public int readInt(long offset) throws IOException {
        scratch.clear().limit(4);
        read(offset, scratch);
        return scratch.getInt(0);
    }

    @Override
    public void writeLong(long offset, long value) throws IOException {
        scratch.clear();
        scratch.putLong(0, value);
        write(offset, scratch);
    }

    @Override
    public void writeInt(long offset, int value) throws IOException {
        scratch.clear().limit(4);
        scratch.putInt(0, value);
        write(offset, scratch);
    }

    @Override
    public void flush() throws IOException {
        if (!readOnly) {
            channel.force(false);
        }
    }

    @Override
    public void truncate(long newLength) throws IOException {
        checkWritable();
        if (newLength < channel.size()) {
            channel.truncate(newLength);
        }
        length = newLength;
    }

    protected void checkWritable() throws IOException {
        if (readOnly) {
            throw new IOException("Image is read-only");
        }
    }

    @Override
    public void close() throws IOException {
        try {
            if (!readOnly && channel.size() > length) {
                channel.truncate(length);
            }
        } finally {
            channel.close();
        }
    }
}
