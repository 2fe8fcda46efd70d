package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.testing.DirtyExtents;
import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code qcow4j map} prints what {@code qemu-img map} prints, human and JSON, character for
 * character, on every reference image and on chains qemu-io wrote. The copies are
 * rewritten without holes first: qemu takes the zero flag from host-file holes when an
 * image looks preallocated, and that varies with the page cache (qemu-quirks.md).
 * {@code map --bitmap} is checked against {@code nbdinfo --map=qemu:dirty-bitmap:NAME}.
 */
class MapIT {
    @TempDir
    Path tmp;

    static Stream<String> referenceImages() {
        return TestData.qcow2Images().stream();
    }

    /** Copies a reference image with the files it references, each written out in full (no holes). */
    private void copyNonSparse(String name, Path dir) {
        TestData.copyToTemp(name, dir);
        for (String f : TestData.withReferencedFiles(name)) {
            nonSparse(dir.resolve(f));
        }
    }

    static void nonSparse(Path file) {
        try {
            byte[] all = Files.readAllBytes(file);
            Files.delete(file);
            Files.write(file, all);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private void assertSameAsQemu(Path dir, String... args) {
        Qemu.Result expected = qemuImg(dir, args);
        Qemu.Result actual = qcow4j(dir, args);
        String what = String.join(" ", args) + "\n" + expected.describe() + "\n" + actual.describe();
        assertEquals(expected.stdout(), actual.stdout(), what);
        assertEquals(expected.exitCode(), actual.exitCode(), what);
        if (expected.exitCode() != 0) {
            Cli.assertOneLineError(actual, expected.exitCode(), Cli.qemuMessage(expected));
        } else {
            assertEquals("", actual.stderr(), what);
        }
    }

    @ParameterizedTest
    @MethodSource("referenceImages")
    void referenceImagesAsQemuImg(String name) {
        copyNonSparse(name, tmp);
        assertSameAsQemu(tmp, "map", name);
        assertSameAsQemu(tmp, "map", "--output=json", name);
        assertSameAsQemu(tmp, "map", "--output", "human", "-U", "-f", "qcow2", name);
        assertSameAsQemu(tmp, "map", "--output=json", "--start-offset=65k", "--max-length=3M", name);
        assertSameAsQemu(tmp, "map", "--output=json", "--start-offset", "1000", "--max-length", "100", name);
    }

    /** The file column names backing files relative to the image, as given on the command line. */
    @Test
    void namesFromOtherDirectories() {
        Path sub = Cli.mkdir(tmp, "sub");
        copyNonSparse("chain-top.qcow2", sub);
        copyNonSparse("raw-backed.qcow2", sub);
        for (String name : List.of("sub/chain-top.qcow2", "./sub/chain-top.qcow2", sub.resolve("raw-backed.qcow2").toString())) {
            assertSameAsQemu(tmp, "map", name);
            assertSameAsQemu(tmp, "map", "--output=json", name);
        }
        assertSameAsQemu(sub, "map", "../sub/chain-top.qcow2");
    }

    @Test
    void rawFilesAndEdges() throws IOException {
        Files.write(tmp.resolve("odd.raw"), new byte[100_000]); // not a whole number of sectors
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "zero.qcow2", "0").assertOk();
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "e.qcow2", "3G").assertOk();
        for (String img : List.of("odd.raw", "zero.qcow2", "e.qcow2")) {
            assertSameAsQemu(tmp, "map", img);
            assertSameAsQemu(tmp, "map", "--output=json", img);
            assertSameAsQemu(tmp, "map", "--output=json", "--start-offset=5G", img);
        }
        assertSameAsQemu(tmp, "map", "--output=xml", "e.qcow2");
        assertSameAsQemu(tmp, "map", "--start-offset=1x", "e.qcow2");
        assertSameAsQemu(tmp, "map", "-f", "qcow2", "odd.raw");
        // qemu says "Could not open 'x': Could not open 'x': why"; qcow4j says it once
        Cli.assertOneLineError(qcow4j(tmp, "map", "nosuch.qcow2"), 1, "Could not open 'nosuch.qcow2': No such file or directory");
    }

