package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code qcow4j checkpoint create|list|delete}, read back by qemu-img info and qemu-nbd. */
class CheckpointIT {
    @TempDir
    Path dir;

    private static final String CLEAN_TAIL = "    0  clean\n";

    @Test
    void createListDelete() {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "i.qcow2", "4M").assertOk();
        Qemu.Result empty = qcow4j(dir, "checkpoint", "list", "--output=json", "i.qcow2");
        assertEquals(0, empty.exitCode(), empty.describe());
        assertEquals("[]", Cli.json(empty.stdout()).toString());
        assertEquals("", qcow4j(dir, "checkpoint", "list", "i.qcow2").assertOk().stdout());

        qcow4j(dir, "checkpoint", "create", "i.qcow2", "c1").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write 0 512", "i.qcow2").assertOk();
        Qemu.Result r = qcow4j(dir, "checkpoint", "create", "i.qcow2", "c2");
        assertEquals(0, r.exitCode(), r.describe());
        assertEquals("", r.stdout() + r.stderr());
        qemuIo(dir, "-f", "qcow2", "-c", "write 1M 512", "i.qcow2").assertOk();

        assertEquals(List.of("c1 65536 []", "c2 65536 [\"auto\"]"), OverlayIT.bitmapSummary(dir, "i.qcow2"));
        assertEquals("[{\"name\":\"c1\",\"enabled\":false},{\"name\":\"c2\",\"enabled\":true}]",
                Cli.json(qcow4j(dir, "checkpoint", "list", "--output=json", "i.qcow2").assertOk().stdout()).toString());
        assertEquals("c1: disabled (i.qcow2)\nc2: enabled (i.qcow2)\n",
                qcow4j(dir, "checkpoint", "list", "i.qcow2").assertOk().stdout());
        assertEquals("         0       65536    1  dirty\n     65536     4128768" + CLEAN_TAIL, Qemu.nbdMap(dir.resolve("i.qcow2"), "c1"));
        assertEquals("         0     1048576    0  clean\n   1048576       65536    1  dirty\n   1114112     3080192" + CLEAN_TAIL,
                Qemu.nbdMap(dir.resolve("i.qcow2"), "c2"));

