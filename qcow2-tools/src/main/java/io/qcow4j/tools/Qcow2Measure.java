package io.qcow4j.tools;

import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The sizes qemu-img measure reports for a new qcow2 image, worked out from the qcow2 layout
 * (see qcow2.txt) the way qemu-img 7.2 counts: a fully allocated image holds the header
 * cluster, whole L2 tables for every cluster of the disk, an L1 table of whole clusters,
 * refcount blocks and table for all of that (themselves included), and the data clusters.
 * The required size is the same minus the data clusters nothing is written to.
 */
final class Qcow2Measure {
    /** qemu refuses images whose L1 table would exceed 32 MiB. */
    static final long MAX_L1_BYTES = 32L << 20;
    private static final int L1_ENTRY = 8;
    private static final int REFTABLE_ENTRY = 8;
    private static final int BITMAP_TABLE_ENTRY = 8;
    /** A bitmap directory entry without its name and extra data (qcow2.txt: bitmap directory). */
    private static final int BITMAP_DIR_ENTRY_HEADER = 24;

    private Qcow2Measure() {
    }

    /** A bitmap of the source image, as much as its size estimate needs. */
    record Bitmap(String name, long granularity, long diskSize) {
    }

    /** Whether a disk of {@code size} bytes needs an L1 table larger than qemu allows. */
    static boolean tooLarge(long size, long clusterSize, boolean extendedL2) {
        long clusters = ceilDiv(size, clusterSize);
        long l2Tables = ceilDiv(clusters, clusterSize / l2EntrySize(extendedL2));
        return l2Tables > MAX_L1_BYTES / L1_ENTRY;
    }

    /**
     * Bytes of a fully allocated image of {@code alignedSize} (a whole number of clusters):
     * every data cluster, every L2 table, the L1 table and the refcount structures.
     */
    static long fullyAllocated(long alignedSize, long clusterSize, int refcountBits, boolean extendedL2) {
        long entrySize = l2EntrySize(extendedL2);
        long meta = clusterSize; // the header cluster
        long l2Entries = roundUp(alignedSize / clusterSize, clusterSize / entrySize);
        meta += l2Entries * entrySize;
        long l1Entries = roundUp(l2Entries * entrySize / clusterSize, clusterSize / L1_ENTRY);
        meta += l1Entries * L1_ENTRY;
        meta += refcountMetadata((meta + alignedSize) / clusterSize, clusterSize, refcountBits);
        return meta + alignedSize;
    }

    /**
     * Bytes of refcount blocks and refcount table that count {@code clusters} clusters and
     * themselves: grown until the blocks and table cover their own clusters too.
     */
    static long refcountMetadata(long clusters, long clusterSize, int refcountBits) {
        long perBlock = clusterSize * 8 / refcountBits;
        long blocksPerTableCluster = clusterSize / REFTABLE_ENTRY;
        long blocks = 0;
        long table = 0;
        while (true) {
            long newBlocks = ceilDiv(clusters + blocks + table, perBlock);
            long newTable = ceilDiv(newBlocks, blocksPerTableCluster);
            if (newBlocks == blocks && newTable == table) {
                return (blocks + table) * clusterSize;
            }
            blocks = newBlocks;
            table = newTable;
        }
    }

    /**
     * Room for copies of {@code bitmaps} in an image of {@code clusterSize} clusters: each
     * bitmap's data clusters as if all were allocated, its bitmap table in whole clusters,
     * and the bitmap directory in whole clusters.
     */
    static long bitmaps(List<Bitmap> bitmaps, long clusterSize) {
        long total = 0;
        long directory = 0;
        for (Bitmap b : bitmaps) {
            long bytes = ceilDiv(ceilDiv(b.diskSize(), b.granularity()), 8);
            long clusters = ceilDiv(bytes, clusterSize);
            total += clusters * clusterSize;
            total += roundUp(clusters * BITMAP_TABLE_ENTRY, clusterSize);
            directory += roundUp(BITMAP_DIR_ENTRY_HEADER + b.name().getBytes(StandardCharsets.UTF_8).length, 8);
        }
        return total + roundUp(directory, clusterSize);
    }

    static long l2EntrySize(boolean extendedL2) {
        return extendedL2 ? 16 : 8;
    }

    static long ceilDiv(long a, long b) {
        return a / b + (a % b == 0 ? 0 : 1);
    }

    static long roundUp(long a, long b) {
        return ceilDiv(a, b) * b;
    }
}
