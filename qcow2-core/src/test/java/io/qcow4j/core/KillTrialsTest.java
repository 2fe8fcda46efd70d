package io.qcow4j.core;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import io.qcow4j.testing.CoreScenarios;
import io.qcow4j.testing.KillTrial;
import io.qcow4j.testing.Scenario;
import io.qcow4j.testing.Seeds;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SIGKILL trials over the scenarios of {@link CoreScenarios}: a child JVM runs a scenario
 * and is killed once it reports the beginning of a seeded operation (the kill lands there
 * or a little later). The page cache survives a killed process, but what qcow4j keeps in
 * memory does not: operations up to the last flush or close that returned must read back,
 * later ones may; {@code qemu-img check} finds no corruption and no bitmap is lost or
 * wrong. 50 trials in the default suite, 1,000 with {@code -Dqcow4j.long=true}.
 */
class KillTrialsTest {
    static final long SEED = Seeds.of(20261208L);

    /** The scenario {@code name} of {@code CoreScenarios.all(seed)}. */
    static Scenario find(String name, long seed) {
        return CoreScenarios.all(seed).stream().filter(s -> s.name().equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no scenario " + name));
    }

    @Test
    void killedScenariosLeaveConsistentImages(@TempDir Path tmp) throws Exception {
        int trials = Seeds.longMode() ? 1000 : 50;
        Random r = new Random(SEED);
        List<String> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        java.util.concurrent.atomic.AtomicInteger killed = new java.util.concurrent.atomic.AtomicInteger();
        // two at a time: most of a trial is the child JVM starting
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(2);
        List<java.util.concurrent.Future<?>> running = new ArrayList<>();
        for (int t = 0; t < trials; t++) {
            long seed = r.nextLong();
            int pick = r.nextInt(Integer.MAX_VALUE);
            int trial = t;
            Path dir = tmp.resolve("kill-" + t);
            running.add(pool.submit(() -> {
                // planned in the task: a thousand plans at once would not fit in the heap
                List<Scenario> all = CoreScenarios.all(seed);
                Scenario s = all.get(trial % all.size());
                int killAt = pick % s.operations();
                String what = "trial " + trial + " of seed " + SEED + ": " + s + ", killed at 'begin " + killAt + "'";
                try {
                    if (trial(s, seed, dir, killAt, what)) {
                        killed.incrementAndGet();
                    }
                    deleteTree(dir);
                } catch (AssertionError | Exception e) {
                    failures.add(what + ": " + e);
                }
            }));
        }
        pool.shutdown();
        for (java.util.concurrent.Future<?> f : running) {
            f.get();
        }
        System.out.println("kill trials (seed " + SEED + "): " + trials + " runs, " + killed.get() + " killed before they ended");
        if (!failures.isEmpty()) {
            throw new AssertionError(failures.size() + " of " + trials + " kill trials failed:\n"
                    + String.join("\n", failures.subList(0, Math.min(5, failures.size()))));
        }
    }

    /** Returns whether the child died before it finished (the trial itself: {@link KillTrial}). */
    private static boolean trial(Scenario s, long baseSeed, Path dir, int killAt, String what) throws Exception {
        return KillTrial.run(s, dir, killAt, 0, ScenarioChild.class, List.of(s.name(), Long.toString(baseSeed)));
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path f : (Iterable<Path>) all.sorted(java.util.Comparator.reverseOrder())::iterator) {
                Files.delete(f);
            }
        }
    }
}
