package io.qcow4j.bitmaps;

import static io.qcow4j.bitmaps.Oracle.G;
import static io.qcow4j.bitmaps.Oracle.K;
import static io.qcow4j.bitmaps.Oracle.M;
import static io.qcow4j.bitmaps.Oracle.all;
import static io.qcow4j.bitmaps.Oracle.assertDirty;
import static io.qcow4j.bitmaps.Oracle.blocks;
import static io.qcow4j.bitmaps.Oracle.qemuWrite;
import static io.qcow4j.bitmaps.Oracle.reads;
import static io.qcow4j.bitmaps.Oracle.runs;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.DirtyExtents;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * QEMU's bitmap scenarios on one image or a chain (iotests 165, 236, 246 and
 * tests/remove-bitmap-from-backing, and the reopen and persistence rules) with qcow4j doing
 * the work and the real tools checking each step: qemu-img check clean on every image,
 * bitmap contents by nbdinfo --map=qemu:dirty-bitmap:NAME, data by qemu-io patterns and
 * qemu-img compare against a reference image qemu-io wrote alike.
 */
class ChainScenariosTest {
    static final long MIB = M;

    @TempDir
    Path tmp;

    // --- helpers kept for the other scenario classes

    static void checkClean(Path... images) {
        Oracle.checkClean(images);
    }

    static List<List<Long>> nbd(Path img, String bitmap) {
        return DirtyExtents.parseNbdinfo(Qemu.besideImageNbdMap(img, bitmap));
    }

    static long dirtyBytes(List<List<Long>> extents) {
        return extents.stream().filter(e -> e.get(2) != 0).mapToLong(e -> e.get(1)).sum();
    }

    static void write(Qcow2Image img, long off, int len, int pattern) throws IOException {
        Oracle.write(img, off, len, pattern);
    }

    static List<String> names(Path img) {
        return Oracle.names(img);
    }

    private static List<List<Long>> ours(DirtyBitmap b) {
        List<List<Long>> out = new ArrayList<>();
        for (DirtyBitmap.Extent e : b.dirtyExtents()) {
            out.add(List.of(e.start(), e.length()));
        }
        return out;
    }

    // --- iotest 165

    @Test
    void iotest165PersistenceAndReadOnlyOpen() throws IOException {
        Path img = Oracle.create(tmp.resolve("165.qcow2"), G);
        Path ref = tmp.resolve("ref.qcow2");
        Qemu.create(ref, "1G");
        long g = 64 * K;
        // 165's regions: the first one unaligned, across a cluster boundary
        long[][] regions1 = {{0x0fff00, 0x10000}, {0x200000, 0x100000}};
        long[][] regions2 = {{0x10000000, 0x20000}, {0x3fff0000, 0x10000}};
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            Bitmaps.of(image).add("bitmap0", Bitmaps.AddOptions.defaults().withGranularity(g));
            for (long[] r : regions1) {
                Oracle.write(image, r[0], r[1], 0xa);
            }
        }
        for (long[] r : regions1) {
            Qemu.io(ref, qemuWrite(r[0], r[1], 0xa)).assertOk();
        }
        List<List<Long>> first = runs(all(blocks(0x0fff00, 0x10000, g), blocks(0x200000, 0x100000, g)));
        assertEquals(runs(0xf0000, 0x20000, 0x200000, 0x100000), first);
        Oracle.checkClean(img);
        assertDirty(img, "bitmap0", first);
        assertTrue(Qemu.compare(img, ref));

