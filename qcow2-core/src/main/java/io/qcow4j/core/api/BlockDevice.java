package io.qcow4j.core.api;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * A virtual disk: a qcow2 image, a raw file, a snapshot view, an NBD export. Every device
 * reads; a writable one ({@link #isReadOnly()} false) also writes, and says what its zero
 * writes and discards do ({@link #hasNativeZeroes()}, {@link #canDiscard()}), so callers
 * choose a path without asking what the device is. An image kept in a file of its own
 * also answers {@link FileImage}'s questions (its clusters, where its bytes lie).
 */
public interface BlockDevice extends Closeable {

    /** Virtual size in bytes. */
    long size();

    /** Format name as qemu-img prints it: "qcow2" or "raw". */
    String formatName();

    /** The file behind the device, or null for a view. */
    Path path();

    /**
     * Fills {@code dst.remaining()} bytes from {@code offset}; bytes past the end of the
     * device read as zeros.
     */
    void read(long offset, ByteBuffer dst) throws IOException;

    /**
     * {@link #read} for a server whose connections read at once: the default is {@link #read};
     * a read-only qcow2 image holds its lock only for the cluster lookup, so such reads run
     * in parallel.
     */
    default void readShared(long offset, ByteBuffer dst) throws IOException {
        read(offset, dst);
    }

    /**
     * Status of the run starting at {@code offset}: the returned status has the same
     * offset and a length between 1 and {@code length}, over which it holds.
     */
    BlockStatus blockStatus(long offset, long length) throws IOException;

    /** Whether writes are refused: a read-only open, a snapshot view, a read-only export. */
    default boolean isReadOnly() {
        return true;
    }

    /** Writes {@code src} (position to limit) at {@code offset}; a qcow2 image's enabled bitmaps record it. */
    default void write(long offset, ByteBuffer src) throws IOException {
        throw new IOException("The " + formatName() + " device is read-only");
    }

    /**
     * Writes whole clusters compressed (qcow2; {@code offset} cluster-aligned, {@code src}
     * whole clusters or ending at the disk's end; the clusters are compressed on every core,
     * one that does not shrink is written plain, as QEMU writes it). The default refuses, as
     * qemu-img does for a format without compression.
     */
    default void writeCompressed(long offset, ByteBuffer src) throws IOException {
        throw new IOException("Compression not supported for this file format");
    }

    /**
     * Whether {@link #writeZeroes} records zeros without writing them (qcow2 zero clusters);
     * false: it writes zero bytes, as the default does.
     */
    default boolean hasNativeZeroes() {
        return false;
    }

    /** Makes {@code [offset, offset + length)} read as zeros; the default writes zero bytes, 1 MiB at a time. */
    default void writeZeroes(long offset, long length) throws IOException {
        ByteBuffer zeros = ByteBuffer.allocate((int) Math.min(1 << 20, Math.max(length, 1)));
        for (long done = 0; done < length; ) {
            int n = (int) Math.min(zeros.capacity(), length - done);
            zeros.clear().limit(n);
            write(offset + done, zeros);
            done += n;
        }
    }

    /** Whether {@link #discard} frees space (qcow2: whole clusters, reading as zeros afterwards). */
    default boolean canDiscard() {
        return false;
    }

    /** Frees what the device can of the range; the default (no discard) does nothing. */
    default void discard(long offset, long length) throws IOException {
    }

    /** Makes what was written durable; the default (nothing buffered) does nothing. */
    default void flush() throws IOException {
    }

    @Override
    void close() throws IOException;
}
