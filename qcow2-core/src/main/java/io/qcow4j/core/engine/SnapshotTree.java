package io.qcow4j.core.engine;

import java.io.IOException;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.api.SnapshotException;
import io.qcow4j.core.format.CompressedDescriptor;
import io.qcow4j.core.format.L1Entry;
import io.qcow4j.core.format.L2Entry;
import io.qcow4j.core.storage.Storage;

/**
 * The refcounts and COPIED flags of L1 trees, for {@link InternalSnapshots}. A tree is an
 * L1 table, the L2 tables it names and the data clusters those name (a compressed cluster:
 * each host cluster its sectors touch); a cluster's refcount counts the trees that reach
 * it. L2 tables are read from and written to the storage directly: the caller clears the
 * L2 cache afterwards.
 */
final class SnapshotTree {
    /** One reference: a cluster index, whether the referring entry carries COPIED, the entry's file offset. */
    @FunctionalInterface
    interface Ref {
        void at(long cluster, boolean flagged, long where) throws IOException;
    }

    private final Qcow2Engine img;
    private final Storage storage;
    private final Geometry geo;
    private final RefcountManager refcounts;
    private final ClusterMapper mapper;
    private final int bits;
    private final int cs;
    /** Standard data clusters are refcounted (not in an external data file). */
    private final boolean dataRefcounted;

    SnapshotTree(Qcow2Engine img) {
        this.img = img;
        this.storage = img.storage;
        this.geo = img.geo;
        this.refcounts = img.refcounts;
        this.mapper = img.mapper;
        this.bits = geo.clusterBits();
        this.cs = geo.clusterSize();
        this.dataRefcounted = img.dataFile == null;
    }

    /**
     * Every reference a tree makes, in a fixed order: an L2 table's data clusters, then the
     * table. Offsets are checked before they are passed on.
     */
    void forEachRef(long[] l1, long l1Offset, Ref ref) throws IOException {
        walk().walk(l1, l1Offset, new TreeWalk.FileVisitor(storage) {
            @Override
            protected boolean l1Entry(TreeWalk w, int index, long entry) throws IOException {
                return w.l2() != 0 && w.checkedL2() != 0;
            }

            @Override
            protected void l2Entry(TreeWalk w) throws IOException {
                if (w.kind() == TreeWalk.Kind.COMPRESSED) {
                    long off = w.checkedCompressed();
                    long end = (off / CompressedDescriptor.SECTOR + w.compressedSectors()) * CompressedDescriptor.SECTOR;
                    for (long c = off >>> bits; c <= (end - 1) >>> bits; c++) {
                        ref.at(c, false, w.entryAt());
                    }
                } else if (dataRefcounted && w.host() != 0) {
                    ref.at(w.checkedHost() >>> bits, true, w.entryAt());
                }
            }

            @Override
            protected void l2Done(TreeWalk w, int index) throws IOException {
                ref.at(w.l2() >>> bits, true, w.l1EntryAt());
            }
        });
    }

    /**
     * Checks, before anything changes, that every cluster of a tree is refcounted and can
     * take {@code delta} per reference. Consecutive references to one cluster (compressed
     * clusters packed together) are added up; {@link #raise} still guards every step.
     */
    void checkRefs(long[] l1, long l1Offset, int delta) throws IOException {
        long max = refcounts.maxRefcount();
        long[] run = {-1, 0, 0};
        forEachRef(l1, l1Offset, (c, flagged, where) -> {
            if (c == run[0]) {
                run[1]++;
                return;
            }
            checkCluster(run[0], run[1], run[2], delta, max);
            run[0] = c;
            run[1] = 1;
            run[2] = where;
        });
        checkCluster(run[0], run[1], run[2], delta, max);
    }

    private void checkCluster(long cluster, long n, long where, int delta, long max) throws IOException {
        if (cluster < 0) {
            return;
        }
        long r = refcounts.get(cluster);
        if (r < n || r < 1) {
            throw new CorruptImageException("L1/L2 table", where, "cluster 0x" + Long.toHexString(cluster << bits)
                    + " is referenced " + n + " time(s) but its refcount is " + r);
        }
        if (delta > 0 && r > max - n) {
            throw overflow(cluster, max);
        }
    }

    private SnapshotException overflow(long cluster, long max) {
        return new SnapshotException(SnapshotException.Reason.REFCOUNT_OVERFLOW, "Refcount of cluster 0x"
                + Long.toHexString(cluster << bits) + " would exceed " + max + " (refcount_bits " + img.header().refcountBits() + ")");
    }

