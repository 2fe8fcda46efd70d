package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** qcow4j check against qemu-img check: output, exit codes, repairs (the engine's checker has its own deep tests). */
class CheckIT {

    private static void same(Path dir, String... args) {
        Qemu.Result ours = Cli.qcow4j(dir, args);
        Qemu.Result theirs = Cli.qemuImg(dir, args);
        String what = String.join(" ", args);
        assertEquals(theirs.exitCode(), ours.exitCode(), what + "\n" + ours.describe());
        assertEquals(theirs.stdout(), ours.stdout(), what);
        assertEquals(theirs.stderr().replace("qemu-img:", "qcow4j:"), ours.stderr(), what);
    }

    @Test
    void referenceImages(@TempDir Path dir) {
        for (String name : List.of("empty.qcow2", "zlib-compressed.qcow2", "snapshot.qcow2", "lazy-dirty.qcow2",
                "bitmaps.qcow2", "extended-l2.qcow2", "chain-top.qcow2")) {
            TestData.copyToTemp(name, dir);
            same(dir, "check", name);
            same(dir, "check", "--output=json", name);
        }
    }

    @Test
    void repairsLikeQemu(@TempDir Path dir) throws IOException {
        for (String who : List.of("ours", "theirs")) {
            TestData.copyToTemp("lazy-dirty.qcow2", dir);
            Files.move(dir.resolve("lazy-dirty.qcow2"), dir.resolve(who + ".qcow2"));
        }
        Qemu.Result ours = Cli.qcow4j(dir, "check", "-r", "all", "ours.qcow2");
        Qemu.Result theirs = Cli.qemuImg(dir, "check", "-r", "all", "theirs.qcow2");
        assertEquals(theirs.exitCode(), ours.exitCode(), ours.describe());
        assertEquals(theirs.stdout(), ours.stdout());
        assertEquals(0, Cli.qemuImg(dir, "check", "ours.qcow2").exitCode());
        assertEquals(0, Cli.qemuImg(dir, "compare", "ours.qcow2", "theirs.qcow2").exitCode());
    }

    @Test
    void errors(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("junk.raw"), "junk\n");
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "a.qcow2", "1M").assertOk();
        assertEquals(63, Cli.qcow4j(dir, "check", "junk.raw").exitCode());
        assertEquals(1, Cli.qcow4j(dir, "check", "-f", "qcow2", "junk.raw").exitCode());
        Qemu.Result bad = Cli.qcow4j(dir, "check", "-r", "foo", "a.qcow2");
        assertEquals(1, bad.exitCode());
        assertEquals("qcow4j: Unknown option value for -r (expecting 'leaks' or 'all'): foo\n", bad.stderr());
    }
}
