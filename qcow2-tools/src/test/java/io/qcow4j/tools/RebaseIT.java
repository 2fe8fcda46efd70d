package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code qcow4j rebase} against {@code qemu-img rebase} on twins: same guest view, same header fields. */
class RebaseIT {
    @TempDir
    Path tmp;

    /** ours/ and theirs/: b1.qcow2, b2.qcow2 (different data), t.qcow2 over b1 with data of its own, and its view as raw. */
    private List<Path> twins() {
        List<Path> dirs = new ArrayList<>();
        for (String who : List.of("ours", "theirs")) {
            Path d = Cli.mkdir(tmp, who);
            qemuImg(d, "create", "-q", "-f", "qcow2", "b1.qcow2", "8M").assertOk();
            qemuImg(d, "create", "-q", "-f", "qcow2", "b2.qcow2", "8M").assertOk();
            qemuIo(d, "-f", "qcow2", "-c", "write -P 1 0 1M", "-c", "write -P 7 5M 64k", "b1.qcow2").assertOk();
            qemuIo(d, "-f", "qcow2", "-c", "write -P 2 512k 1M", "-c", "write -P 7 5M 64k", "b2.qcow2").assertOk();
            qemuImg(d, "create", "-q", "-f", "qcow2", "-b", "b1.qcow2", "-F", "qcow2", "t.qcow2").assertOk();
            qemuImg(d, "bitmap", "--add", "t.qcow2", "tb").assertOk();
            qemuImg(d, "bitmap", "--add", "-g", "512", "t.qcow2", "fine").assertOk();
            qemuImg(d, "bitmap", "--add", "--disable", "t.qcow2", "off").assertOk();
            qemuIo(d, "-f", "qcow2", "-c", "write -P 3 2M 64k", "-c", "write -P 3 100k 4k", "t.qcow2").assertOk();
            qemuImg(d, "convert", "-O", "raw", "t.qcow2", "view.raw").assertOk();
            dirs.add(d);
        }
        return dirs;
    }

    private static void assertSameHeader(Path ours, Path theirs, String img) {
        JsonNode o = OverlayIT.info(ours, img);
        JsonNode t = OverlayIT.info(theirs, img);
        for (String f : List.of("backing-filename", "backing-filename-format", "virtual-size")) {
            assertEquals(t.path(f), o.path(f), img + " " + f);
        }
    }

    @Test
    void safeRebaseKeepsTheGuestView() {
        List<Path> d = twins();
        String bitmapBefore = Qemu.nbdMap(d.get(0).resolve("t.qcow2"), "tb");
        String[] args = {"rebase", "-b", "b2.qcow2", "-F", "qcow2", "t.qcow2"};
        Qemu.Result ours = qcow4j(d.get(0), args);
        Qemu.Result theirs = qemuImg(d.get(1), args).assertOk();
        assertEquals(0, ours.exitCode(), ours.describe());
        assertEquals(theirs.stdout() + theirs.stderr(), ours.stdout() + ours.stderr());
        assertEquals(0, qemuImg(d.get(0), "compare", "-F", "raw", "t.qcow2", "view.raw").exitCode(), "the guest view changed");
        assertTrue(Qemu.compare(d.get(0).resolve("t.qcow2"), d.get(1).resolve("t.qcow2")));
        assertSameHeader(d.get(0), d.get(1), "t.qcow2");
        assertEquals("b2.qcow2", OverlayIT.info(d.get(0), "t.qcow2").path("backing-filename").asText());
        Cli.checkJson(d.get(0), "t.qcow2");
        // as qemu-img's, the copy is made of writes: the enabled bitmaps record the sectors copied, the disabled one nothing
        assertNotEquals(bitmapBefore, Qemu.nbdMap(d.get(0).resolve("t.qcow2"), "tb"));
        for (String b : List.of("tb", "fine", "off")) {
            assertEquals(Qemu.nbdMap(d.get(1).resolve("t.qcow2"), b), Qemu.nbdMap(d.get(0).resolve("t.qcow2"), b), b);
        }
        assertFalse(OverlayIT.isDirty(Qemu.nbdMap(d.get(0).resolve("t.qcow2"), "off")));
        assertEquals(CommitIT.mapWithoutOffsets(d.get(1), "t.qcow2"), CommitIT.mapWithoutOffsets(d.get(0), "t.qcow2"));
    }

