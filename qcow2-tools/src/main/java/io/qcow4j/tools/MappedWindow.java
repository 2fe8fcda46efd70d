package io.qcow4j.tools;

import io.qcow4j.core.api.FileImage;
import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.StandardOpenOption;

/**
 * An image's file (raw or qcow2) mapped read-only: convert maps a source's batch with
 * {@link #mapOwn} and writes it from the page cache's pages; {@link #slice} sees the file
 * through one mapping of up to {@link #WINDOW} bytes at a time, unmapped as soon as the
 * next one is made (mapped pages count as the process's memory). Only for a regular file,
 * and only within its length at the time of mapping; anything else returns null and the
 * caller reads as usual.
 */
final class MappedWindow implements AutoCloseable {
    static final int WINDOW = 4 << 20;

    private final FileChannel channel;
    private MappedByteBuffer window;
    private long windowStart;
    private long windowEnd;

    private MappedWindow(FileChannel channel) {
        this.channel = channel;
    }

    /**
     * The file of {@code image} for {@link #mapOwn}, whose bytes a caller may read in place
     * where {@link FileImage#hostRun} says (a raw image's guest offsets are file offsets),
     * when it is a regular file; else null.
     */
    static MappedWindow ofFile(FileImage image) {
        if (image.path() == null || !Files.isRegularFile(image.path()) || UNMAP == null) {
            return null;
        }
        try {
            return new MappedWindow(FileChannel.open(image.path(), StandardOpenOption.READ));
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /**
     * The bytes {@code [offset, offset + n)} ({@code n <= WINDOW}) as a buffer over the
     * mapping, or null when they are not all inside the file now (past its end a raw image
     * reads zeros, which only the ordinary read gives).
     */
    ByteBuffer slice(long offset, int n) throws IOException {
        if (offset < windowStart || offset + n > windowEnd) {
            unmap();
            long end = Math.min(channel.size(), offset + WINDOW);
            if (offset + n > end) {
                return null;
            }
            window = channel.map(FileChannel.MapMode.READ_ONLY, offset, end - offset);
            windowStart = offset;
            windowEnd = end;
        }
        return window.slice((int) (offset - windowStart), n);
    }

    /**
     * A mapping of its own of {@code [offset, offset + n)}, which outlives the window (convert
     * hands it to the writing thread, which {@linkplain #release releases} it), or null when
     * the bytes are not all inside the file now.
     */
    ByteBuffer mapOwn(long offset, int n) throws IOException {
        if (offset + n > channel.size()) {
            return null;
        }
        return channel.map(FileChannel.MapMode.READ_ONLY, offset, n);
    }

    /** The file's length now (a file cut shorter since its bytes were mapped faults on them). */
    long fileSize() throws IOException {
        return channel.size();
    }

    /** Unmaps a mapping of {@link #mapOwn} now; nothing may use it afterwards. */
    static void release(ByteBuffer mapping) {
        try {
            UNMAP.invoke(UNSAFE, mapping);
        } catch (ReflectiveOperationException | RuntimeException e) {
            // left to the garbage collector
        }
    }

    private void unmap() {
        if (window != null) {
            MappedByteBuffer w = window;
            window = null;
            windowStart = 0;
            windowEnd = 0;
            release(w);
        }
    }

    @Override
    public void close() {
        unmap();
        try {
            channel.close();
        } catch (IOException ignored) {
            // read-only
        }
    }

    // sun.misc.Unsafe.invokeCleaner: the JDK's one way to unmap now rather than at some GC
    private static final Object UNSAFE;
    private static final Method UNMAP;

    static {
        Object unsafe = null;
        Method unmap = null;
        try {
            Class<?> c = Class.forName("sun.misc.Unsafe");
            Field f = c.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            unsafe = f.get(null);
            unmap = c.getMethod("invokeCleaner", ByteBuffer.class);
        } catch (ReflectiveOperationException | RuntimeException e) {
            unsafe = null;
            unmap = null;
        }
        UNSAFE = unsafe;
        UNMAP = unmap;
    }
}