    /**
     * Chains qemu-io wrote: zero writes with and without allocation, discards, partial
     * writes in extended-L2 clusters over a shorter backing file, v2 layers, a raw base.
     */
    @Test
    void chainsWrittenByQemu() {
        qemuImg(tmp, "create", "-q", "-f", "raw", "base.raw", "3M").assertOk();
        qemuIo(tmp, "-f", "raw", "-c", "write -P 1 0 1M", "-c", "write -P 2 2M 512k", "base.raw").assertOk();
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "-o", "compat=0.10,cluster_size=4k", "-b", "base.raw", "-F", "raw",
                "v2.qcow2", "5M").assertOk();
        qemuIo(tmp, "-c", "write -P 3 4k 4k", "-c", "write -z 512k 64k", "-c", "discard 2M 8k",
                "-c", "write -P 4 4M 4k", "v2.qcow2").assertOk();
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=32k", "-b", "v2.qcow2",
                "-F", "qcow2", "ext.qcow2", "8M").assertOk();
        qemuIo(tmp, "-c", "write -P 5 1k 1k", "-c", "write -z 33k 2k", "-c", "write -z -u 64k 32k",
                "-c", "write -P 6 4608k 3k", "-c", "write -P 7 6M 1k", "-c", "discard 6M 32k",
                "-c", "write -P 8 7M 5k", "ext.qcow2").assertOk();
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "-b", "ext.qcow2", "-F", "qcow2", "top.qcow2", "9M").assertOk();
        qemuIo(tmp, "-c", "write -z 0 128k", "-c", "write -P 9 7M 64k", "-c", "discard 64k 64k",
                "-c", "write -z -u 8M 64k", "top.qcow2").assertOk();
        for (String f : List.of("base.raw", "v2.qcow2", "ext.qcow2", "top.qcow2")) {
            nonSparse(tmp.resolve(f));
        }
        for (String img : List.of("v2.qcow2", "ext.qcow2", "top.qcow2")) {
            assertSameAsQemu(tmp, "map", img);
            assertSameAsQemu(tmp, "map", "--output=json", img);
        }
    }

    /** qemu-img map loops forever on a backing loop; qcow4j names it in one line. */
    @Test
    void backingLoopIsAnError() {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "-u", "-b", "y.qcow2", "-F", "qcow2", "x.qcow2", "1M").assertOk();
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "-u", "-b", "x.qcow2", "-F", "qcow2", "y.qcow2", "1M").assertOk();
        Qemu.Result r = qcow4j(tmp, "map", "x.qcow2");
        assertEquals(1, r.exitCode(), r.describe());
        assertEquals("", r.stdout());
        assertEquals(1, r.stderr().lines().count(), r.describe());
        assertTrue(r.stderr().startsWith("qcow4j: Could not open 'x.qcow2': "), r.describe());
        assertTrue(r.stderr().contains("loop"), r.describe());
        Cli.assertNoStackTrace(r);
    }

    @Test
    void missingBackingFileIsNamed() {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", "x.qcow2", "1M").assertOk();
        Cli.assertOneLineError(qcow4j(tmp, "map", "x.qcow2"), 1,
                "Could not open 'x.qcow2': Could not open backing file: Could not open 'gone.qcow2': No such file or directory");
    }

    /** An L1 entry pointing past the end of the file: one line, exit 1, no trace. */
    @Test
    void corruptL1Entry() throws IOException {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "c.qcow2", "1M").assertOk();
        qemuIo(tmp, "-c", "write 0 64k", "c.qcow2").assertOk();
        try (RandomAccessFile f = new RandomAccessFile(tmp.resolve("c.qcow2").toFile(), "rw")) {
            f.seek(40);
            long l1 = f.readLong();
            f.seek(l1);
            f.writeLong(0x8000_0000_7000_0000L);
        }
        Qemu.Result r = qcow4j(tmp, "map", "--output=json", "c.qcow2");
        assertEquals(1, r.exitCode(), r.describe());
        assertEquals(1, r.stderr().lines().count(), r.describe());
        assertTrue(r.stderr().startsWith("qcow4j: "), r.describe());
        Cli.assertNoStackTrace(r);
    }

    // ------------------------------------------------------------------ --bitmap

    private static List<List<Long>> extentsOf(JsonNode json) {
        List<List<Long>> out = new ArrayList<>();
        for (JsonNode e : json) {
            out.add(List.of(e.get("start").asLong(), e.get("length").asLong(), e.get("dirty").asBoolean() ? 1L : 0L));
        }
        return out;
    }

    private void assertBitmapAsNbdinfo(String img, String bitmap) {
        Qemu.Result r = qcow4j(tmp, "map", "--output=json", "--bitmap", bitmap, img).assertOk();
        List<List<Long>> ours = extentsOf(Cli.json(r.stdout()));
        assertEquals(DirtyExtents.parseNbdinfo(Qemu.nbdMap(tmp.resolve(img), bitmap)), ours, img + " " + bitmap);
        // covering the disk, alternating, as qemu-img map's layout: one object a line
        long size = Cli.json(qemuImg(tmp, "info", "--output=json", img).assertOk().stdout()).get("virtual-size").asLong();
        long pos = 0;
        for (int i = 0; i < ours.size(); i++) {
            assertEquals(pos, ours.get(i).get(0));
            pos += ours.get(i).get(1);
            if (i > 0) {
                assertFalse(ours.get(i).get(2).equals(ours.get(i - 1).get(2)), "adjacent runs not merged: " + ours);
            }
        }
        assertEquals(size, pos);
        String[] lines = r.stdout().split("\n");
        assertEquals(ours.size(), lines.length);
        for (int i = 0; i < lines.length; i++) {
            String expect = (i == 0 ? "[" : "") + "{ \"start\": " + ours.get(i).get(0) + ", \"length\": " + ours.get(i).get(1)
                    + ", \"dirty\": " + (ours.get(i).get(2) != 0) + "}" + (i == lines.length - 1 ? "]" : ",");
            assertEquals(expect, lines[i]);
        }
    }

    @Test
    void bitmapsAfterWritesZeroWritesAndDiscards() {
        // a size that is no multiple of any granularity: the last run ends at the disk's end
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "b.qcow2", "67109376").assertOk();
        qemuImg(tmp, "bitmap", "--add", "b.qcow2", "default").assertOk();
        qemuImg(tmp, "bitmap", "--add", "-g", "512", "b.qcow2", "fine").assertOk();
        qemuImg(tmp, "bitmap", "--add", "-g", "1M", "b.qcow2", "coarse").assertOk();
        qemuImg(tmp, "bitmap", "--add", "-g", "128k", "--disable", "b.qcow2", "off").assertOk();
        qemuIo(tmp, "-c", "write 0 512", "-c", "write -P 1 100k 3k", "-c", "write -z 1M 192k",
                "-c", "write -z -u 3M 64k", "-c", "discard 5M 128k", "-c", "write 67108864 512",
                "-c", "write 32M 5M", "b.qcow2").assertOk();
        qemuImg(tmp, "bitmap", "--enable", "b.qcow2", "off").assertOk();
        qemuIo(tmp, "-c", "write 40M 1k", "-c", "discard 41M 64k", "b.qcow2").assertOk();
        for (String name : List.of("default", "fine", "coarse", "off")) {
            assertBitmapAsNbdinfo("b.qcow2", name);
        }
        // the reference images' bitmaps too
        copyNonSparse("bitmaps.qcow2", tmp);
        assertBitmapAsNbdinfo("bitmaps.qcow2", "b-enabled");
        assertBitmapAsNbdinfo("bitmaps.qcow2", "b-disabled");
    }

    @Test
    void cleanBitmapIsOneRun() {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "c.qcow2", "1M").assertOk();
        qemuImg(tmp, "bitmap", "--add", "c.qcow2", "b").assertOk();
        assertEquals("[{ \"start\": 0, \"length\": 1048576, \"dirty\": false}]\n",
                qcow4j(tmp, "map", "--output=json", "--bitmap", "b", "c.qcow2").assertOk().stdout());
        qemuIo(tmp, "-c", "write 64k 64k", "c.qcow2").assertOk();
        assertEquals("Offset          Length\n0x10000         0x10000\n",
                qcow4j(tmp, "map", "--bitmap", "b", "c.qcow2").assertOk().stdout());
    }

    @Test
    void bitmapErrors() {
        copyNonSparse("bitmaps.qcow2", tmp);
        copyNonSparse("bitmaps-inuse.qcow2", tmp);
        copyNonSparse("empty.qcow2", tmp);
        Cli.assertOneLineError(qcow4j(tmp, "map", "--output=json", "--bitmap", "nosuch", "bitmaps.qcow2"), 1,
                "Bitmap 'nosuch' is not found");
        Cli.assertOneLineError(qcow4j(tmp, "map", "--output=json", "--bitmap", "b", "empty.qcow2"), 1,
                "Bitmap 'b' is not found");
        // qemu-nbd -B refuses an in-use bitmap with the same words
        Cli.assertOneLineError(qcow4j(tmp, "map", "--output=json", "--bitmap", "b-inuse", "bitmaps-inuse.qcow2"), 1,
                "Bitmap 'b-inuse' is inconsistent and cannot be used");
        Cli.assertOneLineError(qcow4j(tmp, "map", "--output=json", "--bitmap", "b", "nosuch.qcow2"), 1,
                "Could not open 'nosuch.qcow2': No such file or directory");
        for (Qemu.Result r : List.of(
                qcow4j(tmp, "map", "--output=json", "--bitmap", "nosuch", "bitmaps.qcow2"),
                qcow4j(tmp, "map", "--output=json", "--bitmap", "b-inuse", "bitmaps-inuse.qcow2"))) {
            assertEquals("", r.stdout());
        }
    }
}
