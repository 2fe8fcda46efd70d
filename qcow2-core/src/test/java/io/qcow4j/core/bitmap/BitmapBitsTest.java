package io.qcow4j.core.bitmap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.BitSet;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

/** {@link BitmapBits} against {@link BitSet} under seeded random updates, loads and serializations. */
class BitmapBitsTest {
    private static final long SEED = Long.getLong("qcow4j.seed", 20261128L);

    @Test
    void randomOperationsMatchABitSet() {
        SplittableRandom r = new SplittableRandom(SEED);
        for (int round = 0; round < 20; round++) {
            int size = BitmapBits.CHUNK_BITS * (1 + r.nextInt(4)) + (r.nextBoolean() ? r.nextInt(BitmapBits.CHUNK_BITS) : 0);
            BitmapBits bits = new BitmapBits(size);
            BitSet oracle = new BitSet(size);
            for (int op = 0; op < 300; op++) {
                int from = r.nextInt(size);
                int to = Math.min(size, from + (r.nextInt(4) == 0 ? r.nextInt(2 * BitmapBits.CHUNK_BITS) : r.nextInt(200)));
                switch (r.nextInt(5)) {
                    case 0, 1 -> {
                        bits.set(from, to);
                        oracle.set(from, to);
                    }
                    case 2 -> {
                        bits.reset(from, to);
                        oracle.clear(from, to);
                    }
                    case 3 -> {
                        // load serialized bytes, as from a bitmap data cluster
                        int byteFrom = from / 8;
                        byte[] data = new byte[Math.min(r.nextInt(3 * BitmapBits.CHUNK_BYTES), (size + 7) / 8 - byteFrom)];
                        int fill = r.nextInt(3);
                        for (int i = 0; i < data.length; i++) {
                            data[i] = fill == 0 ? 0 : fill == 1 ? (byte) -1 : (byte) r.nextInt(256);
                        }
                        bits.write(byteFrom, ByteBuffer.wrap(data));
                        for (int i = 0; i < data.length * 8 && byteFrom * 8 + i < size; i++) {
                            oracle.set(byteFrom * 8 + i, (data[i / 8] >> (i % 8) & 1) != 0);
                        }
                    }
                    default -> {
                        BitmapBits other = new BitmapBits(size);
                        other.set(from, to);
                        bits.or(other);
                        oracle.set(from, to);
                    }
                }
                if (op % 25 == 0) {
                    check(bits, oracle, size, r);
                }
            }
            check(bits, oracle, size, r);
        }
    }

    private static void check(BitmapBits bits, BitSet oracle, int size, SplittableRandom r) {
        String seed = " (seed " + SEED + ")";
        assertEquals(oracle.cardinality(), bits.count(), "count" + seed);
        for (int k = 0; k < 50; k++) {
            int i = r.nextInt(size);
            assertEquals(oracle.get(i), bits.get(i), "bit " + i + seed);
            int ns = oracle.nextSetBit(i);
            assertEquals(ns < 0 || ns >= size ? -1 : ns, bits.nextSet(i), "nextSet " + i + seed);
            int nc = oracle.nextClearBit(i);
            assertEquals(nc >= size ? -1 : nc, bits.nextClear(i), "nextClear " + i + seed);
        }
        byte[] expected = new byte[(size + 7) / 8];
        byte[] o = oracle.toByteArray();
        System.arraycopy(o, 0, expected, 0, Math.min(o.length, expected.length));
        ByteBuffer out = ByteBuffer.allocate(expected.length);
        bits.read(0, out);
        assertArrayEquals(expected, out.array(), "serialized" + seed);
        for (long at = 0; at < expected.length; at += BitmapBits.CHUNK_BYTES) {
            long len = BitmapBits.CHUNK_BYTES;
            int from = (int) (at * 8);
            int to = (int) Math.min((at + len) * 8, size);
            int firstSet = oracle.nextSetBit(from);
            assertEquals(firstSet < 0 || firstSet >= to, bits.isZero(at, len), "isZero " + at + seed);
            boolean ones = (at + len) * 8 <= size && oracle.nextClearBit(from) >= to;
            assertEquals(ones, bits.isOnes(at, len), "isOnes " + at + seed);
        }
        BitmapBits copy = bits.copy();
        assertTrue(copy.contentEquals(bits) && copy.contentHash() == bits.contentHash(), "copy" + seed);
    }

    @Test
    void changedChunksAreListedOnce() {
        BitmapBits bits = new BitmapBits(10L * BitmapBits.CHUNK_BITS);
        bits.set(5, 6);
        bits.set(3L * BitmapBits.CHUNK_BITS + 1, 3L * BitmapBits.CHUNK_BITS + 2);
        bits.set(3L * BitmapBits.CHUNK_BITS + 9, 3L * BitmapBits.CHUNK_BITS + 10);
        bits.set(9L * BitmapBits.CHUNK_BITS, 9L * BitmapBits.CHUNK_BITS + 1);
        long c = BitmapBits.CHUNK_BYTES;
        assertArrayEquals(new long[] {0, 3 * c}, bits.changedChunkOffsets(0, 8 * c));
        assertArrayEquals(new long[] {3 * c}, bits.changedChunkOffsets(c, 4 * c));
        assertArrayEquals(new long[] {9 * c}, bits.changedChunkOffsets(8 * c, 2 * c));
        bits.clearChanged();
        assertArrayEquals(new long[0], bits.changedChunkOffsets(0, 10 * c));
    }
}
