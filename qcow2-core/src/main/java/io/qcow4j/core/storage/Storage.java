package io.qcow4j.core.storage;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The image file as the engine sees it. Metadata goes through the big-endian accessors
 * (backed by a memory mapping), guest data through positional reads and writes.
 *
 * <p>The storage tracks the image's true end ({@link #length()}), which the mapping's
 * padding never changes; {@link #close()} cuts the file there. Before the mapping touches
 * bytes past the end they must be {@link #reserve reserved}: an ordinary write that fails
 * with an IOException on a full disk, where a store to a mapping would crash the JVM.
 */
public interface Storage extends Closeable {

    boolean isReadOnly();

    /** True end of the image in bytes. */
    long length();

    /** Makes {@code [offset, offset+len)} real zero-filled bytes of the file and the image. */
    void reserve(long offset, long len) throws IOException;

    /** Positional read; bytes past the end read as zeros. */
    void read(long offset, ByteBuffer dst) throws IOException;

    /** Positional write; may extend the image. */
    void write(long offset, ByteBuffer src) throws IOException;

    long readLong(long offset) throws IOException;

    int readInt(long offset) throws IOException;

    void writeLong(long offset, long value) throws IOException;

    void writeInt(long offset, int value) throws IOException;

    /** Reads {@code count} big-endian longs into {@code dst[dstOff..]}. */
    default void readLongs(long offset, long[] dst, int dstOff, int count) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(count * 8);
        read(offset, buf);
        buf.flip();
        buf.asLongBuffer().get(dst, dstOff, count);
    }

    /** Writes {@code count} big-endian longs from {@code src[srcOff..]}, in order, in one request. */
    default void writeLongs(long offset, long[] src, int srcOff, int count) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(count * 8);
        buf.asLongBuffer().put(src, srcOff, count);
        write(offset, buf);
    }

    /** Grows the image to {@code newLength} as a hole (no data written, no space used). */
    void extend(long newLength) throws IOException;

    /** Makes everything written so far durable (fsync). */
    void flush() throws IOException;

    /** Sets the image's end; the file is cut there on close (or now, when shrinking). */
    void truncate(long newLength) throws IOException;

    @Override
    void close() throws IOException;
}
