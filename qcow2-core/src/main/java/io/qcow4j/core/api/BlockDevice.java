package io.qcow4j.core.api;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/** A virtual disk that can be read: a qcow2 image, a raw file, a snapshot view. */
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
     * Status of the run starting at {@code offset}: the returned status has the same
     * offset and a length between 1 and {@code length}, over which it holds.
     */
    BlockStatus blockStatus(long offset, long length) throws IOException;

    @Override
    void close() throws IOException;
}
