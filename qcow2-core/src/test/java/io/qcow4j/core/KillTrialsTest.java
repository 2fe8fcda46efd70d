package io.qcow4j.core;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import io.qcow4j.testing.ChildJvm;
import io.qcow4j.testing.CoreScenarios;
import io.qcow4j.testing.DiskScenario;
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

    /**
     * A process forked (a child JVM, qemu-img) while another trial has an image open
     * inherits its descriptor, and with it the image's lock, until the child closes it: the
     * two trials take turns for everything but the child's run.
     */
    private static final java.util.concurrent.locks.Lock TURN = new java.util.concurrent.locks.ReentrantLock();

    /** Returns whether the child died before it finished. */
    private static boolean trial(Scenario s, long baseSeed, Path dir, int killAt, String what) throws Exception {
        Files.createDirectories(dir);
        TURN.lock();
        try {
            s.prepare(dir);
        } finally {
            TURN.unlock();
        }
        List<String> cmd = ChildJvm.command(List.of("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto"),
                ScenarioChild.class, s.name(), Long.toString(baseSeed), dir.toString());
        Process p;
        TURN.lock();
        try {
            p = new ProcessBuilder(cmd).redirectError(dir.resolve("child.err").toFile()).start();
        } finally {
            TURN.unlock();
        }
        int begun = -1;
        int acked = 0;
        int barrierAcked = 0;
        boolean done = false;
        try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            boolean kill = false;
            while ((line = out.readLine()) != null) {
                if (line.startsWith("begin ")) {
                    begun = Integer.parseInt(line.substring(6));
                    if (begun == killAt && !kill) {
                        // SIGKILL through the handle: Process.destroyForcibly would also close the pipe
                        p.toHandle().destroyForcibly();
                        kill = true;
                    }
                } else if (line.startsWith("ack ")) {
                    int op = Integer.parseInt(line.substring(4));
                    acked = op + 1;
                    if (s.isBarrier(op)) {
                        barrierAcked = op + 1;
                    }
                } else if (line.equals("done")) {
                    done = true;
                }
            }
        } finally {
            p.destroyForcibly();
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                throw new AssertionError("the child did not die");
            }
        }
        if (!done && begun < killAt) {
            throw new AssertionError("the child failed before operation " + killAt + " (last begun " + begun + "): "
                    + Files.readString(dir.resolve("child.err")).lines().limit(3).toList());
        }
        int inflight = done ? s.operations() : begun;
        TURN.lock();
        try {
            s.verify(dir, done ? s.operations() : barrierAcked, inflight);
        } catch (AssertionError e) {
            String op = s instanceof DiskScenario d ? d.describe(begun) : "";
            throw new AssertionError("last begun " + begun + " (" + op + "), " + acked + " acknowledged, "
                    + barrierAcked + " up to the last flush: " + e.getMessage(), e);
        } finally {
            TURN.unlock();
        }
        return !done;
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path f : (Iterable<Path>) all.sorted(java.util.Comparator.reverseOrder())::iterator) {
                Files.delete(f);
            }
        }
    }
}
