package io.qcow4j.bitmaps;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.DirtyExtents;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bitmap operations by qcow4j and by qemu-img on twin images end in the same state. */
class BitmapsQemuTest {

    static JsonNode bitmapsOf(Path img) {
        return Qemu.infoJson(img).path("format-specific").path("data").path("bitmaps");
    }

    static List<List<Long>> ours(DirtyBitmap b) {
        List<List<Long>> out = new ArrayList<>();
        for (DirtyBitmap.Extent e : b.extents()) {
            DirtyExtents.add(out, e.start(), e.length(), e.dirty());
        }
        return out;
    }

    @Test
    void sameActionsAsQemuImgBitmap(@TempDir Path tmp) throws IOException {
        Path ours = tmp.resolve("ours.qcow2");
        Path theirs = tmp.resolve("theirs.qcow2");
        for (Path p : List.of(ours, theirs)) {
            Qemu.create(p, "64M");
            Qemu.io(p, "write 0 1M", "write 10M 64k").assertOk();
        }
        // qemu-img: one call per step, as a script would do it
        Qemu.qemuImg("bitmap", "--add", theirs.toString(), "a").assertOk();
        Qemu.qemuImg("bitmap", "--add", "-g", "512k", "--disable", theirs.toString(), "b").assertOk();
        Qemu.io(theirs, "write 20M 100k", "discard 30M 1M").assertOk();
        Qemu.qemuImg("bitmap", "--add", "-g", "128k", theirs.toString(), "c").assertOk();
        Qemu.qemuImg("bitmap", "--merge", "a", theirs.toString(), "b").assertOk();
        Qemu.qemuImg("bitmap", "--disable", theirs.toString(), "a").assertOk();
        Qemu.io(theirs, "write -z 40M 64k").assertOk();
        Qemu.qemuImg("bitmap", "--clear", theirs.toString(), "c").assertOk();
        Qemu.qemuImg("bitmap", "--enable", theirs.toString(), "b").assertOk();
        Qemu.io(theirs, "write 50M 4k").assertOk();
        Qemu.qemuImg("bitmap", "--add", theirs.toString(), "gone").assertOk();
        Qemu.qemuImg("bitmap", "--remove", theirs.toString(), "gone").assertOk();

        try (Qcow2Image img = Qcow2Image.open(ours, OpenOptions.readWrite())) {
            Bitmaps bm = Bitmaps.of(img);
            bm.add("a");
            bm.add("b", Bitmaps.AddOptions.defaults().withGranularity(512 << 10).disabledBitmap());
            img.write(20 << 20, ByteBuffer.allocate(100 << 10));
            img.discard(30 << 20, 1 << 20);
            bm.add("c", Bitmaps.AddOptions.defaults().withGranularity(128 << 10));
        }
        try (Qcow2Image img = Qcow2Image.open(ours, OpenOptions.readWrite())) {
            Bitmaps bm = Bitmaps.of(img);
            bm.merge("b", bm.get("a"));
            bm.disable("a");
            img.writeZeroes(40 << 20, 64 << 10);
            bm.clear("c");
            bm.enable("b");
            img.write(50 << 20, ByteBuffer.allocate(4096));
            bm.add("gone");
            bm.store();
            bm.remove("gone");
        }
        assertEquals(0, Qemu.check(ours).exitCode(), Qemu.check(ours).stdout());
        assertEquals(bitmapsOf(theirs), bitmapsOf(ours));
        for (String name : List.of("a", "b", "c")) {
            assertEquals(Qemu.nbdMap(theirs, name), Qemu.nbdMap(ours, name), name);
        }
        try (Qcow2Image img = Qcow2Image.open(ours, OpenOptions.readOnly())) {
            for (DirtyBitmap b : Bitmaps.of(img).list()) {
                assertEquals(DirtyExtents.parseNbdinfo(Qemu.nbdMap(theirs, b.name())), ours(b), b.name());
            }
        }
    }

