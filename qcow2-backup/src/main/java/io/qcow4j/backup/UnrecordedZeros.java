package io.qcow4j.backup;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;

/**
 * Changes a dirty bitmap cannot show: QEMU's {@code resize --shrink} and a later grow within
 * one backup interval drop the data past the shrink point (the regrown area reads zeros,
 * QEMU 5.0 on, and qcow4j's resize alike) while the bitmap, cut and regrown with the disk,
 * stays clean there. An incremental built from the bitmap alone would keep the parent's data.
 *
 * <p>What gives it away: the parent point holds data where the bitmap shows nothing changed,
 * yet the source's own allocation (qcow2 metadata, NBD base:allocation) says it reads zeros
 * now. Such ranges are added to the backup as zeros, which is what the disk reads there,
 * so adding one is never wrong. The cost is a walk of the parent point's allocation
 * (metadata of the set, no data read) and one allocation query per data run of it that the
 * bitmap does not cover. A change that leaves non-zero data behind without dirtying the
 * bitmap (a reverted internal snapshot, a rebase -u onto other data, a writer that keeps no
 * bitmaps) is not seen, nor is a shrink on a source that does not report the regrown area
 * as zeros (an NBD server without base:allocation, or reporting it as data): callers take a
 * full backup after a shrink or any such change; this is a safety net, not a guarantee.
 */
final class UnrecordedZeros {
    private UnrecordedZeros() {
    }

    /** Ranges of the parent point's data, outside {@code changed} (sorted), that the source reads as zeros. */
    static List<BackupSource.Range> find(SetStore dir, Manifest m, BackupRecord parent, BackupSource src,
                                         List<BackupSource.Range> changed) throws IOException {
        List<BackupSource.Range> out = new ArrayList<>();
        try (BlockDevice point = PointView.open(dir, m, parent)) {
            long limit = Math.min(point.size(), src.size());
            int ci = 0;
            long off = 0;
            while (off < limit) {
                BlockStatus st = point.blockStatus(off, limit - off);
                long end = Math.min(limit, off + st.length());
                if (st.length() <= 0) {
                    throw new IOException("the set's point '" + parent.pointName() + "' reported an empty run at " + off);
                }
                if (st.allocated() && !st.zero()) {
                    long p = off;
                    while (p < end) {
                        while (ci < changed.size() && changed.get(ci).end() <= p) {
                            ci++;
                        }
                        BackupSource.Range c = ci < changed.size() ? changed.get(ci) : null;
                        if (c != null && c.start() <= p) {
                            p = Math.min(end, c.end());
                            continue;
                        }
                        long stop = c == null ? end : Math.min(end, c.start());
                        zerosIn(src, p, stop, out);
                        p = stop;
                    }
                }
                off = end;
            }
        }
        return out;
    }

    private static void zerosIn(BackupSource src, long from, long to, List<BackupSource.Range> out) throws IOException {
        long p = from;
        while (p < to) {
            BackupSource.Allocation a = src.allocation(p, to - p);
            long len = Math.min(a.length(), to - p);
            if (len <= 0) {
                throw new IOException("the source reported an empty extent at " + p);
            }
            if (a.kind() != BackupSource.Kind.DATA) {
                add(out, p, len);
            }
            p += len;
        }
    }

    private static void add(List<BackupSource.Range> out, long start, long length) {
        BackupSource.Range last = out.isEmpty() ? null : out.get(out.size() - 1);
        if (last != null && last.end() == start) {
            out.set(out.size() - 1, new BackupSource.Range(last.start(), last.length() + length));
        } else {
            out.add(new BackupSource.Range(start, length));
        }
    }

    /** The sorted union of two sorted lists of ranges, adjacent and overlapping ranges merged. */
    static List<BackupSource.Range> union(List<BackupSource.Range> a, List<BackupSource.Range> b) {
        List<BackupSource.Range> all = new ArrayList<>(a);
        all.addAll(b);
        all.sort((x, y) -> Long.compare(x.start(), y.start()));
        List<BackupSource.Range> out = new ArrayList<>();
        for (BackupSource.Range r : all) {
            BackupSource.Range last = out.isEmpty() ? null : out.get(out.size() - 1);
            if (last != null && r.start() <= last.end()) {
                long end = Math.max(last.end(), r.end());
                out.set(out.size() - 1, new BackupSource.Range(last.start(), end - last.start()));
            } else {
                out.add(r);
            }
        }
        return out;
    }
}
