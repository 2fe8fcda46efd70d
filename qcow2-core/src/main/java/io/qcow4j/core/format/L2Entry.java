package io.qcow4j.core.format;

/**
 * L2 table entry ({@code == Cluster mapping ==}): bit 63 COPIED, bit 62 compressed,
 * bits 0-61 the cluster descriptor. For a standard cluster: bit 0 reads as zero (v3),
 * bits 9-55 host offset. For a compressed cluster see {@link CompressedDescriptor}.
 *
 * <p>With extended L2 entries ({@code == Extended L2 Entries ==}) each entry is followed by
 * a 64-bit subcluster bitmap: bits 0-31 allocated, bits 32-63 reads as zero.
 */
public final class L2Entry {
    public static final long COPIED = 1L << 63;
    public static final long COMPRESSED = 1L << 62;
    public static final long ZERO = 1L;
    public static final long OFFSET_MASK = 0x00fffffffffffe00L;
    /** Bits 1-8 and 56-61 of a standard descriptor are reserved. */
    public static final long STANDARD_RESERVED_MASK = 0x3f000000000001feL;
    public static final int SUBCLUSTERS = 32;
    public static final long ALL_ALLOCATED = 0xffffffffL;
    public static final long ALL_ZERO = 0xffffffff00000000L;

    private L2Entry() {
    }

    public static boolean isCompressed(long entry) {
        return (entry & COMPRESSED) != 0;
    }

    public static boolean isCopied(long entry) {
        return (entry & COPIED) != 0;
    }

    public static boolean isZero(long entry) {
        return !isCompressed(entry) && (entry & ZERO) != 0;
    }

    public static long hostOffset(long entry) {
        return entry & OFFSET_MASK;
    }

    public static long standard(long hostOffset, boolean copied) {
        return (hostOffset & OFFSET_MASK) | (copied ? COPIED : 0);
    }

    /** Subcluster bitmap: subcluster {@code i} has its data in the host cluster. */
    public static boolean subAllocated(long bitmap, int i) {
        return (bitmap & (1L << i)) != 0;
    }

    /** Subcluster bitmap: subcluster {@code i} reads as zeros. */
    public static boolean subZero(long bitmap, int i) {
        return (bitmap & (1L << (i + 32))) != 0;
    }

    /** Bits for subclusters {@code from..to} inclusive, in the allocated half. */
    public static long allocRange(int from, int to) {
        long n = to - from + 1;
        return (n == 64 ? -1L : ((1L << n) - 1)) << from;
    }
}
