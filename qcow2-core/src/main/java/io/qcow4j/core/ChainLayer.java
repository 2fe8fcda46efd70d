package io.qcow4j.core;

import java.io.IOException;
import java.nio.ByteBuffer;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.core.engine.Qcow2Engine;

/**
 * An image as one layer of a backing chain, for the jobs that move data between layers
 * (rebase, stream, commit, restore): the backing file it names and reads through, what it
 * maps itself, and writes that no bitmap records, because the guest's view through the
 * chain does not change. Each call holds the image's lock, as the image's own methods do.
 */
public final class ChainLayer {
    private final Qcow2Image image;
    private final Qcow2Engine engine;

    ChainLayer(Qcow2Image image, Qcow2Engine engine) {
        this.image = image;
        this.engine = engine;
    }

    /** Backing file name as recorded in the image, or null. */
    public String backingFile() {
        synchronized (image) {
            return engine.backingLink().file();
        }
    }

    /** Backing format from the header extension, or null. */
    public String backingFormat() {
        synchronized (image) {
            return engine.backingLink().format();
        }
    }

    /** The opened backing device, or null. */
    public BlockDevice backing() {
        synchronized (image) {
            return engine.backingLink().device();
        }
    }

    /**
     * Records a new backing file (null: none) in the header and reads through
     * {@code device} from now on; the caller made sure the guest's view stays right
     * (rebase, stream) or wants it changed (rebase -u).
     */
    public void setBackingFile(String name, String format, BlockDevice device) throws IOException {
        synchronized (image) {
            engine.backingLink().set(name, format, device);
        }
    }

    /** Reads through {@code device} as the backing file (no header change): for reopening layers. */
    public void attachBacking(BlockDevice device) {
        synchronized (image) {
            engine.backingLink().attach(device);
        }
    }

    /** Stops using the backing device without closing it, and returns it (the caller owns it now). */
    public BlockDevice detachBacking() {
        synchronized (image) {
            return engine.backingLink().detach();
        }
    }

    /**
     * What this layer alone maps at {@code offset} (QEMU's bdrv_is_allocated): allocated
     * for data, zero or compressed clusters, for a run of clusters of one kind within one
     * L2 table; depth 0, no host offset. The backing file is not consulted.
     */
    public BlockStatus ownStatus(long offset, long length) throws IOException {
        synchronized (image) {
            return engine.ownStatus(offset, length);
        }
    }

    /** A write that no bitmap records (stream copies data that does not change the guest's view). */
    public void writeUntracked(long offset, ByteBuffer src) throws IOException {
        synchronized (image) {
            engine.writeUntracked(offset, src);
        }
    }

    /**
     * {@link Qcow2Image#writeZeroes} that no bitmap records: for the new range of a grown
     * disk, which must read as zeros rather than as the longer backing file's data.
     */
    public void writeZeroesUntracked(long offset, long length) throws IOException {
        synchronized (image) {
            engine.writeZeroesUntracked(offset, length);
        }
    }

    /**
     * Empties this layer, as qemu-img commit does after committing: every cluster becomes
     * unallocated, so the backing file shows through. The guest's view through the chain
     * is unchanged by that, so no bitmap records it.
     */
    public void makeEmpty() throws IOException {
        synchronized (image) {
            engine.backingLink().makeEmpty();
        }
    }
}
