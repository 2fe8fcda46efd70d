package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.Seeds;
import io.qcow4j.testing.TestData;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The seeded hostile-image corpus through the CLI: random bytes changed in the first clusters
 * of the reference images (as AdversarialImagesTest makes them for the engine), each variant
 * through info, check, check -r all (on a copy), map, dump, bitmap --add (on a copy) and
 * convert -O raw, in this JVM. Every command must succeed or end with one {@code qcow4j: }
 * error line (check may report on stderr first, as qemu-img does), never print a stack trace or "Exception", end
 * within {@link #LIMIT} (a watchdog; a hang is a failure naming the seed and the command),
 * allocate at most {@link #ALLOCATION_BUDGET} bytes on its thread, and leave the input's bytes
 * as they were. Default: a small fixed sample; {@code -Dqcow4j.long=true}: 10,005 images;
 * {@code -Dqcow4j.seed=N} another corpus (the long mode draws one). Failing variants are kept in target/fuzz-cli-failures.
 */
class HostileCorpusIT {
    private static final long LIMIT_SECONDS = 5;
    /**
     * Bytes the command's own thread may allocate in all (garbage included; the JVM has -Xmx1g
     * besides): 256 MiB, plus 128 bytes per 64 KiB of the largest file the command leaves,
     * since check -r may grow a copy to include a refcount block far out, as qemu-img does
     * (regression fuzz-cli-zlib-refblock-far.qcow2: 760 GB sparse, ~1.1 GiB allocated, 70 MB RSS).
     */
    static final long ALLOCATION_BUDGET = 256L << 20;
    static final long ALLOCATION_PER_64K = 128;
    static final List<String> IMAGES = List.of("empty.qcow2", "chain-mid.qcow2", "zlib-compressed.qcow2",
            "snapshot.qcow2", "v2.qcow2", "cluster-512.qcow2", "refcount-bits-1.qcow2", "extended-l2.qcow2",
            "data-file.qcow2", "zstd-compressed.qcow2", "lazy-dirty.qcow2", "raw-backed.qcow2",
            "extended-l2-backed.qcow2", "bitmaps.qcow2", "bitmaps-inuse.qcow2");
    static final int VARIANTS = Integer.getInteger("qcow4j.fuzz.variants", Boolean.getBoolean("qcow4j.long") ? 667 : 5);
    static final int CLUSTERS = 4;
    /** The default suite's corpus ({@code -Dqcow4j.seed=N} adds N). */
    static final long FIXED_SEED = 0;

    /** The commands; IMG is the variant (read only), COPY a copy of it the command may change. */
    static final List<String[]> COMMANDS = Stream.of(
            "info IMG", "info --output=json IMG", "check IMG", "check -r all COPY", "map --output=json IMG",
            "dump IMG", "bitmap --add COPY fz", "convert -O raw IMG out.raw")
            .map(s -> s.split(" ")).toList();

    @TempDir
    Path tmp;

    @BeforeAll
    static void meterWorks() {
        long before = allocated();
        byte[] probe = new byte[1 << 20];
        assertTrue(before >= 0 && allocated() - before >= probe.length, "thread allocation metering unavailable");
    }

    @Test
    void corpusThroughTheCommands() throws IOException {
        long seed = Seeds.of(FIXED_SEED);
        Random random = new Random(seed);
        List<String> failures = new ArrayList<>();
        Map<String, Integer> outcomes = new TreeMap<>();
        int variant = 0;
        for (String name : IMAGES) {
            Path dir = Files.createDirectory(tmp.resolve("fuzz-" + name));
            TestData.copyToTemp(name, dir);
            Path pristine = TestData.image(name);
            Path img = dir.resolve("variant-" + name);
            int clusterBits = ByteBuffer.wrap(Files.readAllBytes(pristine), 20, 4).getInt();
            long region = Math.min(Files.size(pristine), (long) CLUSTERS << clusterBits);
            for (int v = 0; v < VARIANTS; v++, variant++) {
                Files.copy(pristine, img, StandardCopyOption.REPLACE_EXISTING);
                String what = mutate(img, random, region);
                String id = "seed " + seed + " variant " + variant + " (" + name + ":" + what + ")";
                List<String> problems = runAll(dir, img, id, outcomes);
                if (!problems.isEmpty()) {
                    problems.forEach(System.out::println);
                    failures.addAll(problems);
                    Path keep = Path.of("target", "fuzz-cli-failures");
                    Files.createDirectories(keep);
                    Files.copy(pristine, keep.resolve("variant-" + variant + "-" + name + ".orig"), StandardCopyOption.REPLACE_EXISTING);
                    Files.copy(img, keep.resolve("variant-" + variant + "-" + name), StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
        System.out.println("CLI fuzz corpus, seed " + seed + ", " + variant + " images: " + outcomes);
        if (!failures.isEmpty()) {
            fail(failures.size() + " command runs misbehaved (replay with -Dqcow4j.seed=" + seed + "):\n"
                    + String.join("\n\n", failures));
        }
        assertEquals(IMAGES.size() * VARIANTS, variant);
        assertTrue(outcomes.keySet().stream().anyMatch(k -> k.endsWith(" 0")), "no command succeeded: " + outcomes);
        assertTrue(outcomes.keySet().stream().anyMatch(k -> k.endsWith(" 1")), "no command failed: " + outcomes);
    }

    /** Every committed regression input through the same commands. */
    @Test
    void regressions() throws IOException {
        List<Path> inputs;
        try (Stream<Path> s = Files.list(TestData.dir().resolve("regressions"))) {
            inputs = s.filter(p -> p.getFileName().toString().endsWith(".qcow2")).sorted().toList();
        }
        assertTrue(!inputs.isEmpty());
        List<String> failures = new ArrayList<>();
        for (Path input : inputs) {
            Path dir = Files.createDirectory(tmp.resolve("reg-" + input.getFileName()));
            Path img = dir.resolve(input.getFileName());
            Files.copy(input, img);
            Files.copy(TestData.image("raw-backing.raw"), dir.resolve("raw-backing.raw")); // the raw-backed inputs' backing
            Files.copy(TestData.image("chain-base.qcow2"), dir.resolve("chain-base.qcow2")); // the chain-mid inputs' backing
            failures.addAll(runAll(dir, img, input.getFileName().toString(), new TreeMap<>()));
            String verdict = checkVerdict(dir, img);
            if (verdict != null) {
                failures.add(input.getFileName() + ": " + verdict);
            }
        }
        assertTrue(failures.isEmpty(), String.join("\n\n", failures));
    }

    /** Null if {@code check} of a regression input exits as qemu-img check does, else why not. */
    private static String checkVerdict(Path dir, Path img) {
        int ours = Cli.qcow4j(dir, "check", img.getFileName().toString()).exitCode();
        int theirs = Qemu.check(img).exitCode();
        return ours == theirs ? null : "check exits " + ours + ", qemu-img check " + theirs;
    }

    /** 1 to 8 random bytes changed, half of them in the header's first 512 bytes. */
    private static String mutate(Path img, Random random, long region) throws IOException {
        StringBuilder what = new StringBuilder();
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            int flips = 1 + random.nextInt(8);
            for (int i = 0; i < flips; i++) {
                long off = random.nextBoolean() ? random.nextInt(512) : (long) (random.nextDouble() * region);
                int value = random.nextInt(256);
                if (random.nextInt(4) == 0) {
                    f.seek(off);
                    value = f.read() ^ (1 << random.nextInt(8));
                }
                f.seek(off);
                f.write(value);
                what.append(String.format(Locale.ROOT, " [0x%x]=0x%02x", off, value & 0xff));
            }
        }
        return what.toString();
    }

    private static List<String> runAll(Path dir, Path img, String id, Map<String, Integer> outcomes) throws IOException {
        List<String> problems = new ArrayList<>();
        Path copy = dir.resolve("copy.qcow2");
        for (String[] template : COMMANDS) {
            Files.copy(img, copy, StandardCopyOption.REPLACE_EXISTING);
            Files.deleteIfExists(dir.resolve("out.raw"));
            String[] args = new String[template.length];
            for (int i = 0; i < args.length; i++) {
                args[i] = switch (template[i]) {
                    case "IMG" -> img.getFileName().toString();
                    case "COPY" -> copy.getFileName().toString();
                    default -> template[i];
                };
            }
            String what = id + ": qcow4j " + String.join(" ", args);
            String before = HostileInputIT.sha256(img);
            Run run = run(dir, args);
            if (run == null) {
                problems.add(what + ": did not end within " + LIMIT_SECONDS + " s");
                continue;
            }
            Qemu.Result r = run.result;
            outcomes.merge(args[0] + (args[1].startsWith("-") ? " " + args[1] : "") + " " + Math.min(r.exitCode(), 1), 1, Integer::sum);
            String problem = judge(args, r);
            if (problem != null) {
                problems.add(what + ": " + problem + "\n" + shorten(r.describe()));
            }
            long budget = ALLOCATION_BUDGET + ALLOCATION_PER_64K * (Math.max(Files.size(img), Files.size(copy)) >> 16);
            if (run.allocated > budget) {
                problems.add(what + ": allocated " + (run.allocated >> 20) + " MiB (budget " + (budget >> 20) + " MiB)");
            }
            if (!before.equals(HostileInputIT.sha256(img))) {
                problems.add(what + ": the input file changed (exit " + r.exitCode() + ")");
            }
        }
        return problems;
    }

    /** Null if the run ended as it must, else what is wrong. */
    static String judge(String[] args, Qemu.Result r) {
        String all = r.stdout() + r.stderr();
        if (all.contains("Exception") || all.contains("\tat ") || all.contains("Error:")) {
            return "stack trace or exception text";
        }
        boolean check = args[0].equals("check");
        List<String> errors = r.stderr().lines().filter(l -> !l.startsWith("qcow4j: warning: ")).toList();
        if (r.exitCode() == 0) {
            return check || errors.isEmpty() ? null : "succeeded with errors on stderr";
        }
        if (check && r.exitCode() != 1) {
            return null; // 2: corruptions, 3: leaks, reported as qemu-img does
        }
        if (check) {
            // the report's lines, then why the check stopped, as qemu-img prints them
            return !errors.isEmpty() && errors.get(errors.size() - 1).startsWith("qcow4j: ") ? null
                    : "check failed without a closing error line";
        }
        if (errors.size() != 1 || !errors.get(0).startsWith("qcow4j: ") || errors.get(0).isBlank()) {
            return "not exactly one error line";
        }
        return null;
    }

    /** A run's output cut to a few KiB: a check report of a damaged table has tens of thousands of lines. */
    private static String shorten(String text) {
        return text.length() <= 4096 ? text : text.substring(0, 2048) + "\n[...]\n" + text.substring(text.length() - 2048);
    }

    record Run(Qemu.Result result, long allocated) {
    }

    /** Runs the command on a daemon thread; null if it did not end in time (the thread is left behind). */
    private static Run run(Path dir, String[] args) {
        CompletableFuture<Run> done = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            long before = allocated();
            try {
                Qemu.Result r = Cli.qcow4j(dir, args);
                done.complete(new Run(r, allocated() - before));
            } catch (Throwable e) {
                done.completeExceptionally(e);
            }
        }, "fuzz-cli " + args[0]);
        t.setDaemon(true);
        t.start();
        try {
            return done.get(LIMIT_SECONDS, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            t.interrupt();
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        } catch (ExecutionException e) {
            // Main.run let a Throwable escape: as bad as a stack trace
            return new Run(new Qemu.Result(List.of(args), 99, "", "escaped: " + e.getCause() + " Exception"), 0);
        }
    }

    private static long allocated() {
        return ((com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean()).getCurrentThreadAllocatedBytes();
    }
}
