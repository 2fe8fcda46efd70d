package io.qcow4j.bitmaps;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;

import io.qcow4j.core.ImageFiles;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.RawImage;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;

/**
 * Block jobs on a chain: commit (data down into a lower layer, whose enabled bitmaps
 * record every write), stream (backing data up into the top, dirtying nothing, since the
 * guest's view does not change) and rebase (whose copy the top's bitmaps record, as
 * qemu-img's does).
 */
public final class Jobs {
    /** Copies in chunks of this size at most. */
    private static final int CHUNK = 1 << 20;

    /** Receives a job's progress: {@code done} of {@code total} bytes (total may be revised). */
    public interface ProgressListener {
        void progress(long done, long total);
    }

    private final Chain chain;
    private ProgressListener listener = (done, total) -> { };

    Jobs(Chain chain) {
        this.chain = chain;
    }

    /**
     * Reports the progress of the jobs run through this object: commit counts the bytes it
     * copies out of those to copy (as QEMU's commit job does), stream and rebase the
     * offset they reached in the disk.
     */
    public Jobs onProgress(ProgressListener progress) {
        this.listener = java.util.Objects.requireNonNull(progress);
        return this;
    }

    private void progress(long done, long total) {
        listener.progress(done, total);
    }

    /** What to commit where. */
    public record CommitOptions(int baseDepth, boolean emptyTop, boolean mergeBitmaps) {
        /** Top into its backing file, emptying the top afterwards (qemu-img commit's default). */
        public static CommitOptions defaults() {
            return new CommitOptions(1, true, false);
        }
    }

    /**
     * A commit refused because its base is smaller than the top and cannot grow (QEMU's
     * commit job fails with ENOTSUP there). Thrown before anything is written.
     */
    public static final class BaseCannotGrowException extends IOException {
        BaseCannotGrowException(String message) {
            super(message);
        }
    }

    /**
     * Writes everything the layers above {@code baseDepth} hold into that layer, through
     * its normal write path, in whole granules of the base's clusters as QEMU's commit
     * copies them ({@link CommitCopy}): its enabled bitmaps record the ranges written; its
     * disabled ones stay untouched. A base smaller than the top first grows to the top's
     * size, as QEMU's does (its bitmaps follow; the growth itself dirties nothing), or the
     * commit is refused with {@link BaseCannotGrowException} before anything is written; a
     * larger base keeps its size and its data past the top's end. Where a layer between
     * the top and the base is shorter than the top, the top reads zeros, and so will the
     * base: they are written as zeros. The base may be a raw image (no bitmaps then).
     * With {@code mergeBitmaps}, the top's bitmaps are merged into same-named bitmaps of
     * the base (created when missing). The top keeps its own bitmaps.
     */
    public void commit(CommitOptions options) throws IOException {
        int baseDepth = options.baseDepth();
        if (baseDepth < 1 || baseDepth >= chain.depth()) {
            throw new IllegalArgumentException("no layer at depth " + baseDepth + " below the top");
        }
        Qcow2Image top = chain.top();
        BlockDevice base = chain.layers().get(baseDepth) instanceof RawImage
                ? chain.reopenRaw(baseDepth) : chain.reopen(baseDepth, true);
        if (options.mergeBitmaps() && !(base instanceof Qcow2Image)) {
            throw new IllegalArgumentException("a " + base.formatName() + " image has no bitmaps to merge into");
        }
        long size = top.size();
        CommitCopy copy = new CommitCopy(top, base, baseDepth);
        copy.grow();
        if (base instanceof Qcow2Image q) {
            warnIfNothingRecords(top, q, options.mergeBitmaps());
        }
        long total = copy.dirtyBytes();
        progress(0, total);
        copy.run(this::progress, total);
        progress(total, total);
        if (base instanceof Qcow2Image q) {
            if (options.mergeBitmaps()) {
                mergeBitmapsDown(top, q);
            }
            q.flush();
        } else {
            ((RawImage) base).flush();
        }
        if (base.size() < size) {
            // never empty a top whose every byte did not reach the base
            throw new IOException("commit into '" + base.path() + "': the base is smaller than the top");
        }
        if (baseDepth > 1) {
            // the layers in between are committed too: the top now reads straight from the
            // base, whose data equals theirs (QEMU drops the intermediate images likewise)
            Path topDir = top.path().toAbsolutePath().getParent();
            String name = topDir.relativize(base.path().toAbsolutePath()).toString();
            BlockDevice mid = top.chain().detachBacking();
            base = chain.layers().get(baseDepth);
            ((Qcow2Image) chain.layers().get(baseDepth - 1)).chain().detachBacking();
            top.chain().setBackingFile(name, base.formatName(), base);
            chain.removeLayers(1, baseDepth - 1);
            mid.close();
        }
        if (options.emptyTop()) {
            top.chain().makeEmpty();
        }
    }

