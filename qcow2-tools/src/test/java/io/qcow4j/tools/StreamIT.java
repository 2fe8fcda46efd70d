package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code qcow4j stream}: the backing chain's data moves up into the image; the guest's view and every bitmap stay. */
class StreamIT {
    @TempDir
    Path dir;

    @Test
    void streamsTheWholeChainAndDirtiesNoBitmap() throws IOException {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "base.qcow2", "8M").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write -P 1 0 2M", "-c", "write -P 1 7M 1M", "base.qcow2").assertOk();
        qemuImg(dir, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "mid.qcow2").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write -P 2 1M 2M", "-c", "write -z 7M 64k", "mid.qcow2").assertOk();
        qemuImg(dir, "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2").assertOk();
        qemuImg(dir, "bitmap", "--add", "top.qcow2", "on").assertOk();
        qemuImg(dir, "bitmap", "--add", "-g", "1M", "top.qcow2", "coarse").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write -P 3 4M 64k", "top.qcow2").assertOk();
        qemuImg(dir, "bitmap", "--add", "--disable", "top.qcow2", "off").assertOk();
        qemuImg(dir, "convert", "-O", "raw", "top.qcow2", "view.raw").assertOk();
        byte[] base = Files.readAllBytes(dir.resolve("base.qcow2"));
        byte[] mid = Files.readAllBytes(dir.resolve("mid.qcow2"));
        String on = Qemu.nbdMap(dir.resolve("top.qcow2"), "on");
        String coarse = Qemu.nbdMap(dir.resolve("top.qcow2"), "coarse");
        String off = Qemu.nbdMap(dir.resolve("top.qcow2"), "off");
        assertTrue(OverlayIT.isDirty(on));

        Qemu.Result r = qcow4j(dir, "stream", "top.qcow2");
        assertEquals(0, r.exitCode(), r.describe());
        assertEquals("", r.stdout() + r.stderr());

        assertFalse(OverlayIT.info(dir, "top.qcow2").has("backing-filename"), "the backing file is dropped");
        assertEquals(0, qemuImg(dir, "compare", "-F", "raw", "top.qcow2", "view.raw").exitCode(), "the guest view changed");
        assertEquals(on, Qemu.nbdMap(dir.resolve("top.qcow2"), "on"));
        assertEquals(coarse, Qemu.nbdMap(dir.resolve("top.qcow2"), "coarse"));
        assertEquals(off, Qemu.nbdMap(dir.resolve("top.qcow2"), "off"));
        for (JsonNode e : Cli.json(qemuImg(dir, "map", "--output=json", "top.qcow2").assertOk().stdout())) {
            assertEquals(0, e.path("depth").asInt(), e.toString());
        }
        assertArrayEquals(base, Files.readAllBytes(dir.resolve("base.qcow2")));
        assertArrayEquals(mid, Files.readAllBytes(dir.resolve("mid.qcow2")));
        Cli.checkJson(dir, "top.qcow2");
        // the backing files can go now
        Files.delete(dir.resolve("base.qcow2"));
        Files.delete(dir.resolve("mid.qcow2"));
        assertEquals(0, qemuImg(dir, "compare", "-F", "raw", "top.qcow2", "view.raw").exitCode());
    }

    @Test
    void progressFollowsTheOffsetReached() {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "base.qcow2", "16M").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write -P 1 0 4M", "-c", "write -P 1 8M 4M", "base.qcow2").assertOk();
        qemuImg(dir, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2").assertOk();
        Qemu.Result r = qcow4j(dir, "stream", "-p", "top.qcow2");
        assertEquals(0, r.exitCode(), r.describe());
        java.util.List<Double> steps = CommitIT.progressSteps(r.stdout());
        assertTrue(steps.size() >= 5, r.stdout());
        assertEquals(0.0, steps.get(0));
        assertEquals(100.0, steps.get(steps.size() - 1));
        assertTrue(r.stdout().endsWith("    (100.00/100%)\r\n"), r.stdout());
        qemuImg(dir, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top2.qcow2").assertOk();
        assertEquals("", qcow4j(dir, "stream", "-q", "-p", "top2.qcow2").assertOk().stdout(), "-q: no progress");
        Cli.checkJson(dir, "top.qcow2");
    }

    @Test
    void anImageWithoutBackingFileIsLeftAlone() throws IOException {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "a.qcow2", "1M").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write 0 4k", "a.qcow2").assertOk();
        byte[] before = Files.readAllBytes(dir.resolve("a.qcow2"));
        qcow4j(dir, "stream", "a.qcow2").assertOk();
        assertArrayEquals(before, Files.readAllBytes(dir.resolve("a.qcow2")));
        Cli.assertOneLineError(qcow4j(dir, "stream", "nofile"), 1, "Could not open 'nofile': No such file or directory");
        Files.write(dir.resolve("r.raw"), new byte[4096]);
        Cli.assertOneLineError(qcow4j(dir, "stream", "r.raw"), 1, "Could not open 'r.raw': Image is not in qcow2 format");
    }
}
