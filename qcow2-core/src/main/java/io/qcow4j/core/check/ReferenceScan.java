package io.qcow4j.core.check;

import java.nio.ByteBuffer;
import java.util.List;

import io.qcow4j.core.engine.ClusterCounts;
import io.qcow4j.core.engine.Limits;
import io.qcow4j.core.engine.MetadataWalk;
import io.qcow4j.core.engine.MetadataRanges;
import io.qcow4j.core.engine.TreeWalk;
import io.qcow4j.core.format.BitmapsExtension;
import io.qcow4j.core.format.CompressedDescriptor;
import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.format.L2Entry;
import io.qcow4j.core.format.SnapshotEntry;

/**
 * Counts every reference the metadata makes (qemu's calculate_refcounts), reporting what
 * it finds on the way as the one {@link MetadataWalk} tells it of each structure: the header, the active L1 and its L2 tables (with the allocation
 * statistics), each snapshot's L1 and L2 tables, the snapshot table, the refcount table,
 * the bitmaps, and last the refcount blocks. The counts stay in memory for the comparison
 * with the stored refcounts.
 */
final class ReferenceScan {
    static final long L1_RESERVED = 0x7f000000000001ffL;
    private static final int L1_CHUNK = 8192;

    final CheckRun run;
    final ClusterCounts counts = new ClusterCounts();
    /** Size of the in-memory refcount array: the file's clusters, grown by references just past the end. */
    long nb;
    /** The refcount structure itself is broken: only a rebuild can repair it. */
    boolean rebuild;

    /**
     * One L2 table and a window of its bytes, reused: a long L1 table reads thousands (the
     * COPIED check reads into them too). Direct: a read lands there without a copy through a
     * JDK buffer.
     */
    final long[] l2Table;
    final ByteBuffer l2Bytes;
    /** The walk of an L1 tree, over {@link #l2Table} (the COPIED check walks with it too). */
    final TreeWalk walk;
    /**
     * Active L1 indexes whose L2 table owns no host cluster (all entries unallocated or
     * plain zero, as most of a big disk): the COPIED check has nothing to check in them and
     * does not read them again. A repair while counting only ever takes clusters away.
     */
    final java.util.BitSet ownsNothing = new java.util.BitSet();

    ReferenceScan(CheckRun run, long nb) {
        this.run = run;
        this.nb = nb;
        this.l2Table = new long[run.cs / 8];
        this.l2Bytes = ByteBuffer.allocateDirect(Math.min(run.cs, CheckRun.READ_WINDOW));
        this.walk = new TreeWalk(run.bits, run.p.geometry().extendedL2(), run.dataFile, run::fileLength, l2Table);
    }

    /** L1 entries of all the tables this pass walks, and how many it has walked: its progress. */
    private long l1Total;
    private long l1Walked;

    /** One full pass; {@code fixErrors} repairs what qemu repairs while counting. */
    void calculate(CheckTally res, boolean fixErrors) throws CheckFailure {
        l1Walked = 0;
        ownsNothing.clear();
        l1Total = run.p.mapper().l1Size();
        for (SnapshotEntry sn : run.p.snapshots()) {
            long l1Size = Integer.toUnsignedLong(sn.l1Size);
            if (run.aligned(sn.l1TableOffset) && l1Size <= Limits.MAX_L1_ENTRIES) {
                l1Total += l1Size;
            }
        }
        MetadataWalk.walk(run.p, new Count(res, fixErrors));
    }

    /**
     * The check's reaction to each structure of the one walk of the metadata (in qemu's
     * order): a reference to each cluster it covers, the trees' and refcount blocks' own
     * checks, qemu's reports of a corrupt snapshot entry or bitmap directory.
     */
    private final class Count extends MetadataWalk.Visitor<CheckFailure> {
        private final CheckTally res;
        private final boolean fixErrors;

        Count(CheckTally res, boolean fixErrors) {
            this.res = res;
            this.fixErrors = fixErrors;
        }

        @Override
        protected void structure(MetadataWalk.Structure s, long offset, long length) {
            inc(res, offset, length);
        }

        @Override
        protected void l1Tree(long offset, int entries, SnapshotEntry snapshot) throws CheckFailure {
            checkL1(res, offset, entries, snapshot == null, fixErrors);
        }

        @Override
        protected void snapshots(List<SnapshotEntry> snapshots) {
            if (run.dataFile && !snapshots.isEmpty()) {
                run.err("ERROR " + snapshots.size() + " snapshots in image with data file");
                res.corruptions++;
            }
        }

