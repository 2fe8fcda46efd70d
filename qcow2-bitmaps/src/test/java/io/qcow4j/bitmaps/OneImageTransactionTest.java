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
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Transaction#of} over one open image (what qemu-img bitmap's actions run through)
 * and {@link Bitmaps#stored}, against qemu-img's view of the same file.
 */
class OneImageTransactionTest {

    @Test
    void aFailingStepRestoresTheBitmapsAndTheCloseWritesNothing(@TempDir Path tmp) throws IOException {
        Path p = tmp.resolve("t.qcow2");
        Qemu.create(p, "64M");
        Qemu.qemuImg("bitmap", "--add", p.toString(), "a").assertOk();
        Qemu.io(p, "write 0 64k").assertOk();
        byte[] before = Files.readAllBytes(p);
        try (Qcow2Image img = Qcow2Image.open(p, OpenOptions.readWrite())) {
            Transaction tx = Transaction.of(img)
                    .clearBitmap(0, "a")
                    .addBitmap(0, "x", Bitmaps.AddOptions.defaults())
                    .step(0, b -> b.get("x").set(1 << 20, 4096))
                    .step(0, b -> {
                        throw new IllegalStateException("planted");
                    });
            IllegalStateException e = assertThrows(IllegalStateException.class, tx::commit);
            assertEquals("planted", e.getMessage());
            Bitmaps bitmaps = Bitmaps.of(img);
            assertFalse(bitmaps.contains("x"));
            assertEquals(65536, bitmaps.get("a").count(), "a's bits back");
        }
        assertArrayEquals(before, Files.readAllBytes(p), "nothing stored: the file is byte-identical");
    }

    @Test
    void storedShowsTheDirectoryAsQemuImgInfoDoes(@TempDir Path tmp) throws IOException {
        Path p = tmp.resolve("s.qcow2");
        Qemu.create(p, "64M");
        Qemu.qemuImg("bitmap", "--add", p.toString(), "a").assertOk();
        Qemu.qemuImg("bitmap", "--add", "-g", "128k", "--disable", p.toString(), "b").assertOk();
        try (Qcow2Image img = Qcow2Image.open(p, OpenOptions.readWrite())) {
            Bitmaps bitmaps = Bitmaps.of(img);
            Transaction.of(img).enableBitmap(0, "b").addBitmap(0, "c", Bitmaps.AddOptions.defaults()).commit();
            // memory changed, the directory not yet: enable and add reach it at the store
            assertEquals(List.of(new Bitmaps.Stored("a", 65536, false, true), new Bitmaps.Stored("b", 131072, false, false)),
                    bitmaps.stored());
            assertEquals(fromQemu(p), bitmaps.stored());
            img.write(0, ByteBuffer.allocate(4096));
            // the first guest write marks the persistent bitmaps in_use on disk, before the data
            assertEquals(List.of(new Bitmaps.Stored("a", 65536, true, true), new Bitmaps.Stored("b", 131072, true, false)),
                    bitmaps.stored());
            assertEquals(fromQemu(p), bitmaps.stored());
            bitmaps.store();
            assertEquals(List.of(new Bitmaps.Stored("a", 65536, false, true), new Bitmaps.Stored("b", 131072, false, true),
                    new Bitmaps.Stored("c", 65536, false, true)), bitmaps.stored());
            assertEquals(fromQemu(p), bitmaps.stored());
        }
        assertEquals(0, Qemu.check(p).exitCode());
    }

    /** qemu-img info's bitmaps (-U: the image is open here). */
    private static List<Bitmaps.Stored> fromQemu(Path p) {
        List<Bitmaps.Stored> out = new ArrayList<>();
        for (JsonNode b : BitmapsQemuTest.bitmapsOf(p)) {
            List<String> flags = new ArrayList<>();
            b.path("flags").forEach(f -> flags.add(f.asText()));
            out.add(new Bitmaps.Stored(b.path("name").asText(), b.path("granularity").asLong(),
                    flags.contains("in-use"), flags.contains("auto")));
        }
        assertTrue(out.size() >= 2, out.toString());
        return out;
    }
}
