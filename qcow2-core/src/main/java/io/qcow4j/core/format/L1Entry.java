package io.qcow4j.core.format;

/**
 * L1 table entry ({@code == Cluster mapping ==}): bits 9-55 L2 table offset, bit 63
 * COPIED (refcount exactly 1). Static helpers over the raw {@code long}.
 */
public final class L1Entry {
    public static final long OFFSET_MASK = 0x00fffffffffffe00L;
    public static final long COPIED = 1L << 63;
    /** Bits 0-8 and 56-62 are reserved. */
    public static final long RESERVED_MASK = 0x7f000000000001ffL;

    private L1Entry() {
    }

    public static long l2Offset(long entry) {
        return entry & OFFSET_MASK;
    }

    public static boolean isCopied(long entry) {
        return (entry & COPIED) != 0;
    }

    public static long of(long l2Offset, boolean copied) {
        return (l2Offset & OFFSET_MASK) | (copied ? COPIED : 0);
    }
}
