package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A process creating, deleting and applying snapshots between writes, killed with SIGKILL
 * at random instants. After each kill every snapshot the table lists reads exactly as the
 * disk was when it was taken; qemu-img check finds leaks at worst, or COPIED flags clear
 * on clusters whose refcount is 1 (the create/delete window QEMU has too, harmless: such a
 * cluster is copied on write), which {@code check -r all} repairs.
 */
class SnapshotCrashTest {

    @Test
    void killedSnapshotterLosesNothing(@TempDir Path tmp) throws Exception {
        long seed = 20261129L + Long.getLong("qcow4j.seed", 0);
        Random r = new Random(seed);
        for (int cs : new int[] {4096, 65536}) {
            Path img = tmp.resolve("crash-" + cs + ".qcow2");
            Qcow2Image.create(img, CreateOptions.size(4L << 20).clusterSize(cs)).close();
            Map<String, byte[]> expected = new HashMap<>();
            for (int round = 0; round < 3; round++) {
                String prefix = "r" + round + "-";
                long childSeed = r.nextLong();
                byte[] start;
                try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
                    start = ReferenceImagesTest.readAll(image);
                }
                Process p = start(img, childSeed, prefix);
                try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                    assertEquals("ready", out.readLine(), "writer did not start (seed " + seed + ")");
                    Thread.sleep(100 + r.nextInt(600));
                    p.destroyForcibly();
                    assertTrue(p.waitFor(30, TimeUnit.SECONDS));
                }
                String what = "seed " + seed + " cluster " + cs + " round " + round + " child seed " + childSeed;
                Qemu.Result check = Qemu.check(img);
                List<String> errors = check.stderr().lines().filter(l -> l.startsWith("ERROR")).toList();
                boolean onlyCopiedFlags = errors.stream().allMatch(l -> l.startsWith("ERROR OFLAG_COPIED"));
                assertTrue(check.exitCode() == 0 || check.exitCode() == 3 || (check.exitCode() == 2 && onlyCopiedFlags),
                        what + ": qemu-img check\n" + check.stdout() + check.stderr());

                List<String> listed;
                try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
                    listed = image.snapshots().list().stream().map(Snapshot::name).toList();
                }
                expected.keySet().retainAll(listed);
                replay(childSeed, prefix, start, listed, expected, what);
                try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
                    for (String name : listed) {
                        ReferenceImagesTest.assertSame(expected.get(name), ReferenceImagesTest.readAll(image.snapshots().view(name)),
                                what + ": snapshot " + name);
                    }
                }
                if (check.exitCode() != 0) {
                    Qemu.check(img, "-r", "all");
                    Qemu.Result after = Qemu.check(img);
                    assertEquals(0, after.exitCode(), what + ": after check -r all\n" + after.stdout() + after.stderr());
                }
                for (String name : listed.subList(0, Math.min(2, listed.size()))) {
                    byte[] viaQemu = InternalSnapshotsTest.snapshotBytes(img, idOf(img, name), tmp);
                    ReferenceImagesTest.assertSame(expected.get(name), viaQemu, what + ": qemu-img reads snapshot " + name);
                }
            }
        }
    }

    /** Replays the child's steps on a model until every listed snapshot of this round was taken. */
    private static void replay(long childSeed, String prefix, byte[] start, List<String> listed, Map<String, byte[]> expected,
                               String what) throws IOException {
        Set<String> wanted = listed.stream().filter(n -> n.startsWith(prefix)).collect(Collectors.toSet());
        int last = wanted.stream().mapToInt(n -> Integer.parseInt(n.substring(prefix.length()))).max().orElse(0);
        Model model = new Model(start.clone(), wanted, expected);
        SnapshotCrashWriter steps = new SnapshotCrashWriter(childSeed, prefix, start.length);
        for (int n = 1; n <= last; n++) {
            steps.step(n, model);
        }
        for (String name : listed) {
            assertTrue(expected.containsKey(name), what + ": unexpected snapshot " + name + " in " + listed);
        }
    }

    private static String idOf(Path img, String name) throws IOException {
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            return image.snapshots().list().stream().filter(s -> s.name().equals(name)).findFirst().orElseThrow().id();
        }
    }

    /** The disk and the snapshots as the steps leave them, in memory. */
    private static final class Model implements SnapshotCrashWriter.Target {
        private byte[] active;
        private final Map<String, byte[]> alive = new HashMap<>();
        private final Set<String> wanted;
        private final Map<String, byte[]> expected;

        Model(byte[] active, Set<String> wanted, Map<String, byte[]> expected) {
            this.active = active;
            this.wanted = wanted;
            this.expected = expected;
        }

        @Override
        public void write(long offset, byte[] data) {
            System.arraycopy(data, 0, active, (int) offset, data.length);
        }

        @Override
        public void zero(long offset, int length) {
            Arrays.fill(active, (int) offset, (int) offset + length, (byte) 0);
        }

        @Override
        public void create(String name) {
            alive.put(name, active.clone());
            if (wanted.contains(name)) {
                expected.put(name, active.clone());
            }
        }

        @Override
        public void delete(String name) {
            alive.remove(name);
        }

        @Override
        public void apply(String name) {
            active = alive.get(name).clone();
        }
    }

    private static Process start(Path img, long seed, String prefix) throws IOException {
        List<String> cmd = io.qcow4j.testing.ChildJvm.command(List.of(), SnapshotCrashWriter.class,
                img.toString(), Long.toString(seed), prefix);
        return new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    }
}
