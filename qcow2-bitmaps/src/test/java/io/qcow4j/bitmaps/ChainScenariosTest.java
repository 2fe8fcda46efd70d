package io.qcow4j.bitmaps;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import io.qcow4j.core.OpenOptions;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.testing.DirtyExtents;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * QEMU's bitmap scenarios (iotests 165, 176, 236, 246, 254, 260 and
 * remove-bitmap-from-backing) with qcow4j doing the work and qemu-img, qemu-io, qemu-nbd
 * and nbdinfo checking it.
 */
class ChainScenariosTest {
    static final long MIB = 1 << 20;

    static void checkClean(Path... images) {
        for (Path p : images) {
            Qemu.Result r = Qemu.besideImage(p, "qemu-img", "check", p.getFileName().toString());
            assertEquals(0, r.exitCode(), p + ": " + r.stdout() + r.stderr());
        }
    }

    static List<List<Long>> nbd(Path img, String bitmap) {
        return DirtyExtents.parseNbdinfo(Qemu.besideImageNbdMap(img, bitmap));
    }

    static long dirtyBytes(List<List<Long>> extents) {
        return extents.stream().filter(e -> e.get(2) != 0).mapToLong(e -> e.get(1)).sum();
    }

    static void write(Qcow2Image img, long off, int len, int pattern) throws IOException {
        byte[] b = new byte[len];
        java.util.Arrays.fill(b, (byte) pattern);
        img.write(off, ByteBuffer.wrap(b));
    }

