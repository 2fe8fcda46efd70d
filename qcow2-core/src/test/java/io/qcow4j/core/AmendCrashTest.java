package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Amends killed with SIGKILL at random instants (a child amending in a loop: zero cluster
 * expansion, refcount structures rewritten in every width, header switches): after each
 * kill qemu-img check finds leaks at worst, the disk reads as before, and the next amend
 * works on what the kill left.
 */
class AmendCrashTest {

    @Test
    void killedAmendLeavesAtWorstLeaksAndTheDataIntact(@TempDir Path tmp) throws Exception {
        long seed = 20261207L + Long.getLong("qcow4j.seed", 0);
        Random r = new Random(seed);
        Path img = tmp.resolve("amend.qcow2");
        Path reference = tmp.resolve("reference.raw");
        Qemu.create(img, "16M", "cluster_size=4k");
        // data, explicit zero data (zero-allocated clusters once zeroed), unallocated ranges
        Qemu.io(img, "write -P 1 0 1M", "write -P 0 1M 1M", "write -P 2 3M 2M", "write -P 0 6M 1M",
                "write -P 3 9M 1M", "write -z 12M 1M").assertOk();
        Qemu.convertToRaw(img, reference);
        for (int round = 0; round < 6; round++) {
            long childSeed = r.nextLong();
            List<String> cmd = io.qcow4j.testing.ChildJvm.command(List.of(), AmendCrashWriter.class, img.toString(),
                    Long.toString(childSeed));
            Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
            try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                assertEquals("ready", out.readLine(), "amender did not start (seed " + seed + ")");
                Thread.sleep(100 + r.nextInt(400));
                p.destroyForcibly();
                assertTrue(p.waitFor(30, TimeUnit.SECONDS));
            }
            Qemu.Result check = Qemu.check(img);
            String what = "seed " + seed + " round " + round + " child seed " + childSeed + "\n" + check.stdout() + check.stderr();
            assertTrue(check.exitCode() == 0 || check.exitCode() == 3, "corruption after kill: " + what);
            assertTrue(Qemu.compare(reference, img), "data changed: " + what);
            try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
                assertEquals(16L << 20, image.size(), what);
            }
        }
    }
}
