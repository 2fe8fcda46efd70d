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
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code qcow4j overlay}: an external snapshot that qemu reads as qemu-img create -b makes it, with a bitmap in one go. */
class OverlayIT {
    @TempDir
    Path dir;

    static JsonNode info(Path dir, String img) {
        return Cli.json(qemuImg(dir, "info", "--output=json", img).assertOk().stdout());
    }

    /** name -> flags of the image's bitmaps, as qemu-img info reports them. */
    static List<String> bitmapSummary(Path dir, String img) {
        List<String> out = new ArrayList<>();
        for (JsonNode b : info(dir, img).path("format-specific").path("data").path("bitmaps")) {
            out.add(b.path("name").asText() + " " + b.path("granularity").asLong() + " " + b.path("flags"));
        }
        return out;
    }

    static boolean isDirty(String nbdMap) {
        return nbdMap.lines().anyMatch(l -> l.endsWith("dirty"));
    }

    @Test
    void overlayWithABitmapInOneTransaction() throws IOException {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "base.qcow2", "64M").assertOk();
        qemuImg(dir, "bitmap", "--add", "base.qcow2", "b0").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write -P 1 0 64k", "base.qcow2").assertOk();
        String baseMap = Qemu.nbdMap(dir.resolve("base.qcow2"), "b0");

        Qemu.Result r = qcow4j(dir, "overlay", "--bitmap", "nb", "-g", "128k", "--disable-base-bitmaps",
                "base.qcow2", "top.qcow2");
        assertEquals(0, r.exitCode(), r.describe());
        assertEquals("", r.stdout() + r.stderr(), "no warning: the overlay has a bitmap");

        JsonNode top = info(dir, "top.qcow2");
        assertEquals("base.qcow2", top.path("backing-filename").asText());
        assertEquals("qcow2", top.path("backing-filename-format").asText());
        assertEquals(64L << 20, top.path("virtual-size").asLong());
        assertEquals(List.of("nb 131072 [\"auto\"]"), bitmapSummary(dir, "top.qcow2"));
        assertEquals(List.of("b0 65536 []"), bitmapSummary(dir, "base.qcow2"), "the base's bitmap is disabled now");
        assertEquals(0, qemuImg(dir, "compare", "base.qcow2", "top.qcow2").exitCode());

        // a guest write through the overlay lands in nb, not in the (disabled, backing) b0
        assertFalse(isDirty(Qemu.nbdMap(dir.resolve("top.qcow2"), "nb")));
        qemuIo(dir, "-f", "qcow2", "-c", "write -P 2 1M 4k", "top.qcow2").assertOk();
        assertEquals("         0     1048576    0  clean\n   1048576      131072    1  dirty\n   1179648    65929216    0  clean\n",
                Qemu.nbdMap(dir.resolve("top.qcow2"), "nb"));
        assertEquals(baseMap, Qemu.nbdMap(dir.resolve("base.qcow2"), "b0"));
        Cli.checkJson(dir, "base.qcow2");
        Cli.checkJson(dir, "top.qcow2");
    }

    @Test
    void headerAsQemuImgCreateWritesIt() {
        Path sub = Cli.mkdir(dir, "sub");
        qemuImg(sub, "create", "-q", "-f", "qcow2", "base.qcow2", "10M").assertOk();
        // BASE is named as a backing file: relative to TOP's directory
        qcow4j(dir, "overlay", "base.qcow2", "sub/ours.qcow2").assertOk();
        qemuImg(dir, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "sub/theirs.qcow2").assertOk();
        JsonNode ours = info(dir, "sub/ours.qcow2");
        JsonNode theirs = info(dir, "sub/theirs.qcow2");
        for (String f : List.of("virtual-size", "backing-filename", "backing-filename-format", "cluster-size", "format")) {
            assertEquals(theirs.path(f), ours.path(f), f);
        }
        assertEquals(theirs.path("full-backing-filename").asText().replace("theirs", "ours"),
                ours.path("full-backing-filename").asText().replace("theirs", "ours"));
        Cli.checkJson(dir, "sub/ours.qcow2");
    }

    @Test
    void warnsWhenTheBaseKeepsRecordingBitmaps() {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "plain.qcow2", "1M").assertOk();
        Qemu.Result quiet = qcow4j(dir, "overlay", "plain.qcow2", "o1.qcow2");
        assertEquals(0, quiet.exitCode(), quiet.describe());
        assertEquals("", quiet.stderr(), "no bitmaps, nothing to warn about");

        qemuImg(dir, "create", "-q", "-f", "qcow2", "b.qcow2", "1M").assertOk();
        qemuImg(dir, "bitmap", "--add", "b.qcow2", "rec").assertOk();
        Qemu.Result r = qcow4j(dir, "overlay", "b.qcow2", "o2.qcow2");
        assertEquals(0, r.exitCode(), r.describe());
        assertEquals(1, r.stderr().lines().count(), r.stderr());
        assertTrue(r.stderr().startsWith("qcow4j: warning: ") && r.stderr().contains("b.qcow2"), r.stderr());
        assertEquals(List.of("rec 65536 [\"auto\"]"), bitmapSummary(dir, "b.qcow2"), "still enabled");
        Cli.checkJson(dir, "o2.qcow2");
    }

    @Test
    void aFailureCreatesNothingAndChangesNoByte() throws IOException {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "base.qcow2", "4M").assertOk();
        qemuImg(dir, "bitmap", "--add", "base.qcow2", "b0").assertOk();
        qemuImg(dir, "bitmap", "--add", "base.qcow2", "b1").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write 0 64k", "base.qcow2").assertOk();
        byte[] before = Files.readAllBytes(dir.resolve("base.qcow2"));

        // the bitmap cannot be made (granularity too small) after the base's bitmaps were disabled in memory
        Qemu.Result r = qcow4j(dir, "overlay", "--bitmap", "x", "-g", "256", "--disable-base-bitmaps", "base.qcow2", "top.qcow2");
        assertEquals(1, r.exitCode(), r.describe());
        assertTrue(r.stderr().startsWith("qcow4j: Could not create 'top.qcow2': "), r.stderr());
        assertEquals(1, r.stderr().lines().count(), r.stderr());
        Cli.assertNoStackTrace(r);
        assertFalse(Files.exists(dir.resolve("top.qcow2")));
        assertArrayEquals(before, Files.readAllBytes(dir.resolve("base.qcow2")));

        Cli.assertOneLineError(qcow4j(dir, "overlay", "nosuch.qcow2", "top.qcow2"), 1,
                "Could not open 'nosuch.qcow2': No such file or directory");
        Cli.assertOneLineError(qcow4j(dir, "overlay", "-g", "64k", "base.qcow2", "top.qcow2"), 1,
                "granularity only supported with --bitmap");
        qcow4j(dir, "overlay", "base.qcow2", "top.qcow2").assertOk();
        byte[] top = Files.readAllBytes(dir.resolve("top.qcow2"));
        Cli.assertOneLineError(qcow4j(dir, "overlay", "base.qcow2", "top.qcow2"), 1,
                "Could not create 'top.qcow2': File exists");
        assertArrayEquals(top, Files.readAllBytes(dir.resolve("top.qcow2")));
        assertFalse(Files.exists(dir.resolve("nosuch.qcow2")));
    }
}
