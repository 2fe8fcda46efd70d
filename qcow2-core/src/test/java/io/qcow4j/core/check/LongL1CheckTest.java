package io.qcow4j.core.check;

import static io.qcow4j.core.check.CheckOracle.assertCheckLikeQemu;
import static io.qcow4j.core.check.CheckOracle.writeLong;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An L1 table whose l1_size was made larger than the table: its tail is whatever follows it
 * in the file (compressed data) and then the zeros past the end, so most of its "L2 tables"
 * lie past the end of the file. qemu-img reads each as zeros and walks on; so must we, without
 * counting them against the work budget (which once gave up on these images with "the
 * metadata names more than the image can hold"). The budget still stops a table repeated
 * in the file ({@link ImageCheckerTest#anL1TableRepeatingOneL2TableEndsTheCheck}).
 */
class LongL1CheckTest {
    /** The CLI fuzz corpus's inputs (testdata/regressions/): l1_size changed on a compressed image. */
    @Test
    void aFuzzedL1SizeIsWalkedLikeQemu(@TempDir Path tmp) throws IOException {
        String name = "fuzz-cli-509738654-379-zlib-compressed.qcow2";
        Path img = tmp.resolve(name);
        Files.copy(TestData.dir().resolve("regressions").resolve(name), img);
        CheckResult r = assertLongCheckLikeQemu(img);
        assertEquals(2, r.exitCode(), r.toString());
        assertTrue(r.corruptions() > 100_000, r.toString());
        // check -r all ends as qemu-img's does: a fix would overwrite the L1 table, the overlap
        // check refuses it and the check fails (exit 1), with the same report
        Path twin = CheckOracle.twin(img, "qemu");
        Qemu.Result theirs = Qemu.check(twin, "-r", "all");
        CheckResult ours = CheckOracle.repair(img, Repair.ALL);
        assertEquals(theirs.exitCode(), ours.exitCode(), theirs.stdout() + theirs.stderr() + "\nours: " + ours);
        assertEquals(1, ours.exitCode());
        assertEquals(CheckOracle.lines(theirs.stderr()), ours.stderrLines("qemu-img"), "stderr of -r all");
    }

    /**
     * qemu-img check and ours give the same exit code and stdout; our stderr is qemu's first
     * 100,000 lines (the rest are counted, not kept, when not streamed).
     */
    private static CheckResult assertLongCheckLikeQemu(Path img) throws IOException {
        Qemu.Result human = Qemu.check(img);
        CheckResult ours = CheckOracle.check(img);
        String why = human.stdout() + "\nours: " + ours;
        assertEquals(human.exitCode(), ours.exitCode(), why);
        assertEquals(CheckOracle.lines(human.stdout()), ours.humanLines(), why);
        List<String> theirs = CheckOracle.lines(human.stderr());
        List<String> kept = ours.stderrLines("qemu-img");
        assertEquals(theirs.size(), kept.size() + ours.droppedStderrLines(), why);
        assertEquals(theirs.subList(0, kept.size()), kept, "stderr");
        return ours;
    }

    @Test
    void l2TablesPastTheEndReadAsZeros(@TempDir Path tmp) throws IOException {
        // 20 Ki L1 entries naming distinct L2 tables past the end of the file: each reads as
        // zeros, as in qemu; walking them all once cost 2 x 20 Ki x 8 Ki entries, over the budget
        Path img = TestData.copyToTemp("empty.qcow2", tmp);
        long end = (Files.size(img) + 0xffff) & ~0xffffL;
        int entries = 20 * 1024; // 2 x 20 Ki x 8 Ki = 2^28.3 units: over the old budget of 2^28
        ByteBuffer l1 = ByteBuffer.allocate(8 * entries);
        for (int i = 0; i < entries; i++) {
            l1.putLong(end + (64L << 20) + ((long) i << 16));
        }
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.write(l1.flip(), end);
        }
        writeLong(img, 24, (long) entries << 29);
        CheckOracle.writeInt(img, 36, entries);
        writeLong(img, 40, end);
        CheckResult r = assertCheckLikeQemu(img);
        assertEquals(2, r.exitCode(), r.toString());
        assertTrue(r.corruptions() >= entries, r.toString()); // one per table, and the header's few
    }
}