    /** Adds one to every cluster of a tree; on failure takes back what it added. */
    void raise(long[] l1, long l1Offset) throws IOException {
        long max = refcounts.maxRefcount();
        long[] done = {0};
        try {
            forEachRef(l1, l1Offset, (c, flagged, where) -> {
                if (refcounts.get(c) >= max) {
                    throw overflow(c, max);
                }
                refcounts.update(c << bits, 1, 1);
                done[0]++;
            });
        } catch (IOException | RuntimeException ex) {
            lowerQuietly(l1, l1Offset, done[0]);
            throw ex;
        }
    }

    /** Takes one from every cluster of a tree. */
    void lower(long[] l1, long l1Offset) throws IOException {
        lower(l1, l1Offset, Long.MAX_VALUE);
    }

    /** Takes one from the clusters of the first {@code count} references of a tree. */
    private void lower(long[] l1, long l1Offset, long count) throws IOException {
        long[] left = {count};
        forEachRef(l1, l1Offset, (c, flagged, where) -> {
            if (left[0] > 0) {
                refcounts.update(c << bits, 1, -1);
                left[0]--;
            }
        });
    }

    /** {@link #lower}, for undoing after a failure: what cannot be undone stays leaked. */
    void lowerQuietly(long[] l1, long l1Offset) {
        lowerQuietly(l1, l1Offset, Long.MAX_VALUE);
    }

    private void lowerQuietly(long[] l1, long l1Offset, long count) {
        try {
            lower(l1, l1Offset, count);
        } catch (IOException | RuntimeException ignored) {
            // leaked at worst
        }
    }

    /**
     * Clears every COPIED flag of a tree whose refcounts were just raised (all shared now).
     * With {@code active} the tree is the active one: its L1 entries lose the flag too.
     */
    void clearCopied(long[] l1, boolean active) throws IOException {
        walk().walk(l1, 0, new TreeWalk.FileVisitor(storage) {
            @Override
            protected boolean l1Entry(TreeWalk w, int index, long entry) throws IOException {
                if (w.l2() == 0) {
                    return false;
                }
                if (dataRefcounted) {
                    return true;
                }
                l2Done(w, index);
                return false;
            }

            @Override
            protected void l2Entry(TreeWalk w) throws IOException {
                if (L2Entry.isCopied(w.entry())) {
                    storage.writeLong(w.entryAt(), w.entry() & ~L2Entry.COPIED);
                }
            }

            @Override
            protected void l2Done(TreeWalk w, int index) throws IOException {
                if (active && L1Entry.isCopied(l1[index])) {
                    mapper.setL1(index, l1[index] & ~L1Entry.COPIED);
                }
            }
        });
    }

    /** Sets COPIED in the active tree wherever the refcount is 1 and clears it elsewhere (QEMU's recount). */
    void recomputeActiveCopied() throws IOException {
        long[] l1 = mapper.l1();
        walk().walk(l1, mapper.l1Offset(), new TreeWalk.FileVisitor(storage) {
            private boolean sole;

            @Override
            protected boolean l1Entry(TreeWalk w, int index, long entry) throws IOException {
                if (w.l2() == 0) {
                    return false;
                }
                sole = refcounts.get(w.checkedL2() >>> bits) == 1;
                if (sole && dataRefcounted) {
                    return true; // a shared table holds only shared clusters: only a sole one can change
                }
                l2Done(w, index);
                return false;
            }

            @Override
            protected void l2Entry(TreeWalk w) throws IOException {
                long entry = w.entry();
                if (w.kind() == TreeWalk.Kind.COMPRESSED || w.host() == 0) {
                    return;
                }
                boolean copied = refcounts.get(w.host() >>> bits) == 1;
                if (copied != L2Entry.isCopied(entry)) {
                    storage.writeLong(w.entryAt(), copied ? entry | L2Entry.COPIED : entry & ~L2Entry.COPIED);
                }
            }

            @Override
            protected void l2Done(TreeWalk w, int index) throws IOException {
                if (L1Entry.isCopied(l1[index]) != sole) {
                    mapper.setL1(index, sole ? l1[index] | L1Entry.COPIED : l1[index] & ~L1Entry.COPIED);
                }
            }
        });
    }

    private TreeWalk walk() {
        return new TreeWalk(bits, geo.extendedL2(), !dataRefcounted, storage::length);
    }
}
