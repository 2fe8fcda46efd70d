package io.qcow4j.core.format;

/**
 * Compressed cluster descriptor ({@code === Compressed Clusters Descriptor ===}), with
 * {@code x = 62 - (cluster_bits - 8)}: bits 0..x-1 host byte offset, bits x..61 the number
 * of additional 512-byte sectors beyond the one holding the offset.
 */
public final class CompressedDescriptor {
    public static final int SECTOR = 512;

    private CompressedDescriptor() {
    }

    private static int shift(int clusterBits) {
        return 62 - (clusterBits - 8);
    }

    public static long hostOffset(long entry, int clusterBits) {
        return entry & ((1L << shift(clusterBits)) - 1);
    }

    public static long additionalSectors(long entry, int clusterBits) {
        return (entry >>> shift(clusterBits)) & ((1L << (clusterBits - 8)) - 1);
    }

    /** Bytes to read from {@link #hostOffset}: up to the end of the last sector. */
    public static long spanBytes(long entry, int clusterBits) {
        long off = hostOffset(entry, clusterBits);
        long sectors = additionalSectors(entry, clusterBits) + 1;
        return sectors * SECTOR - (off & (SECTOR - 1));
    }

    /** L2 entry (without COPIED, which compressed clusters never carry) for data at host bytes [off, off+len). */
    public static long of(long hostOffset, int compressedLength, int clusterBits) {
        long additional = ((hostOffset + compressedLength - 1) / SECTOR) - (hostOffset / SECTOR);
        return L2Entry.COMPRESSED | (additional << shift(clusterBits)) | hostOffset;
    }
}