        @Override
        protected boolean snapshotL1(SnapshotEntry sn, MetadataWalk.BadL1 why) {
            if (why == MetadataWalk.BadL1.UNALIGNED) {
                run.err("ERROR snapshot " + sn.id + " (" + sn.name + ") l1_offset=" + CheckRun.hexAlt(sn.l1TableOffset)
                        + ": L1 table is not cluster aligned; snapshot table entry corrupted");
                res.corruptions++;
            } else if (why == MetadataWalk.BadL1.TOO_LARGE) {
                run.err("ERROR snapshot " + sn.id + " (" + sn.name + ") l1_size="
                        + CheckRun.hexAlt(Integer.toUnsignedLong(sn.l1Size)) + ": L1 table is too large; snapshot table entry corrupted");
                res.corruptions++;
            }
            return why == null;
        }

        @Override
        protected List<MetadataWalk.BitmapTable> bitmapDirectory(BitmapsExtension be) throws CheckFailure {
            return BitmapScan.directory(run, res, be);
        }

        @Override
        protected long[] bitmapTable(MetadataWalk.BitmapTable table, long base) throws CheckFailure {
            return BitmapScan.table(run, res, table, base);
        }

        @Override
        protected void refcountBlock(MetadataWalk w) {
            checkRefblock(res, fixErrors, w);
        }
    }

    /**
     * One reference to every cluster overlapping [offset, offset+size): qemu's rule refuses a
     * region ending a cluster or more past the end of the file, and a count at the
     * refcount width's maximum.
     */
    void inc(CheckTally res, long offset, long size) {
        if (size <= 0) {
            return;
        }
        if (!HostOffsets.fits(offset, size, run.fileLength() + run.cs - 1)) {
            run.err("ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x"
                    + CheckRun.hex(offset) + " size 0x" + CheckRun.hex(size));
            res.corruptions++;
            return;
        }
        long last = (offset + size - 1) >>> run.bits;
        run.charge(last - (offset >>> run.bits) + 1);
        for (long k = offset >>> run.bits; k <= last; k++) {
            if (k >= nb) {
                nb = k + 1;
            }
            if (counts.get(k) == run.refcountMax) {
                run.err("ERROR: overflow cluster offset=0x" + CheckRun.hex(k << run.bits));
                run.err("Use qemu-img amend to increase the refcount entry width or qemu-img convert to create a clean copy if the image cannot be opened for writing");
                res.corruptions++;
                continue;
            }
            counts.add(k);
        }
    }

    private void checkL1(CheckTally res, long l1Offset, int l1Size, boolean active, boolean fixErrors)
            throws CheckFailure {
        TreeVisit visit = new TreeVisit(res, active, fixErrors, l1Walked);
        for (int base = 0; base < l1Size; base += L1_CHUNK) {
            int n = Math.min(L1_CHUNK, l1Size - base);
            long[] l1;
            try {
                l1 = run.readLongs(l1Offset + 8L * base, n);
            } catch (CheckFailure e) {
                run.err("ERROR: I/O error in check_refcounts_l1");
                res.checkErrors++;
                throw e;
            }
            walk.walk(l1, 0, n, base, l1Offset, visit);
            l1Walked = visit.walkedBefore + base + n;
            run.progress(CheckRun.SCAN_START, CheckRun.SCAN_SPAN, l1Walked, l1Total);
        }
    }

    /** The check's reaction to one L1 tree: qemu's check_refcounts_l1 and check_refcounts_l2. */
    private final class TreeVisit extends TreeWalk.Visitor<CheckFailure> {
        private final CheckTally res;
        private final boolean active;
        private final boolean fixErrors;
        /** L1 entries of the tables walked before this one. */
        final long walkedBefore;
        /** The current table: whether it owns a host cluster; where the next contiguous cluster would be. */
        private boolean owns;
        private long nextContiguous;

        TreeVisit(CheckTally res, boolean active, boolean fixErrors, long walkedBefore) {
            this.res = res;
            this.active = active;
            this.fixErrors = fixErrors;
            this.walkedBefore = walkedBefore;
        }

        @Override
        protected boolean l1Entry(TreeWalk w, int index, long e) {
            l1Walked = walkedBefore + index + 1;
            if ((e & L1_RESERVED) != 0) {
                run.err("ERROR found L1 entry with reserved bits set: " + CheckRun.hex(e));
                res.corruptions++;
            }
            long l2 = w.l2();
            inc(res, l2, run.cs);
            if (!w.l2Aligned()) {
                run.err("ERROR l2_offset=" + CheckRun.hex(l2) + ": Table is not cluster aligned; L1 entry corrupted");
                res.corruptions++;
            }
            if (run.readsAsZeros(l2, run.cs)) {
                // a table past the end reads as zeros (qemu reads them, over and over for a long
                // damaged L1): no entry to count, nor work to charge against the budget
                tableDone(index, false);
                return false;
            }
            owns = false;
            nextContiguous = 0;
            unsynced = 0;
            return true;
        }