    @Test
    void onlyTheDifferingSectorsAreWrittenAndRecorded() {
        // the backing files differ in one sector and in three, inside otherwise equal clusters
        List<Path> dirs = new ArrayList<>();
        for (String who : List.of("ours2", "theirs2")) {
            Path d = Cli.mkdir(tmp, who);
            qemuImg(d, "create", "-q", "-f", "qcow2", "b1.qcow2", "8M").assertOk();
            qemuImg(d, "create", "-q", "-f", "qcow2", "b2.qcow2", "8M").assertOk();
            qemuIo(d, "-f", "qcow2", "-c", "write -P 1 0 1M", "b1.qcow2").assertOk();
            qemuIo(d, "-f", "qcow2", "-c", "write -P 1 0 1M", "-c", "write -P 2 4608 512", "-c", "write -P 2 200k 1536",
                    "b2.qcow2").assertOk();
            qemuImg(d, "create", "-q", "-f", "qcow2", "-b", "b1.qcow2", "-F", "qcow2", "t.qcow2").assertOk();
            qemuImg(d, "bitmap", "--add", "-g", "512", "t.qcow2", "fine").assertOk();
            qemuImg(d, "bitmap", "--add", "t.qcow2", "tb").assertOk();
            dirs.add(d);
        }
        String[] args = {"rebase", "-b", "b2.qcow2", "-F", "qcow2", "t.qcow2"};
        qcow4j(dirs.get(0), args).assertOk();
        qemuImg(dirs.get(1), args).assertOk();
        assertEquals("         0        4608    0  clean\n      4608         512    1  dirty\n"
                + "      5120      199680    0  clean\n    204800        1536    1  dirty\n"
                + "    206336     8182272    0  clean\n", Qemu.nbdMap(dirs.get(0).resolve("t.qcow2"), "fine"));
        for (String b : List.of("fine", "tb")) {
            assertEquals(Qemu.nbdMap(dirs.get(1).resolve("t.qcow2"), b), Qemu.nbdMap(dirs.get(0).resolve("t.qcow2"), b), b);
        }
        assertEquals(CommitIT.mapWithoutOffsets(dirs.get(1), "t.qcow2"), CommitIT.mapWithoutOffsets(dirs.get(0), "t.qcow2"));
        assertTrue(Qemu.compare(dirs.get(0).resolve("t.qcow2"), dirs.get(1).resolve("t.qcow2")));
        Cli.checkJson(dirs.get(0), "t.qcow2");
    }

