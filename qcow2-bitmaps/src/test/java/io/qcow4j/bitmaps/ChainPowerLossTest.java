package io.qcow4j.bitmaps;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.bitmap.BitmapBits;
import io.qcow4j.core.bitmap.PersistentBitmap;
import io.qcow4j.testing.CheckVerdict;
import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.Replay;
import io.qcow4j.testing.Scenario;
import io.qcow4j.testing.Seeds;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Power-loss replay (see qcow2-core's {@code PowerLossTest}) of the chain jobs: commit
 * (the top into its base, the top emptied after), stream (the top takes the base's data,
 * then drops its backing link) and a safe rebase (the top onto its grandparent). Whatever
 * the crash point, every image checks clean (leaks allowed) and the top reads as before
 * the job; for commit, every sector of the base reads as before or as the top, all as the
 * top once the commit returned, and its enabled bitmap is in_use or covers what changed.
 */
class ChainPowerLossTest {
    static final long SEED = Seeds.of(20261210L);
    static final int CS = 4096;
    static final long SIZE = 2L << 20;

    static Stream<Scenario> scenarios() {
        return Stream.of(new ChainJob(SEED, "commit"), new ChainJob(SEED + 1, "stream"), new ChainJob(SEED + 2, "rebase"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scenarios")
    void jobsSurviveAPowerFailure(Scenario s, @TempDir Path tmp) throws Exception {
        Replay.Summary summary = Replay.scenario(s, tmp, Replay.scale(8, 400));
        System.out.println("power-loss " + s + ": " + summary.crashes + " crashes of " + summary.events + " events");
        summary.assertNoFailure(s.toString());
    }

    /** One job on a chain base.qcow2 &lt;- mid.qcow2 (rebase only) &lt;- top.qcow2. */
    static final class ChainJob extends Scenario {
        private final String job;
        private final byte[] base = new byte[(int) SIZE];
        private final byte[] mid = new byte[(int) SIZE];
        private final byte[] top = new byte[(int) SIZE];
        private final boolean[] midHas = new boolean[(int) (SIZE / 512)];
        private final boolean[] topHas = new boolean[(int) (SIZE / 512)];
        private byte[] view;

        ChainJob(long seed, String job) {
            super(seed);
            this.job = job;
            Random r = new Random(seed);
            fill(r, base, null, 10);
            if (job.equals("rebase")) {
                fill(r, mid, midHas, 8);
            }
            fill(r, top, topHas, 8);
            view = base.clone();
            overlay(view, mid, midHas);
            overlay(view, top, topHas);
        }

        private static void fill(Random r, byte[] into, boolean[] has, int runs) {
            for (int i = 0; i < runs; i++) {
                int sectors = 1 + r.nextInt(40);
                int from = r.nextInt((int) (SIZE / 512) - sectors);
                byte[] run = new byte[sectors * 512];
                r.nextBytes(run);
                System.arraycopy(run, 0, into, from * 512, run.length);
                if (has != null) {
                    Arrays.fill(has, from, from + sectors, true);
                }
            }
        }

        private static void overlay(byte[] view, byte[] layer, boolean[] has) {
            for (int s = 0; s < has.length; s++) {
                if (has[s]) {
                    System.arraycopy(layer, s * 512, view, s * 512, 512);
                }
            }
        }

        @Override
        public String name() {
            return job;
        }

        @Override
        public void prepare(Path dir) throws IOException {
            try (Qcow2Image b = Qcow2Image.create(dir.resolve("base.qcow2"), CreateOptions.size(SIZE).clusterSize(CS))) {
                b.write(0, ByteBuffer.wrap(base));
                b.bitmaps().add("on", 65536, true, true);
            }
            String below = "base.qcow2";
            if (job.equals("rebase")) {
                layer(dir.resolve("mid.qcow2"), below, mid, midHas);
                below = "mid.qcow2";
            }
            layer(dir.resolve("top.qcow2"), below, top, topHas);
        }

        private static void layer(Path img, String backing, byte[] data, boolean[] has) throws IOException {
            try (Qcow2Image i = Qcow2Image.create(img, CreateOptions.size(SIZE).clusterSize(CS).backingFile(backing)
                    .backingFormat("qcow2"))) {
                for (int s = 0; s < has.length; s++) {
                    if (has[s]) {
                        i.write(s * 512L, ByteBuffer.wrap(data, s * 512, 512));
                    }
                }
            }
        }

        @Override
        public void run(Path dir, Steps steps) throws Exception {
            steps.begin(0);
            Chain chain = Chain.open(dir.resolve("top.qcow2"), true);
            try {
                switch (job) {
                    case "commit" -> chain.jobs().commit(Jobs.CommitOptions.defaults());
                    case "stream" -> chain.jobs().stream();
                    default -> chain.jobs().rebase("base.qcow2", "qcow2", false);
                }
                steps.ack(0);
                steps.begin(1);
            } finally {
                chain.close();
            }
            steps.ack(1);
        }

        @Override
        public int operations() {
            return 2;
        }

        @Override
        public boolean isBarrier(int op) {
            return op == 1;
        }

        @Override
        public void verify(Path dir, int durable, int inflight) throws Exception {
            for (String f : List.of("base.qcow2", "mid.qcow2", "top.qcow2")) {
                Path img = dir.resolve(f);
                if (Files.exists(img)) {
                    CheckVerdict v = CheckVerdict.of(img, CS, false);
                    if (!v.clean()) {
                        throw new AssertionError(f + ": qemu-img check finds corruption: " + v.corruptions() + "\n" + v.output());
                    }
                }
            }
            byte[] got = raw(dir.resolve("top.qcow2"));
            if (!Arrays.equals(view, got)) {
                int at = Arrays.mismatch(view, got);
                throw new AssertionError("the top does not read as before the " + job + " (first difference at 0x"
                        + Integer.toHexString(at) + ")");
            }
            if (job.equals("commit")) {
                verifyBase(dir, durable);
            }
        }

        private void verifyBase(Path dir, int durable) throws IOException {
            Path img = dir.resolve("base.qcow2");
            byte[] got = raw(img);
            for (int s = 0; s < got.length; s += 512) {
                boolean asTop = Arrays.equals(got, s, s + 512, view, s, s + 512);
                boolean asBefore = Arrays.equals(got, s, s + 512, base, s, s + 512);
                if (!asTop && (durable > 0 || !asBefore)) {
                    throw new AssertionError("base sector at 0x" + Integer.toHexString(s) + " reads neither as the top"
                            + (durable > 0 ? " (the commit was durable)" : " nor as before"));
                }
            }
            try (Qcow2Image b = Qcow2Image.open(img, OpenOptions.readOnly())) {
                PersistentBitmap on = b.bitmaps().get("on");
                if (on == null) {
                    throw new AssertionError("the base's bitmap is lost");
                }
                if (on.isInconsistent()) {
                    return;
                }
                BitmapBits bits = b.bitmaps().bits(on);
                for (int off = 0; off < got.length; off += 65536) {
                    if (!bits.get(off / 65536) && !Arrays.equals(got, off, off + 65536, base, off, off + 65536)) {
                        throw new AssertionError("the base's bitmap (not in_use) misses a change at 0x" + Integer.toHexString(off));
                    }
                }
            }
        }

        private static byte[] raw(Path img) throws IOException {
            Path raw = img.resolveSibling(img.getFileName() + ".raw");
            try {
                Qemu.convertToRaw(img, raw);
                return Files.readAllBytes(raw);
            } finally {
                Files.deleteIfExists(raw);
            }
        }
    }
}
