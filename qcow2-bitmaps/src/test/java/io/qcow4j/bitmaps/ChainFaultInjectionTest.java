package io.qcow4j.bitmaps;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import io.qcow4j.testing.FaultTrial;
import io.qcow4j.testing.FaultyStorage;
import io.qcow4j.testing.Scenario;
import io.qcow4j.testing.Seeds;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Fault injection (see qcow2-core's {@code FaultInjectionTest}) under the chain jobs of
 * {@link ChainPowerLossTest}: the Nth write, reservation, length change or flush over the
 * images of the chain fails with EIO or ENOSPC, or is torn and fails. The job or its close
 * must throw an IOException, and then ChainPowerLossTest's checks hold. The default suite
 * tries 3 seeded N per job; {@code -Dqcow4j.long=true} every N (at most 100, evenly spread).
 */
class ChainFaultInjectionTest {
    static final long SEED = Seeds.of(20261214L);
    static final int LONG_FAULTS = Integer.getInteger("qcow4j.faults", 100);

    static Stream<Scenario> scenarios() {
        return Stream.of(new ChainPowerLossTest.ChainJob(SEED, "commit"), new ChainPowerLossTest.ChainJob(SEED + 1, "stream"),
                new ChainPowerLossTest.ChainJob(SEED + 2, "rebase"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void everyFailureIsReportedAndLeavesAConsistentChain(Scenario s, @TempDir Path tmp) throws Exception {
        int events = FaultTrial.countEvents(s, tmp.resolve("count"));
        Random r = new Random(s.seed() ^ 0xfa17L);
        List<Integer> targets = FaultTrial.targets(events, r, LONG_FAULTS, 3);
        FaultyStorage.Fault[] kinds = FaultyStorage.Fault.values();
        List<String> failures = new ArrayList<>();
        for (int t = 0; t < targets.size(); t++) {
            int n = targets.get(t);
            FaultyStorage.Fault fault = kinds[t % kinds.length];
            String what = s + ", fault " + fault + " at event " + n + " of " + events;
            try {
                FaultTrial.run(s, tmp.resolve("fault-" + t), n, fault, r.nextLong());
            } catch (AssertionError | Exception e) {
                failures.add(what + ": " + e);
            }
        }
        System.out.println("fault injection " + s + ": " + targets.size() + " faults over " + events + " events");
        if (!failures.isEmpty()) {
            throw new AssertionError(failures.size() + " of " + targets.size() + " faults failed:\n"
                    + String.join("\n", failures.subList(0, Math.min(5, failures.size()))));
        }
    }
}
