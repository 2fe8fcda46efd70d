package io.qcow4j.bitmaps;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.util.BitSet;
import java.util.List;
import java.util.Random;

import io.qcow4j.core.bitmap.BitmapBits;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** DirtyBitmap against a java.util.BitSet oracle, seeded; memory of empty and full bitmaps. */
class DirtyBitmapTest {

    @ParameterizedTest
    @ValueSource(longs = {512, 65536, 1 << 20})
    void randomOperationsMatchABitSet(long granularity) {
        long seed = granularity * 31 + Long.getLong("qcow4j.seed", 0);
        Random r = new Random(seed);
        long disk = (3L << 30) + 512 * r.nextInt(1000);
        DirtyBitmap b = DirtyBitmap.standalone("t", disk, granularity);
        int nbits = (int) ((disk + granularity - 1) / granularity);
        BitSet oracle = new BitSet(nbits);
        for (int op = 0; op < 2000; op++) {
            long off = (long) (r.nextDouble() * disk);
            long len = Math.min(disk - off, (long) (r.nextDouble() * (r.nextBoolean() ? granularity * 70_000 : granularity * 3)));
            int from = (int) (off / granularity);
            int to = len == 0 ? from : (int) ((off + len - 1) / granularity) + 1;
            switch (r.nextInt(4)) {
                case 0, 1 -> {
                    b.set(off, len);
                    oracle.set(from, to);
                }
                case 2 -> {
                    b.reset(off, len);
                    oracle.clear(from, to);
                }
                default -> {
                    long q = (long) (r.nextDouble() * disk);
                    int qb = (int) (q / granularity);
                    String what = "seed " + seed + " op " + op;
                    assertEquals(oracle.get(qb), b.get(q), what);
                    int nd = oracle.nextSetBit(qb);
                    assertEquals(nd < 0 ? -1 : Math.max(q, nd * granularity), b.nextDirty(q), what + " nextDirty");
                    int nc = oracle.nextClearBit(qb);
                    assertEquals(nc >= nbits ? -1 : Math.max(q, nc * granularity), b.nextClean(q), what + " nextClean");
                }
            }
        }
        long expected = oracle.cardinality() * granularity;
        if (oracle.get(nbits - 1)) {
            expected -= (long) nbits * granularity - disk;
        }
        assertEquals(expected, b.count(), "seed " + seed);
        long covered = 0;
        boolean last = !b.extents().get(0).dirty();
        for (DirtyBitmap.Extent e : b.extents()) {
            assertEquals(covered, e.start());
            assertTrue(e.dirty() != last, "adjacent runs not merged");
            assertEquals(oracle.get((int) (e.start() / granularity)), e.dirty());
            covered += e.length();
            last = e.dirty();
        }
        assertEquals(disk, covered);
    }

    @Test
    void mergeAcrossGranularities() {
        long disk = 1L << 30;
        DirtyBitmap fine = DirtyBitmap.standalone("fine", disk, 4096);
        DirtyBitmap coarse = DirtyBitmap.standalone("coarse", disk, 1 << 20);
        fine.set(5000, 10);
        fine.set((1L << 30) - 1, 1);
        coarse.mergeFrom(fine);
        assertEquals(List.of(new DirtyBitmap.Extent(0, 1 << 20, true), new DirtyBitmap.Extent(1 << 20, disk - (2 << 20), false),
                new DirtyBitmap.Extent(disk - (1 << 20), 1 << 20, true)), coarse.extents());
        DirtyBitmap back = DirtyBitmap.standalone("back", disk, 4096);
        back.mergeFrom(coarse);
        assertEquals(2L << 20, back.count());
        assertThrows(IllegalArgumentException.class, () -> back.mergeFrom(DirtyBitmap.standalone("x", disk + 512, 4096)));
        DirtyBitmap copy = back.copy("c");
        assertTrue(copy.contentEquals(back));
        assertEquals(copy.contentHash(), back.contentHash());
        copy.reset(0, 1);
        assertFalse(copy.contentEquals(back));
    }

    @Test
    void memoryFollowsTheDirtyData() {
        long disk = 16L << 40;
        DirtyBitmap empty = DirtyBitmap.standalone("e", disk, 65536);
        BitmapBits bits = empty.bits();
        assertTrue(bits.heapBytes() < 1 << 20, "empty 16 TiB bitmap holds " + bits.heapBytes() + " bytes");
        empty.set(0, disk);
        assertTrue(bits.heapBytes() < 1 << 20, "full bitmap shares one chunk: " + bits.heapBytes());
        assertEquals(disk, empty.count());
        ByteBuffer cluster = ByteBuffer.allocate(65536);
        bits.read(1 << 20, cluster);
        assertEquals(-1, cluster.getLong(100));
    }
}
