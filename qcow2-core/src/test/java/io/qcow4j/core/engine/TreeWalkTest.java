package io.qcow4j.core.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.format.CompressedDescriptor;
import io.qcow4j.core.format.L1Entry;
import io.qcow4j.core.format.L2Entry;

/** The walk of an L1 tree over tables held in memory: what it visits, in which order, and what its checks refuse. */
class TreeWalkTest {
    private static final int BITS = 12; // 4 KiB clusters: 512 entries a table
    private static final int CS = 1 << BITS;
    private static final long FILE = 64L * CS;

    @Test
    void classifiesEntriesAsQemu() {
        assertEquals(TreeWalk.Kind.COMPRESSED, TreeWalk.kind(L2Entry.COMPRESSED | 5, false, false));
        assertEquals(TreeWalk.Kind.ZERO_PLAIN, TreeWalk.kind(L2Entry.ZERO, false, false));
        assertEquals(TreeWalk.Kind.ZERO_ALLOC, TreeWalk.kind(L2Entry.ZERO | 3L * CS, false, false));
        assertEquals(TreeWalk.Kind.NORMAL, TreeWalk.kind(3L * CS, false, false));
        assertEquals(TreeWalk.Kind.UNALLOCATED, TreeWalk.kind(L2Entry.COPIED, false, false));
        // offset 0 of an external data file is a real place
        assertEquals(TreeWalk.Kind.NORMAL, TreeWalk.kind(L2Entry.COPIED, false, true));
        // extended entries have no zero flag in the entry (bit 0 is reserved there)
        assertEquals(TreeWalk.Kind.UNALLOCATED, TreeWalk.kind(L2Entry.ZERO, true, false));
    }

    @Test
    void visitsNonZeroL1EntriesAndTheTablesAskedFor() {
        Map<Long, long[]> tables = new HashMap<>();
        long[] a = new long[CS / 8];
        a[0] = 10L * CS | L2Entry.COPIED;
        a[7] = CompressedDescriptor.of(20L * CS + 512, 1000, BITS);
        tables.put(4L * CS, a);
        long[] b = new long[CS / 8];
        b[511] = L2Entry.ZERO;
        tables.put(5L * CS, b);
        long[] l1 = {0, L1Entry.of(4L * CS, true), 0x100, L1Entry.of(5L * CS, false), L1Entry.of(6L * CS, false)};
        List<String> seen = new ArrayList<>();
        new TreeWalk(BITS, false, false, () -> FILE).walk(l1, 2L * CS, new TreeWalk.Visitor<RuntimeException>() {
            @Override
            protected boolean l1Entry(TreeWalk w, int index, long entry) {
                seen.add("L1 " + index + " at 0x" + Long.toHexString(w.l1EntryAt()) + " l2 0x" + Long.toHexString(w.l2()));
                return index != 4; // the last table is not read (entry 2, reserved bits only, reads "the table at 0" as check does)
            }

            @Override
            protected void readTable(long l2, long[] table) {
                System.arraycopy(tables.getOrDefault(l2, new long[CS / 8]), 0, table, 0, table.length);
            }

            @Override
            protected void l2Entry(TreeWalk w) {
                seen.add("  " + w.index() + " " + w.kind() + " at 0x" + Long.toHexString(w.entryAt())
                        + (w.kind() == TreeWalk.Kind.COMPRESSED ? " data 0x" + Long.toHexString(w.compressedOffset())
                        : " host 0x" + Long.toHexString(w.host())));
            }

            @Override
            protected void l2Done(TreeWalk w, int index) {
                seen.add("done " + index);
            }
        });
        assertEquals(List.of(
                "L1 1 at 0x2008 l2 0x4000",
                "  0 NORMAL at 0x4000 host 0xa000",
                "  7 COMPRESSED at 0x4038 data 0x14200",
                "done 1",
                "L1 2 at 0x2010 l2 0x0",
                "done 2",
                "L1 3 at 0x2018 l2 0x5000",
                "  511 ZERO_PLAIN at 0x5ff8 host 0x0",
                "done 3",
                "L1 4 at 0x2020 l2 0x6000"), seen);
    }

    @Test
    void extendedEntriesAreTwoWordsWithTheirBitmap() {
        long[] t = new long[CS / 8];
        t[2 * 3 + 1] = 0xffL; // unallocated, a bitmap only: still visited (check reports it)
        List<String> seen = new ArrayList<>();
        new TreeWalk(BITS, true, false, () -> FILE).walkTable(8L * CS, t, new TreeWalk.Visitor<RuntimeException>() {
            @Override
            protected void l2Entry(TreeWalk w) {
                seen.add(w.index() + " at 0x" + Long.toHexString(w.entryAt()) + " bitmap 0x" + Long.toHexString(w.bitmap()));
            }
        });
        assertEquals(List.of("3 at 0x8030 bitmap 0xff"), seen);
    }

    @Test
    void checksRefuseWithTheEngineWords() {
        long[] t = new long[CS / 8];
        t[1] = 70L * CS; // past the end of the file
        t[2] = L2Entry.COMPRESSED; // compressed data at offset 0: in the header
        long[] l1 = {L1Entry.of(3L * CS + 512, false)};
        TreeWalk walk = new TreeWalk(BITS, false, false, () -> FILE);
        CorruptImageException l2 = assertThrows(CorruptImageException.class, () -> walk.walk(l1, CS, new TreeWalk.Visitor<CorruptImageException>() {
            @Override
            protected boolean l1Entry(TreeWalk w, int index, long entry) throws CorruptImageException {
                return w.checkedL2() != 0;
            }
        }));
        assertEquals("L1 table at offset 0x1000: L2 table offset 0x3200 invalid (unaligned, in the header or past the end of the file)",
                l2.getMessage());
        List<String> refused = new ArrayList<>();
        walk.walkTable(3L * CS, t, new TreeWalk.Visitor<RuntimeException>() {
            @Override
            protected void l2Entry(TreeWalk w) {
                CorruptImageException e = assertThrows(CorruptImageException.class, () -> {
                    if (w.kind() == TreeWalk.Kind.COMPRESSED) {
                        w.checkedCompressed();
                    } else {
                        w.checkedHost();
                    }
                });
                refused.add(e.getMessage());
            }
        });
        assertEquals(List.of(
                "L2 table at offset 0x3008: cluster offset 0x46000 invalid (unaligned, in the header or past the end of the file)",
                "L2 table at offset 0x3010: compressed cluster offset 0x0 outside the image"), refused);
    }
}