    /**
     * Issue 16, item 6: past the old backing file's end, where the top read zeros and the
     * new backing file has data, qemu-img writes zeros as zero clusters, not zero-filled
     * data clusters; elsewhere the differing sectors are written as data. Same data, map,
     * space (allocated clusters), check report and bitmaps as qemu-img's twin.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"shorter-old", "longer-old", "no-old", "onto-nothing"})
    void zerosPastTheOldBackingFilesEndAreZeroClusters(String scenario) {
        Twins t = Twins.in(tmp, scenario);
        if (scenario.equals("longer-old")) {
            t.img("create", "-q", "-f", "qcow2", "old", "4M").io("old", "write -P 1 0 2M", "write -z 2M 128k", "write -P 5 3M 64k")
                    .img("create", "-q", "-f", "qcow2", "new", "2M")
                    .io("new", "write -P 1 0 512k", "write -z 512k 512k", "write -P 9 1M 64k");
        } else {
            t.img("create", "-q", "-f", "qcow2", "old", "1000k").io("old", "write -P 1 0 1000k")
                    .img("create", "-q", "-f", "qcow2", "new", "4M")
                    .io("new", "write -P 2 0 3M", "write -z 512k 512k", "write -P 0 3M 512", "write -P 2 3100k 1k");
        }
        if (scenario.equals("no-old")) {
            t.img("create", "-q", "-f", "qcow2", "top", "4M");
        } else {
            t.img("create", "-q", "-f", "qcow2", "-b", "old", "-F", "qcow2", "top", "4M");
        }
        t.img("bitmap", "--add", "top", "tb").img("bitmap", "--add", "-g", "512", "top", "fine")
                .io("top", "write -P 3 256k 64k", "write -P 4 1040k 8k", "write -P 4 2M 64k");
        qemuImg(t.ours, "convert", "-O", "raw", "top", "view.raw").assertOk();
        if (scenario.equals("onto-nothing")) {
            t.runBoth("rebase", "-b", "", "top");
        } else {
            t.runBoth("rebase", "-b", "new", "-F", "qcow2", "top");
        }
        assertEquals(0, qemuImg(t.ours, "compare", "-f", "raw", "-F", "qcow2", "view.raw", "top").exitCode(), "the guest view changed");
        t.assertSameImages("top");
        for (String b : List.of("tb", "fine")) {
            t.assertSameBitmap("top", b);
        }
        assertEquals(Cli.checkJson(t.theirs, "top").path("allocated-clusters"), Cli.checkJson(t.ours, "top").path("allocated-clusters"),
                "space used");
    }

    /**
     * qemu-img rebase skips what an earlier write's copy-on-write allocated in the top: the
     * rest of the cluster the new backing file ends in, and, rebasing onto a layer of the
     * chain (whose pieces follow the layers above it), data of the dropped layer in the same
     * cluster of the top. Those sectors are copied, not written, so its bitmaps do not record
     * them; ours neither.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"new-ends-in-a-cluster", "onto-a-layer-of-the-chain"})
    void copyOnWriteIsNotRecordedAsAWrite(String scenario) {
        Twins t = Twins.in(tmp, scenario);
        String expectedFine;
        if (scenario.equals("new-ends-in-a-cluster")) {
            t.img("create", "-q", "-f", "qcow2", "old", "2M").io("old", "write -P 1 0 2M")
                    .img("create", "-q", "-f", "qcow2", "new", "1000k").io("new", "write -P 2 0 1000k")
                    .img("create", "-q", "-f", "qcow2", "-b", "old", "-F", "qcow2", "top", "2M");
            // [1000k, 1024k) came with the copy-on-write of the write before it
            expectedFine = "[{\"start\":0,\"length\":1024000,\"dirty\":true},{\"start\":1024000,\"length\":24576,\"dirty\":false},"
                    + "{\"start\":1048576,\"length\":1048576,\"dirty\":true}]";
        } else {
            t.img("create", "-q", "-f", "qcow2", "new", "1M").io("new", "write -P 1 0 1M")
                    .img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", "-b", "new", "-F", "qcow2", "mid", "1M")
                    .io("mid", "write -P 2 0 4k", "write -P 3 8k 4k")
                    .img("create", "-q", "-f", "qcow2", "-b", "mid", "-F", "qcow2", "top", "1M");
            // only the first 4 KiB piece is written; its copy-on-write brings [8k, 12k) along
            expectedFine = "[{\"start\":0,\"length\":4096,\"dirty\":true},{\"start\":4096,\"length\":1044480,\"dirty\":false}]";
        }
        t.img("bitmap", "--add", "-g", "512", "top", "fine");
        qemuImg(t.ours, "convert", "-O", "raw", "top", "view.raw").assertOk();
        t.runBoth("rebase", "-b", "new", "-F", "qcow2", "top");
        assertEquals(0, qemuImg(t.ours, "compare", "-f", "raw", "-F", "qcow2", "view.raw", "top").exitCode(), "the guest view changed");
        t.assertSameImages("top");
        t.assertSameBitmap("top", "fine");
        assertEquals(expectedFine, Twins.dirty(t.ours, "top", "fine").replaceAll("\\s", ""));
    }

    @Test
    void progressMovesInStepsAsQemuImgs() {
        List<Path> d = twins();
        String[] args = {"rebase", "-p", "-b", "b2.qcow2", "-F", "qcow2", "t.qcow2"};
        Qemu.Result ours = qcow4j(d.get(0), args);
        Qemu.Result theirs = qemuImg(d.get(1), args).assertOk();
        assertEquals(0, ours.exitCode(), ours.describe());
        for (Qemu.Result r : List.of(ours, theirs)) {
            List<Double> steps = CommitIT.progressSteps(r.stdout());
            assertEquals(0.0, steps.get(0), r.stdout());
            assertEquals(100.0, steps.get(steps.size() - 1), r.stdout());
            assertTrue(steps.size() >= 5, "hardly any progress: " + r.stdout());
            for (int i = 1; i + 1 < steps.size(); i++) {
                assertTrue(steps.get(i) - steps.get(i - 1) > 2.0, "steps of more than 2%: " + r.stdout());
            }
            assertTrue(r.stdout().endsWith("    (100.00/100%)\r\n"), r.stdout());
        }
        assertTrue(Qemu.compare(d.get(0).resolve("t.qcow2"), d.get(1).resolve("t.qcow2")));
    }

    @Test
    void emptyBackingNameRemovesTheBackingFile() {
        List<Path> d = twins();
        String[] args = {"rebase", "-b", "", "t.qcow2"};
        Qemu.Result ours = qcow4j(d.get(0), args);
        qemuImg(d.get(1), args).assertOk();
        assertEquals(0, ours.exitCode(), ours.describe());
        assertEquals("", ours.stdout() + ours.stderr());
        assertEquals(0, qemuImg(d.get(0), "compare", "-F", "raw", "t.qcow2", "view.raw").exitCode());
        assertFalse(OverlayIT.info(d.get(0), "t.qcow2").has("backing-filename"));
        assertSameHeader(d.get(0), d.get(1), "t.qcow2");
        Cli.checkJson(d.get(0), "t.qcow2");
    }

    @Test
    void unsafeRebaseRewritesTheHeaderOnly() throws IOException {
        List<Path> d = twins();
        for (String[] args : new String[][] {{"rebase", "-u", "-b", "b2.qcow2", "-F", "qcow2", "t.qcow2"},
                {"rebase", "-u", "-b", "b1.qcow2", "-F", "raw", "t.qcow2"}}) {
            Qemu.Result ours = qcow4j(d.get(0), args);
            qemuImg(d.get(1), args).assertOk();
            assertEquals(0, ours.exitCode(), ours.describe());
            assertEquals("", ours.stdout() + ours.stderr());
            assertTrue(Qemu.compare(d.get(0).resolve("t.qcow2"), d.get(1).resolve("t.qcow2")), String.join(" ", args));
            assertSameHeader(d.get(0), d.get(1), "t.qcow2");
            Cli.checkJson(d.get(0), "t.qcow2");
        }
        // -u needs neither the old nor the new backing file to exist
        for (Path dir : d) {
            Files.delete(dir.resolve("b1.qcow2"));
        }
        for (String[] args : new String[][] {{"rebase", "-u", "-b", "nonexist", "-F", "qcow2", "t.qcow2"},
                {"rebase", "-u", "t.qcow2"}}) {
            Qemu.Result ours = qcow4j(d.get(0), args);
            qemuImg(d.get(1), args).assertOk();
            assertEquals(0, ours.exitCode(), ours.describe());
            assertSameHeader(d.get(0), d.get(1), "t.qcow2");
        }
    }

    @Test
    void errorsAsQemuImgsAndNothingWritten() throws IOException {
        List<Path> d = twins();
        Path ours = d.get(0);
        byte[] before = Files.readAllBytes(ours.resolve("t.qcow2"));
        for (String[] args : new String[][] {{"rebase", "t.qcow2"}, {"rebase", "-b", "b2.qcow2", "t.qcow2"},
                {"rebase", "-b", "nonexist", "-F", "qcow2", "t.qcow2"}, {"rebase", "-b", "b2.qcow2", "-F", "foo", "t.qcow2"},
                {"rebase", "-u", "-b", "b2.qcow2", "t.qcow2"}}) {
            Qemu.Result theirs = qemuImg(d.get(1), args);
            assertEquals(1, theirs.exitCode(), theirs.describe());
            String expected = Cli.qemuMessage(theirs).replace(" Try 'qemu-img --help' for more information", "");
            Cli.assertOneLineError(qcow4j(ours, args), 1, expected);
            assertArrayEquals(before, Files.readAllBytes(ours.resolve("t.qcow2")), String.join(" ", args));
        }
        // qemu-img copies the data before it finds -F missing; we refuse first (checked above: byte-identical)
        Cli.assertOneLineError(qcow4j(ours, "rebase", "-b", "t.qcow2", "-F", "qcow2", "t.qcow2"), 1,
                "Could not open new backing file 't.qcow2': 't.qcow2' would become its own backing file");
        assertArrayEquals(before, Files.readAllBytes(ours.resolve("t.qcow2")));
    }
}
