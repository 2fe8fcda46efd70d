package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code qcow4j info} prints what {@code qemu-img info} prints, character for character,
 * human and JSON, on images qemu-img made: every reference image in testdata/ (copied
 * with its backing and data files, run from their directory so relative names match).
 * Both read the same file, so even "disk size" must agree.
 */
class InfoIT {
    @TempDir
    Path tmp;

    static Stream<String> referenceImages() {
        return TestData.qcow2Images().stream();
    }

    @ParameterizedTest
    @MethodSource("referenceImages")
    void humanAndJsonAsQemuImg(String name) {
        TestData.copyToTemp(name, tmp);
        for (List<String> args : List.of(
                List.of("info", name),
                List.of("info", "--output=json", name),
                List.of("info", "--output", "json", name),
                List.of("info", "--backing-chain", name),
                List.of("info", "--backing-chain", "--output=json", name),
                List.of("info", "-f", "qcow2", "-U", name))) {
            String[] argv = args.toArray(String[]::new);
            Qemu.Result expected = qemuImg(tmp, argv).assertOk();
            Qemu.Result actual = qcow4j(tmp, argv);
            assertEquals(expected.stdout(), actual.stdout(), String.join(" ", args) + "\n" + actual.describe());
            assertEquals(0, actual.exitCode(), actual.describe());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"1000", "1M", "1023487", "12345678", "1T", "0"})
    void rawFiles(String size) {
        qemuImg(tmp, "create", "-q", "-f", "raw", "r.img", size).assertOk();
        for (String out : List.of("--output=human", "--output=json")) {
            assertEquals(qemuImg(tmp, "info", out, "r.img").assertOk().stdout(),
                    qcow4j(tmp, "info", out, "r.img").assertOk().stdout());
        }
    }

    @Test
    void subdirectoryAndAbsoluteNames() {
        Path sub = Cli.mkdir(tmp, "sub");
        TestData.copyToTemp("raw-backed.qcow2", sub);
        for (String name : List.of("sub/raw-backed.qcow2", sub.resolve("raw-backed.qcow2").toString(),
                "./sub/raw-backed.qcow2")) {
            for (String out : List.of("--output=human", "--output=json")) {
                assertEquals(qemuImg(tmp, "info", "--backing-chain", out, name).assertOk().stdout(),
                        qcow4j(tmp, "info", "--backing-chain", out, name).assertOk().stdout(), name + " " + out);
            }
        }
    }

    /** Snapshots and a dirty flag on a fresh image, and an overlay over an image with a backing file. */
    @Test
    void snapshotsDirtyFlagAndOverlays() {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", "s.qcow2", "1G").assertOk();
        Cli.qemuIo(tmp, "-c", "write 0 64k", "s.qcow2").assertOk();
        qemuImg(tmp, "snapshot", "-c", "first", "s.qcow2").assertOk();
        qemuImg(tmp, "snapshot", "-c", "a much longer snapshot name", "s.qcow2").assertOk();
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "-b", "s.qcow2", "-F", "qcow2", "o.qcow2").assertOk();
        Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "qemu-io", "-c", "write 0 64k", "-c", "abort", "o.qcow2");
        for (String name : List.of("s.qcow2", "o.qcow2")) {
            for (String out : List.of("--output=human", "--output=json")) {
                assertEquals(qemuImg(tmp, "info", "--backing-chain", out, name).assertOk().stdout(),
                        qcow4j(tmp, "info", "--backing-chain", out, name).assertOk().stdout(), name + " " + out);
            }
        }
    }

    /** Bitmap flags: none (disabled), "auto", and granularities; the empty list prints as qemu prints it. */
    @Test
    void bitmaps() {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "b.qcow2", "64M").assertOk();
        qemuImg(tmp, "bitmap", "--add", "b.qcow2", "enabled").assertOk();
        qemuImg(tmp, "bitmap", "--add", "-g", "1M", "--disable", "b.qcow2", "off").assertOk();
        qemuImg(tmp, "bitmap", "--add", "-g", "512", "b.qcow2", "fine").assertOk();
        Cli.qemuIo(tmp, "-c", "write 0 64k", "b.qcow2").assertOk();
        for (String out : List.of("--output=human", "--output=json")) {
            assertEquals(qemuImg(tmp, "info", out, "b.qcow2").assertOk().stdout(),
                    qcow4j(tmp, "info", out, "b.qcow2").assertOk().stdout(), out);
        }
    }

    @Test
    void backingLoopIsRefused() {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "-u", "-b", "y.qcow2", "-F", "qcow2", "x.qcow2", "1M").assertOk();
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "-u", "-b", "x.qcow2", "-F", "qcow2", "y.qcow2", "1M").assertOk();
        Qemu.Result expected = qemuImg(tmp, "info", "--backing-chain", "x.qcow2");
        Qemu.Result actual = qcow4j(tmp, "info", "--backing-chain", "x.qcow2");
        assertEquals(1, expected.exitCode());
        Cli.assertOneLineError(actual, 1, Cli.qemuMessage(expected));
        assertEquals("", actual.stdout());
        // without --backing-chain the backing file is not opened, as in qemu-img
        assertEquals(qemuImg(tmp, "info", "x.qcow2").assertOk().stdout(), qcow4j(tmp, "info", "x.qcow2").stdout());
    }

    @Test
    void missingBackingFileOnlyMattersForTheChain() {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", "x.qcow2", "1M")
                .assertOk();
        assertEquals(qemuImg(tmp, "info", "x.qcow2").assertOk().stdout(), qcow4j(tmp, "info", "x.qcow2").stdout());
        Cli.assertOneLineError(qcow4j(tmp, "info", "--backing-chain", "x.qcow2"), 1,
                "Could not open 'gone.qcow2': No such file or directory");
    }

    @Test
    void badOutputFormat() {
        qemuImg(tmp, "create", "-q", "-f", "raw", "r.img", "1M").assertOk();
        Qemu.Result expected = qemuImg(tmp, "info", "--output=xml", "r.img");
        Cli.assertOneLineError(qcow4j(tmp, "info", "--output=xml", "r.img"), 1, Cli.qemuMessage(expected));
    }
}
