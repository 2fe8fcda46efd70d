package io.qcow4j.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/**
 * Runs the crashes of a {@link PowerLoss} recording through a verifier: a seeded sample
 * of crash points (half anywhere in the log, half just before a flush, where the most
 * writes are in flight), each with its own share of lost and torn writes. Each crash is
 * built in a directory of its own, beside copies of the other files of the operation's
 * directory (backing files, the data file); a failing one is kept under
 * {@code target/power-loss-failures/}.
 */
public final class Replay {
    /** Checks one crash; throws an AssertionError saying what is wrong. */
    @FunctionalInterface
    public interface Verifier {
        void verify(Path dir, PowerLoss.Crash crash) throws Exception;
    }

    /** What a replay saw. */
    public static final class Summary {
        public int crashes;
        public int events;
        public final List<String> failures = new ArrayList<>();

        public void assertNoFailure(String what) {
            if (!failures.isEmpty()) {
                throw new AssertionError(failures.size() + " of " + crashes + " crashes of " + what + " failed:\n"
                        + String.join("\n\n", failures.subList(0, Math.min(5, failures.size()))));
            }
        }
    }

    /** Whether the long mode runs ({@code -Dqcow4j.long=true}): the default suite samples less. */
    public static boolean longMode() {
        return Boolean.getBoolean("qcow4j.long");
    }

    /** {@code normal} in the default suite, {@code longer} in the long mode. */
    public static int scale(int normal, int longer) {
        return longMode() ? longer : normal;
    }

    private Replay() {
    }

    /**
     * Replays {@code points} crashes of {@code rec}. The verifier gets a directory holding
     * the crashed files under their own names and copies of everything else in {@code origin}.
     */
    public static Summary run(PowerLoss rec, Path origin, Path work, long seed, int points, String what, Verifier v) {
        return run(rec, origin, work, seed, points, what, null, v);
    }

    /** {@link #run(PowerLoss, Path, Path, long, int, String, Verifier)}; durability promised only by {@code barrier} operations. */
    public static Summary run(PowerLoss rec, Path origin, Path work, long seed, int points, String what,
                              java.util.function.IntPredicate barrier, Verifier v) {
        Random random = new Random(seed);
        List<PowerLoss.Event> events = rec.events();
        List<Integer> beforeFlush = new ArrayList<>();
        for (int i = 0; i < events.size(); i++) {
            if (events.get(i).kind() == PowerLoss.Kind.FLUSH) {
                beforeFlush.add(i);
            }
        }
        Summary s = new Summary();
        for (int n = 0; n < points; n++) {
            int point = n % 2 == 1 && !beforeFlush.isEmpty()
                    ? beforeFlush.get(random.nextInt(beforeFlush.size()))
                    : 1 + random.nextInt(events.size());
            double keep = switch (random.nextInt(4)) {
                case 0 -> 0.0;
                case 1 -> 1.0;
                default -> random.nextDouble();
            };
            long crashSeed = random.nextLong();
            PowerLoss.Crash crash = rec.crash(point, new Random(crashSeed), keep, 0.3, barrier);
            Path dir = work.resolve("crash-" + n);
            try {
                Files.createDirectories(dir);
                copyOthers(origin, dir);
                crash.writeTo(dir);
                v.verify(dir, crash);
                deleteTree(dir);
            } catch (Exception | AssertionError e) {
                String id = what + ", seed " + seed + ", crash " + n + " (keep " + String.format("%.2f", keep)
                        + ", crash seed " + crashSeed + "): " + crash.description();
                s.failures.add(id + "\n  " + e);
                keep(dir, what, n);
            }
            s.crashes++;
        }
        return s;
    }

    /**
     * Prepares {@code s} in {@code work/run}, runs it under a recording and replays
     * {@code points} crashes through {@link Scenario#verify}.
     */
    public static Summary scenario(Scenario s, Path work, int points) throws Exception {
        Path dir = work.resolve("run-" + s.name());
        Files.createDirectories(dir);
        s.prepare(dir);
        PowerLoss rec;
        try (PowerLoss r = PowerLoss.record()) {
            rec = r;
            s.run(dir, new Scenario.Steps() {
                @Override
                public void begin(int op) {
                    r.begin(op);
                }

                @Override
                public void ack(int op) {
                    r.ack(op);
                }
            });
        }
        if (rec.count(PowerLoss.Kind.FLUSH) == 0) {
            throw new AssertionError(s + " flushed nothing");
        }
        Summary summary = run(rec, dir, work, s.seed() ^ 0x5eedL, points, s.toString(), s::isBarrier,
                (d, crash) -> s.verify(d, crash.durable(), Math.max(0, crash.inflight())));
        summary.events = rec.size();
        deleteTree(dir);
        return summary;
    }

    private static void copyOthers(Path origin, Path dir) throws IOException {
        try (Stream<Path> files = Files.list(origin)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                if (Files.isRegularFile(f)) {
                    Files.copy(f, dir.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
    }

    private static void keep(Path dir, String what, int n) {
        try {
            Path target = Path.of("target", "power-loss-failures", what.replaceAll("[^A-Za-z0-9.-]", "_") + "-" + n);
            Files.createDirectories(target);
            if (Files.isDirectory(dir)) {
                copyOthers(dir, target);
                deleteTree(dir);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) all.sorted(Comparator.reverseOrder())::iterator) {
                Files.delete(p);
            }
        }
    }
}