    /**
     * Someone tracks changes (the base or the top has bitmaps), yet after the commit no
     * enabled bitmap of the base holds what it wrote: its bitmaps are all disabled (the
     * wrong state for a commit, QEMU's gotcha) and no enabled bitmap of the top is merged
     * down. Incremental backups from the base's bitmaps would then miss those ranges.
     */
    private void warnIfNothingRecords(Qcow2Image top, Qcow2Image base, boolean mergeBitmaps) {
        List<DirtyBitmap> below = Bitmaps.of(base).list();
        List<DirtyBitmap> above = Bitmaps.of(top).list();
        if (below.isEmpty() && above.isEmpty()) {
            return;
        }
        boolean recording = below.stream().anyMatch(DirtyBitmap::isEnabled)
                || mergeBitmaps && above.stream().anyMatch(b -> b.isEnabled() && !b.isInconsistent());
        if (!recording) {
            chain.warn("commit into '" + base.path() + "': no enabled bitmap there records what it writes");
        }
    }

    private static void mergeBitmapsDown(Qcow2Image top, Qcow2Image base) throws IOException {
        Bitmaps from = Bitmaps.of(top);
        Bitmaps to = Bitmaps.of(base);
        for (DirtyBitmap b : from.list()) {
            if (b.isInconsistent()) {
                continue;
            }
            if (!to.contains(b.name())) {
                Bitmaps.AddOptions o = Bitmaps.AddOptions.defaults().withGranularity(b.granularity());
                to.add(b.name(), b.isEnabled() ? o : o.disabledBitmap());
            }
            to.merge(b.name(), b);
        }
    }

    /**
     * Copies into the top everything it reads from its backing chain, then drops the
     * backing link. Nothing the guest sees changes, so no bitmap is dirtied.
     */
    public void stream() throws IOException {
        Qcow2Image top = chain.top();
        if (chain.depth() < 2) {
            return;
        }
        long size = top.size();
        long off = 0;
        ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK); // read and written in place
        progress(0, size);
        while (off < size) {
            BlockStatus st = top.blockStatus(off, Math.min(size - off, CHUNK));
            if (st.depth() > 0 && st.allocated() && st.data()) {
                buf.clear().limit((int) st.length());
                top.read(st.offset(), buf);
                buf.flip();
                top.chain().writeUntracked(st.offset(), buf);
            }
            off += st.length();
            progress(off, size);
        }
        top.flush();
        BlockDevice old = top.chain().detachBacking();
        top.chain().setBackingFile(null, null, null);
        chain.removeLayers(1, chain.depth() - 1);
        old.close();
    }

    /** The depth of {@code device}'s file in the current chain (0: not in it), where qemu-img rebase compares less. */
    private int depthInChain(BlockDevice device) throws IOException {
        if (device == null || device.path() == null) {
            return 0;
        }
        Path real = device.path().toRealPath();
        for (int d = 1; d < chain.depth(); d++) {
            Path p = chain.layers().get(d).path();
            if (p != null && p.toRealPath().equals(real)) {
                return d;
            }
        }
        return 0;
    }

    /**
     * Points the top at a new backing file. Safe mode first copies into the top every
     * sector it does not hold itself where the old and new backing contents differ (so the
     * guest's view stays); as with qemu-img rebase, those are ordinary writes, which the
     * top's enabled bitmaps record. {@code unsafe} only rewrites the name (qemu-img rebase -u).
     */
    public void rebase(String backingName, String format, boolean unsafe) throws IOException {
        rebase(backingName, format, unsafe, false);
    }

    /**
     * {@link #rebase(String, String, boolean)}; {@code forceShare} opens the new backing file
     * without QEMU's image locks (qemu-img rebase -U), so an image in use can become the base.
     */
    public void rebase(String backingName, String format, boolean unsafe, boolean forceShare) throws IOException {
        Qcow2Image top = chain.top();
        BlockDevice next = null;
        if (backingName != null) {
            next = ImageFiles.openReadOnly(ImageFiles.resolve(top.path(), backingName), format, forceShare, chain.warnings());
        }
        try {
            if (!unsafe) {
                new RebaseCopy(top, next, depthInChain(next)).run(this::progress);
            }
            BlockDevice old = top.chain().detachBacking();
            top.chain().setBackingFile(backingName, next == null ? null : format != null ? format : next.formatName(), next);
            chain.removeLayers(1, chain.depth() - 1);
            if (next != null) {
                BlockDevice d = next;
                int depth = 1;
                while (d != null) {
                    chain.replaceAppend(depth++, d);
                    d = d instanceof Qcow2Image q ? q.chain().backing() : null;
                }
            }
            if (old != null) {
                old.close();
            }
        } catch (IOException | RuntimeException e) {
            if (next != null && top.chain().backing() != next) {
                next.close();
            }
            throw e;
        }
    }
}