        // deleting the newest folds its bits into c1, which records from now on
        qcow4j(dir, "checkpoint", "delete", "i.qcow2", "c2").assertOk();
        assertEquals(List.of("c1 65536 [\"auto\"]"), OverlayIT.bitmapSummary(dir, "i.qcow2"));
        assertEquals("         0       65536    1  dirty\n     65536      983040    0  clean\n"
                + "   1048576       65536    1  dirty\n   1114112     3080192" + CLEAN_TAIL, Qemu.nbdMap(dir.resolve("i.qcow2"), "c1"));
        Cli.checkJson(dir, "i.qcow2");
    }

    @Test
    void checkpointsAcrossAnOverlay() {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "base.qcow2", "4M").assertOk();
        qcow4j(dir, "checkpoint", "create", "base.qcow2", "c1").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write 0 512", "base.qcow2").assertOk();
        qcow4j(dir, "overlay", "--disable-base-bitmaps", "base.qcow2", "top.qcow2").assertOk();
        qcow4j(dir, "checkpoint", "create", "top.qcow2", "c2").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write 2M 512", "top.qcow2").assertOk();
        assertEquals("c1: disabled (base.qcow2)\nc2: enabled (top.qcow2)\n",
                qcow4j(dir, "checkpoint", "list", "top.qcow2").assertOk().stdout());
        // deleting c1 (in the read-only backing layer) reopens that layer read-write and back
        qcow4j(dir, "checkpoint", "delete", "top.qcow2", "c1").assertOk();
        assertEquals(List.of(), OverlayIT.bitmapSummary(dir, "base.qcow2"));
        assertEquals("[{\"name\":\"c2\",\"enabled\":true}]",
                Cli.json(qcow4j(dir, "checkpoint", "list", "--output=json", "top.qcow2").assertOk().stdout()).toString());
        Cli.checkJson(dir, "base.qcow2");
        Cli.checkJson(dir, "top.qcow2");
    }

    @Test
    void mapSinceACheckpointAcrossTheChain() throws IOException {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "base.qcow2", "4M").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write 3M 64k", "base.qcow2").assertOk(); // before any checkpoint
        qcow4j(dir, "checkpoint", "create", "base.qcow2", "c1").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write 0 512", "base.qcow2").assertOk();
        qcow4j(dir, "overlay", "--bitmap", "c2", "--disable-base-bitmaps", "base.qcow2", "top.qcow2").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write 1M 128k", "top.qcow2").assertOk();
        byte[] top = Files.readAllBytes(dir.resolve("top.qcow2"));

        Qemu.Result r = qcow4j(dir, "map", "--output=json", "--since", "c1", "top.qcow2");
        assertEquals(0, r.exitCode(), r.describe());
        assertEquals("[{ \"start\": 0, \"length\": 65536, \"dirty\": true},\n"
                + "{ \"start\": 65536, \"length\": 983040, \"dirty\": false},\n"
                + "{ \"start\": 1048576, \"length\": 131072, \"dirty\": true},\n"
                + "{ \"start\": 1179648, \"length\": 3014656, \"dirty\": false}]\n", r.stdout());
        // since the newest checkpoint: exactly its bitmap, as map --bitmap (and nbdinfo) show it
        assertEquals(qcow4j(dir, "map", "--output=json", "--bitmap", "c2", "top.qcow2").assertOk().stdout(),
                qcow4j(dir, "map", "--output=json", "--since", "c2", "top.qcow2").assertOk().stdout());
        assertEquals("         0     1048576    0  clean\n   1048576      131072    1  dirty\n   1179648     3014656" + CLEAN_TAIL,
                Qemu.nbdMap(dir.resolve("top.qcow2"), "c2"));
        assertEquals("Offset          Length\n0               0x10000\n0x100000        0x20000\n",
                qcow4j(dir, "map", "--since", "c1", "top.qcow2").assertOk().stdout());
        Cli.assertOneLineError(qcow4j(dir, "map", "--output=json", "--since", "c9", "top.qcow2"), 1,
                "Checkpoint 'c9' is not found in the chain of 'top.qcow2'");
        assertArrayEquals(top, Files.readAllBytes(dir.resolve("top.qcow2")), "map changes nothing");
    }

    @Test
    void refusalsChangeNothing() throws IOException {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "i.qcow2", "4M").assertOk();
        qcow4j(dir, "checkpoint", "create", "i.qcow2", "c1").assertOk();
        byte[] before = Files.readAllBytes(dir.resolve("i.qcow2"));
        Cli.assertOneLineError(qcow4j(dir, "checkpoint", "create", "i.qcow2", "c1"), 1,
                "Could not create checkpoint 'c1': a checkpoint of that name exists in the chain");
        Cli.assertOneLineError(qcow4j(dir, "checkpoint", "delete", "i.qcow2", "nosuch"), 1,
                "Could not delete checkpoint 'nosuch': no such checkpoint in the chain of 'i.qcow2'");
        Cli.assertOneLineError(qcow4j(dir, "checkpoint", "list", "--output=xml", "i.qcow2"), 1,
                "--output must be used with human or json as argument.");
        Cli.assertOneLineError(qcow4j(dir, "checkpoint", "list", "nofile"), 1, "Could not open 'nofile': No such file or directory");
        Qemu.Result none = qcow4j(dir, "checkpoint");
        assertEquals(1, none.exitCode());
        assertTrue(none.stderr().startsWith("qcow4j: "), none.stderr());
        assertArrayEquals(before, Files.readAllBytes(dir.resolve("i.qcow2")));
    }

    @Test
    void aDeleteThatCannotMergeChangesNothing() throws IOException {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "base.qcow2", "4M").assertOk();
        qcow4j(dir, "checkpoint", "create", "base.qcow2", "c1").assertOk();
        // a writer crashes while c1 records: c1 is in_use, its bits unknown
        Qemu.run(dir, java.time.Duration.ofSeconds(60), "qemu-io", "-f", "qcow2", "-c", "write 0 64k", "-c", "abort", "base.qcow2");
        qcow4j(dir, "overlay", "--bitmap", "c2", "base.qcow2", "top.qcow2").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write 1M 64k", "top.qcow2").assertOk();
        byte[] base = Files.readAllBytes(dir.resolve("base.qcow2"));
        byte[] top = Files.readAllBytes(dir.resolve("top.qcow2"));
        Cli.assertOneLineError(qcow4j(dir, "checkpoint", "delete", "top.qcow2", "c2"), 1,
                "Could not delete checkpoint 'c2': Bitmap 'c1' is inconsistent and cannot be used;"
                        + " remove it (qcow4j bitmap --remove) to delete it from the image");
        assertArrayEquals(base, Files.readAllBytes(dir.resolve("base.qcow2")), "the base changed");
        assertArrayEquals(top, Files.readAllBytes(dir.resolve("top.qcow2")), "the top changed");
        assertEquals("c1: disabled (base.qcow2)\nc2: enabled (top.qcow2)\n",
                qcow4j(dir, "checkpoint", "list", "top.qcow2").assertOk().stdout());
        Cli.checkJson(dir, "top.qcow2");
    }
}
