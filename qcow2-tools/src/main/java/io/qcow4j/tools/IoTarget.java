package io.qcow4j.tools;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.BlockDevice;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The write side of an opened qcow2 or raw image, for qemu-io's commands. A raw file
 * has no zero flag or discard in the engine: both write zeros there, which reads back
 * the same as qemu's hole punching.
 */
final class IoTarget {
    private final BlockDevice dev;
    private final boolean readOnly;

    IoTarget(BlockDevice dev, boolean readOnly) {
        this.dev = dev;
        this.readOnly = readOnly;
    }

    BlockDevice device() {
        return dev;
    }

    boolean readOnly() {
        return readOnly;
    }

    long size() {
        return dev.size();
    }

    void read(long offset, ByteBuffer dst) throws IOException {
        dev.read(offset, dst);
    }

    void write(long offset, ByteBuffer src) throws IOException {
        dev.write(offset, src);
    }

    void writeZeroes(long offset, long length) throws IOException {
        dev.writeZeroes(offset, length);
    }

    void discard(long offset, long length) throws IOException {
        if (dev.canDiscard()) {
            dev.discard(offset, length);
        } else {
            dev.writeZeroes(offset, length);
        }
    }

    /** Compressed write; false when the image cannot compress (raw). */
    boolean writeCompressed(long offset, ByteBuffer src) throws IOException {
        if (dev instanceof Qcow2Image img) {
            img.writeCompressed(offset, src);
            return true;
        }
        return false;
    }

    /** The cluster size compressed writes must be aligned to, or 0 (raw). */
    int clusterSize() {
        return dev instanceof Qcow2Image img ? img.info().clusterSize() : 0;
    }

    void flush() throws IOException {
        dev.flush();
    }
}
