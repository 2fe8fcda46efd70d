package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code bench} against qemu-img bench on twin images: the same lines on stdout (the time in
 * "Run completed in T seconds." aside: that number is ours), the same stderr (drop-in mode)
 * and exit code, and after write runs the same image (compare, check).
 */
class BenchIT {
    private static final String TIME = "Run completed in \\d+\\.\\d{3} seconds\\.";

    @TempDir
    static Path tmp;
    static Path theirs;
    static Path ours;

    @BeforeAll
    static void images() {
        theirs = Cli.mkdir(tmp, "theirs");
        ours = Cli.mkdir(tmp, "ours");
        for (Path d : List.of(theirs, ours)) {
            Cli.qemuImg(d, "create", "-q", "-f", "qcow2", "b.qcow2", "16M").assertOk();
            Cli.qemuImg(d, "create", "-q", "-f", "raw", "r.raw", "1M").assertOk();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "-c 100 b.qcow2",
        "-c 100 -w --pattern=0x5a -s 64k b.qcow2",
        "-c 50 -d 4 -s 4k -S 8k -o 1M -q b.qcow2",
        "-c 3 -w --flush-interval=64 -S 3M -o 14M -t writethrough b.qcow2",
        "-c 40 -w -d 1 --flush-interval=1 --no-drain -s 1k -S 7k --pattern=255 -f raw r.raw",
        "-c 2 -s 0 b.qcow2",
        "-c 1 -o 15M -s 2M b.qcow2",
        "-c 1 -o 16M b.qcow2",
        "-c -1 b.qcow2", "-c 2147483648 b.qcow2", "-d abc b.qcow2", "-s 3G b.qcow2", "-s -1 b.qcow2",
        "-S abc b.qcow2", "-o 8E b.qcow2", "--pattern=300 -w b.qcow2", "--pattern=abc -w b.qcow2",
        "--flush-interval=3 b.qcow2", "-c 10 -w --flush-interval=3 b.qcow2", "--flush-interval=-1 -w b.qcow2",
        "-n -c 1 b.qcow2", "-i native -t none -c 1 b.qcow2", "-i foo b.qcow2", "-t foo -i foo b.qcow2",
        "-U -w -c 1 b.qcow2", "-U -c 1 b.qcow2", "-c 1 nosuch.qcow2", "-f foo b.qcow2", "b.qcow2 other",
        "-Z b.qcow2", "--pat", "--no-drain=1 b.qcow2", "-c 0x10 -c 010 b.qcow2",
    })
    void sameAsQemuImg(String line) {
        String[] args = Cli.prepend("bench", line.split(" "));
        Qemu.Result expected = Cli.qemuImg(theirs, args);
        Qemu.Result actual = Cli.dropIn(ours, args);
        String context = line + "\n" + expected.describe() + "\n" + actual.describe();
        assertEquals(expected.stdout().replaceAll(TIME, "T"), actual.stdout().replaceAll(TIME, "T"), context);
        assertEquals(expected.stderr(), actual.stderr(), context);
        assertEquals(expected.exitCode(), actual.exitCode(), context);
        if (expected.exitCode() == 0) {
            assertTrue(actual.stdout().lines().anyMatch(l -> l.matches(TIME)), context);
        }
        for (String image : List.of("b.qcow2", "r.raw")) {
            Qemu.Result cmp = Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "qemu-img", "compare",
                    theirs.resolve(image).toString(), ours.resolve(image).toString());
            assertEquals(0, cmp.exitCode(), context + cmp.describe());
        }
        assertEquals(Cli.qemuImg(theirs, "check", "b.qcow2").stdout(), Cli.qemuImg(ours, "check", "b.qcow2").stdout());
    }

    @Test
    void qcow4jModePrintsTheSameLines() {
        Qemu.Result r = Cli.qcow4j(ours, "bench", "-c", "10", "-w", "r.raw", "-f", "raw").assertOk();
        assertTrue(r.stdout().startsWith("Sending 10 write requests, 4096 bytes each, 64 in parallel"
                + " (starting at offset 0, step size 4096)\nRun completed in "), r.describe());
        Cli.assertOneLineError(Cli.qcow4j(ours, "bench"), 1, "Expecting one image file name");
    }
}
