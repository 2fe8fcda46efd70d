package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code qcow4j convert --bitmaps [--skip-broken-bitmaps]} against qemu-img convert's. */
class ConvertBitmapsIT {
    @TempDir
    Path dir;

    private void source() {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "base.qcow2", "32M").assertOk();
        qemuImg(dir, "bitmap", "--add", "base.qcow2", "in-base").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write -P 9 0 1M", "base.qcow2").assertOk();
        qemuImg(dir, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "s.qcow2").assertOk();
        qemuImg(dir, "bitmap", "--add", "s.qcow2", "b0").assertOk();
        qemuImg(dir, "bitmap", "--add", "-g", "512k", "s.qcow2", "b1").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write -P 1 1M 64k", "-c", "write -P 2 20M 4k", "s.qcow2").assertOk();
        qemuImg(dir, "bitmap", "--disable", "s.qcow2", "b1").assertOk();
        qemuImg(dir, "bitmap", "--add", "-g", "4k", "s.qcow2", "b2").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write -P 3 30M 4k", "s.qcow2").assertOk();
    }

    @Test
    void copiesTheTopsBitmapsAsQemuImg() {
        source();
        Qemu.Result ours = qcow4j(dir, "convert", "--bitmaps", "-O", "qcow2", "s.qcow2", "ours.qcow2");
        Qemu.Result theirs = qemuImg(dir, "convert", "--bitmaps", "-O", "qcow2", "s.qcow2", "theirs.qcow2").assertOk();
        assertEquals(0, ours.exitCode(), ours.describe());
        assertEquals(theirs.stdout() + theirs.stderr(), ours.stdout() + ours.stderr());
        List<String> list = OverlayIT.bitmapSummary(dir, "ours.qcow2");
        assertEquals(List.of("b0 65536 [\"auto\"]", "b1 524288 []", "b2 4096 [\"auto\"]"), list);
        assertEquals(OverlayIT.bitmapSummary(dir, "theirs.qcow2"), list);
        for (String b : List.of("b0", "b1", "b2")) {
            String map = Qemu.nbdMap(dir.resolve("ours.qcow2"), b);
            assertTrue(OverlayIT.isDirty(map), b);
            assertEquals(Qemu.nbdMap(dir.resolve("theirs.qcow2"), b), map, b);
            assertEquals(Qemu.nbdMap(dir.resolve("s.qcow2"), b), map, b);
        }
        assertEquals(0, qemuImg(dir, "compare", "s.qcow2", "ours.qcow2").exitCode());
        Cli.checkJson(dir, "ours.qcow2");
    }

    @Test
    void refusesRawTargetsBeforeMakingThem() {
        source();
        Qemu.Result theirs = qemuImg(dir, "convert", "--bitmaps", "-O", "raw", "s.qcow2", "theirs.raw");
        Qemu.Result ours = qcow4j(dir, "convert", "--bitmaps", "-O", "raw", "s.qcow2", "ours.raw");
        assertEquals(1, theirs.exitCode());
        Cli.assertOneLineError(ours, 1, Cli.qemuMessage(theirs));
        assertEquals("Format driver 'raw' does not support bitmaps", Cli.qemuMessage(theirs));
        assertFalse(Files.exists(dir.resolve("ours.raw")), "qemu-img leaves an empty target behind; we make none");
        theirs = qemuImg(dir, "convert", "--skip-broken-bitmaps", "-O", "qcow2", "s.qcow2", "x.qcow2");
        Cli.assertOneLineError(qcow4j(dir, "convert", "--skip-broken-bitmaps", "-O", "qcow2", "s.qcow2", "y.qcow2"), 1,
                Cli.qemuMessage(theirs));
    }

    @Test
    void warnsWhenBitmapsStayBehind() {
        source();
        for (String[] args : new String[][] {{"-O", "raw", "s.qcow2", "a.raw"}, {"-O", "qcow2", "s.qcow2", "a.qcow2"}}) {
            Qemu.Result r = qcow4j(dir, Cli.prepend("convert", args));
            assertEquals(0, r.exitCode(), r.describe());
            assertEquals(1, r.stderr().lines().count(), r.stderr());
            assertTrue(r.stderr().startsWith("qcow4j: warning: 's.qcow2' has bitmaps"), r.stderr());
        }
        assertEquals(List.of(), OverlayIT.bitmapSummary(dir, "a.qcow2"));
        Qemu.Result plain = qcow4j(dir, "convert", "-O", "qcow2", "base.qcow2", "b.qcow2");
        assertEquals(0, plain.exitCode(), plain.describe());
        assertTrue(plain.stderr().contains("'base.qcow2' has bitmaps"), plain.stderr());
    }

    @Test
    void inconsistentBitmapsFailOrAreSkippedAsQemuImg() {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "s.qcow2", "16M").assertOk();
        // a crash while open read-write leaves b1 and b2 in_use; "good" comes after, stored cleanly
        qemuImg(dir, "bitmap", "--add", "s.qcow2", "b1").assertOk();
        qemuImg(dir, "bitmap", "--add", "s.qcow2", "b2").assertOk();
        Qemu.run(dir, java.time.Duration.ofSeconds(60), "qemu-io", "-f", "qcow2", "-c", "write 1M 64k", "-c", "abort", "s.qcow2");
        qemuImg(dir, "bitmap", "--add", "s.qcow2", "good").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write 0 64k", "s.qcow2").assertOk();
        String info = qemuImg(dir, "info", "s.qcow2").assertOk().stdout();
        assertTrue(info.contains("in-use"), info);
        List<String> summary = OverlayIT.bitmapSummary(dir, "s.qcow2");

        Qemu.Result theirs = qemuImg(dir, "convert", "--bitmaps", "-O", "qcow2", "s.qcow2", "theirs.qcow2");
        Qemu.Result ours = qcow4j(dir, "convert", "--bitmaps", "-O", "qcow2", "s.qcow2", "ours.qcow2");
        assertEquals(1, theirs.exitCode());
        Cli.assertOneLineError(ours, 1, Cli.qemuMessage(theirs).replace("' Try", "'. Try"));
        assertFalse(Files.exists(dir.resolve("ours.qcow2")));

        theirs = qemuImg(dir, "convert", "--bitmaps", "--skip-broken-bitmaps", "-O", "qcow2", "s.qcow2", "theirs.qcow2").assertOk();
        ours = qcow4j(dir, "convert", "--bitmaps", "--skip-broken-bitmaps", "-O", "qcow2", "s.qcow2", "ours.qcow2");
        assertEquals(0, ours.exitCode(), ours.describe());
        assertEquals(theirs.stderr().replace("qemu-img:", "qcow4j:"), ours.stderr());
        assertEquals(OverlayIT.bitmapSummary(dir, "theirs.qcow2"), OverlayIT.bitmapSummary(dir, "ours.qcow2"));
        assertEquals(Qemu.nbdMap(dir.resolve("theirs.qcow2"), "good"), Qemu.nbdMap(dir.resolve("ours.qcow2"), "good"));
        assertEquals(summary, OverlayIT.bitmapSummary(dir, "s.qcow2"), "the source is untouched");
        Cli.checkJson(dir, "ours.qcow2");
    }
}
