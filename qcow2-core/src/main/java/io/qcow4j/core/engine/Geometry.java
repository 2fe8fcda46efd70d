package io.qcow4j.core.engine;

/** Sizes derived from the header that every part of the engine needs. */
public record Geometry(int clusterBits, boolean extendedL2, int version) {

    public int clusterSize() {
        return 1 << clusterBits;
    }

    /** L2 entries per table: cluster_size / 8, or / 16 with extended entries. */
    public int l2Entries() {
        return clusterSize() / (extendedL2 ? 16 : 8);
    }

    public int l2EntryWords() {
        return extendedL2 ? 2 : 1;
    }

    /** Guest bytes one L2 table maps. */
    public long l2Coverage() {
        return (long) l2Entries() << clusterBits;
    }

    public int subclusterSize() {
        return extendedL2 ? clusterSize() / 32 : clusterSize();
    }

    public long clusterStart(long offset) {
        return offset & ~((long) clusterSize() - 1);
    }

    public int offsetInCluster(long offset) {
        return (int) (offset & (clusterSize() - 1));
    }

    public boolean aligned(long offset) {
        return (offset & (clusterSize() - 1)) == 0;
    }

    /** L1 entries needed for a disk of {@code size} bytes (no overflow near Long.MAX_VALUE). */
    public long l1EntriesFor(long size) {
        long cov = l2Coverage();
        return size / cov + (size % cov == 0 ? 0 : 1);
    }
}
