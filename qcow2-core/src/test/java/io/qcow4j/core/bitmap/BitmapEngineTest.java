package io.qcow4j.core.bitmap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.DirtyExtents;
import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The engine's bitmap store against QEMU: what qemu writes we read, what we write qemu reads. */
class BitmapEngineTest {

    static List<List<Long>> extents(Qcow2Image img, String name) throws IOException {
        ImageBitmaps m = img.bitmaps();
        PersistentBitmap b = m.get(name);
        BitmapBits bits = m.bits(b);
        List<List<Long>> out = new ArrayList<>();
        long g = b.granularity();
        long size = img.size();
        long bit = 0;
        while (bit < bits.sizeBits()) {
            boolean dirty = bits.get(bit);
            long next = dirty ? bits.nextClear(bit) : bits.nextSet(bit);
            if (next < 0) {
                next = bits.sizeBits();
            }
            DirtyExtents.add(out, bit * g, Math.min(next * g, size) - bit * g, dirty);
            bit = next;
        }
        return out;
    }

    @Test
    void readsBitmapsQemuWrote(@TempDir Path tmp) throws IOException {
        Path img = TestData.copyToTemp("bitmaps.qcow2", tmp);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            for (String name : List.of("b-enabled", "b-disabled")) {
                assertEquals(DirtyExtents.parseNbdinfo(Qemu.nbdMap(img, name)), extents(image, name), name);
            }
            assertTrue(image.bitmaps().get("b-enabled").isEnabled());
            assertFalse(image.bitmaps().get("b-disabled").isEnabled());
        }
    }

    @Test
    void extensionWithoutAutoclearBitIsIgnoredAndDroppedOnWrite(@TempDir Path tmp) throws IOException {
        Path img = TestData.copyToTemp("bitmaps.qcow2", tmp);
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(img.toFile(), "rw")) {
            f.seek(io.qcow4j.core.format.Header.AUTOCLEAR_FEATURES);
            f.writeLong(0);
        }
        List<String> warnings = new ArrayList<>();
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite().warnings(warnings::add))) {
            assertTrue(image.bitmaps().list().isEmpty());
            assertTrue(warnings.get(0).contains("inconsistent"), warnings.toString());
            image.write(0, ByteBuffer.allocate(512));
        }
        assertTrue(Qemu.infoJson(img).path("format-specific").path("data").path("bitmaps").isMissingNode());
        assertEquals(3, Qemu.check(img).exitCode(), "the old bitmap clusters are leaks");
        Qemu.check(img, "-r", "leaks").assertOk();
        assertEquals(0, Qemu.check(img).exitCode());
    }

    @Test
    void writesAreTrackedAndStoredForQemu(@TempDir Path tmp) throws IOException {
        Path img = TestData.copyToTemp("bitmaps.qcow2", tmp);
        byte[] before = java.nio.file.Files.readAllBytes(img);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            image.bitmaps().bits(image.bitmaps().get("b-enabled"));
        }
        org.junit.jupiter.api.Assertions.assertArrayEquals(before, java.nio.file.Files.readAllBytes(img), "a read-only open wrote");
        // the same writes through qemu-io on a twin give the reference maps
        Path twin = tmp.resolve("twin.qcow2");
        java.nio.file.Files.copy(img, twin);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            image.write(7_000_000, ByteBuffer.allocate(100));
            JsonNode during = Qemu.infoJson(img);
            // like qemu-io holding the image: in_use on every bitmap, the disabled one too
            for (JsonNode b : during.path("format-specific").path("data").path("bitmaps")) {
                assertTrue(b.path("flags").toString().contains("in-use"), "in_use not set while open: " + during);
            }
            image.writeZeroes(2_000_000, 300_000);
            image.discard(12L << 20, 1L << 20);
            image.bitmaps().add("new-one", 65536, true, true);
            image.write(15L << 20, ByteBuffer.allocate(1));
        }
        Qemu.io(twin, "write 7000000 100", "write -z 2000000 300000", "discard 12M 1M").assertOk();
        Qemu.qemuImg("bitmap", "--add", twin.toString(), "new-one").assertOk();
        Qemu.io(twin, "write 15M 1").assertOk();
        assertEquals(0, Qemu.check(img).exitCode(), Qemu.check(img).stdout());
        JsonNode ours = Qemu.infoJson(img).path("format-specific").path("data").path("bitmaps");
        JsonNode theirs = Qemu.infoJson(twin).path("format-specific").path("data").path("bitmaps");
        assertEquals(theirs, ours);
        for (String name : List.of("b-enabled", "b-disabled", "new-one")) {
            assertEquals(Qemu.nbdMap(twin, name), Qemu.nbdMap(img, name), name);
        }
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            assertEquals(DirtyExtents.parseNbdinfo(Qemu.nbdMap(img, "new-one")), extents(image, "new-one"));
        }
    }

    /**
     * Stores write only what changed: a fully dirty bitmap cluster becomes an all-ones
     * table entry (no data cluster), a partly dirty one keeps its data cluster and is
     * rewritten in place chunk by chunk; QEMU reads both right and rewrites them its way.
     */
    @Test
    void uniformClustersAndInPlaceChunksReadBackInQemu(@TempDir Path tmp) throws IOException {
        // 8 GiB at 512 B granularity: 2 MiB of bitmap data, 32 clusters of 64 KiB, each
        // covering 256 MiB of the disk; a 4 KiB chunk covers 16 MiB
        Path img = tmp.resolve("a.qcow2");
        Qemu.create(img, "8G");
        Qemu.qemuImg("bitmap", "--add", "-g", "512", img.toString(), "b").assertOk();
        Path twin = tmp.resolve("twin.qcow2");
        java.nio.file.Files.copy(img, twin);
        long mib = 1L << 20;
        long dataOffset;
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            image.writeZeroes(0, 256 * mib);                          // bitmap cluster 0: all ones
            image.write(256 * mib + 3 * mib, ByteBuffer.allocate(4096)); // cluster 1: a few bits
            image.storeBitmaps();
            PersistentBitmap b = image.bitmaps().get("b");
            assertEquals(io.qcow4j.core.format.BitmapTableEntry.ALL_ONES, b.table[0]);
            dataOffset = io.qcow4j.core.format.BitmapTableEntry.offset(b.table[1]);
            assertTrue(dataOffset != 0, "cluster 1 has data");
            assertEquals(0, b.table[2]);
            image.flush();
            assertEquals(0, Qemu.check(img, "-U").exitCode(), "clean once flushed while open");
            // under in_use again: another chunk of cluster 1, written in place
            image.write(256 * mib + 200 * mib, ByteBuffer.allocate(512));
            image.storeBitmaps();
            assertEquals(dataOffset, io.qcow4j.core.format.BitmapTableEntry.offset(b.table[1]), "rewritten in place");
        }
        Qemu.io(twin, "write -z 0 256M", "write 259M 4k", "write 456M 512").assertOk();
        assertEquals(0, Qemu.check(img).exitCode(), Qemu.check(img).stdout());
        assertEquals(Qemu.nbdMap(twin, "b"), Qemu.nbdMap(img, "b"));
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            assertEquals(DirtyExtents.parseNbdinfo(Qemu.nbdMap(twin, "b")), extents(image, "b"));
        }
        // QEMU loads the all-ones entry, then stores the bitmap its own way
        Qemu.io(img, "write 1G 64k").assertOk();
        Qemu.io(twin, "write 1G 64k").assertOk();
        assertEquals(0, Qemu.check(img).exitCode(), Qemu.check(img).stdout());
        assertEquals(Qemu.nbdMap(twin, "b"), Qemu.nbdMap(img, "b"));
    }
}
