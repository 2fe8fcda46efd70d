package io.qcow4j.jmh;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.CreateOptions;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Guest I/O throughput of {@link Qcow2Image#read(long, ByteBuffer)} and
 * {@link Qcow2Image#write(long, ByteBuffer)}: 64 KiB per operation, cluster-aligned, one
 * request at a time (queue depth 1), on a 2 GiB image with 64 KiB clusters. Throughput
 * scores are ops/s; MiB/s = ops/s / 16.
 *
 * <ul>
 *   <li>{@code seqRead}, {@code randomRead}: on an image fully written (non-zero data) and
 *       fsync'd in the trial setup; sequential wraps at the end, random picks a uniformly
 *       random cluster per op.</li>
 *   <li>{@code seqWriteAllocating}, {@code randomWriteAllocating}: every write lands on a
 *       cluster that was never written, on a fresh image (allocate a host cluster, raise
 *       its refcount, write the data, set the L2 entry; the first write under an L2 table
 *       also allocates the table). A fresh image has only 32768 such clusters, so these
 *       two run in {@code SingleShotTime} mode: one invocation is one whole pass over a
 *       fresh image (created before, dropped after, neither timed), the score is seconds
 *       per pass, and MiB/s = 2048 / score. This is what {@code qemu-img bench -w -c 32768}
 *       on a freshly created image measures. Random visits every cluster once, in a
 *       random order.</li>
 *   <li>{@code seqWriteOverwrite}, {@code randomWriteOverwrite}: on a fully written image;
 *       every op rewrites an allocated cluster in place (no metadata changes).</li>
 * </ul>
 *
 * The engine writes through the page cache (no O_DIRECT) and the benchmark never flushes,
 * so this is page-cache throughput plus whatever the kernel's dirty-page writeback costs;
 * compare with {@code qemu-img bench -t writeback} (see {@code jmh/run-readwrite.sh}).
 *
 * <p>System properties (pass them to the fork with {@code -jvmArgsAppend -D...}):
 * {@code qcow4j.jmh.size} (virtual disk size in bytes, default 2 GiB; a smaller value makes
 * a quick smoke run) and {@code qcow4j.jmh.dir} (parent of the temporary directory,
 * default {@code java.io.tmpdir}).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(1)
public class ReadWriteBenchmark {
    static final int BLOCK = 64 * 1024;
    static final long SIZE = Long.getLong("qcow4j.jmh.size", 2L << 30);

    /** State shared by all images: temp dir, the I/O buffer, a random source. */
    public abstract static class Base {
        Path dir;
        ByteBuffer buf;
        SplittableRandom random;
        long clusters;

        void init() throws IOException {
            if (SIZE <= 0 || SIZE % BLOCK != 0) {
                throw new IllegalArgumentException("qcow4j.jmh.size must be a positive multiple of 64 KiB");
            }
            String parent = System.getProperty("qcow4j.jmh.dir", System.getProperty("java.io.tmpdir"));
            dir = Files.createTempDirectory(Path.of(parent), "qcow4j-jmh-");
            buf = ByteBuffer.allocateDirect(BLOCK);
            byte[] pattern = new byte[BLOCK];
            random = new SplittableRandom(42);
            for (int i = 0; i < pattern.length; i++) {
                pattern[i] = (byte) (1 + random.nextInt(255)); // never zero
            }
            buf.put(pattern).clear();
            clusters = SIZE / BLOCK;
        }

        Qcow2Image create(String name) throws IOException {
            return Qcow2Image.create(dir.resolve(name), CreateOptions.size(SIZE));
        }

        void deleteDir() throws IOException {
            if (dir != null) {
                try (var s = Files.list(dir)) {
                    for (Path p : (Iterable<Path>) s::iterator) {
                        Files.deleteIfExists(p);
                    }
                }
                Files.deleteIfExists(dir);
            }
        }
    }

    /**
     * Drops an image without waiting for its dirty pages to reach the disk: the file is
     * cut to zero first (the kernel discards its dirty pages), so {@code close()}'s fsync
     * has nothing to write. Only for throwaway benchmark images.
     */
    static void discard(Qcow2Image img, Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(0);
        } catch (IOException ignored) {
            // fall back to an ordinary close
        }
        try {
            img.close();
        } catch (IOException ignored) {
            // the file is going away
        }
        try {
            Files.deleteIfExists(file);
        } catch (IOException ignored) {
            // deleteDir retries
        }
    }

    /** A fully written image (non-zero data in every cluster), fsync'd before measuring. */
    @State(Scope.Thread)
    public static class FullImage extends Base {
        Qcow2Image img;
        Path file;
        long next;

        @Setup(Level.Trial)
        public void setUp() throws IOException {
            init();
            file = dir.resolve("full.qcow2");
            img = create("full.qcow2");
            long t0 = System.nanoTime();
            for (long off = 0; off < SIZE; off += BLOCK) {
                buf.clear();
                img.write(off, buf);
            }
            long t1 = System.nanoTime();
            img.flush();
            long t2 = System.nanoTime();
            System.out.printf("# fill: %d MiB written in %.2f s (%.0f MiB/s), fsync %.2f s%n",
                    SIZE >> 20, (t1 - t0) / 1e9, (SIZE >> 20) / ((t1 - t0) / 1e9), (t2 - t1) / 1e9);
            next = 0;
        }

        long nextSequential() {
            long off = next;
            next = off + BLOCK >= SIZE ? 0 : off + BLOCK;
            return off;
        }

        long nextRandom() {
            return random.nextLong(clusters) * BLOCK;
        }

        @TearDown(Level.Trial)
        public void tearDown() throws IOException {
            discard(img, file);
            deleteDir();
        }
    }

    /**
     * A fresh, empty image for every invocation (one invocation = one whole pass over the
     * disk), and a new random order in which to visit its clusters.
     */
    @State(Scope.Thread)
    public static class FreshImage extends Base {
        Qcow2Image img;
        Path file;
        int[] order;
        int serial;

        @Setup(Level.Trial)
        public void setUpTrial() throws IOException {
            init();
            if (clusters > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("image too large");
            }
            order = new int[(int) clusters];
        }

        @Setup(Level.Invocation)
        public void setUpPass() throws IOException {
            String name = "fresh-" + (serial++) + ".qcow2";
            file = dir.resolve(name);
            img = create(name);
            for (int i = 0; i < order.length; i++) {
                order[i] = i;
            }
            for (int i = order.length - 1; i > 0; i--) {
                int j = random.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        }

        @TearDown(Level.Invocation)
        public void tearDownPass() {
            discard(img, file);
            img = null;
        }

        @TearDown(Level.Trial)
        public void tearDownTrial() throws IOException {
            deleteDir();
        }
    }

    // ------------------------------------------------------------------ reads

    @Benchmark
    public ByteBuffer seqRead(FullImage s) throws IOException {
        ByteBuffer b = s.buf;
        b.clear();
        s.img.read(s.nextSequential(), b);
        return b;
    }

    @Benchmark
    public ByteBuffer randomRead(FullImage s) throws IOException {
        ByteBuffer b = s.buf;
        b.clear();
        s.img.read(s.nextRandom(), b);
        return b;
    }

    // ------------------------------------------------------------------ writes

    /** One pass of sequential 64 KiB writes over a fresh image; score = seconds per pass. */
    @Benchmark
    @BenchmarkMode(Mode.SingleShotTime)
    @Warmup(iterations = 1)
    @Measurement(iterations = 2)
    public void seqWriteAllocating(FreshImage s) throws IOException {
        Qcow2Image img = s.img;
        ByteBuffer b = s.buf;
        for (long c = 0; c < s.clusters; c++) {
            b.clear();
            img.write(c * BLOCK, b);
        }
    }

    /** One pass of 64 KiB writes over a fresh image, every cluster once in random order. */
    @Benchmark
    @BenchmarkMode(Mode.SingleShotTime)
    @Warmup(iterations = 1)
    @Measurement(iterations = 2)
    public void randomWriteAllocating(FreshImage s) throws IOException {
        Qcow2Image img = s.img;
        ByteBuffer b = s.buf;
        for (int c : s.order) {
            b.clear();
            img.write((long) c * BLOCK, b);
        }
    }

    @Benchmark
    public void seqWriteOverwrite(FullImage s) throws IOException {
        long off = s.nextSequential();
        s.buf.clear();
        s.img.write(off, s.buf);
    }

    @Benchmark
    public void randomWriteOverwrite(FullImage s) throws IOException {
        long off = s.nextRandom();
        s.buf.clear();
        s.img.write(off, s.buf);
    }
}
