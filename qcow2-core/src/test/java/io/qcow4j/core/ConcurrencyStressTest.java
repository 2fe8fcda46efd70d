package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.bitmap.BitmapBits;
import io.qcow4j.core.bitmap.PersistentBitmap;
import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.Seeds;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The thread-safety model of {@link Qcow2Image} under stress: several threads write, zero
 * and discard overlapping ranges of a shared area and disjoint ranges of their own, read
 * their own ranges back without the image's lock, and flush and store bitmaps in between.
 * The shared area's oracle is updated in the order the image took the calls (under its
 * lock); each thread's own area needs no lock. At the end: qemu-img check is clean, the
 * disk reads as the oracle, and the persistent bitmap covers every changed granule.
 */
class ConcurrencyStressTest {
    private static final int CS = 4096;
    private static final int THREADS = 4;
    private static final int SHARED = 4 << 20;
    private static final int OWN = 2 << 20;
    private static final long SIZE = SHARED + (long) THREADS * OWN;

    @Test
    void threadsSeeTheirWritesAndTheImageStaysConsistent(@TempDir Path tmp) throws Exception {
        long seed = Seeds.of(20261209L);
        Path img = tmp.resolve("stress.qcow2");
        byte[] oracle = new byte[(int) SIZE];
        try (Qcow2Image image = Qcow2Image.create(img, CreateOptions.size(SIZE).clusterSize(CS))) {
            image.bitmaps().add("on", 65536, true, true);
            ExecutorService pool = Executors.newFixedThreadPool(THREADS);
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                int thread = t;
                Random r = new Random(seed + t);
                done.add(pool.submit(() -> {
                    run(image, oracle, thread, r);
                    return null;
                }));
            }
            pool.shutdown();
            for (Future<?> f : done) {
                f.get(5, TimeUnit.MINUTES);
            }
        }
        Qemu.Result check = Qemu.check(img);
        assertEquals(0, check.exitCode(), "seed " + seed + ": qemu-img check\n" + check.stdout() + check.stderr());
        Path raw = tmp.resolve("stress.raw");
        Qemu.convertToRaw(img, raw);
        assertArrayEquals(oracle, Files.readAllBytes(raw), "seed " + seed + ": the disk differs from the oracle");
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            PersistentBitmap b = image.bitmaps().get("on");
            assertFalse(b.isInconsistent(), "seed " + seed + ": bitmap in_use after close");
            BitmapBits bits = image.bitmaps().bits(b);
            for (int g = 0; g < SIZE / 65536; g++) {
                boolean changed = false;
                for (int i = g * 65536; i < (g + 1) * 65536 && !changed; i++) {
                    changed = oracle[i] != 0;
                }
                assertFalse(changed && !bits.get(g), "seed " + seed + ": bitmap misses granule " + g);
            }
        }
    }

    private static void run(Qcow2Image image, byte[] oracle, int thread, Random r) throws Exception {
        int ownBase = SHARED + thread * OWN;
        for (int i = 0; i < 150; i++) {
            int kind = r.nextInt(20);
            boolean own = r.nextBoolean();
            int base = own ? ownBase : 0;
            int area = own ? OWN : SHARED;
            int len = (1 + r.nextInt(3 * CS / 512)) * 512;
            int off = base + r.nextInt((area - len) / 512) * 512;
            if (kind == 0) {
                image.flush();
            } else if (kind == 1) {
                image.storeBitmaps();
            } else if (kind < 5) {
                // whole clusters, so that they read as zeros after the discard
                int c = base + r.nextInt(area / CS - 3) * CS;
                int n = (1 + r.nextInt(3)) * CS;
                synchronized (image) {
                    image.discard(c, n);
                    Arrays.fill(oracle, c, c + n, (byte) 0);
                }
            } else if (kind < 8) {
                synchronized (image) {
                    image.writeZeroes(off, len);
                    Arrays.fill(oracle, off, off + len, (byte) 0);
                }
            } else {
                byte[] data = new byte[len];
                r.nextBytes(data);
                if (own) {
                    // no other thread writes here: no lock needed to know what it reads
                    image.write(off, ByteBuffer.wrap(data));
                    System.arraycopy(data, 0, oracle, off, len);
                } else {
                    synchronized (image) {
                        image.write(off, ByteBuffer.wrap(data));
                        System.arraycopy(data, 0, oracle, off, len);
                    }
                }
            }
            if (r.nextInt(4) == 0) {
                // read back a range of this thread's own area, unlocked
                int rl = (1 + r.nextInt(8)) * 512;
                int ro = ownBase + r.nextInt((OWN - rl) / 512) * 512;
                ByteBuffer got = ByteBuffer.allocate(rl);
                image.read(ro, got);
                byte[] want = Arrays.copyOfRange(oracle, ro, ro + rl);
                if (!Arrays.equals(want, got.array())) {
                    throw new AssertionError("thread " + thread + " op " + i + ": its own range at " + ro + " reads wrong");
                }
            }
        }
    }
}
