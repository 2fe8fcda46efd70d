package io.qcow4j.core;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import io.qcow4j.testing.CoreScenarios;
import io.qcow4j.testing.FaultTrial;
import io.qcow4j.testing.FaultyStorage;
import io.qcow4j.testing.Scenario;
import io.qcow4j.testing.Seeds;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Fault injection under the engine's operations ({@link CoreScenarios}): the Nth write,
 * reservation, length change or flush of a run fails with EIO or ENOSPC, or is torn at
 * 512-byte sectors and fails. The caller must get an {@link IOException} (never success,
 * never another exception), and after the image was closed: {@code qemu-img check} finds
 * no corruption, every operation that returned reads back (all of them when the failure
 * hit an operation before the close, since the close then writes everything; those before
 * the last flush when it hit the close), and no persistent bitmap is lost or wrong (in_use
 * allowed). The default suite tries a seeded sample of N in every scenario;
 * {@code -Dqcow4j.long=true} tries every N (at most 300, evenly spread).
 */
class FaultInjectionTest {
    static final long SEED = Seeds.of(20261207L);
    /** Faults per scenario at most in the long mode ({@code -Dqcow4j.faults=N} to choose). */
    static final int LONG_FAULTS = Integer.getInteger("qcow4j.faults", 300);

    static Stream<Scenario> scenarios() {
        return CoreScenarios.all(SEED).stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void everyFailureIsReportedAndLeavesAConsistentImage(Scenario s, @TempDir Path tmp) throws Exception {
        int events = countEvents(s, tmp.resolve("count"));
        Random r = new Random(s.seed() ^ 0xfa17L);
        List<Integer> targets = FaultTrial.targets(events, r, LONG_FAULTS, 5);
        FaultyStorage.Fault[] kinds = FaultyStorage.Fault.values();
        List<String> failures = new ArrayList<>();
        for (int t = 0; t < targets.size(); t++) {
            int n = targets.get(t);
            FaultyStorage.Fault fault = kinds[t % kinds.length];
            String what = s + ", fault " + fault + " at event " + n + " of " + events;
            try {
                trial(s, tmp.resolve("fault-" + t), n, fault, r.nextLong(), what);
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

    private static int countEvents(Scenario s, Path dir) throws Exception {
        return FaultTrial.countEvents(s, dir);
    }

    /** One trial (the checks: {@link FaultTrial}); its directory goes when it passed. */
    private static void trial(Scenario s, Path dir, int n, FaultyStorage.Fault fault, long seed, String what) throws Exception {
        FaultTrial.run(s, dir, n, fault, seed);
        deleteTree(dir);
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) all.sorted(java.util.Comparator.reverseOrder())::iterator) {
                Files.delete(p);
            }
        }
    }
}
