package io.qcow4j.backup;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import io.qcow4j.testing.FaultTrial;
import io.qcow4j.testing.FaultyStorage;
import io.qcow4j.testing.KillTrial;
import io.qcow4j.testing.Replay;
import io.qcow4j.testing.Scenario;
import io.qcow4j.testing.Seeds;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * An incremental backup ({@link BackupScenario}) under power loss, SIGKILL and injected
 * faults, with the scenario's checks: the source clean, reading as before, no dirty bit
 * lost; the set complete or its incomplete backup unlisted; the next backup restoring to the
 * disk, its checkpoint chain merged back. Default: 6 crash points, 2 kills, 2 faults per
 * format; {@code -Dqcow4j.long=true}: 400 crash points, 100 kills, every event (at most 100)
 * per format.
 */
class BackupReliabilityTest {
    static final long SEED = Seeds.of(20261215L);

    @Test
    void powerLossLeavesTheSourceAndItsCheckpointsSound(@TempDir Path tmp) throws Exception {
        Scenario s = new BackupScenario(SEED, Format.QCOW2);
        Replay.Summary summary = Replay.scenario(s, tmp, Replay.scale(6, 400));
        System.out.println("power-loss " + s + ": " + summary.crashes + " crashes of " + summary.events + " events");
        summary.assertNoFailure(s.toString());
    }

    @Test
    void killedBackupsLeaveACompleteOrUnlistedBackup(@TempDir Path tmp) throws Exception {
        int trials = Seeds.longMode() ? 100 : 2;
        Random r = new Random(SEED);
        List<String> failures = new ArrayList<>();
        int killed = 0;
        for (int t = 0; t < trials; t++) {
            Format format = t % 2 == 0 ? Format.QCOW2 : Format.STREAM;
            long seed = r.nextLong();
            long delay = r.nextInt(400);
            Scenario s = new BackupScenario(seed, format);
            String what = "trial " + t + " of seed " + SEED + ": " + s + ", killed " + delay + " ms after it began";
            try {
                if (KillTrial.run(s, tmp.resolve("kill-" + t), 0, delay, BackupScenarioChild.class,
                        List.of(Long.toString(seed), format.name().toLowerCase(java.util.Locale.ROOT)))) {
                    killed++;
                }
            } catch (AssertionError | Exception e) {
                failures.add(what + ": " + e);
            }
        }
        System.out.println("backup kill trials (seed " + SEED + "): " + trials + " runs, " + killed + " killed before they ended");
        if (!failures.isEmpty()) {
            throw new AssertionError(failures.size() + " of " + trials + " kill trials failed:\n"
                    + String.join("\n", failures.subList(0, Math.min(5, failures.size()))));
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qcow2", "stream"})
    void faultsAreReportedAndLeaveACompleteOrUnlistedBackup(String fmt, @TempDir Path tmp) throws Exception {
        Scenario s = new BackupScenario(SEED + fmt.length(), Format.parse(fmt));
        int events = FaultTrial.countEvents(s, tmp.resolve("count"));
        Random r = new Random(s.seed() ^ 0xfa17L);
        List<Integer> targets = FaultTrial.targets(events, r, 100, 2);
        FaultyStorage.Fault[] kinds = FaultyStorage.Fault.values();
        List<String> failures = new ArrayList<>();
        for (int t = 0; t < targets.size(); t++) {
            int n = targets.get(t);
            FaultyStorage.Fault fault = kinds[t % kinds.length];
            try {
                FaultTrial.run(s, tmp.resolve("fault-" + t), n, fault, r.nextLong());
            } catch (AssertionError | Exception e) {
                failures.add(s + ", fault " + fault + " at event " + n + " of " + events + ": " + e);
            }
        }
        System.out.println("fault injection " + s + ": " + targets.size() + " faults over " + events + " events");
        if (!failures.isEmpty()) {
            throw new AssertionError(failures.size() + " of " + targets.size() + " faults failed:\n"
                    + String.join("\n", failures.subList(0, Math.min(5, failures.size()))));
        }
    }
}
