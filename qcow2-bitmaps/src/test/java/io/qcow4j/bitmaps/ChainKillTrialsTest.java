package io.qcow4j.bitmaps;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import io.qcow4j.testing.KillTrial;
import io.qcow4j.testing.Scenario;
import io.qcow4j.testing.Seeds;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SIGKILL trials of the chain jobs of {@link ChainPowerLossTest} (commit, stream, safe
 * rebase): a child JVM runs a job and is killed a seeded 0 to 300 ms after it began the job
 * or the close that follows; the checks are ChainPowerLossTest's (every image clean, leaks
 * allowed; the top reads as before; a commit's base as before or as the top sector by
 * sector, all as the top once the close returned, its bitmap in_use or covering the
 * changes). 6 trials in the default suite, 150 with {@code -Dqcow4j.long=true}.
 */
class ChainKillTrialsTest {
    static final long SEED = Seeds.of(20261213L);
    static final List<String> JOBS = List.of("commit", "stream", "rebase");

    @Test
    void killedJobsLeaveConsistentChains(@TempDir Path tmp) throws Exception {
        int trials = Seeds.longMode() ? 150 : 6;
        Random r = new Random(SEED);
        List<String> failures = new ArrayList<>();
        int killed = 0;
        for (int t = 0; t < trials; t++) {
            String job = JOBS.get(t % JOBS.size());
            long seed = r.nextLong();
            Scenario s = new ChainPowerLossTest.ChainJob(seed, job);
            // mostly inside the job (op 0), sometimes in the close (op 1)
            int killAt = r.nextInt(4) == 0 ? 1 : 0;
            long delay = r.nextInt(300);
            String what = "trial " + t + " of seed " + SEED + ": " + s + ", killed " + delay + " ms after 'begin " + killAt + "'";
            try {
                if (KillTrial.run(s, tmp.resolve("kill-" + t), killAt, delay, ChainScenarioChild.class,
                        List.of(job, Long.toString(seed)))) {
                    killed++;
                }
            } catch (AssertionError | Exception e) {
                failures.add(what + ": " + e);
            }
        }
        System.out.println("chain kill trials (seed " + SEED + "): " + trials + " runs, " + killed + " killed before they ended");
        if (!failures.isEmpty()) {
            throw new AssertionError(failures.size() + " of " + trials + " kill trials failed:\n"
                    + String.join("\n", failures.subList(0, Math.min(5, failures.size()))));
        }
    }
}
