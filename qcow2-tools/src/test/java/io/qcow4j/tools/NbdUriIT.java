package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.NbdExport;
import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * NBD URIs where qemu-img takes them: {@code info}, {@code map}, {@code compare} and
 * {@code convert} of a qemu-nbd export print and exit as qemu-img on the same URI;
 * {@code map --bitmap} of an export reads its dirty bitmap; convert writes into an export;
 * bad URIs, missing exports and a server that dies are one error line in qemu-img's words.
 */
class NbdUriIT {
    @TempDir
    Path tmp;

    /** The same command line, qcow4j's and qemu-img's: same exit code, same stdout. */
    private void assertSameAsQemuImg(String... args) {
        Qemu.Result expected = qemuImg(tmp, args);
        Qemu.Result actual = qcow4j(tmp, args);
        assertEquals(expected.exitCode(), actual.exitCode(), actual.describe() + "\n" + expected.describe());
        assertEquals(expected.stdout(), actual.stdout(), String.join(" ", args));
    }

    @ParameterizedTest
    @ValueSource(strings = {"chain-top.qcow2", "zlib-compressed.qcow2", "zero-clusters.qcow2", "bitmaps.qcow2"})
    void infoMapAndCompareAsQemuImg(String name) {
        Path img = TestData.image(name);
        try (NbdExport nbd = NbdExport.qemuNbd(img, "-r", "-e", "4", "-f", "qcow2", "-A", "-x", "vda")) {
            for (String uri : List.of(nbd.uri("vda"), "nbd+unix:///v%64a?socket=" + nbd.socket() + "#frag")) {
                assertSameAsQemuImg("info", uri);
                assertSameAsQemuImg("info", "--output=json", uri);
                assertSameAsQemuImg("map", uri);
                assertSameAsQemuImg("map", "--output=json", uri);
            }
            assertSameAsQemuImg("compare", nbd.uri("vda"), img.toString());
            assertSameAsQemuImg("compare", img.toString(), nbd.uri("vda"));
        }
    }

    @Test
    void tcpAndTheDefaultExport() throws IOException {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        try (NbdExport nbd = NbdExport.qemuNbdTcp(TestData.image("chain-mid.qcow2"), port, "-r", "-e", "4", "-f", "qcow2")) {
            for (String uri : List.of("nbd://127.0.0.1:" + port, "nbd+tcp://127.0.0.1:" + port + "/",
                    "nbd:127.0.0.1:" + port)) {
                assertSameAsQemuImg("info", "--output=json", uri);
                assertSameAsQemuImg("map", uri);
            }
        }
    }

    /** map --bitmap of an export (qemu-nbd -B) prints what map --bitmap prints of the file. */
    @Test
    void mapBitmapOfAnExport() {
        Path img = TestData.image("bitmaps.qcow2");
        try (NbdExport nbd = NbdExport.qemuNbd(img, "-r", "-e", "4", "-f", "qcow2", "-B", "b-enabled", "-B", "b-disabled")) {
            for (String bitmap : List.of("b-enabled", "b-disabled")) {
                for (String output : List.of("--output=json", "--output=human")) {
                    Qemu.Result local = qcow4j(tmp, "map", output, "--bitmap", bitmap, "-U", img.toString()).assertOk();
                    Qemu.Result remote = qcow4j(tmp, "map", output, "--bitmap", bitmap, nbd.uri()).assertOk();
                    assertEquals(local.stdout(), remote.stdout(), bitmap + " " + output);
                }
            }
            assertTrue(qcow4j(tmp, "map", "--output=json", "--bitmap", "b-enabled", nbd.uri()).stdout().contains("\"dirty\": true"));
            Cli.assertOneLineError(qcow4j(tmp, "map", "--bitmap", "nope", nbd.uri()), 1, "Bitmap 'nope' is not found");
        }
    }

