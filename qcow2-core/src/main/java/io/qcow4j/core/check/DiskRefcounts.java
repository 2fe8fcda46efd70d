package io.qcow4j.core.check;

import java.io.IOException;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.format.RefcountBlock;

/**
 * The refcounts the image stores, read the way qemu reads them during a check: a cluster
 * past the refcount table or under a zero table entry has refcount 0; an unaligned
 * refcount block is a corruption event and an I/O error; a block past the end of the
 * file reads as zeros. Changes go through the engine's {@link RefcountManager}.
 */
final class DiskRefcounts {
    /** A refcount that cannot be read (qemu: "Can't get refcount for cluster N: ..."). */
    static final class Unreadable extends Exception {
        private static final long serialVersionUID = 1L;

        Unreadable(String strerror) {
            super(strerror, null, false, false);
        }
    }

    private final CheckRun run;
    private final long entriesPerBlock;
    /** The file offset of the window last read, -1 for none. */
    private long cachedWindow = -1;
    /**
     * The window of a block last read: the session's one direct buffer, a cluster or 256 KiB
     * if less (a block is a cluster, up to 2 MiB; the cluster numbers asked rise, so a
     * window is read once).
     */
    private final java.nio.ByteBuffer cached;

    /** Takes over the session's block buffer: an instance made earlier must not be used again. */
    DiskRefcounts(CheckRun run) {
        this.run = run;
        this.entriesPerBlock = RefcountBlock.entriesPerBlock(run.bits, run.refcountOrder);
        this.cached = run.refblockBuffer();
    }

    private RefcountManager manager() {
        return run.p.refcounts();
    }

    long get(long cluster) throws Unreadable {
        long rt = cluster / entriesPerBlock;
        RefcountManager m = manager();
        if (rt >= m.tableEntries()) {
            return 0;
        }
        long block = m.tableEntry(rt) & RefcountBlock.TABLE_OFFSET_MASK;
        if (block == 0) {
            return 0;
        }
        if (!run.aligned(block)) {
            run.signalCorruption("Refblock offset " + CheckRun.hexAlt(block) + " unaligned (reftable index: "
                    + CheckRun.hexAlt(rt) + ")");
            throw new Unreadable(CheckFailure.EIO);
        }
        if (!HostOffsets.fits(block, run.cs, CheckRun.MAX_LENGTH)) {
            // the whole block is out of reach (qemu reads it whole): EIO, as before windows
            throw new Unreadable(CheckFailure.EIO);
        }
        long index = cluster % entriesPerBlock;
        int word = RefcountBlock.wordOffset(index, run.refcountOrder);
        int size = cached.capacity();
        long window = block + (word & -size);
        if (window != cachedWindow) {
            cachedWindow = -1;
            try {
                cached.clear();
                run.read(window, cached);
            } catch (CheckFailure e) {
                throw new Unreadable(e.strerror());
            }
            cachedWindow = window;
        }
        return RefcountBlock.get(cached.getLong(word & (size - 1)), index, run.refcountOrder);
    }

    /** Sets a refcount whose block exists (qemu's in-place fix); false if the engine refused. */
    boolean set(long cluster, long value) {
        invalidate();
        try {
            manager().set(cluster, value);
            return true;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** Makes the raises durable before anything is lowered; false if the flush failed. */
    boolean flushQuietly() {
        try {
            run.storage.flush();
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    void invalidate() {
        cachedWindow = -1;
    }
}
