package io.qcow4j.bitmaps;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;

/**
 * The copy of a safe rebase, made in the steps qemu-img rebase makes it, so the top ends
 * with the same allocation and its enabled bitmaps record the same sectors. The disk is
 * walked in pieces of at most 2 MiB, each cut where the top's own allocation changes and
 * at the old and the new backing file's ends. A piece the top maps itself is skipped
 * (a piece an earlier write's copy-on-write allocated too). Otherwise what the top reads
 * (through the old backing file) is compared with the new backing file in 512-byte
 * sectors, and each run of differing sectors is written into the top: as data, or past
 * the old backing file's end as a zero write. When the new backing file is a layer of the
 * current chain, only pieces that a layer above it maps are compared.
 */
final class RebaseCopy {
    private static final int PIECE = 2 << 20;
    private static final int SECTOR = 512;

    private final Qcow2Image top;
    private final BlockDevice next;
    private final int nextDepth;
    private final byte[] old = new byte[PIECE];
    private final byte[] now = new byte[PIECE];

    /** {@code nextDepth}: the new backing file's depth in the current chain, 0 when it is not in it. */
    RebaseCopy(Qcow2Image top, BlockDevice next, int nextDepth) {
        this.top = top;
        this.next = next;
        this.nextDepth = nextDepth;
    }

    void run(Jobs.ProgressListener progress) throws IOException {
        long size = top.size();
        BlockDevice oldBacking = top.chain().backing();
        long oldEnd = oldBacking == null ? 0 : oldBacking.size();
        long newEnd = next == null ? 0 : next.size();
        long off = 0;
        while (off < size) {
            BlockStatus own = top.chain().ownStatus(off, Math.min(PIECE, size - off));
            long n = own.length();
            if (!own.allocated()) {
                boolean compare = true;
                if (nextDepth > 0) {
                    BlockStatus st = top.blockStatus(off, n);
                    n = QemuRuns.length(top, st, 1, Math.min(st.depth(), nextDepth - 1));
                    // a layer above the new backing file maps it (or ends short of it, reading zeros)
                    compare = st.allocated() ? st.depth() < nextDepth : st.depth() + 1 < nextDepth;
                }
                if (compare) {
                    boolean pastOld = off >= oldEnd;
                    if (!pastOld) {
                        n = Math.min(n, oldEnd - off);
                    }
                    if (next != null && off < newEnd) {
                        n = Math.min(n, newEnd - off);
                    }
                    comparePiece(off, (int) n, pastOld, next != null && off < newEnd);
                }
            }
            off += n;
            progress.progress(off, size);
        }
    }

    private void comparePiece(long off, int n, boolean pastOld, boolean readNew) throws IOException {
        if (pastOld) {
            Arrays.fill(old, 0, n, (byte) 0);
        } else {
            top.read(off, ByteBuffer.wrap(old, 0, n));
        }
        if (readNew) {
            next.read(off, ByteBuffer.wrap(now, 0, n));
        } else {
            Arrays.fill(now, 0, n, (byte) 0);
        }
        int i = 0;
        while (i < n) {
            int mismatch = Arrays.mismatch(old, i, n, now, i, n);
            if (mismatch < 0) {
                return;
            }
            int start = i + mismatch / SECTOR * SECTOR;
            int stop = start;
            while (stop < n && !Arrays.equals(old, stop, Math.min(stop + SECTOR, n), now, stop, Math.min(stop + SECTOR, n))) {
                stop = Math.min(stop + SECTOR, n);
            }
            if (pastOld) {
                top.writeZeroes(off + start, stop - start);
            } else {
                top.write(off + start, ByteBuffer.wrap(old, start, stop - start));
            }
            i = stop;
        }
    }
}
