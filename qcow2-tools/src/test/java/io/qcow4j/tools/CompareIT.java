package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code qcow4j compare} prints and exits as {@code qemu-img compare} on the same pairs:
 * identical, differing (the first differing sector), different sizes with a zero or a
 * non-zero tail, qcow2 against raw, strict mode, and missing files (exit 2).
 */
class CompareIT {
    @TempDir
    Path tmp;

    @BeforeEach
    void images() {
        mk("a.qcow2", "1M");
        mk("b.qcow2", "1M");                        // same as a
        mk("c.qcow2", "1M", "write -P 1 70000 10");   // differs at sector 136
        mk("big.qcow2", "2M");                      // larger, zero tail
        mk("bigdata.qcow2", "2M", "write -P 1 1500000 10");
        mk("head.qcow2", "2M", "write -P 1 1000 10");
        mk("x.qcow2", "1M", "write -P 1 200000 1"); // allocated where y is not
        mk("y.qcow2", "1M", "write -P 2 300000 1");
        mk("zeros.qcow2", "1M", "write -P 0 0 64k"); // allocated zeros vs unallocated
        qemuImg(tmp, "convert", "-O", "raw", "c.qcow2", "c.raw").assertOk();
        qemuImg(tmp, "create", "-q", "-f", "raw", "odd.raw", "1000").assertOk();
        qemuImg(tmp, "create", "-q", "-f", "raw", "even.raw", "1024").assertOk();
    }

    private void mk(String name, String size, String... writes) {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", name, size).assertOk();
        for (String w : writes) {
            qemuIo(tmp, "-c", w, name).assertOk();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "a.qcow2 b.qcow2",
        "a.qcow2 c.qcow2",
        "c.qcow2 a.qcow2",
        "a.qcow2 big.qcow2",
        "big.qcow2 a.qcow2",
        "a.qcow2 bigdata.qcow2",
        "bigdata.qcow2 a.qcow2",
        "a.qcow2 head.qcow2",
        "x.qcow2 y.qcow2",
        "y.qcow2 x.qcow2",
        "a.qcow2 zeros.qcow2",
        "c.qcow2 c.raw",
        "-f qcow2 -F raw c.qcow2 c.raw",
        "-f raw c.qcow2 c.raw",
        "odd.raw even.raw",
        "-s a.qcow2 b.qcow2",
        "-s a.qcow2 big.qcow2",
        "-s a.qcow2 zeros.qcow2",
        "-s x.qcow2 y.qcow2",
        "-q a.qcow2 c.qcow2",
        "-q a.qcow2 b.qcow2",
    })
    void sameAsQemuImg(String args) {
        String[] argv = Cli.prepend("compare", args.split(" "));
        Qemu.Result expected = qemuImg(tmp, argv);
        Qemu.Result actual = qcow4j(tmp, argv);
        assertEquals(expected.stdout(), actual.stdout(), actual.describe());
        assertEquals(expected.exitCode(), actual.exitCode(), actual.describe());
        assertEquals("", actual.stderr(), actual.describe());
    }

    @Test
    void referenceImagesAgainstTheirRawConversion() {
        for (String name : List.of("chain-top.qcow2", "zero-clusters.qcow2", "extended-l2-backed.qcow2",
                "zstd-compressed.qcow2", "v2.qcow2")) {
            TestData.copyToTemp(name, tmp);
            qemuImg(tmp, "convert", "-O", "raw", name, name + ".raw").assertOk();
            Qemu.Result r = qcow4j(tmp, "compare", name, name + ".raw");
            assertEquals("Images are identical.\n", r.stdout(), r.describe());
            assertEquals(0, r.exitCode());
            qemuIo(tmp, "-f", "raw", "-c", "write -P 0x99 1000 1", name + ".raw").assertOk();
            Qemu.Result expected = qemuImg(tmp, "compare", name, name + ".raw");
            Qemu.Result differs = qcow4j(tmp, "compare", name, name + ".raw");
            assertEquals(expected.stdout(), differs.stdout(), differs.describe());
            assertEquals(1, differs.exitCode());
        }
    }

    /**
     * A raw side is compared in place through mapped windows of a few MiB: differences in
     * the second window and later, in the last byte, against qcow2 in both orders and raw
     * against raw, as qemu-img reports them.
     */
    @Test
    void rawComparedThroughWindows() {
        mk("w.qcow2", "13M", "write -P 5 0 13M");
        qemuImg(tmp, "convert", "-O", "raw", "w.qcow2", "w.raw").assertOk();
        qemuImg(tmp, "convert", "-O", "raw", "w.qcow2", "same.raw").assertOk();
        for (String write : List.of("write -P 6 9437697 1", "write -P 6 4194304 1", "write -P 6 13631487 1")) {
            qemuImg(tmp, "convert", "-O", "raw", "w.qcow2", "w.raw").assertOk();
            qemuIo(tmp, "-f", "raw", "-c", write, "w.raw").assertOk();
            for (String pair : List.of("w.qcow2 w.raw", "w.raw w.qcow2", "same.raw w.raw", "w.raw same.raw")) {
                String[] args = ("compare " + pair).split(" ");
                Qemu.Result expected = qemuImg(tmp, args);
                Qemu.Result actual = qcow4j(tmp, args);
                assertEquals(1, expected.exitCode(), write + ": " + expected.describe());
                assertEquals(expected.stdout(), actual.stdout(), write + ": " + actual.describe());
                assertEquals(expected.exitCode(), actual.exitCode(), write + ": " + actual.describe());
            }
        }
        Qemu.Result same = qcow4j(tmp, "compare", "w.qcow2", "same.raw");
        assertEquals("Images are identical.\n", same.stdout(), same.describe());
        assertEquals(0, same.exitCode());
    }

    @Test
    void missingFileIsExit2() {
        Qemu.Result r = qcow4j(tmp, "compare", "a.qcow2", "nosuch.qcow2");
        assertEquals(2, qemuImg(tmp, "compare", "a.qcow2", "nosuch.qcow2").exitCode());
        Cli.assertOneLineError(r, 2, "Could not open 'nosuch.qcow2': No such file or directory");
        assertEquals("", r.stdout());
    }
}
