package io.qcow4j.core.engine;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.cache.L2Cache;
import io.qcow4j.core.format.BitmapsExtension;
import io.qcow4j.core.format.L1Entry;
import io.qcow4j.core.format.RefcountBlock;
import io.qcow4j.core.format.SnapshotEntry;

/**
 * Which host ranges of the image file hold metadata: the one map behind the engine's
 * refusal to write guest data, point an L2 table or hand out a cluster over metadata
 * ({@link #at}; the allocator asks it through {@link RefcountManager#guardAllocations}), and
 * check's copy of qemu's overlap check before a repair writes ({@link #overlap}). The
 * structures carry qemu's QCOW2_OL_* bits and names, and are looked at in qemu's order.
 */
public final class MetadataRanges implements RefcountManager.MetadataMap {
    public static final int MAIN_HEADER = 1;
    public static final int ACTIVE_L1 = 1 << 1;
    public static final int ACTIVE_L2 = 1 << 2;
    public static final int REFCOUNT_TABLE = 1 << 3;
    public static final int REFCOUNT_BLOCK = 1 << 4;
    public static final int SNAPSHOT_TABLE = 1 << 5;
    public static final int INACTIVE_L1 = 1 << 6;
    public static final int INACTIVE_L2 = 1 << 7;
    public static final int BITMAP_DIRECTORY = 1 << 8;
    /** qemu's default overlap-check mode ("cached"): everything but inactive L2 tables. */
    public static final int CACHED = 0x1ff & ~INACTIVE_L2;
    private static final String[] QEMU_NAMES = {"qcow2_header", "active L1 table", "active L2 table",
        "refcount table", "refcount block", "snapshot table", "inactive L1 table", "inactive L2 table",
        "bitmap directory"};

    /** The structures only check looks at (the engine keeps them out of its allocator by their refcounts). */
    public record Inactive(long snapshotTableOffset, long snapshotTableSize, List<SnapshotEntry> snapshots,
                           BitmapsExtension bitmaps) {
    }

    private final int bits;
    private final int cs;
    private final ClusterMapper mapper;
    private final RefcountManager refcounts;
    private final L2Cache cache;
    /** The refcount blocks' offsets, sorted, as of refcount table version {@link #blocksVersion}; null before the first use. */
    private long[] blocks;
    private int blocksVersion;

    MetadataRanges(Geometry geo, ClusterMapper mapper, RefcountManager refcounts, L2Cache cache) {
        this.bits = geo.clusterBits();
        this.cs = geo.clusterSize();
        this.mapper = mapper;
        this.refcounts = refcounts;
        this.cache = cache;
    }

    /** qemu's name of the structure bit {@code ol} ("active L1 table"). */
    public static String qemuName(int ol) {
        return QEMU_NAMES[Integer.numberOfTrailingZeros(ol)];
    }

    /**
     * The engine's words for the metadata the cluster at {@code offset} holds: the header,
     * the active L1 table, the refcount table or a block, or an L2 table in the L2 cache (as
     * QEMU, which checks the cached ones too); null when none. This runs for every cluster
     * the allocator hands out.
     */
    @Override
    public String at(long offset) {
        String what = nonL2At(offset);
        return what != null || !cache.contains(offset) ? what : "an active L2 table";
    }

    /** {@link #at} without the L2 tables: what an active L2 table itself must not overlap. */
    public String nonL2At(long offset) {
        if (offset < cs) {
            return "the header";
        }
        long start = offset & -(long) cs;
        if (overlap(ACTIVE_L1, start, cs, null) != 0) {
            return "the active L1 table";
        }
        long table = refcounts.tableOffset();
        if (start >= table && start - table < ((long) refcounts.tableClusters() << bits)) {
            return "the refcount table";
        }
        return Arrays.binarySearch(refcountBlocks(), start) >= 0 ? "a refcount block" : null;
    }