        @Override
        protected void readTable(long l2, long[] table) throws CheckFailure {
            try {
                run.readLongs(l2, table, l2Bytes);
            } catch (CheckFailure e) {
                run.err("ERROR: I/O error in check_refcounts_l2");
                res.checkErrors++;
                throw e;
            }
            run.charge(run.p.geometry().l2Entries());
        }

        @Override
        protected boolean plainZeroEntries() {
            return false; // a plain zero cluster (most of a big disk): owns nothing, nothing to check
        }

        @Override
        protected void l2Entry(TreeWalk w) throws CheckFailure {
            long e = w.entry();
            int words = run.p.geometry().l2EntryWords();
            long bitmap = w.bitmap();
            TreeWalk.Kind kind = w.kind();
            int i = w.index();
            if (kind != TreeWalk.Kind.COMPRESSED && (e & L2Entry.STANDARD_RESERVED_MASK) != 0) {
                run.err("ERROR found l2 entry with reserved bits set: " + CheckRun.hex(e));
                res.corruptions++;
            }
            switch (kind) {
                case COMPRESSED -> {
                    long coffset = w.compressedOffset();
                    if (L2Entry.isCopied(e)) {
                        run.err("ERROR: coffset=0x" + CheckRun.hex(coffset) + ": copied flag must never be set for compressed clusters");
                        e &= ~L2Entry.COPIED;
                        res.corruptions++;
                    }
                    if (run.dataFile) {
                        run.err("ERROR compressed cluster " + i + " with data file, entry=0x" + CheckRun.hex(e));
                        res.corruptions++;
                        break;
                    }
                    if (bitmap != 0) {
                        run.err("ERROR compressed cluster " + i + " with non-zero subcluster allocation bitmap, entry=0x" + CheckRun.hex(e));
                        res.corruptions++;
                        break;
                    }
                    long csize = w.compressedSectors() * CompressedDescriptor.SECTOR
                            - (coffset & (CompressedDescriptor.SECTOR - 1));
                    inc(res, coffset, csize);
                    if (active) {
                        res.allocatedClusters++;
                        res.compressedClusters++;
                        res.fragmentedClusters++;
                    }
                }
                case ZERO_ALLOC, NORMAL -> {
                    owns = true;
                    long offset = w.host();
                    if (((bitmap >>> 32) & bitmap) != 0) {
                        res.corruptions++;
                        run.err("ERROR offset=" + CheckRun.hex(offset) + ": Allocated cluster has corrupted subcluster allocation bitmap");
                    }
                    if (!run.aligned(offset)) {
                        res.corruptions++;
                        boolean data = words == 2 ? (bitmap & L2Entry.ALL_ALLOCATED) != 0 : (e & L2Entry.ZERO) == 0;
                        if (!data) {
                            run.err((fixErrors ? "Repairing" : "ERROR") + " offset=" + CheckRun.hex(offset)
                                    + ": Preallocated cluster is not properly aligned; L2 entry corrupted.");
                            if (fixErrors && zeroEntry(res, w.l2(), w.table(), i, active)) {
                                return;
                            }
                        } else {
                            run.err("ERROR offset=" + CheckRun.hex(offset) + ": Data cluster is not properly aligned; L2 entry corrupted.");
                        }
                    }
                    if (active) {
                        res.allocatedClusters++;
                        if (nextContiguous != 0 && offset != nextContiguous) {
                            res.fragmentedClusters++;
                        }
                        nextContiguous = offset + run.cs;
                    }
                    if (!run.dataFile) {
                        inc(res, offset, run.cs);
                    }
                }
                case ZERO_PLAIN -> {
                    // reads as zeros, owns nothing
                }
                case UNALLOCATED -> {
                    if ((bitmap & L2Entry.ALL_ALLOCATED) != 0) {
                        res.corruptions++;
                        run.err("ERROR: Unallocated cluster has non-zero subcluster allocation map");
                    }
                }
            }
        }

        @Override
        protected void l2Done(TreeWalk w, int index) {
            syncFixes(res);
            tableDone(index, owns);
        }

        private void tableDone(int index, boolean ownsCluster) {
            if (!ownsCluster && active) {
                ownsNothing.set(index);
            }
            run.progress(CheckRun.SCAN_START, CheckRun.SCAN_SPAN, l1Walked, l1Total);
        }
    }

    /** Entries {@link #zeroEntry} wrote in the current table and not yet flushed. */
    private int unsynced;

    /**
     * One flush for the table's fixed entries (qemu flushes after each: a damaged L1 naming
     * a table over and over made thousands of syncs, seconds on a busy disk), before any
     * refcount is changed. If it fails, none of them counts as fixed.
     */
    private void syncFixes(CheckTally res) {
        if (unsynced == 0) {
            return;
        }
        int n = unsynced;
        unsynced = 0;
        try {
            run.flush();
        } catch (CheckFailure e) {
            run.err("ERROR: Failed to overwrite L2 table entry: " + e.strerror());
            res.checkErrors++;
            res.corruptions += n;
            res.corruptionsFixed -= n;
        }
    }

