package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code qcow4j commit} against {@code qemu-img commit} on twin chains. */
class CommitIT {
    @TempDir
    Path tmp;

    /** ours/ and theirs/, each with base.qcow2 (bitmaps rec, off) <- top.qcow2, written alike. */
    private List<Path> twins() {
        List<Path> dirs = new ArrayList<>();
        for (String who : List.of("ours", "theirs")) {
            Path d = Cli.mkdir(tmp, who);
            qemuImg(d, "create", "-q", "-f", "qcow2", "base.qcow2", "16M").assertOk();
            qemuIo(d, "-f", "qcow2", "-c", "write -P 1 0 16M", "base.qcow2").assertOk();
            qemuImg(d, "bitmap", "--add", "-g", "512", "base.qcow2", "rec").assertOk();
            qemuImg(d, "bitmap", "--add", "--disable", "base.qcow2", "off").assertOk();
            qemuImg(d, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2").assertOk();
            qemuImg(d, "bitmap", "--add", "top.qcow2", "t").assertOk();
            qemuIo(d, "-f", "qcow2", "-c", "write -P 2 512 512", "-c", "write -P 3 3M 100k", "-c", "write -z 8M 64k",
                    "-c", "discard 12M 1M", "top.qcow2").assertOk();
            dirs.add(d);
        }
        return dirs;
    }

    /**
     * qemu-img map --output=json without the host offsets, which are each writer's choice
     * (and so is whether neighbouring runs are contiguous in the file: qemu-img map splits
     * where they are not, so neighbours alike in all else are joined).
     */
    static String mapWithoutOffsets(Path dir, String img) {
        JsonNode map = Cli.json(qemuImg(dir, "map", "--output=json", img).assertOk().stdout());
        List<ObjectNode> out = new ArrayList<>();
        for (JsonNode e : map) {
            ObjectNode o = ((ObjectNode) e).deepCopy();
            o.remove("offset");
            ObjectNode last = out.isEmpty() ? null : out.get(out.size() - 1);
            if (last != null && sameButExtent(last, o)) {
                last.put("length", last.path("length").asLong() + o.path("length").asLong());
            } else {
                out.add(o);
            }
        }
        return out.toString();
    }

    private static boolean sameButExtent(ObjectNode a, ObjectNode b) {
        ObjectNode x = a.deepCopy();
        ObjectNode y = b.deepCopy();
        for (ObjectNode n : List.of(x, y)) {
            n.remove("start");
            n.remove("length");
        }
        return x.equals(y);
    }

    private static void assertSameChains(Path ours, Path theirs, String... images) {
        for (String img : images) {
            assertEquals(0, Qemu.compare(ours.resolve(img), theirs.resolve(img)) ? 0 : 1, img + ": content differs");
            assertEquals(mapWithoutOffsets(theirs, img), mapWithoutOffsets(ours, img), img + ": allocation differs");
            JsonNode o = OverlayIT.info(ours, img);
            JsonNode t = OverlayIT.info(theirs, img);
            assertEquals(t.path("backing-filename"), o.path("backing-filename"), img);
            assertEquals(t.path("backing-filename-format"), o.path("backing-filename-format"), img);
            Cli.checkJson(ours, img);
        }
    }

    @Test
    void commitAsQemuImgWithTheBaseBitmapRecordingIt() {
        List<Path> d = twins();
        String topBitmap = Qemu.nbdMap(d.get(0).resolve("top.qcow2"), "t");
        Qemu.Result ours = qcow4j(d.get(0), "commit", "top.qcow2");
        Qemu.Result theirs = qemuImg(d.get(1), "commit", "top.qcow2");
        assertEquals(0, ours.exitCode(), ours.describe());
        assertEquals("Image committed.\n", ours.stdout());
        assertEquals(theirs.stdout(), ours.stdout());
        assertEquals("", ours.stderr());
        assertSameChains(d.get(0), d.get(1), "base.qcow2", "top.qcow2");
        String rec = Qemu.nbdMap(d.get(0).resolve("base.qcow2"), "rec");
        assertTrue(OverlayIT.isDirty(rec));
        assertEquals(Qemu.nbdMap(d.get(1).resolve("base.qcow2"), "rec"), rec, "the enabled base bitmap");
        assertEquals(false, OverlayIT.isDirty(Qemu.nbdMap(d.get(0).resolve("base.qcow2"), "off")), "disabled: untouched");
        assertEquals(topBitmap, Qemu.nbdMap(d.get(0).resolve("top.qcow2"), "t"), "the top's bitmap survives (iotest 176)");
        assertEquals(Qemu.nbdMap(d.get(1).resolve("top.qcow2"), "t"), topBitmap);
    }

    @Test
    void dropKeepsTheTopAndQuietPrintsNothing() {
        List<Path> d = twins();
        Qemu.Result ours = qcow4j(d.get(0), "commit", "-d", "-q", "top.qcow2");
        qemuImg(d.get(1), "commit", "-d", "-q", "top.qcow2").assertOk();
        assertEquals(0, ours.exitCode(), ours.describe());
        assertEquals("", ours.stdout() + ours.stderr());
        assertSameChains(d.get(0), d.get(1), "base.qcow2", "top.qcow2");
        assertEquals(Qemu.nbdMap(d.get(1).resolve("base.qcow2"), "rec"), Qemu.nbdMap(d.get(0).resolve("base.qcow2"), "rec"));
    }

    /** The figures of a -p output ("    (12.34/100%)\r" each), consecutive repeats dropped. */
    static List<Double> progressSteps(String stdout) {
        List<Double> out = new ArrayList<>();
        java.util.regex.Matcher m = java.util.regex.Pattern.compile(" {4}\\((\\d+\\.\\d\\d)/100%\\)\r").matcher(stdout);
        while (m.find()) {
            double v = Double.parseDouble(m.group(1));
            if (out.isEmpty() || out.get(out.size() - 1) != v) {
                out.add(v);
            }
        }
        return out;
    }

    @Test
    void progressCountsTheBytesCopiedAsQemuImgs() {
        List<Path> d = twins();
        for (Path dir : d) {
            // more to copy: 26 MiB in three runs, as in qemu's own sample
            qemuIo(dir, "-f", "qcow2", "-c", "write -P 4 1M 1M", "-c", "write -P 5 4M 3M", "-c", "write -P 6 9M 2M",
                    "top.qcow2").assertOk();
        }
        Qemu.Result ours = qcow4j(d.get(0), "commit", "-p", "top.qcow2");
        Qemu.Result theirs = qemuImg(d.get(1), "commit", "-p", "top.qcow2").assertOk();
        assertEquals(0, ours.exitCode(), ours.describe());
        String end = "    (100.00/100%)\r\nImage committed.\n";
        assertTrue(theirs.stdout().endsWith(end), theirs.stdout());
        assertTrue(ours.stdout().startsWith("    (0.00/100%)\r") && ours.stdout().endsWith(end), ours.stdout());
        // ours reports the bytes copied, so it moves in steps whatever the timing
        List<Double> steps = progressSteps(ours.stdout());
        assertTrue(steps.size() >= 4, "not a real progress: " + ours.stdout());
        for (int i = 1; i < steps.size(); i++) {
            assertTrue(steps.get(i) > steps.get(i - 1), "progress must grow: " + ours.stdout());
        }
        // qemu-img's own steps depend on its job's timer (0, 86.21, 100 on one run; only 0
        // and 100 on a slow one), so only its format and its end are asserted above
        assertTrue(Qemu.compare(d.get(0).resolve("base.qcow2"), d.get(1).resolve("base.qcow2")));
    }

    @Test
    void intoADeeperLayerWithMinusB() {
        List<Path> dirs = new ArrayList<>();
        for (String who : List.of("ours", "theirs")) {
            Path d = Cli.mkdir(tmp, who + "3");
            qemuImg(d, "create", "-q", "-f", "qcow2", "base.qcow2", "8M").assertOk();
            qemuImg(d, "bitmap", "--add", "base.qcow2", "rec").assertOk();
            qemuIo(d, "-f", "qcow2", "-c", "write -P 1 0 1M", "base.qcow2").assertOk();
            qemuImg(d, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "mid.qcow2").assertOk();
            qemuIo(d, "-f", "qcow2", "-c", "write -P 2 512k 1M", "mid.qcow2").assertOk();
            qemuImg(d, "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2").assertOk();
            qemuIo(d, "-f", "qcow2", "-c", "write -P 3 1M 64k", "-c", "write -P 3 6M 4k", "top.qcow2").assertOk();
            dirs.add(d);
        }
        Qemu.Result ours = qcow4j(dirs.get(0), "commit", "-b", "base.qcow2", "top.qcow2");
        Qemu.Result theirs = qemuImg(dirs.get(1), "commit", "-b", "base.qcow2", "top.qcow2").assertOk();
        assertEquals(0, ours.exitCode(), ours.describe());
        assertEquals(theirs.stdout(), ours.stdout());
        // -b implies -d: the top keeps its data and its header still names mid.qcow2
        assertSameChains(dirs.get(0), dirs.get(1), "base.qcow2", "mid.qcow2", "top.qcow2");
        assertEquals(Qemu.nbdMap(dirs.get(1).resolve("base.qcow2"), "rec"), Qemu.nbdMap(dirs.get(0).resolve("base.qcow2"), "rec"));
    }

    /**
     * qemu-img commit copies in granules of the base's clusters: a piece of the top shorter
     * than a granule is copied whole as data, and QEMU's block status never reaches past one
     * L2 table (32 KiB of 512-byte clusters), so the top's zero clusters there arrive as
     * zero data, not zero clusters; a 4 KiB write dirties the base's whole granule.
     */
    @Test
    void copiesInGranulesAsQemuImg() {
        Twins t = Twins.in(tmp, "granules")
                .img("create", "-q", "-f", "qcow2", "base", "1M")
                .io("base", "write -P 1 0 1M")
                .img("bitmap", "--add", "-g", "512", "base", "fine")
                .img("create", "-q", "-f", "qcow2", "-o", "cluster_size=512", "-b", "base", "-F", "qcow2", "top", "1M")
                .io("top", "write -z 128k 256k", "write -P 2 600k 4k");
        t.runBoth("commit", "top");
        t.assertSameImages("base", "top");
        t.assertSameBitmap("base", "fine");
        assertEquals("[{\"start\":0,\"length\":131072,\"dirty\":false},{\"start\":131072,\"length\":262144,\"dirty\":true},"
                + "{\"start\":393216,\"length\":196608,\"dirty\":false},{\"start\":589824,\"length\":65536,\"dirty\":true},"
                + "{\"start\":655360,\"length\":393216,\"dirty\":false}]", Twins.dirty(t.ours, "base", "fine").replaceAll("\\s", ""));
    }

    @Test
    void mergeBitmapsCarriesTheTopsBitmapsDown() {
        Path d = tmp;
        qemuImg(d, "create", "-q", "-f", "qcow2", "base.qcow2", "4M").assertOk();
        qemuImg(d, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2").assertOk();
        qemuImg(d, "bitmap", "--add", "top.qcow2", "t").assertOk();
        qemuIo(d, "-f", "qcow2", "-c", "write 1M 4k", "-c", "write 3M 64k", "top.qcow2").assertOk();
        String t = Qemu.nbdMap(d.resolve("top.qcow2"), "t");
        Qemu.Result r = qcow4j(d, "commit", "--merge-bitmaps", "top.qcow2");
        assertEquals(0, r.exitCode(), r.describe());
        assertEquals(t, Qemu.nbdMap(d.resolve("base.qcow2"), "t"));
        assertEquals(t, Qemu.nbdMap(d.resolve("top.qcow2"), "t"));
        Cli.checkJson(d, "base.qcow2");
        Cli.checkJson(d, "top.qcow2");
    }

    @Test
    void errorsAsQemuImgs() throws IOException {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "alone.qcow2", "1M").assertOk();
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "-b", "alone.qcow2", "-F", "qcow2", "top.qcow2").assertOk();
        byte[] before = Files.readAllBytes(tmp.resolve("top.qcow2"));
        for (String[] args : new String[][] {{"commit", "alone.qcow2"}, {"commit", "-b", "nonexist", "top.qcow2"},
                {"commit", "-b", "top.qcow2", "top.qcow2"}, {"commit", "-f", "raw", "top.qcow2"}}) {
            Qemu.Result theirs = qemuImg(tmp, args);
            Qemu.Result ours = qcow4j(tmp, args);
            assertEquals(1, theirs.exitCode(), theirs.describe());
            Cli.assertOneLineError(ours, 1, Cli.qemuMessage(theirs));
        }
        Cli.assertOneLineError(qcow4j(tmp, "commit", "nofile"), 1, "Could not open 'nofile': No such file or directory");
        assertArrayEquals(before, Files.readAllBytes(tmp.resolve("top.qcow2")));
    }
}
