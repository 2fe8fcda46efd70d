package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Issue 16, item 1: commit with a top and a base of different sizes, against qemu-img on
 * twins. A smaller base grows to the top's size first (its bitmaps follow), a larger one
 * keeps its size and its data past the top's end, a layer in between that is shorter than
 * the top commits the zeros the top reads there, and a base that cannot grow is refused
 * with qemu-img's message before anything is written. (It used to report success, empty
 * the top and lose the data past the base's end.)
 */
class CommitGrowIT {
    @TempDir
    Path tmp;

    @Test
    void theIssuesScenarioGrowsTheBaseAndLosesNothing() throws IOException {
        Twins t = Twins.in(tmp, "issue")
                .img("create", "-q", "-f", "qcow2", "base", "1M")
                .img("bitmap", "--add", "base", "rec")
                .img("bitmap", "--add", "-g", "512", "base", "fine")
                .img("bitmap", "--add", "--disable", "base", "off")
                .img("create", "-q", "-f", "qcow2", "-b", "base", "-F", "qcow2", "top", "2M")
                .io("top", "write -P 7 1536k 64k", "write -P 8 1000k 1k");
        qemuImg(t.ours, "convert", "-O", "raw", "top", "view.raw").assertOk();
        t.runBoth("commit", "top");
        assertReadsAsTheTopDid(t.ours, "base");
        qemuIo(t.ours, "-f", "qcow2", "-c", "read -P 7 1536k 64k", "base").assertOk();
        t.assertSameImages("base", "top");
        for (String b : List.of("rec", "fine", "off")) {
            t.assertSameBitmap("base", b);
        }
        assertEquals(List.of("rec 65536 [\"auto\"]", "fine 512 [\"auto\"]", "off 65536 []"), OverlayIT.bitmapSummary(t.ours, "base"));
    }

    /**
     * Chains top -> mid -> base of the given sizes (base all 0x01, mid 0x02 in one range,
     * the top 0x07 below 1 MiB, and past it when it is longer), committed into mid (the default) or into base (-b).
     */
    @ParameterizedTest(name = "top {0}, mid {1}, base {2}, {3}")
    @CsvSource({
            "2M, 1M,   1M, -b",     // base grows; the top reads zeros past mid's end: written as zeros
            "2M, 3M,   1M, -b",     // base grows; mid's data past the base's end is committed
            "2M, 512k, 3M, -b",     // no growth; zeros past mid's end overwrite the base's data
            "1M, 2M,   3M, -b",     // top smaller: the base keeps its size and its data past the top's end
            "2M, 512k, 1M, into-mid", // mid grows over a longer base: the new range reads zeros, not base's data
            "2M, 1M,   4M, into-mid",
            "1M, 2M,   3M, into-mid", // top smaller than mid
    })
    void chainsOfOtherSizes(String top, String mid, String base, String mode) throws IOException {
        Twins t = Twins.in(tmp, "chain")
                .img("create", "-q", "-f", "qcow2", "base", base)
                .io("base", "write -P 1 0 " + base)
                .img("bitmap", "--add", "base", "rec")
                .img("create", "-q", "-f", "qcow2", "-b", "base", "-F", "qcow2", "mid", mid)
                .io("mid", "write -P 2 256k 128k")
                .img("bitmap", "--add", "mid", "rec")
                .img("create", "-q", "-f", "qcow2", "-b", "mid", "-F", "qcow2", "top", top)
                .io("top", "write -P 7 960k 64k", top.equals("1M") ? "write -P 7 1k 1k" : "write -P 7 1536k 64k");
        qemuImg(t.ours, "convert", "-O", "raw", "top", "view.raw").assertOk();
        String into = mode.equals("-b") ? "base" : "mid";
        if (mode.equals("-b")) {
            t.runBoth("commit", "-b", "base", "top");
        } else {
            t.runBoth("commit", "top");
        }
        assertReadsAsTheTopDid(t.ours, into);
        t.assertSameImages("base", "mid", "top");
        t.assertSameBitmap(into, "rec");
    }

