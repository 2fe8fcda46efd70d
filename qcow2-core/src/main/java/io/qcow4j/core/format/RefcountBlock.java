package io.qcow4j.core.format;

import io.qcow4j.core.api.CorruptImageException;

/**
 * Refcount block entries ({@code == Host cluster management ==}): a block is one cluster
 * of {@code cluster_size * 8 / refcount_bits} entries; widths below a byte pack from the
 * least significant bit. Helpers give the byte offset of an entry and decode it from the
 * surrounding big-endian word, so the engine reads at most 8 bytes per lookup.
 */
public final class RefcountBlock {
    /** Refcount table entry: bits 9-63 refcount block offset; bits 0-8 reserved. */
    public static final long TABLE_OFFSET_MASK = 0xfffffffffffffe00L;
    public static final long TABLE_RESERVED_MASK = 0x1ffL;

    private RefcountBlock() {
    }

    /**
     * The refcount block a refcount table entry names, checked as every reader of the
     * table checks it (a whole cluster inside the file, past the header), or the refusal
     * located at the entry ({@code at}); 0 when the entry names no block.
     */
    public static long requireBlock(long entry, int clusterSize, long fileLength, long at)
            throws CorruptImageException {
        long block = entry & TABLE_OFFSET_MASK;
        if (block == 0) {
            return 0;
        }
        return HostOffsets.requireClusterInFile(block, clusterSize, fileLength, "refcount table", at,
                o -> "refcount block offset 0x" + Long.toHexString(o) + " invalid");
    }

    public static long entriesPerBlock(int clusterBits, int refcountOrder) {
        return 1L << (clusterBits + 3 - refcountOrder);
    }

    public static long maxRefcount(int refcountOrder) {
        int bits = 1 << refcountOrder;
        return bits == 64 ? Long.MAX_VALUE : (1L << bits) - 1;
    }

    /** Byte offset inside the block of the 8-byte-aligned word holding entry {@code index}. */
    public static int wordOffset(long index, int refcountOrder) {
        long bitPos = index << refcountOrder;
        return (int) ((bitPos >>> 3) & ~7L);
    }

    /** Decodes entry {@code index} from the big-endian word read at {@link #wordOffset}. */
    public static long get(long word, long index, int refcountOrder) {
        int bits = 1 << refcountOrder;
        if (bits == 64) {
            return word;
        }
        int shift = shiftInWord(index, refcountOrder);
        return (word >>> shift) & ((1L << bits) - 1);
    }

    /** Returns the word with entry {@code index} replaced by {@code value}. */
    public static long set(long word, long index, int refcountOrder, long value) {
        int bits = 1 << refcountOrder;
        if (bits == 64) {
            return value;
        }
        int shift = shiftInWord(index, refcountOrder);
        long mask = ((1L << bits) - 1) << shift;
        return (word & ~mask) | ((value << shift) & mask);
    }

    /**
     * Position of the entry inside a big-endian 64-bit word. Byte-sized and wider entries
     * are big-endian fields; sub-byte entries fill each byte from its low bit up.
     */
    private static int shiftInWord(long index, int refcountOrder) {
        int bits = 1 << refcountOrder;
        long bitPos = (index << refcountOrder) & 63;
        int byteInWord = (int) (bitPos >>> 3);
        int bitInByte = (int) (bitPos & 7);
        int byteShift = (7 - byteInWord) * 8;
        if (bits >= 8) {
            // a big-endian field of width bits starting at byteInWord
            return 64 - (byteInWord * 8) - bits;
        }
        return byteShift + bitInByte;
    }
}