    @Test
    void convertFromAnExport() {
        Path img = TestData.image("chain-top.qcow2");
        try (NbdExport nbd = NbdExport.qemuNbd(img, "-r", "-e", "4", "-f", "qcow2")) {
            qcow4j(tmp, "convert", "-O", "raw", nbd.uri(), "copy.raw").assertOk();
            qcow4j(tmp, "convert", "-O", "qcow2", nbd.uri(), "copy.qcow2").assertOk();
        }
        assertTrue(Qemu.compare(img, tmp.resolve("copy.raw")));
        assertTrue(Qemu.compare(img, tmp.resolve("copy.qcow2")));
        Qemu.check(tmp.resolve("copy.qcow2")).assertOk();
        // the copy stays sparse where the export reports zeros, as qemu-img's copy does
        qemuImg(tmp, "convert", "-O", "qcow2", img.toString(), "theirs.qcow2").assertOk();
        assertEquals(qemuImg(tmp, "map", "--output=json", "theirs.qcow2").stdout().replaceAll(", \"offset\": \\d+", ""),
                qemuImg(tmp, "map", "--output=json", "copy.qcow2").stdout().replaceAll(", \"offset\": \\d+", ""));
    }

    /** convert into an export, with and without -n: the old contents are overwritten, zeros included. */
    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void convertIntoAnExport(boolean noCreate) {
        Path src = TestData.image("chain-top.qcow2");
        Path target = tmp.resolve("target.qcow2");
        Qemu.create(target, "40M");
        Qemu.io(target, "write -P 0x77 0 40M").assertOk();
        try (NbdExport nbd = NbdExport.qemuNbd(target, "-f", "qcow2")) {
            List<String> args = new ArrayList<>(List.of("convert", "-O", "raw"));
            if (noCreate) {
                args.add("-n");
            }
            args.add(src.toString());
            args.add(nbd.uri());
            qcow4j(tmp, args.toArray(String[]::new)).assertOk();
        }
        Qemu.check(target).assertOk();
        Qemu.io(target, "read -P 0x77 32M 8M").assertOk(); // past the source: untouched
        qemuImg(tmp, "resize", "-f", "qcow2", "--shrink", "target.qcow2", "32M").assertOk();
        assertTrue(Qemu.compare(src, target));
    }