    @Test
    void iotest165PersistenceAndReadOnlyOpen(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("165.qcow2");
        Qemu.create(img, "1G");
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            Bitmaps.of(image).add("bitmap0", Bitmaps.AddOptions.defaults().withGranularity(65536));
            write(image, 0, 64 << 10, 0xa);
            write(image, 300 * MIB, 1 << 20, 0xb);
        }
        List<List<Long>> first = nbd(img, "bitmap0");
        byte[] bytes = Files.readAllBytes(img);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            DirtyBitmap b = Bitmaps.of(image).get("bitmap0");
            assertTrue(b.isReadOnly());
            assertThrows(IllegalStateException.class, () -> Bitmaps.of(image).clear("bitmap0"));
            assertThrows(IOException.class, () -> write(image, 0, 512, 1));
        }
        assertArrayEquals(bytes, Files.readAllBytes(img), "a read-only open changed the file");
        // test_reopen_rw: a read-only chain, reopened read-write, records again
        try (Chain chain = Chain.open(img, false)) {
            assertThrows(IOException.class, () -> write(chain.top(), 0, 512, 1));
            Qcow2Image rw = chain.reopen(0, true);
            write(rw, 500 * MIB, 4096, 0xc);
            chain.reopen(0, false);
        }
        List<List<Long>> after = nbd(img, "bitmap0");
        assertEquals(dirtyBytes(first) + 65536, dirtyBytes(after));
        checkClean(img);
    }

    @Test
    void iotest236TransactionsAndMerges(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("236.qcow2");
        Qemu.create(img, "8M");
        try (Chain chain = Chain.open(img, true)) {
            Bitmaps bm = chain.bitmaps(0);
            bm.add("bitmapA", Bitmaps.AddOptions.defaults().withGranularity(65536));
            bm.add("bitmapB", Bitmaps.AddOptions.defaults().withGranularity(65536));
            write(chain.top(), 0, 64 << 10, 0x7b);
            write(chain.top(), 1 * MIB, 64 << 10, 0x6c);
            chain.top().storeBitmaps();
        }
        byte[] before = Files.readAllBytes(img);
        try (Chain chain = Chain.open(img, true)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> chain.transaction()
                    .disableBitmap(0, "bitmapB").addBitmap(0, "bitmapC", Bitmaps.AddOptions.defaults())
                    .clearBitmap(0, "bitmapA").abort().commit());
            assertTrue(e.getMessage().contains("abort"));
            assertTrue(chain.bitmaps(0).get("bitmapB").isEnabled());
            assertFalse(chain.bitmaps(0).contains("bitmapC"));
            assertEquals(128 << 10, chain.bitmaps(0).get("bitmapA").count());
        }
        assertArrayEquals(before, Files.readAllBytes(img), "an aborted transaction changed a byte");
        try (Chain chain = Chain.open(img, true)) {
            chain.transaction().disableBitmap(0, "bitmapB").addBitmap(0, "bitmapC", Bitmaps.AddOptions.defaults())
                    .disableBitmap(0, "bitmapC").enableBitmap(0, "bitmapC").commit();
            write(chain.top(), 2 * MIB, 64 << 10, 0x6c);
            write(chain.top(), 3 * MIB, 64 << 10, 0x6c);
            chain.transaction().disableBitmap(0, "bitmapA").disableBitmap(0, "bitmapC").commit();
            Bitmaps bm = chain.bitmaps(0);
            assertThrows(IllegalStateException.class, () -> chain.transaction()
                    .addBitmap(0, "bitmapD", Bitmaps.AddOptions.defaults().disabledBitmap())
                    .mergeBitmaps(0, "bitmapD", new Transaction.BitmapRef(0, "bitmapB"), new Transaction.BitmapRef(0, "bitmapC"))
                    .abort().commit());
            assertFalse(bm.contains("bitmapD"));
            chain.transaction().addBitmap(0, "bitmapD", Bitmaps.AddOptions.defaults().disabledBitmap())
                    .mergeBitmaps(0, "bitmapD", new Transaction.BitmapRef(0, "bitmapB"), new Transaction.BitmapRef(0, "bitmapC"))
                    .commit();
            assertTrue(bm.get("bitmapD").contentEquals(bm.get("bitmapA")), "D = B | C must equal A");
        }
        assertEquals(nbd(img, "bitmapA"), nbd(img, "bitmapD"));
        checkClean(img);
    }

    @Test
    void iotest246ResizeWithBitmaps(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("246.qcow2");
        Qemu.create(img, "64G");
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            Bitmaps bm = Bitmaps.of(image);
            bm.add("Bitmap0_0", Bitmaps.AddOptions.defaults().withGranularity(32768));
            bm.add("Bitmap1_1", Bitmaps.AddOptions.defaults().withGranularity(65536));
            bm.add("Bitmap2_2", Bitmaps.AddOptions.defaults().withGranularity(131072));
            bm.add("transient", Bitmaps.AddOptions.defaults().transientBitmap());
            write(image, 63L << 30, 1 << 20, 1);
        }
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            image.resize(70L << 30);
            Bitmaps.of(image).remove("Bitmap1_1");
            Bitmaps.of(image).add("Bitmap3_3");
            write(image, 69L << 30, 4096, 2);
        }
        checkClean(img);
        assertEquals(70L << 30, dirtyLengthOfWholeMap(img, "Bitmap0_0"));
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            image.discard(60L << 30, 10L << 30);
            image.resize(50L << 30);
        }
        checkClean(img);
        for (String b : List.of("Bitmap0_0", "Bitmap2_2", "Bitmap3_3")) {
            assertEquals(50L << 30, dirtyLengthOfWholeMap(img, b), b);
        }
        assertEquals(List.of("Bitmap0_0", "Bitmap2_2", "Bitmap3_3"), names(img));
    }

    static long dirtyLengthOfWholeMap(Path img, String bitmap) {
        return nbd(img, bitmap).stream().mapToLong(e -> e.get(1)).sum();
    }

    static List<String> names(Path img) {
        List<String> out = new java.util.ArrayList<>();
        Qemu.infoJson(img).path("format-specific").path("data").path("bitmaps").forEach(n -> out.add(n.path("name").asText()));
        return out;
    }

    @Test
    void removeBitmapFromBacking(@TempDir Path tmp) throws IOException {
        Path base = tmp.resolve("base.qcow2");
        Path top = tmp.resolve("top.qcow2");
        Qemu.create(base, "1M");
        Qemu.qemuImg("bitmap", "--add", base.toString(), "bitmap0").assertOk();
        Qemu.besideImage(top, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2").assertOk();
        try (Chain chain = Chain.open(top, true)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> chain.bitmaps(1).remove("bitmap0"));
            assertTrue(e.getMessage().contains("readonly"), e.getMessage());
            chain.reopen(1, true);
            chain.bitmaps(1).remove("bitmap0");
            chain.reopen(1, false);
            assertTrue(names(base).isEmpty(), "the removal was stored when the layer went read-only");
        }
        checkClean(base, top);
    }
}