    /**
     * Turns an unaligned preallocated entry into a plain zero cluster (qemu's only repair
     * while counting). True when fixed; a write that would hit other metadata ends the check.
     */
    private boolean zeroEntry(CheckTally res, long l2Offset, long[] table, int i, boolean active) throws CheckFailure {
        int words = run.p.geometry().l2EntryWords();
        ByteBuffer b = ByteBuffer.allocate(8 * words);
        if (words == 2) {
            long bitmap = table[2 * i + 1];
            bitmap = (bitmap | (bitmap << 32)) & L2Entry.ALL_ZERO;
            table[2 * i] = 0;
            table[2 * i + 1] = bitmap;
            b.putLong(0).putLong(bitmap);
        } else {
            table[i] = L2Entry.ZERO;
            b.putLong(L2Entry.ZERO);
        }
        b.flip();
        long at = l2Offset + 8L * words * i;
        if (!run.preWriteOverlapCheck(active ? MetadataRanges.ACTIVE_L2 : MetadataRanges.INACTIVE_L2, at, 8L * words)) {
            run.err("ERROR: Overlap check failed");
            res.checkErrors++;
            throw new CheckFailure(CheckFailure.EIO);
        }
        try {
            run.write(at, b);
        } catch (CheckFailure e) {
            run.err("ERROR: Failed to overwrite L2 table entry: " + e.strerror());
            res.checkErrors++;
            return false;
        }
        run.p.mapper().cache().clear();
        res.corruptions--;
        res.corruptionsFixed++;
        unsynced++; // flushed once the table is walked (syncFixes)
        return true;
    }

    /** The most clusters a repair adds to the file to include a refcount block (64 GiB of 64 KiB clusters). */
    private static final long MAX_GROWTH_CLUSTERS = 1L << 20;

    /** A refcount block, counted last: each must be referenced exactly once. */
    private void checkRefblock(CheckTally res, boolean fixErrors, MetadataWalk w) {
        long i = w.index();
        long offset = w.block();
        long cluster = offset >>> run.bits;
        if (w.reservedBits() != 0) {
            run.err("ERROR refcount table entry " + i + " has reserved bits set");
            res.corruptions++;
            rebuild = true;
            return;
        }
        if (!w.aligned()) {
            run.err("ERROR refcount block " + i + " is not cluster aligned; refcount table entry corrupted");
            res.corruptions++;
            rebuild = true;
            return;
        }
        if (Long.compareUnsigned(cluster, nb) >= 0) {
            res.corruptions++;
            run.err((fixErrors ? "Repairing" : "ERROR") + " refcount block " + i + " is outside image");
            if (fixErrors) {
                String why = growFileTo(offset);
                if (why == null && cluster < nb) {
                    res.corruptions--;
                    res.corruptionsFixed++;
                    inc(res, offset, run.cs);
                    return;
                }
                rebuild = true;
                run.err("ERROR could not resize image: " + (why != null ? why : CheckFailure.EINVAL));
            }
            return;
        }
        if (offset != 0) {
            inc(res, offset, run.cs);
            long have = counts.get(cluster);
            if (have != 1) {
                run.err("ERROR refcount block " + i + " refcount=" + have);
                res.corruptions++;
                rebuild = true;
            }
        }
    }

    /**
     * qemu's repair of a refcount block past the end: grow the file to hold it. Null on success, else why not.
     * Unlike qemu, by at most {@link #MAX_GROWTH_CLUSTERS} clusters: a block hundreds of GB out is a damaged
     * entry, and growing to it made the repair run for up to a minute over refcounts of empty space (and fail
     * to reload a refcount table that large); it is dropped and the refcounts rebuilt instead.
     */
    private String growFileTo(long offset) {
        if (!HostOffsets.fits(offset, run.cs, CheckRun.MAX_LENGTH)) {
            return CheckFailure.EINVAL;
        }
        if ((offset >>> run.bits) + 1 - run.fileClusters() > MAX_GROWTH_CLUSTERS) {
            run.report("Could not resize file: " + CheckFailure.EFBIG); // as when the file system refuses
            return CheckFailure.EFBIG;
        }
        try {
            run.storage.extend(offset + run.cs);
        } catch (java.io.IOException | RuntimeException e) {
            // qemu's file driver says why first, through its error reporter
            run.report("Could not resize file: " + CheckFailure.EFBIG);
            return CheckFailure.EFBIG;
        }
        nb = Math.max(nb, run.fileClusters());
        return null;
    }
}