    /** convert -n into existing files (raw and qcow2, full of 0x77): afterwards they read as the source. */
    @Test
    void convertWithoutCreatingIntoFiles() {
        Path src = TestData.image("chain-top.qcow2");
        qemuImg(tmp, "create", "-q", "-f", "raw", "t.raw", "32M").assertOk();
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "t.qcow2", "32M").assertOk();
        Cli.qemuIo(tmp, "-f", "raw", "-c", "write -P 0x77 0 32M", "t.raw").assertOk();
        Cli.qemuIo(tmp, "-f", "qcow2", "-c", "write -P 0x77 0 32M", "t.qcow2").assertOk();
        qcow4j(tmp, "convert", "-n", "-O", "raw", src.toString(), "t.raw").assertOk();
        qcow4j(tmp, "convert", "-n", "-O", "qcow2", src.toString(), "t.qcow2").assertOk();
        assertTrue(Qemu.compare(src, tmp.resolve("t.raw")));
        assertTrue(Qemu.compare(src, tmp.resolve("t.qcow2")));
        Qemu.check(tmp.resolve("t.qcow2")).assertOk();
        qemuImg(tmp, "create", "-q", "-f", "raw", "small.raw", "1M").assertOk();
        for (String[] args : List.of(new String[] {"convert", "-n", "-O", "raw", src.toString(), "small.raw"},
                new String[] {"convert", "-n", "-O", "raw", src.toString(), "missing.raw"},
                new String[] {"convert", "-n", "-O", "qcow2", src.toString(), "small.raw"})) {
            Qemu.Result qemu = qemuImg(tmp, args);
            Cli.assertSameOutput(qemu, Cli.dropIn(tmp, args), String.join(" ", args));
        }
    }

    /** A target export smaller than the source: qemu-img's refusals, with and without -n. */
    @Test
    void convertIntoASmallerExport() {
        Path small = tmp.resolve("small.qcow2");
        Qemu.create(small, "1M");
        Path src = TestData.image("chain-top.qcow2");
        try (NbdExport nbd = NbdExport.qemuNbd(small, "-f", "qcow2", "-e", "4")) {
            for (boolean n : List.of(true, false)) {
                String[] args = n ? new String[] {"convert", "-n", "-O", "raw", src.toString(), nbd.uri()}
                        : new String[] {"convert", "-O", "raw", src.toString(), nbd.uri()};
                Qemu.Result qemu = qemuImg(tmp, args);
                Cli.assertOneLineError(qcow4j(tmp, args), qemu.exitCode(), Cli.qemuMessage(qemu));
            }
        }
    }

    /** Bad URIs, nothing listening, a missing export: qemu-img's words, one line, for every command. */
    @Test
    void errorsInQemuImgsWords() {
        try (NbdExport nbd = NbdExport.qemuNbd(TestData.image("empty.qcow2"), "-r", "-e", "8", "-f", "qcow2", "-x", "vda")) {
            String sock = nbd.socket().toString();
            List<String> uris = List.of("nbd+unix:///nope?socket=" + sock, "nbd+unix:///?socket=" + sock,
                    "nbd+unix:///vda?socket=" + nbd.dir().resolve("gone.sock"), "nbd://127.0.0.1:1/vda", "nbd+unix:///vda",
                    "nbd+unix://host/vda?socket=" + sock, "nbd://", "nbd+foo:///x", "nbd://127.0.0.1:99999/x",
                    "nbd+unix:///vda?socket=" + sock + "&x=1", "nbd:foo");
            for (String uri : uris) {
                for (String[] args : List.of(new String[] {"info", uri}, new String[] {"map", "--output=json", uri},
                        new String[] {"convert", uri, "out.raw"}, new String[] {"compare", uri, uri})) {
                    Qemu.Result qemu = qemuImg(tmp, args);
                    Cli.assertOneLineError(qcow4j(tmp, args), qemu.exitCode(), Cli.qemuMessage(qemu));
                }
            }
            assertTrue(!Files.exists(tmp.resolve("out.raw")));
        }
    }

    /** qcow4j reads exports as raw disks: a qcow2 image served raw is refused, not misread. */
    @Test
    void qcow2InsideAnExportIsRefused() {
        try (NbdExport nbd = NbdExport.qemuNbd(TestData.image("empty.qcow2"), "-r", "-f", "raw")) {
            Qemu.Result r = qcow4j(tmp, "info", nbd.uri());
            assertEquals(1, r.exitCode());
            assertTrue(r.stderr().startsWith("qcow4j: Could not open '" + nbd.uri()
                    + "': a qcow2 image inside an NBD export is not supported"), r.stderr());
            Cli.assertNoStackTrace(r);
            qcow4j(tmp, "info", "-f", "raw", nbd.uri()).assertOk();
        }
    }

    /** The server dies while convert waits for a read (-f raw: no probe first): one error line, exit 1. */
    @Test
    void serverDyingMidConvert() throws Exception {
        try (NbdExport nbd = NbdExport.nbdkit("--filter=delay", "pattern", "16M", "rdelay=5")) {
            CompletableFuture<Qemu.Result> convert = CompletableFuture.supplyAsync(
                    () -> qcow4j(tmp, "convert", "-f", "raw", "-O", "raw", nbd.uri(), "out.raw"));
            Thread.sleep(500);
            nbd.kill();
            Qemu.Result r = convert.get(30, TimeUnit.SECONDS);
            assertEquals(1, r.exitCode(), r.describe());
            assertTrue(r.stderr().matches("qcow4j: error while reading at byte \\d+: .*\n"), r.describe());
            Cli.assertNoStackTrace(r);
        }
    }
}
