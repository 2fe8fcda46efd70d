package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Seeded random commits (issue 16): chains of two or three layers whose sizes differ (the
 * top larger than the base, equal, smaller; 512-byte multiples, so clusters are cut),
 * filled by random writes, zero writes and discards through qemu-io, with bitmaps in the
 * lower layers. The same chain is committed by qcow4j on one twin and by qemu-img on the
 * other; both must answer alike, leave the same images (data, map, size, check) and
 * bitmaps, and the layer committed into must read what the top read. The seed
 * ({@code -Dqcow4j.seed=N} shifts it) is in every failure message.
 */
class CommitRandomIT {
    @TempDir
    Path tmp;

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "top-larger,        larger,  2, 1",
            "equal,             equal,   2, 2",
            "top-smaller,       smaller, 2, 3",
            "into-mid-larger,   larger,  3, 4",
            "into-mid-smaller,  smaller, 3, 5",
            "minus-b-larger,    larger,  -b, 6",
            "minus-b-equal,     equal,   -b, 7",
            "minus-b-smaller,   smaller, -b, 8",
    })
    void randomChainCommittedAsQemuImg(String name, String relation, String shape, long seedBase) throws IOException {
        long seed = seedBase * 7919 + Long.getLong("qcow4j.seed", 0);
        try {
            run(name, relation, shape, new Random(seed));
        } catch (AssertionError | RuntimeException e) {
            throw new AssertionError(name + ", seed " + seed + ": " + e.getMessage(), e);
        }
    }

    private void run(String name, String relation, String shape, Random r) throws IOException {
        Twins t = Twins.in(tmp, name);
        Path d = t.theirs;
        List<String> layers = shape.equals("2") ? List.of("base", "top") : List.of("base", "mid", "top");
        String into = shape.equals("3") ? "mid" : "base";
        // the sizes of the top and of the layer committed into are as the case says; the other layer's is random
        long intoSize = 512L * (2048 + r.nextInt(4096));
        long topSize = switch (relation) {
            case "larger" -> intoSize + 512L * (1 + r.nextInt(4096));
            case "smaller" -> intoSize - 512L * (1 + r.nextInt(1536));
            default -> intoSize;
        };
        String below = null;
        for (String layer : layers) {
            long size = layer.equals(into) ? intoSize : layer.equals("top") ? topSize : 512L * (1024 + r.nextInt(8192));
            int kind = r.nextInt(10);
            String options = kind < 2 ? "cluster_size=4k" : kind < 4 ? "extended_l2=on" : kind == 4 ? "compat=0.10"
                    : kind == 5 ? "cluster_size=512" : "cluster_size=64k";
            List<String> create = new ArrayList<>(List.of("create", "-q", "-f", "qcow2"));
            create.addAll(List.of("-o", options));
            if (below != null) {
                create.addAll(List.of("-b", below, "-F", "qcow2"));
            }
            create.addAll(List.of(layer, Long.toString(size)));
            qemuImg(d, create.toArray(String[]::new)).assertOk();
            if (!layer.equals("top") && !options.equals("compat=0.10")) {
                qemuImg(d, "bitmap", "--add", layer, "rec").assertOk();
                qemuImg(d, "bitmap", "--add", "-g", "512", layer, "fine").assertOk();
            }
            qemuIo(d, IoIT.qemuIoArgs(randomOps(r, size), "-f", "qcow2", layer)).assertOk();
            below = layer;
        }
        t.copyTheirsToOurs();
        qemuImg(t.ours, "convert", "-O", "raw", "top", "view.raw").assertOk();
        List<String> args = new ArrayList<>(List.of("commit"));
        if (shape.equals("-b")) {
            args.addAll(List.of("-b", "base"));
        } else if (r.nextBoolean()) {
            args.add("-d");
        }
        args.add("top");
        List<byte[]> before = Twins.snapshot(t.ours, layers.toArray(String[]::new));
        Qemu.Result done = t.runBoth(args.toArray(String[]::new));
        if (done.exitCode() != 0) {
            // refused alike (a v2 layer that cannot grow over a longer backing file): nothing written
            assertEquals("qcow4j: Block job failed: Operation not supported\n", done.stderr());
            List<byte[]> after = Twins.snapshot(t.ours, layers.toArray(String[]::new));
            for (int i = 0; i < layers.size(); i++) {
                assertTrue(Arrays.equals(before.get(i), after.get(i)), layers.get(i) + " changed");
            }
            return;
        }
        assertReadsAsTheTopDid(t.ours, into, topSize);
        t.assertSameImages(layers.toArray(String[]::new));
        if (!OverlayIT.bitmapSummary(t.ours, into).isEmpty()) {
            for (String b : List.of("rec", "fine")) {
                t.assertSameBitmap(into, b);
            }
        }
    }

    /** 12 to 40 random writes (a pattern byte), zero writes and discards inside a disk of {@code size}. */
    private static List<String> randomOps(Random r, long size) {
        List<String> ops = new ArrayList<>();
        int n = 12 + r.nextInt(29);
        for (int i = 0; i < n; i++) {
            long sectors = size / 512;
            long off = 512L * r.nextInt((int) sectors);
            long len = Math.min(size - off, 512L * (1 + r.nextInt(r.nextInt(5) == 0 ? 1024 : 160)));
            int kind = r.nextInt(10);
            if (kind < 6) {
                ops.add("write -P " + (1 + r.nextInt(255)) + " " + off + " " + len);
            } else if (kind < 8) {
                ops.add("write -z " + off + " " + len);
            } else {
                ops.add("discard " + off + " " + len);
            }
        }
        return ops;
    }

    private static void assertReadsAsTheTopDid(Path dir, String image, long topSize) {
        try {
            qemuImg(dir, "convert", "-O", "raw", image, "after.raw").assertOk();
            byte[] view = Files.readAllBytes(dir.resolve("view.raw"));
            byte[] now = Files.readAllBytes(dir.resolve("after.raw"));
            assertEquals(topSize, view.length);
            assertTrue(now.length >= view.length, image + " is shorter than the top");
            assertEquals(-1, Arrays.mismatch(view, Arrays.copyOf(now, view.length)), image + " does not read what the top read");
            Files.delete(dir.resolve("after.raw"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