    @Test
    void killedWriterLeavesInconsistentBitmapsThatCanOnlyBeRemoved(@TempDir Path tmp) throws Exception {
        Path img = tmp.resolve("crash.qcow2");
        Qemu.create(img, "16M");
        Qemu.qemuImg("bitmap", "--add", img.toString(), "keep").assertOk();
        Qemu.qemuImg("bitmap", "--add", "--disable", img.toString(), "off").assertOk();
        List<String> cmd = io.qcow4j.testing.ChildJvm.command(List.of(), HoldOpenWriter.class, img.toString());
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        assertEquals("written", new String(p.getInputStream().readNBytes(7)));
        p.destroyForcibly();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        JsonNode bitmaps = bitmapsOf(img);
        assertEquals("[\"in-use\",\"auto\"]", bitmaps.get(0).path("flags").toString(), bitmaps.toString());
        // as with qemu-io: a disabled bitmap is in_use too while the image is open read-write
        assertEquals("[\"in-use\"]", bitmaps.get(1).path("flags").toString(), bitmaps.toString());
        byte[] before = Files.readAllBytes(img);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            Bitmaps bm = Bitmaps.of(image);
            DirtyBitmap keep = bm.get("keep");
            assertTrue(keep.isInconsistent());
            assertTrue(bm.get("off").isInconsistent());
            for (Runnable r : List.<Runnable>of(() -> bm.clear("keep"), () -> bm.enable("keep"),
                    () -> bm.merge("keep", bm.get("off")), () -> bm.merge("off", bm.get("keep")))) {
                IllegalStateException e = assertThrows(IllegalStateException.class, r::run);
                assertTrue(e.getMessage().contains("inconsistent"), e.getMessage());
            }
        }
        assertArrayEquals(before, Files.readAllBytes(img), "refused operations changed the file");
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            Bitmaps.of(image).remove("keep");
        }
        assertEquals(0, Qemu.check(img).exitCode(), Qemu.check(img).stdout());
        assertEquals(1, bitmapsOf(img).size());
    }

    /** Child process: opens read-write, writes (which marks the bitmaps in_use), waits to be killed. */
    public static final class HoldOpenWriter {
        public static void main(String[] args) throws Exception {
            Qcow2Image img = Qcow2Image.open(Path.of(args[0]), OpenOptions.readWrite());
            img.write(0, ByteBuffer.allocate(4096));
            // durable before the kill: an unflushed write's L2 update would be lost, its cluster leaked
            img.flush();
            System.out.print("written");
            System.out.flush();
            Thread.sleep(60_000);
        }
    }

    @Test
    void limitsAreRefusedAndTheFileIsUnchanged(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("l.qcow2");
        Path v2 = tmp.resolve("v2.qcow2");
        Qemu.create(img, "16T", "cluster_size=2M");
        Qemu.create(v2, "1G", "compat=0.10");
        byte[] before = Files.readAllBytes(img);
        byte[] beforeV2 = Files.readAllBytes(v2);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite());
             Qcow2Image old = Qcow2Image.open(v2, OpenOptions.readWrite())) {
            Bitmaps bm = Bitmaps.of(image);
            assertRefused(() -> bm.add("g", Bitmaps.AddOptions.defaults().withGranularity(256)), "at least 512");
            assertRefused(() -> bm.add("g", Bitmaps.AddOptions.defaults().withGranularity(4L << 30)), "Granularity exceeds maximum");
            assertRefused(() -> bm.add("g", Bitmaps.AddOptions.defaults().withGranularity(512)), "Too much space");
            assertRefused(() -> bm.add("x".repeat(1024)), "Bitmap name too long");
            bm.add("dup");
            assertRefused(() -> bm.add("dup"), "already exists");
            assertRefused(() -> Bitmaps.of(old).add("b"), "Cannot store dirty bitmaps in qcow2 v2 files");
            bm.remove("dup");
        }
        assertArrayEquals(before, Files.readAllBytes(img));
        assertArrayEquals(beforeV2, Files.readAllBytes(v2));
    }

    @Test
    void atMost65535Bitmaps(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("many.qcow2");
        Qemu.create(img, "1M");
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            Bitmaps bm = Bitmaps.of(image);
            for (int i = 0; i < 65535; i++) {
                bm.add("b" + i, Bitmaps.AddOptions.defaults().disabledBitmap());
            }
            assertRefused(() -> bm.add("one-more"), "Maximum number of persistent bitmaps");
            for (int i = 0; i < 65535; i++) {
                bm.remove("b" + i);
            }
        }
        assertEquals(0, Qemu.check(img).exitCode());
    }

    @Test
    void directorySizeLimit(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("dir.qcow2");
        Qemu.create(img, "1M");
        byte[] before = Files.readAllBytes(img);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            Bitmaps bm = Bitmaps.of(image);
            String pad = "n".repeat(1000);
            int i = 0;
            try {
                for (; i < 65535; i++) {
                    bm.add(pad + i, Bitmaps.AddOptions.defaults().disabledBitmap());
                }
            } catch (IllegalArgumentException e) {
                assertTrue(e.getMessage().contains("Not enough space in the bitmap directory"), e.getMessage());
            }
            // 1032-byte entries: the 67,107,840-byte directory holds 65,026 of them
            assertEquals(65026, i);
            for (int k = 0; k < i; k++) {
                bm.remove(pad + k);
            }
        }
        assertArrayEquals(before, Files.readAllBytes(img));
    }

    static void assertRefused(ThrowingRunnable r, String message) {
        RuntimeException e = assertThrows(RuntimeException.class, r::run);
        assertTrue(e.getMessage().contains(message), "expected '" + message + "' in: " + e.getMessage());
    }

    interface ThrowingRunnable {
        void run() throws IOException;
    }

    @Test
    void sixteenTebibyteFullBitmapLoadsMergesAndStores(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("big.qcow2");
        Qemu.create(img, "16T", "cluster_size=2M");
        Qemu.qemuImg("bitmap", "--add", "-g", "64k", img.toString(), "full").assertOk();
        // a zero write over the whole disk dirties every bit without allocating data
        Qemu.io(img, "write -n -z 0 16T").assertOk();
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            Bitmaps bm = Bitmaps.of(image);
            DirtyBitmap full = bm.get("full");
            assertEquals(16L << 40, full.count());
            bm.add("copy", Bitmaps.AddOptions.defaults().withGranularity(65536).disabledBitmap());
            bm.merge("copy", full);
            assertTrue(bm.get("copy").contentEquals(full));
        }
        assertEquals(0, Qemu.check(img).exitCode());
        JsonNode list = bitmapsOf(img);
        assertEquals(2, list.size());
        String map = Qemu.nbdMap(img, "copy");
        assertEquals(List.of(List.of(0L, 16L << 40, 1L)), DirtyExtents.parseNbdinfo(map));
        assertEquals(Qemu.nbdMap(img, "full"), map);
    }
}
