package io.qcow4j.core.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A refcount width change stopped at progress reports spread over all its walks (they
 * report once per old table entry), the image then abandoned as a killed process leaves it: what is on
 * disk must check with leaks at worst and read as before, whichever step it stopped in.
 * Deterministic, where {@link AmendCrashTest}'s kills land by chance.
 */
class AmendInterruptedTest {
    /** Thrown from the progress callback: the amend stops where it is. */
    private static final class Stop extends RuntimeException {
        private static final long serialVersionUID = 1L;
    }

    @Test
    void stoppedAnywhereLeavesAtWorstLeaks(@TempDir Path tmp) throws Exception {
        Path img = tmp.resolve("a.qcow2");
        Path reference = tmp.resolve("reference.raw");
        // 512-byte clusters: several refcount blocks, so each walk reports several times
        Qemu.create(img, "4M", "cluster_size=512");
        Qemu.io(img, "write -P 1 0 256k", "write -P 2 1M 512k", "write -z 3M 64k").assertOk();
        Qemu.convertToRaw(img, reference);
        for (int bits : new int[] {1, 64}) {
            int reports = countReports(img, tmp, bits);
            assertTrue(reports > 3, "too few reports to stop at: " + reports);
            List<Qcow2Image> abandoned = new ArrayList<>();
            try {
                // a dozen stops spread over the walks, and each of the last reports (the write walk's end)
                java.util.TreeSet<Integer> stops = new java.util.TreeSet<>();
                for (int k = 0; k <= 12; k++) {
                    stops.add(reports * k / 12);
                }
                for (int k = Math.max(0, reports - 3); k <= reports; k++) {
                    stops.add(k);
                }
                for (int stopAt : stops) {
                    Path copy = tmp.resolve("stop-" + bits + "-" + stopAt + ".qcow2");
                    Files.copy(img, copy);
                    Qcow2Image image = Qcow2Image.open(copy, OpenOptions.readWrite());
                    abandoned.add(image); // never closed: a killed process closes nothing
                    int[] calls = {0};
                    int at = stopAt;
                    try {
                        RefcountWidthChange.run(image.engine(), bits, (done, total) -> {
                            if (calls[0]++ == at) {
                                throw new Stop();
                            }
                        });
                    } catch (Stop expected) {
                        // stopped in the middle
                    }
                    String what = bits + " bits, stopped at report " + stopAt + " of " + reports;
                    Qemu.Result check = Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "qemu-img", "check", "-U", copy.toString());
                    assertTrue(check.exitCode() == 0 || check.exitCode() == 3, what + "\n" + check.describe());
                    Qemu.Result same = Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "qemu-img", "compare", "-U", "-f", "raw",
                            "-F", "qcow2", reference.toString(), copy.toString());
                    assertEquals(0, same.exitCode(), what + "\n" + same.describe());
                }
            } finally {
                for (Qcow2Image i : abandoned) {
                    i.close();
                }
            }
        }
    }

    /**
     * The zero-cluster expansion before a downgrade, stopped at each L1 entry's report (with a
     * snapshot sharing the L2 tables, and zero clusters with and without a host cluster):
     * leaks at worst, the disk and the snapshot read as before.
     */
    @Test
    void zeroExpansionStoppedAnywhereLeavesAtWorstLeaks(@TempDir Path tmp) throws Exception {
        Path img = tmp.resolve("z.qcow2");
        Qemu.create(img, "1M", "cluster_size=512");
        Qemu.io(img, "write -P 1 0 256k", "write -P 2 512k 128k").assertOk();
        Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "qemu-img", "snapshot", "-c", "s1", img.toString()).assertOk();
        Qemu.io(img, "write -z 0 64k", "write -z 200k 100k", "write -z 800k 64k", "write -P 3 600k 8k").assertOk();
        Path reference = tmp.resolve("z.raw");
        Path snapshot = tmp.resolve("s1.raw");
        Qemu.convertToRaw(img, reference);
        Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "qemu-img", "convert", "-l", "s1", "-O", "raw", img.toString(),
                snapshot.toString()).assertOk();
        int l1 = 1 << 20 >> 9 >> 6; // L1 entries of the disk: each L2 table maps 64 clusters of 512 bytes
        List<Qcow2Image> abandoned = new ArrayList<>();
        try {
            for (int stopAt = 0; stopAt < 2 * l1; stopAt += 3) { // active L1, then the snapshot's
                Path copy = tmp.resolve("zstop-" + stopAt + ".qcow2");
                Files.copy(img, copy);
                Qcow2Image image = Qcow2Image.open(copy, OpenOptions.readWrite());
                abandoned.add(image);
                int[] calls = {0};
                int at = stopAt;
                try {
                    image.engine().prepareForWrite();
                    ZeroExpansion.run(image.engine(), (done, total) -> {
                        if (calls[0]++ == at) {
                            throw new Stop();
                        }
                    });
                } catch (Stop expected) {
                    // stopped in the middle
                }
                String what = "expansion stopped at L1 entry " + stopAt;
                Qemu.Result check = Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "qemu-img", "check", "-U", copy.toString());
                assertTrue(check.exitCode() == 0 || check.exitCode() == 3, what + "\n" + check.describe());
                Qemu.Result same = Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "qemu-img", "compare", "-U", "-f", "raw",
                        "-F", "qcow2", reference.toString(), copy.toString());
                assertEquals(0, same.exitCode(), what + "\n" + same.describe());
                Path s1 = tmp.resolve("zs1-" + stopAt + ".raw");
                Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "qemu-img", "convert", "-U", "-l", "s1", "-O", "raw", copy.toString(),
                        s1.toString()).assertOk();
                assertTrue(java.util.Arrays.equals(Files.readAllBytes(snapshot), Files.readAllBytes(s1)), what + ": snapshot");
            }
        } finally {
            for (Qcow2Image i : abandoned) {
                i.close();
            }
        }
    }

    /** How many progress reports a whole change to {@code bits} makes on a copy of {@code img}. */
    private static int countReports(Path img, Path tmp, int bits) throws Exception {
        Path copy = tmp.resolve("count-" + bits + ".qcow2");
        Files.copy(img, copy);
        int[] calls = {0};
        try (Qcow2Image image = Qcow2Image.open(copy, OpenOptions.readWrite())) {
            RefcountWidthChange.run(image.engine(), bits, (done, total) -> calls[0]++);
        }
        return calls[0];
    }
}
