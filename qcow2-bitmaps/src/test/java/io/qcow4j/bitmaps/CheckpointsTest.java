package io.qcow4j.bitmaps;

import static io.qcow4j.bitmaps.ChainScenariosTest.checkClean;
import static io.qcow4j.bitmaps.ChainScenariosTest.names;
import static io.qcow4j.bitmaps.ChainScenariosTest.nbd;
import static io.qcow4j.bitmaps.ChainScenariosTest.write;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Checkpoint create and delete are all or nothing, across the layers of a chain. */
class CheckpointsTest {
    static final long MIB = 1 << 20;

    @TempDir
    Path tmp;

    /** qemu-io writes and is killed (abort): the bitmaps (QEMU marks them all) stay in_use, inconsistent from now on. */
    static void crashWhileWriting(Path img) {
        Qemu.Result r = Qemu.run(img.getParent(), Duration.ofSeconds(60), "qemu-io", "-f", "qcow2",
                "-c", "write 0 64k", "-c", "abort", img.toString());
        assertTrue(r.exitCode() != 0, r.describe());
        assertTrue(Qemu.infoJson(img).toString().contains("in-use"), "no bitmap was left in_use");
    }

    private static List<String> checkpointNames(Chain chain) {
        return chain.checkpoints().list().stream().map(Checkpoints.Checkpoint::name).toList();
    }

    @Test
    void aRefusedDeleteAcrossLayersChangesNoByte() throws IOException {
        // c1 in the base was recording when a writer crashed; c2 lives in the overlay
        Path base = tmp.resolve("base.qcow2");
        Qemu.create(base, "4M");
        try (Chain chain = Chain.open(base, true)) {
            chain.checkpoints().create("c1");
        }
        crashWhileWriting(base);
        Path top = tmp.resolve("top.qcow2");
        try (Chain chain = Chain.open(base, true)) {
            chain.transaction().externalSnapshot(top, "base.qcow2").checkpoint("c2").commit();
            write(chain.top(), MIB, 4096, 1);
        }
        byte[] b0 = Files.readAllBytes(base);
        byte[] t0 = Files.readAllBytes(top);
        List<String> warnings = new ArrayList<>();
        try (Chain chain = Chain.open(top, true, warnings::add)) {
            // merging c2 into c1 needs c1's bits, which the crash lost: the whole delete is refused
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> chain.checkpoints().delete("c2"));
            assertTrue(e.getMessage().contains("'c1' is inconsistent"), e.getMessage());
            assertEquals(List.of("c1", "c2"), checkpointNames(chain));
            assertTrue(chain.qcow2(1).isReadOnly(), "the base went back to read-only");
            assertTrue(chain.bitmaps(0).get("c2").isEnabled());
        }
        assertArrayEquals(b0, Files.readAllBytes(base), "a refused delete changed the base");
        assertArrayEquals(t0, Files.readAllBytes(top), "a refused delete changed the top");
        assertEquals(List.of(), warnings);
        // deleting c1 itself works (removal is how an inconsistent bitmap is repaired)
        try (Chain chain = Chain.open(top, true)) {
            chain.checkpoints().delete("c1");
            assertEquals(List.of("c2"), checkpointNames(chain));
        }
        assertEquals(List.of(), names(base));
        checkClean(base, top);
    }

    @Test
    void aRefusedDeleteInOneImageChangesNoByte() throws IOException {
        Path img = tmp.resolve("one.qcow2");
        Qemu.create(img, "4M");
        try (Chain chain = Chain.open(img, true)) {
            chain.checkpoints().create("c1");
            chain.checkpoints().create("c2");
        }
        crashWhileWriting(img); // QEMU marks every bitmap in_use at a read-write open: c1 and c2 are inconsistent now
        try (Chain chain = Chain.open(img, true)) {
            chain.checkpoints().create("c3"); // c2 is inconsistent, hence disabled: c3 simply starts
            write(chain.top(), 2 * MIB, 512, 1);
        }
        byte[] before = Files.readAllBytes(img);
        try (Chain chain = Chain.open(img, true)) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> chain.checkpoints().delete("c3"));
            assertTrue(e.getMessage().contains("'c2' is inconsistent"), e.getMessage());
            // c2's own delete would merge its unknown bits into c1: refused as well
            assertThrows(IllegalStateException.class, () -> chain.checkpoints().delete("c2"));
            assertEquals(List.of("c1", "c2", "c3"), checkpointNames(chain));
        }
        assertArrayEquals(before, Files.readAllBytes(img), "a refused delete changed the image");
        checkClean(img);
    }

    @Test
    void deletingTheTopsRecordingCheckpointMergesIntoTheBaseAndWarns() throws IOException {
        Path base = tmp.resolve("base.qcow2");
        Qemu.create(base, "4M");
        Path top = tmp.resolve("top.qcow2");
        try (Chain chain = Chain.open(base, true)) {
            chain.checkpoints().create("c1");
            write(chain.top(), 0, 512, 1);
            chain.transaction().externalSnapshot(top, "base.qcow2").checkpoint("c2").commit();
            write(chain.top(), MIB, 512, 1);
        }
        List<String> warnings = new ArrayList<>();
        try (Chain chain = Chain.open(top, true, warnings::add)) {
            assertThrows(IllegalArgumentException.class, () -> chain.checkpoints().create("c1"), "names are unique in the chain");
            chain.checkpoints().delete("c2");
            assertEquals(List.of(new Checkpoints.Checkpoint("c1", false, 1)), chain.checkpoints().list());
            assertEquals(2 * 65536, chain.checkpoints().dirtySince("c1").count(), "c2's bits are in c1 now");
        }
        assertEquals(1, warnings.size(), warnings.toString());
        assertTrue(warnings.get(0).contains("no checkpoint recording"), warnings.get(0));
        assertEquals(List.of(List.of(0L, 65536L, 1L), List.of(65536L, MIB - 65536, 0L), List.of(MIB, 65536L, 1L),
                List.of(MIB + 65536, 3 * MIB - 65536, 0L)), nbd(base, "c1"));
        assertEquals(List.of(), names(top));
        checkClean(base, top);
    }
}