    /**
     * A raw base grows too (a sparse extension). qcow4j used to refuse committing into a
     * raw file; it writes zero bytes where QEMU punches holes, so only data and sizes are
     * compared for the raw file (the qcow2 layers in full).
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"-b base.raw", "into-mid"})
    void aRawBaseGrowsToo(String mode) throws IOException {
        Twins t = Twins.in(tmp, "raw")
                .img("create", "-q", "-f", "raw", "base.raw", "1000k");
        for (Path d : List.of(t.ours, t.theirs)) {
            qemuIo(d, "-f", "raw", "-c", "write -P 1 0 1000k", "base.raw").assertOk();
        }
        t.img("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", "mid", "1500k")
                .io("mid", "write -P 5 900k 200k")
                .img("create", "-q", "-f", "qcow2", "-b", "mid", "-F", "qcow2", "top", "2M")
                .io("top", "write -P 7 1536k 64k", "write -z 0 64k", "write -P 8 100k 1k");
        String into = mode.equals("-b base.raw") ? "base.raw" : "mid";
        String top = into.equals("mid") ? "mid" : "top";
        qemuImg(t.ours, "convert", "-O", "raw", top, "view.raw").assertOk();
        if (into.equals("mid")) {
            t.runBoth("commit", "mid");
        } else {
            t.runBoth("commit", "-b", "base.raw", "top");
        }
        assertReadsAsTheTopDid(t.ours, "base.raw");
        assertEquals(0, qemuImg(t.ours, "compare", "-f", "raw", "-F", "raw", "base.raw", t.theirs.resolve("base.raw").toString())
                .exitCode());
        assertEquals(Files.size(t.theirs.resolve("base.raw")), Files.size(t.ours.resolve("base.raw")));
        t.assertSameImages("mid", "top");
    }

    /** Over the top's length, {@code image} reads what the top read before the commit (view.raw). */
    private static void assertReadsAsTheTopDid(Path dir, String image) throws IOException {
        qemuImg(dir, "convert", "-O", "raw", image, "after.raw").assertOk();
        byte[] view = Files.readAllBytes(dir.resolve("view.raw"));
        byte[] now = Files.readAllBytes(dir.resolve("after.raw"));
        assertTrue(now.length >= view.length, image + " is shorter than the top");
        assertEquals(-1, Arrays.mismatch(view, Arrays.copyOf(now, view.length)), image + " does not read what the top read");
        Files.delete(dir.resolve("after.raw"));
    }

    @Test
    void aSmallerTopLeavesTheBasesTailAlone() {
        Twins t = Twins.in(tmp, "smaller")
                .img("create", "-q", "-f", "qcow2", "base", "2M")
                .io("base", "write -P 1 0 2M")
                .img("create", "-q", "-f", "qcow2", "-b", "base", "-F", "qcow2", "top", "1M")
                .io("top", "write -z 0 64k", "write -P 7 512k 64k", "discard 768k 128k");
        t.runBoth("commit", "top");
        t.assertSameImages("base", "top");
        qemuIo(t.ours, "-f", "qcow2", "-c", "read -P 1 1M 1M", "-c", "read -P 0 0 64k", "-c", "read -P 0 768k 128k", "base")
                .assertOk();
        assertEquals(2L << 20, OverlayIT.info(t.ours, "base").path("virtual-size").asLong());
    }

    /** QEMU's commit fails with ENOTSUP where the base cannot grow; nothing is written, the top keeps its data. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"inconsistent-bitmap", "v2-over-a-longer-backing-file"})
    void aBaseThatCannotGrowIsRefused(String why) {
        Twins t = Twins.in(tmp, why);
        if (why.equals("inconsistent-bitmap")) {
            t.img("create", "-q", "-f", "qcow2", "base", "1M").img("bitmap", "--add", "base", "b");
            for (Path d : List.of(t.ours, t.theirs)) {
                // a crash while the bitmap was in use leaves it in_use: inconsistent
                qemuIo(d, "-f", "qcow2", "-c", "write 0 64k", "-c", "abort", "base");
            }
        } else {
            t.img("create", "-q", "-f", "qcow2", "b0", "4M").io("b0", "write -P 1 0 4M")
                    .img("create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "b0", "-F", "qcow2", "base", "1M");
        }
        t.img("create", "-q", "-f", "qcow2", "-b", "base", "-F", "qcow2", "top", "2M").io("top", "write -P 7 1536k 64k");
        List<byte[]> before = Twins.snapshot(t.ours, "base", "top");
        Qemu.Result r = t.runBoth("commit", "top");
        assertEquals("qcow4j: Block job failed: Operation not supported\n", r.stderr());
        List<byte[]> after = Twins.snapshot(t.ours, "base", "top");
        for (int i = 0; i < before.size(); i++) {
            assertArrayEquals(before.get(i), after.get(i), "file " + i + " changed");
        }
        assertTrue(Qemu.compare(t.ours.resolve("top"), t.theirs.resolve("top")));
    }

    /** A base that cannot be opened for writing (immutable here, as root ignores permissions): qemu-img's message. */
    @Test
    void aBaseThatCannotBeWrittenIsRefused() throws IOException {
        Twins t = Twins.in(tmp, "immutable")
                .img("create", "-q", "-f", "qcow2", "base", "1M")
                .img("create", "-q", "-f", "qcow2", "-b", "base", "-F", "qcow2", "top", "2M")
                .io("top", "write -P 7 1536k 64k");
        Assumptions.assumeTrue(Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "chattr", "+i",
                t.ours.resolve("base").toString(), t.theirs.resolve("base").toString()).exitCode() == 0,
                "chattr +i is not available here");
        try {
            List<byte[]> before = Twins.snapshot(t.ours, "top");
            Qemu.Result r = t.runBoth("commit", "top");
            assertEquals(1, r.exitCode());
            assertArrayEquals(before.get(0), Twins.snapshot(t.ours, "top").get(0));
        } finally {
            Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "chattr", "-i", t.ours.resolve("base").toString(),
                    t.theirs.resolve("base").toString());
        }
    }
}