    /** The refcount blocks' offsets, sorted (looked up for every cluster handed out); rebuilt after the table changed. */
    private long[] refcountBlocks() {
        int version = refcounts.tableVersion();
        if (blocks == null || blocksVersion != version) {
            long[] b = new long[refcounts.tableEntries()];
            int n = 0;
            for (int i = 0; i < b.length; i++) {
                long block = refcounts.tableEntry(i) & RefcountBlock.TABLE_OFFSET_MASK;
                if (block != 0) {
                    b[n++] = block;
                }
            }
            blocks = Arrays.copyOf(b, n);
            Arrays.sort(blocks);
            blocksVersion = version;
        }
        return blocks;
    }

    /**
     * qemu's overlap check: the first structure of {@code chk} (QCOW2_OL_* bits) that
     * {@code [offset, offset+size)}, widened to whole clusters, meets; 0 when none.
     * {@code inactive} may be null when {@code chk} names none of its structures.
     */
    public int overlap(int chk, long offset, long size, Inactive inactive) {
        if ((chk & MAIN_HEADER) != 0 && offset < cs) {
            return MAIN_HEADER;
        }
        long alignedSize = ((offset & (cs - 1)) + size + cs - 1) & ~(long) (cs - 1);
        long start = offset & ~(long) (cs - 1);
        long[] l1 = mapper.l1();
        if ((chk & ACTIVE_L1) != 0 && l1.length > 0 && hits(start, alignedSize, mapper.l1Offset(), 8L * l1.length)) {
            return ACTIVE_L1;
        }
        if ((chk & REFCOUNT_TABLE) != 0 && hits(start, alignedSize, refcounts.tableOffset(), 8L * refcounts.tableEntries())) {
            return REFCOUNT_TABLE;
        }
        if ((chk & SNAPSHOT_TABLE) != 0
                && hits(start, alignedSize, inactive.snapshotTableOffset(), inactive.snapshotTableSize())) {
            return SNAPSHOT_TABLE;
        }
        if ((chk & INACTIVE_L1) != 0) {
            for (SnapshotEntry e : inactive.snapshots()) {
                if (e.l1Size != 0 && hits(start, alignedSize, e.l1TableOffset, 8L * Integer.toUnsignedLong(e.l1Size))) {
                    return INACTIVE_L1;
                }
            }
        }
        if ((chk & ACTIVE_L2) != 0) {
            for (long e : l1) {
                long l2 = e & L1Entry.OFFSET_MASK;
                if (l2 != 0 && hits(start, alignedSize, l2, cs)) {
                    return ACTIVE_L2;
                }
            }
        }
        if ((chk & REFCOUNT_BLOCK) != 0) {
            // every entry, aligned or not, as qemu walks them (a damaged one may straddle two clusters)
            for (int i = 0; i < refcounts.tableEntries(); i++) {
                long b = refcounts.tableEntry(i) & RefcountBlock.TABLE_OFFSET_MASK;
                if (b != 0 && hits(start, alignedSize, b, cs)) {
                    return REFCOUNT_BLOCK;
                }
            }
        }
        if ((chk & BITMAP_DIRECTORY) != 0 && inactive.bitmaps() != null
                && hits(start, alignedSize, inactive.bitmaps().directoryOffset(), inactive.bitmaps().directorySize())) {
            return BITMAP_DIRECTORY;
        }
        return 0;
    }

    /** Bytes of a snapshot table as qemu measures it: each entry padded to 8, but not the last. */
    public static long snapshotTableSize(List<SnapshotEntry> snapshots) {
        long total = 0;
        for (SnapshotEntry e : snapshots) {
            total = ((total + 7) & ~7L) + SnapshotEntry.FIXED_SIZE + e.extraData.length
                    + e.id.getBytes(StandardCharsets.UTF_8).length
                    + e.name.getBytes(StandardCharsets.UTF_8).length;
        }
        return total;
    }

    private static boolean hits(long start, long size, long s, long len) {
        // unsigned ends: offsets from a hostile file may have the top bit set
        return len > 0 && Long.compareUnsigned(start, s + len) < 0 && Long.compareUnsigned(s, start + size) < 0;
    }
}
