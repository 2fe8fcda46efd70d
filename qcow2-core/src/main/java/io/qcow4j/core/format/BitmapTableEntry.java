package io.qcow4j.core.format;

/**
 * Bitmap table entry ({@code === Bitmap table ===}): bits 9-55 data cluster offset; with
 * offset 0, bit 0 says the cluster reads as all ones (1) or all zeros (0); the other bits
 * are reserved.
 */
public final class BitmapTableEntry {
    public static final long OFFSET_MASK = 0x00fffffffffffe00L;
    public static final long RESERVED_MASK = 0xff000000000001feL;
    public static final long ALL_ONES = 1L;

    private BitmapTableEntry() {
    }

    public static long offset(long entry) {
        return entry & OFFSET_MASK;
    }

    public static boolean allOnes(long entry) {
        return offset(entry) == 0 && (entry & ALL_ONES) != 0;
    }
}
