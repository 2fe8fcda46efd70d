package io.qcow4j.bitmaps;

import java.io.IOException;
import java.nio.ByteBuffer;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.Qcow2Info;
import io.qcow4j.core.RawImage;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;

/**
 * The copy of a commit, made as QEMU's commit job (a mirror of the top into the base)
 * makes it, so the base ends with the same allocation and its bitmaps record the same
 * ranges. The disk is cut in granules of the base's cluster size, at least 4 KiB and at
 * most 64 KiB (64 KiB for a raw base). A granule is dirty when a layer above the base holds any of it, or reads
 * zeros there past the end of a shorter layer above the base (QEMU counts those as
 * allocated in that layer). Each dirty granule is written whole into the base: as a zero
 * write where the chain reads zeros (not data) over whole granules that also cover whole
 * clusters of the base, otherwise as the data the top reads, the base's own included.
 */
final class CommitCopy {
    private static final int CHUNK = 1 << 20;

    /** Called with each run of dirty granules, in order. */
    private interface RunVisitor {
        void visit(long start, long end) throws IOException;
    }

    private final Qcow2Image top;
    private final BlockDevice base;
    private final int baseDepth;
    private final long size;
    private final int granule;
    /** The base's cluster size; 1 for a raw base, whose zero writes need no alignment. */
    private final int baseCluster;
    /** Direct: positional reads and writes use it in place (a heap buffer is copied each way). */
    private final ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK);

    /** {@code base}: the layer at {@code baseDepth}, open read-write, a qcow2 or a raw image. */
    CommitCopy(Qcow2Image top, BlockDevice base, int baseDepth) {
        if (!(base instanceof Qcow2Image) && !(base instanceof RawImage)) {
            throw new IllegalArgumentException("cannot commit into a " + base.formatName() + " image");
        }
        this.top = top;
        this.base = base;
        this.baseDepth = baseDepth;
        this.size = top.size();
        // QEMU's mirror: the target's cluster size within 4 KiB..64 KiB, 64 KiB for a raw file
        this.baseCluster = base instanceof Qcow2Image q ? q.info().clusterSize() : 1;
        this.granule = base instanceof Qcow2Image q ? Math.min(65536, Math.max(4096, q.info().clusterSize())) : 65536;
    }

    /**
     * Grows the base to the top's size, as QEMU's commit does before copying. Where a qcow2
     * base's own backing file is longer than the base, the new range must read as zeros,
     * not as that file's data: zero clusters, which a v2 image has not, so QEMU refuses it;
     * QEMU refuses an inconsistent bitmap, which cannot follow the new size, too.
     */
    void grow() throws IOException {
        long old = base.size();
        if (old >= size) {
            return;
        }
        if (base instanceof RawImage raw) {
            raw.resize(size); // a sparse extension, reading zeros
            return;
        }
        Qcow2Image base = (Qcow2Image) this.base;
        BlockDevice below = base.chain().backing();
        boolean showsBacking = below != null && below.size() > old;
        Qcow2Info info = base.info();
        if (showsBacking && info.version() < 3) {
            throw new Jobs.BaseCannotGrowException("cannot grow '" + base.path() + "' to " + size
                    + " bytes: its backing file is longer, and a v2 image cannot zero the new range");
        }
        try {
            base.bitmaps().checkResizable();
        } catch (IOException e) {
            throw new Jobs.BaseCannotGrowException("cannot grow '" + base.path() + "' to " + size + " bytes: " + e.getMessage());
        }
        base.resize(size);
        if (showsBacking) {
            // as QEMU: zero data up to the next (sub)cluster boundary, zero clusters from
            // there on; no-ops where the resize zeroed the range already
            int unit = info.extendedL2() ? info.clusterSize() / 32 : info.clusterSize();
            long aligned = Math.min(size, (old + unit - 1) / unit * unit);
            if (aligned > old) {
                base.chain().writeUntracked(old, ByteBuffer.allocate((int) (aligned - old)));
            }
            if (size > aligned) {
                base.chain().writeZeroesUntracked(aligned, size - aligned);
            }
        }
    }

    /** What the copy writes: the bytes of the dirty granules (metadata only). */
    long dirtyBytes() throws IOException {
        long[] total = {0};
        forEachDirtyRun((start, end) -> total[0] += end - start);
        return total[0];
    }

    /** Copies every dirty granule; {@code progress} receives the bytes written so far. */
    void run(Jobs.ProgressListener progress, long total) throws IOException {
        long[] done = {0};
        forEachDirtyRun((start, end) -> {
            copyRun(start, end);
            done[0] += end - start;
            progress.progress(done[0], total);
        });
    }

    /**
     * A run of the top is the commit's to copy: a layer above the base holds it, or a
     * layer above the base reads zeros there past its shorter backing file's end.
     */
    private boolean aboveBase(BlockStatus st) {
        return st.allocated() ? st.depth() < baseDepth : st.depth() + 1 < baseDepth;
    }

    private void forEachDirtyRun(RunVisitor visitor) throws IOException {
        long runStart = -1;
        long runEnd = -1;
        long off = 0;
        while (off < size) {
            BlockStatus st = top.blockStatus(off, size - off);
            long end = st.offset() + st.length();
            if (aboveBase(st)) {
                long gStart = st.offset() / granule * granule;
                long gEnd = Math.min(size, (end + granule - 1) / granule * granule);
                if (runStart >= 0 && gStart > runEnd) {
                    visitor.visit(runStart, runEnd);
                    runStart = -1;
                }
                if (runStart < 0) {
                    runStart = gStart;
                }
                runEnd = Math.max(runEnd, gEnd);
            }
            off = end;
        }
        if (runStart >= 0) {
            visitor.visit(runStart, runEnd);
        }
    }

    /** One run of dirty granules, piece by piece as the chain's block status cuts it ({@link QemuRuns}). */
    private void copyRun(long start, long end) throws IOException {
        long pos = start;
        while (pos < end) {
            BlockStatus st = top.blockStatus(pos, end - pos);
            long len = QemuRuns.length(top, st, 0, st.depth());
            long n = len - len % granule;
            boolean zero = false;
            if (n < granule) {
                // a piece shorter than a granule: the whole granule is copied as data
                n = granule;
            } else if (st.zero() && !st.data() && pos % baseCluster == 0 && (pos + n) % baseCluster == 0) {
                zero = true;
            }
            n = Math.min(n, end - pos);
            if (zero) {
                writeZeroes(pos, n);
            } else {
                copyData(pos, n);
            }
            pos += n;
        }
    }

    private void copyData(long pos, long n) throws IOException {
        for (long off = pos; off < pos + n; off += CHUNK) {
            int len = (int) Math.min(CHUNK, pos + n - off);
            buf.clear().limit(len);
            top.read(off, buf);
            buf.flip();
            base.write(off, buf);
        }
    }

    /**
     * Zeros a range of the base. A raw file gets zero bytes only where it does not read
     * zeros already, so its holes stay holes (QEMU punches new ones, which Java cannot).
     */
    private void writeZeroes(long pos, long n) throws IOException {
        if (base.hasNativeZeroes()) {
            base.writeZeroes(pos, n);
            return;
        }
        BlockDevice raw = base;
        byte[] zeros = new byte[CHUNK];
        for (long off = pos; off < pos + n; off += CHUNK) {
            int len = (int) Math.min(CHUNK, pos + n - off);
            buf.clear().limit(len);
            raw.read(off, buf);
            if (buf.flip().mismatch(ByteBuffer.wrap(zeros, 0, len)) >= 0) {
                raw.write(off, ByteBuffer.wrap(zeros, 0, len));
            }
        }
    }
}
