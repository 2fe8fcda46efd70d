package io.qcow4j.core.storage;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Metadata through the JDK's own {@link FileChannel#map} mapping; guest data through the
 * positional I/O of {@link FileStorage}: what {@link MappedStorage} does with Chronicle Bytes,
 * for a JVM that does not grant Chronicle its flags ({@link MappingSupport}). Same layout and
 * rules: 64 MiB chunks (plus 1 MiB of overlap, so no long straddles two) kept mapped until
 * close, the file grown to whole chunks as a hole and cut back to {@link #length()} on close,
 * nothing at or past {@link #length()} touched through the mapping. {@code flush()}
 * (fdatasync) writes the pages dirtied through the mapping too: they are the page cache.
 *
 * <p>Unmapping at close goes through {@code sun.misc.Unsafe.invokeCleaner}, which
 * jdk.unsupported opens to everyone (no flag needed); where it is missing the mappings go
 * when the garbage collector frees them.
 */
public final class ChannelMappedStorage extends FileStorage {
    private static final long CHUNK = 64L << 20;
    private static final long OVERLAP = 1L << 20;
    private static final MethodHandle UNMAP = unmapper();

    private MappedByteBuffer[] chunks = new MappedByteBuffer[4];
    private RandomAccessFile grower;
    private boolean closed;

    public ChannelMappedStorage(Path path) throws IOException {
        super(path, false);
    }

    /** The chunk holding {@code offset}, mapped on first use. */
    private MappedByteBuffer chunk(long offset) throws IOException {
        if (closed) {
            throw new IOException("Image is closed");
        }
        int index = (int) (offset / CHUNK);
        if (index >= chunks.length) {
            chunks = Arrays.copyOf(chunks, Math.max(index + 1, chunks.length * 2));
        }
        MappedByteBuffer buf = chunks[index];
        if (buf == null) {
            long start = index * CHUNK;
            // a mapping past the file's end faults on access: grow the file over the whole
            // chunk first (a hole: no space used, so it works on a full disk too); close()
            // cuts it back to the image's end. One descriptor for that, kept until close, as
            // Chronicle keeps its own: closing a descriptor of the file drops the process's
            // POSIX record locks (ImageLock's fallback where OFD locks are missing).
            long need = start + CHUNK + OVERLAP;
            if (channel.size() < need) {
                if (grower == null) {
                    grower = new RandomAccessFile(path.toFile(), "rw");
                }
                grower.setLength(need);
            }
            buf = channel.map(FileChannel.MapMode.READ_WRITE, start, CHUNK + OVERLAP);
            chunks[index] = buf;
        }
        return buf;
    }

    private static int at(long offset) {
        return (int) (offset % CHUNK);
    }

    @Override
    public long readLong(long offset) throws IOException {
        if (offset < 0 || offset + 8 > length) {
            return super.readLong(offset);
        }
        return chunk(offset).getLong(at(offset));
    }

    @Override
    public int readInt(long offset) throws IOException {
        if (offset < 0 || offset + 4 > length) {
            return super.readInt(offset);
        }
        return chunk(offset).getInt(at(offset));
    }

    @Override
    public void readLongs(long offset, long[] dst, int dstOff, int count) throws IOException {
        long end = offset + 8L * count;
        if (offset < 0 || end > length || offset / CHUNK != (end - 1) / CHUNK) {
            super.readLongs(offset, dst, dstOff, count);
            return;
        }
        ByteBuffer store = chunk(offset);
        int at = at(offset);
        for (int i = 0; i < count; i++) {
            dst[dstOff + i] = store.getLong(at + 8 * i);
        }
    }

    @Override
    public void writeLong(long offset, long value) throws IOException {
        checkWritable();
        if (offset < 0 || offset + 8 > length) {
            // beyond the reserved end: an ordinary write extends the file safely
            super.writeLong(offset, value);
            return;
        }
        chunk(offset).putLong(at(offset), value);
    }

    @Override
    public void writeLongs(long offset, long[] src, int srcOff, int count) throws IOException {
        checkWritable();
        long end = offset + 8L * count;
        if (offset < 0 || end > length || offset / CHUNK != (end - 1) / CHUNK) {
            super.writeLongs(offset, src, srcOff, count);
            return;
        }
        ByteBuffer store = chunk(offset);
        int at = at(offset);
        for (int i = 0; i < count; i++) {
            store.putLong(at + 8 * i, src[srcOff + i]);
        }
    }

    @Override
    public void writeInt(long offset, int value) throws IOException {
        checkWritable();
        if (offset < 0 || offset + 4 > length) {
            super.writeInt(offset, value);
            return;
        }
        chunk(offset).putInt(at(offset), value);
    }

    @Override
    public void close() throws IOException {
        closed = true;
        try {
            // unmapped before the file is cut: no mapping outlives the bytes behind it
            for (int i = 0; i < chunks.length; i++) {
                if (chunks[i] != null && UNMAP != null) {
                    try {
                        UNMAP.invokeExact((ByteBuffer) chunks[i]);
                    } catch (Throwable e) {
                        // left to the garbage collector
                    }
                }
                chunks[i] = null;
            }
        } finally {
            try {
                if (grower != null) {
                    grower.close();
                }
            } finally {
                super.close();
            }
        }
    }

    /** {@code Unsafe.invokeCleaner(ByteBuffer)} of the running JDK, or null. */
    private static MethodHandle unmapper() {
        try {
            Class<?> unsafeClass = Class.forName("sun.misc.Unsafe");
            Field f = unsafeClass.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            Object unsafe = f.get(null);
            return MethodHandles.lookup()
                    .findVirtual(unsafeClass, "invokeCleaner", MethodType.methodType(void.class, ByteBuffer.class))
                    .bindTo(unsafe);
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }
}