        // a read-only open changes nothing and loses nothing (no warning either)
        byte[] bytes = Files.readAllBytes(img);
        List<String> warnings = new ArrayList<>();
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly().warnings(warnings::add))) {
            DirtyBitmap b = Bitmaps.of(image).get("bitmap0");
            assertTrue(b.isReadOnly());
            assertEquals(first, ours(b));
            assertThrows(IllegalStateException.class, () -> Bitmaps.of(image).clear("bitmap0"));
            assertThrows(IOException.class, () -> Oracle.write(image, 0, 512, 1));
        }
        assertArrayEquals(bytes, Files.readAllBytes(img), "a read-only open changed the file");
        assertEquals(List.of(), warnings);
        Oracle.checkClean(img);

        // read-write again: the same bits; then more writes, which persist
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            assertEquals(first, ours(Bitmaps.of(image).get("bitmap0")));
            for (long[] r : regions2) {
                Oracle.write(image, r[0], r[1], 0xb);
            }
        }
        for (long[] r : regions2) {
            Qemu.io(ref, qemuWrite(r[0], r[1], 0xb)).assertOk();
        }
        List<List<Long>> second = runs(0xf0000, 0x20000, 0x200000, 0x100000, 0x10000000, 0x20000, 0x3fff0000, 0x10000);
        Oracle.checkClean(img);
        assertDirty(img, "bitmap0", second);
        assertTrue(Qemu.compare(img, ref));
        // a restart without writes: the same bits, the same bytes
        bytes = Files.readAllBytes(img);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            assertEquals(second, ours(Bitmaps.of(image).get("bitmap0")));
        }
        assertArrayEquals(bytes, Files.readAllBytes(img));

        // test_reopen_rw: read-only, writes refused and the bitmap untouched; reopened read-write it records
        try (Chain chain = Chain.open(img, false)) {
            assertThrows(IOException.class, () -> Oracle.write(chain.top(), 0x20000000, 4096, 0xc));
            assertEquals(second, ours(chain.bitmaps(0).get("bitmap0")));
            Qcow2Image rw = chain.reopen(0, true);
            Oracle.write(rw, 0x20000000, 4096, 0xc);
            assertTrue(Oracle.flags(img).contains("bitmap0 [in-use, auto]"), "in_use while written: " + Oracle.flags(img));
            chain.reopen(0, false);
            assertEquals(List.of("bitmap0 [auto]"), Oracle.flags(img), "stored and in_use cleared at the reopen");
        }
        Qemu.io(ref, qemuWrite(0x20000000, 4096, 0xc)).assertOk();
        Oracle.checkClean(img);
        assertDirty(img, "bitmap0", runs(0xf0000, 0x20000, 0x200000, 0x100000, 0x10000000, 0x20000, 0x20000000, g,
                0x3fff0000, 0x10000));
        assertTrue(Qemu.compare(img, ref));
    }

    // --- iotest 236

    /** 236's patterns (64 MiB disk) and overwrites (a full, a partial-left, a partial-right, an adjacent write). */
    private static final long[][] PATTERNS = {{0x5d, 0, 64 * K}, {0xd5, M, 64 * K}, {0xdc, 32 * M, 64 * K},
        {0xcd, 0x3ff0000, 64 * K}};
    private static final long[][] OVERWRITES = {{0xab, 0, 64 * K}, {0xad, 0x00f8000, 64 * K}, {0x1d, 0x2008000, 64 * K},
        {0xea, 0x3fe0000, 64 * K}};

    private static void writeAll(Qcow2Image img, Path ref, long[][] writes) throws IOException {
        for (long[] w : writes) {
            Oracle.write(img, w[1], w[2], (int) w[0]);
            Qemu.io(ref, qemuWrite(w[1], w[2], (int) w[0])).assertOk();
        }
    }

    @Test
    void iotest236TransactionsAndMerges() throws IOException {
        Path img = Oracle.create(tmp.resolve("236.qcow2"), 64 * M);
        Path ref = tmp.resolve("ref.qcow2");
        Qemu.create(ref, "64M");
        Bitmaps.AddOptions g64 = Bitmaps.AddOptions.defaults().withGranularity(64 * K);
        try (Chain chain = Chain.open(img, true)) {
            chain.bitmaps(0).add("bitmapA", g64);
            chain.bitmaps(0).add("bitmapB", g64);
            writeAll(chain.top(), ref, PATTERNS);
        }
        List<List<Long>> p = runs(0, 64 * K, M, 64 * K, 32 * M, 64 * K, 0x3ff0000, 64 * K);
        List<List<Long>> o = runs(0, 64 * K, 0xf0000, 128 * K, 32 * M, 128 * K, 0x3fe0000, 64 * K);
        List<List<Long>> po = runs(0, 64 * K, 0xf0000, 128 * K, 32 * M, 128 * K, 0x3fe0000, 128 * K);
        Oracle.checkClean(img);
        assertDirty(img, "bitmapA", p);
        assertDirty(img, "bitmapB", p);

        // {disable B, add C, clear A, abort}: nothing happens
        byte[] before = Files.readAllBytes(img);
        try (Chain chain = Chain.open(img, true)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> chain.transaction()
                    .disableBitmap(0, "bitmapB").addBitmap(0, "bitmapC", g64).clearBitmap(0, "bitmapA").abort().commit());
            assertTrue(e.getMessage().contains("abort"));
            assertTrue(chain.bitmaps(0).get("bitmapB").isEnabled());
            assertFalse(chain.bitmaps(0).contains("bitmapC"));
            assertEquals(p, ours(chain.bitmaps(0).get("bitmapA")));
        }
        assertArrayEquals(before, Files.readAllBytes(img), "an aborted transaction changed a byte");
        Oracle.checkClean(img);
        assertEquals(List.of("bitmapA [auto]", "bitmapB [auto]"), Oracle.flags(img));

        // {disable B, add C, disable C, enable C}: applied; then the overwrites
        try (Chain chain = Chain.open(img, true)) {
            chain.transaction().disableBitmap(0, "bitmapB").addBitmap(0, "bitmapC", g64)
                    .disableBitmap(0, "bitmapC").enableBitmap(0, "bitmapC").commit();
        }
        Oracle.checkClean(img);
        assertEquals(List.of("bitmapA [auto]", "bitmapB []", "bitmapC [auto]"), Oracle.flags(img));
        try (Chain chain = Chain.open(img, true)) {
            writeAll(chain.top(), ref, OVERWRITES);
        }
        Oracle.checkClean(img);
        assertDirty(img, "bitmapA", po);
        assertDirty(img, "bitmapB", p);
        assertDirty(img, "bitmapC", o);
        assertTrue(Qemu.compare(img, ref));
        reads(img, "read -P 0xab 0 64k", "read -P 0xad 0xf8000 64k", "read -P 0xd5 0x108000 32k", "read -P 0x1d 0x2008000 64k",
                "read -P 0xea 0x3fe0000 64k", "read -P 0xcd 0x3ff0000 64k");

        // disable A and C; merge B and C into a new disabled D: aborted first, then for real
        try (Chain chain = Chain.open(img, true)) {
            chain.transaction().disableBitmap(0, "bitmapA").disableBitmap(0, "bitmapC").commit();
            Transaction.BitmapRef b = new Transaction.BitmapRef(0, "bitmapB");
            Transaction.BitmapRef c = new Transaction.BitmapRef(0, "bitmapC");
            assertThrows(IllegalStateException.class, () -> chain.transaction()
                    .addBitmap(0, "bitmapD", g64.disabledBitmap()).mergeBitmaps(0, "bitmapD", b, c).abort().commit());
            assertFalse(chain.bitmaps(0).contains("bitmapD"));
            chain.transaction().addBitmap(0, "bitmapD", g64.disabledBitmap()).mergeBitmaps(0, "bitmapD", b, c).commit();
            assertTrue(chain.bitmaps(0).get("bitmapD").contentEquals(chain.bitmaps(0).get("bitmapA")), "D = B | C must equal A");
        }
        Oracle.checkClean(img);
        assertEquals(List.of("bitmapA []", "bitmapB []", "bitmapC []", "bitmapD []"), Oracle.flags(img));
        assertDirty(img, "bitmapD", po);
        assertDirty(img, "bitmapA", po);

        // remove them all in one transaction
        try (Chain chain = Chain.open(img, true)) {
            chain.transaction().removeBitmap(0, "bitmapA").removeBitmap(0, "bitmapB").removeBitmap(0, "bitmapC")
                    .removeBitmap(0, "bitmapD").commit();
        }
        Oracle.checkClean(img);
        assertEquals(List.of(), Oracle.names(img));
        assertTrue(Qemu.compare(img, ref));
    }

    // --- iotest 246

    @Test
    void iotest246ResizeWithBitmaps() throws IOException {
        Path img = Oracle.create(tmp.resolve("246.qcow2"), 64 * G);
        Path ref = tmp.resolve("ref.qcow2");
        Qemu.create(ref, "64G");
        List<String> warnings = new ArrayList<>();
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite().warnings(warnings::add))) {
            Bitmaps bm = Bitmaps.of(image);
            bm.add("Bitmap0_0", Bitmaps.AddOptions.defaults().withGranularity(32 * K));
            bm.add("Bitmap1_1", Bitmaps.AddOptions.defaults().withGranularity(64 * K));
            bm.add("Bitmap2_2", Bitmaps.AddOptions.defaults().withGranularity(128 * K));
            bm.add("transient", Bitmaps.AddOptions.defaults().transientBitmap());
            Oracle.write(image, 63 * G + 100 * K, M, 1);
        }
        Qemu.io(ref, qemuWrite(63 * G + 100 * K, M, 1)).assertOk();
        assertEquals(1, warnings.size(), "the transient bitmap is dropped, with a warning: " + warnings);
        Oracle.checkClean(img);
        assertEquals(List.of("Bitmap0_0", "Bitmap1_1", "Bitmap2_2"), Oracle.names(img));
        assertDirty(img, "Bitmap0_0", runs(blocks(63 * G + 100 * K, M, 32 * K)));
        assertDirty(img, "Bitmap1_1", runs(blocks(63 * G + 100 * K, M, 64 * K)));
        assertDirty(img, "Bitmap2_2", runs(blocks(63 * G + 100 * K, M, 128 * K)));

        // grow to 70G, remove one, add one, write past the old end
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            image.resize(70 * G);
            Bitmaps.of(image).remove("Bitmap1_1");
            Bitmaps.of(image).add("Bitmap3_3");
            Oracle.write(image, 69 * G, 4096, 2);
        }
        Qemu.qemuImg("resize", ref.toString(), "70G").assertOk();
        Qemu.io(ref, qemuWrite(69 * G, 4096, 2)).assertOk();
        Oracle.checkClean(img);
        assertEquals(List.of("Bitmap0_0", "Bitmap2_2", "Bitmap3_3"), Oracle.names(img));
        for (String b : List.of("Bitmap0_0", "Bitmap2_2", "Bitmap3_3")) {
            assertEquals(70 * G, Oracle.mappedLength(img, b), b + " follows the new size");
        }
        assertDirty(img, "Bitmap0_0", runs(all(blocks(63 * G + 100 * K, M, 32 * K), blocks(69 * G, 4096, 32 * K))));
        assertDirty(img, "Bitmap2_2", runs(all(blocks(63 * G + 100 * K, M, 128 * K), blocks(69 * G, 4096, 128 * K))));
        assertDirty(img, "Bitmap3_3", runs(blocks(69 * G, 4096, 64 * K)));
        assertTrue(Qemu.compare(img, ref));

        // shrink to 50G: what lay beyond goes, the bits there too
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            image.discard(60 * G, 10 * G);
            image.resize(50 * G);
        }
        Qemu.qemuImg("resize", "--shrink", ref.toString(), "50G").assertOk();
        Oracle.checkClean(img);
        for (String b : List.of("Bitmap0_0", "Bitmap2_2", "Bitmap3_3")) {
            assertEquals(50 * G, Oracle.mappedLength(img, b), b);
            assertDirty(img, b, List.of());
        }
        assertEquals(List.of("Bitmap0_0", "Bitmap2_2", "Bitmap3_3"), Oracle.names(img));
        assertTrue(Qemu.compare(img, ref));
    }

    // --- tests/remove-bitmap-from-backing

    @Test
    void removeBitmapFromBacking() throws IOException {
        Path base = Oracle.create(tmp.resolve("base.qcow2"), M);
        Path top = Oracle.overlay(base, "top.qcow2");
        try (Qcow2Image b = Qcow2Image.open(base, OpenOptions.readWrite())) {
            Bitmaps.of(b).add("bitmap0");
            Oracle.write(b, 0, 64 * K, 1);
        }
        Oracle.checkClean(base, top);
        assertEquals(List.of("bitmap0"), Oracle.names(base));
        try (Chain chain = Chain.open(top, true)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> chain.bitmaps(1).remove("bitmap0"));
            assertEquals("Bitmap 'bitmap0' is readonly and cannot be modified", e.getMessage());
            chain.reopen(1, true);
            chain.bitmaps(1).remove("bitmap0");
            assertEquals(List.of("bitmap0"), Oracle.names(base), "not stored before the reopen read-only");
            chain.reopen(1, false);
            assertEquals(List.of(), Oracle.names(base), "the removal was stored when the layer went read-only");
        }
        Oracle.checkClean(base, top);
        reads(top, "read -P 1 0 64k", "read -P 0 64k 960k");
    }

    @Test
    void backingLayerBitmapsAreEnabledDisabledMergedAndRemovedAfterAReopen() throws IOException {
        Path base = Oracle.create(tmp.resolve("base.qcow2"), 4 * M);
        Path top = Oracle.overlay(base, "top.qcow2");
        try (Qcow2Image b = Qcow2Image.open(base, OpenOptions.readWrite())) {
            Bitmaps bm = Bitmaps.of(b);
            bm.add("x");
            bm.add("y", Bitmaps.AddOptions.defaults().disabledBitmap());
            bm.add("z");
            Oracle.write(b, 0, 4096, 1);
        }
        try (Qcow2Image t = Qcow2Image.open(top, OpenOptions.readWrite())) {
            Bitmaps.of(t).add("t");
            Oracle.write(t, 3 * M, 4096, 2);
        }
        assertEquals(List.of("x [auto]", "y []", "z [auto]"), Oracle.flags(base));
        try (Chain chain = Chain.open(top, true)) {
            assertThrows(IllegalStateException.class, () -> chain.bitmaps(1).merge("y", chain.bitmaps(0).get("t")));
            chain.reopen(1, true);
            Bitmaps bm = chain.bitmaps(1);
            bm.disable("x");
            bm.enable("y");
            bm.merge("y", chain.bitmaps(0).get("t"));
            bm.remove("z");
            chain.reopen(1, false);
        }
        Oracle.checkClean(base, top);
        assertEquals(List.of("x []", "y [auto]"), Oracle.flags(base));
        assertDirty(base, "x", runs(0, 64 * K));
        assertDirty(base, "y", runs(3 * M, 64 * K));
        assertDirty(top, "t", runs(3 * M, 64 * K));
        reads(top, "read -P 1 0 4k", "read -P 2 3M 4k");
    }

    // --- the reopen rules and the persistence change

    @Test
    void reopenSetsInUseBeforeTheFirstWriteAndClearsItGoingReadOnly() throws IOException {
        Path base = Oracle.create(tmp.resolve("base.qcow2"), 4 * M);
        Path top = Oracle.overlay(base, "top.qcow2");
        try (Qcow2Image b = Qcow2Image.open(base, OpenOptions.readWrite())) {
            Bitmaps.of(b).add("rec");
            Bitmaps.of(b).add("off", Bitmaps.AddOptions.defaults().disabledBitmap());
        }
        try (Chain chain = Chain.open(top, true)) {
            Qcow2Image rw = chain.reopen(1, true);
            assertFalse(chain.bitmaps(1).get("rec").isReadOnly(), "writable after the reopen");
            Oracle.write(rw, M, 4096, 5);
            assertEquals(List.of("rec [in-use, auto]", "off [in-use]"), Oracle.flags(base), "in_use on every bitmap, as QEMU");
            chain.reopen(1, false);
            assertEquals(List.of("rec [auto]", "off []"), Oracle.flags(base));
            assertTrue(chain.bitmaps(1).get("rec").isReadOnly());
        }
        Oracle.checkClean(base, top);
        assertDirty(base, "rec", runs(M, 64 * K));
        assertDirty(base, "off", List.of());
        reads(top, "read -P 5 1M 4k");
    }

    @Test
    void persistenceChangeFollowsTheInUseRules() throws IOException {
        Path img = Oracle.create(tmp.resolve("p.qcow2"), 4 * M);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            Bitmaps bm = Bitmaps.of(image);
            bm.add("t", Bitmaps.AddOptions.defaults().transientBitmap());
            Oracle.write(image, 0, 4096, 1);
            bm.setPersistent("t", true);
            assertEquals(List.of(), Oracle.names(img), "nothing written before a store point");
            bm.store();
            assertEquals(List.of("t [auto]"), Oracle.flags(img), "stored consistent");
            Oracle.write(image, M, 4096, 2);
            assertEquals(List.of("t [in-use, auto]"), Oracle.flags(img), "in_use before the next write lands");
        }
        Oracle.checkClean(img);
        assertEquals(List.of("t [auto]"), Oracle.flags(img));
        assertDirty(img, "t", runs(0, 64 * K, M, 64 * K));
        // and back: a persistent bitmap made transient leaves the image at the next store
        List<String> warnings = new ArrayList<>();
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite().warnings(warnings::add))) {
            Bitmaps.of(image).setPersistent("t", false);
            assertTrue(Bitmaps.of(image).get("t").count() > 0);
        }
        assertEquals(List.of(), Oracle.names(img));
        assertEquals(1, warnings.size(), warnings.toString());
        Oracle.checkClean(img);
        reads(img, "read -P 1 0 4k", "read -P 2 1M 4k");
    }
}
