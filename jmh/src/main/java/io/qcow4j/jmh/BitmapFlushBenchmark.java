package io.qcow4j.jmh;

import static io.qcow4j.jmh.BitmapImages.BITS;
import static io.qcow4j.jmh.BitmapImages.BLOCK;
import static io.qcow4j.jmh.BitmapImages.CLUSTER;
import static io.qcow4j.jmh.BitmapImages.DISK;
import static io.qcow4j.jmh.BitmapImages.GRANULARITY;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.bitmaps.DirtyBitmap;

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
 * Cost of persistent dirty bitmaps on a 16 TiB disk with 2 MiB clusters and a 64 KiB
 * granularity bitmap (2^28 bits, 32 MiB of bitmap data, 16 bitmap clusters). The image is
 * a copy of {@link BitmapImages#template()}: made by qemu-img/qemu-io with the bitmap fully
 * dirty.
 *
 * <ul>
 *   <li>{@code fullStore}: {@link Qcow2Image#storeBitmaps()} with every bitmap cluster
 *       changed, while the image holds in_use (a guest write came first, as after any
 *       guest activity). Every bitmap cluster is all ones, so the store writes all-ones
 *       table entries and no data (the first store turned QEMU's 16 data clusters into
 *       such entries): the cost is the directory switch and its one flush. Setup per invocation
 *       (not timed): one 64 KiB guest write (sets in_use again), {@code reset(0, n)} then
 *       {@code set(0, n)} (every chunk changed, the bits stay all ones), flush.</li>
 *   <li>{@code fullStoreCopy}: the same without the guest write, so in_use is not held and
 *       the store writes a new copy (a new table of all-ones entries, a new directory,
 *       one header switch; the old clusters are freed after the next flush). QEMU stores
 *       this way, but writes all 32 MiB.</li>
 *   <li>{@code fullStoreDense}: like {@code fullStore} on a bitmap with every other bit
 *       set ({@link BitmapImages#denseTemplate()}), every chunk changed (cleared, then
 *       the dense bits merged back): no cluster is uniform, so 32 MiB must be written
 *       whatever a store does with all-ones clusters.</li>
 *   <li>{@code oneClusterStore}: {@code storeBitmaps()} after one 64 KiB guest write at a
 *       random offset (from 64 pre-drawn offsets over the whole disk, so the image stays
 *       small) on a bitmap cleared at trial start.</li>
 *   <li>{@code trackClean}, {@code trackCleanLocal}, {@code trackSequential}, {@code trackDirty}: the dirty tracking
 *       of one 64 KiB guest write through the public API, {@link DirtyBitmap#set(long, long)}
 *       (the same bit update the engine's write-tracking hook makes in each enabled bitmap
 *       after a guest write, plus the API's range and state checks): random offsets on a bitmap
 *       cleared at every iteration, consecutive offsets on a cleared bitmap, random offsets
 *       on the fully dirty bitmap. {@code trackClean} is bound by memory latency: each
 *       write touches a random word of a 32 MiB bitmap, a cache miss; {@code trackCleanLocal}
 *       draws its offsets from the first 64 GiB, whose 128 KiB of bitmap stay cached.</li>
 *   <li>{@code writeNoBitmap}, {@code writeWithBitmap}: one 64 KiB {@code Qcow2Image.write}
 *       overwriting an allocated cluster, on an image without a bitmap and on one with an
 *       enabled persistent bitmap (in_use held): the difference is what tracking adds to a
 *       guest write. 64 pre-allocated offsets within the first 512 GiB (one L2 table: the
 *       engine's 4 MiB L2 cache holds two 2 MiB tables).</li>
 * </ul>
 *
 * The store benchmarks run in {@code SampleTime} mode: every invocation is timed on its
 * own, so the median (p0.50) is available next to the mean; on a shared 2-core machine
 * the median is the robust figure. Tracking and write benchmarks are {@code AverageTime}.
 *
 * <p>Every store invocation's bytes passed to write system calls ({@code wchar} of
 * {@code /proc/thread-self/io}, measured around the timed call) are summed and printed as
 * {@code # <benchmark>: ... MiB per store} lines at the end of each trial, so a run shows
 * that each full store really wrote 32 MiB.
 *
 * <p>System property {@code qcow4j.jmh.dir}: parent of the temporary directories (default
 * {@code java.io.tmpdir}); {@code qcow4j.jmh.bitmapImage}: the template image.
 */
@Fork(1)
public class BitmapFlushBenchmark {

    /** Sums the bytes written by each timed store. */
    static final class WriteCounter {
        private final String name;
        private long before;
        private long count;
        private long sum;
        private long min = Long.MAX_VALUE;
        private long max;

        WriteCounter(String name) {
            this.name = name;
        }

        void start() {
            before = BitmapImages.threadWchar();
        }

        void stop() {
            long after = BitmapImages.threadWchar();
            if (before < 0 || after < 0) {
                return;
            }
            long d = after - before;
            count++;
            sum += d;
            min = Math.min(min, d);
            max = Math.max(max, d);
        }

        void print() {
            if (count == 0) {
                System.out.println("# " + name + ": no write counts (no /proc/thread-self/io)");
                return;
            }
            System.out.printf("# %s: %d stores, bytes written per store (pwrite): min %.3f MiB, mean %.3f MiB, max %.3f MiB%n",
                    name, count, min / 1048576.0, sum / (double) count / 1048576.0, max / 1048576.0);
        }
    }

    /** An open copy of the template, its bitmap loaded. */
    public abstract static class DirtyImage {
        Path dir;
        Path file;
        Qcow2Image img;
        DirtyBitmap bitmap;
        ByteBuffer buf;

        void open(String prefix) throws IOException {
            open(prefix, BitmapImages.template(), BITS);
        }

        void open(String prefix, Path template, long expectedBits) throws IOException {
            dir = BitmapImages.tempDir(prefix);
            file = BitmapImages.copy(template, dir, "image.qcow2");
            img = Qcow2Image.open(file, OpenOptions.readWrite());
            long t0 = System.nanoTime();
            bitmap = BitmapImages.bitmap(img);
            long t1 = System.nanoTime();
            long set = bitmap.count() / GRANULARITY;   // DISK is a multiple of it: no block clipped
            System.out.printf("# %s: bitmap loaded in %.1f ms, %d of %d bits set, heapBytes %d%n",
                    prefix, (t1 - t0) / 1e6, set, BITS, bitmap.heapBytes());
            if (set != expectedBits) {
                throw new IllegalStateException("the template's bitmap has " + set + " bits set, expected " + expectedBits);
            }
            buf = ByteBuffer.allocateDirect(BLOCK);
            byte[] pattern = new byte[BLOCK];
            new SplittableRandom(7).nextBytes(pattern);
            buf.put(pattern).clear();
        }

        void guestWrite(long offset) throws IOException {
            buf.clear();
            img.write(offset, buf);
        }

        void close() throws IOException {
            if (img != null) {
                System.out.printf("# image file at the end: %.1f MiB%n", Files.size(file) / 1048576.0);
                img.close();
                img = null;
            }
            BitmapImages.deleteTree(dir);
        }
    }

    // ------------------------------------------------------------------ full store

    /** Fully dirty bitmap, every cluster changed, in_use held: in-place store of 32 MiB. */
    @State(Scope.Thread)
    public static class FullInPlace extends DirtyImage {
        final WriteCounter counter = new WriteCounter("fullStore");

        @Setup(Level.Trial)
        public void setUp() throws IOException {
            open("fullStore");
        }

        @Setup(Level.Invocation)
        public void dirtyAll() throws IOException {
            guestWrite(0);            // in_use set again (the previous store cleared it)
            bitmap.reset(0, DISK);    // every chunk changed ...
            bitmap.set(0, DISK);      // ... and all ones again
            img.flush();
            counter.start();
        }

        @TearDown(Level.Invocation)
        public void count() {
            counter.stop();
        }

        @TearDown(Level.Trial)
        public void tearDown() throws IOException {
            counter.print();
            close();
        }
    }

    /** Fully dirty bitmap, every cluster changed, in_use not held: store as a new copy. */
    @State(Scope.Thread)
    public static class FullCopy extends DirtyImage {
        final WriteCounter counter = new WriteCounter("fullStoreCopy");

        @Setup(Level.Trial)
        public void setUp() throws IOException {
            open("fullStoreCopy");
        }

        @Setup(Level.Invocation)
        public void dirtyAll() {
            bitmap.reset(0, DISK);
            bitmap.set(0, DISK);
            counter.start();
        }

        @TearDown(Level.Invocation)
        public void count() {
            counter.stop();
        }

        @TearDown(Level.Trial)
        public void tearDown() throws IOException {
            counter.print();
            close();
        }
    }

    /**
     * Dense bitmap (every other bit set: no cluster all ones or all zeros), every cluster
     * marked changed, in_use held: 32 MiB rewritten in place whatever the store does with
     * uniform clusters.
     */
    @State(Scope.Thread)
    public static class DenseInPlace extends DirtyImage {
        final WriteCounter counter = new WriteCounter("fullStoreDense");
        /** The dense bits, merged back after each clear. */
        DirtyBitmap dense;

        @Setup(Level.Trial)
        public void setUp() throws IOException {
            open("fullStoreDense", BitmapImages.denseTemplate(), BITS / 2);
            dense = bitmap.copy("dense");
        }

        @Setup(Level.Invocation)
        public void dirtyAll() throws IOException {
            guestWrite(0);            // in_use set again; bit 0 is already set
            bitmap.clear();           // every chunk changed ...
            bitmap.mergeFrom(dense);  // ... and dense again
            img.flush();
            counter.start();
        }

        @TearDown(Level.Invocation)
        public void count() {
            counter.stop();
        }

        @TearDown(Level.Trial)
        public void tearDown() throws IOException {
            counter.print();
            close();
        }
    }

    @Benchmark
    @BenchmarkMode(Mode.SampleTime)
    @OutputTimeUnit(TimeUnit.MILLISECONDS)
    @Warmup(iterations = 3, time = 2)
    @Measurement(iterations = 5, time = 2)
    public void fullStore(FullInPlace s) throws IOException {
        s.img.storeBitmaps();
    }

    @Benchmark
    @BenchmarkMode(Mode.SampleTime)
    @OutputTimeUnit(TimeUnit.MILLISECONDS)
    @Warmup(iterations = 3, time = 2)
    @Measurement(iterations = 5, time = 2)
    public void fullStoreCopy(FullCopy s) throws IOException {
        s.img.storeBitmaps();
    }

    @Benchmark
    @BenchmarkMode(Mode.SampleTime)
    @OutputTimeUnit(TimeUnit.MILLISECONDS)
    @Warmup(iterations = 3, time = 2)
    @Measurement(iterations = 5, time = 2)
    public void fullStoreDense(DenseInPlace s) throws IOException {
        s.img.storeBitmaps();
    }

    // ------------------------------------------------------------------ one cluster

    /** A cleared bitmap; each invocation one 64 KiB guest write, then the store. */
    @State(Scope.Thread)
    public static class OneCluster extends DirtyImage {
        final WriteCounter counter = new WriteCounter("oneClusterStore");
        long[] offsets;
        int next;

        @Setup(Level.Trial)
        public void setUp() throws IOException {
            open("oneClusterStore");
            bitmap.clear();
            img.storeBitmaps();       // an empty bitmap on disk: its data clusters freed
            SplittableRandom r = new SplittableRandom(11);
            offsets = new long[64];
            for (int i = 0; i < offsets.length; i++) {
                offsets[i] = r.nextLong(DISK / BLOCK) * BLOCK;
            }
        }

        @Setup(Level.Invocation)
        public void writeOne() throws IOException {
            guestWrite(offsets[next]);
            next = (next + 1) % offsets.length;
            img.flush();
            counter.start();
        }

        @TearDown(Level.Invocation)
        public void count() {
            counter.stop();
        }

        @TearDown(Level.Trial)
        public void tearDown() throws IOException {
            counter.print();
            close();
        }
    }

    @Benchmark
    @BenchmarkMode(Mode.SampleTime)
    @OutputTimeUnit(TimeUnit.MICROSECONDS)
    @Warmup(iterations = 3, time = 2)
    @Measurement(iterations = 5, time = 2)
    public void oneClusterStore(OneCluster s) throws IOException {
        s.img.storeBitmaps();
    }

    // ------------------------------------------------------------------ tracking

    /** The engine's tracking path on the loaded bitmap. */
    public abstract static class Track extends DirtyImage {

        long rng = 0x9E3779B97F4A7C15L;
        long seq;

        void init(String name) throws IOException {
            open(name);
            guestWrite(0);            // in_use held, as during guest activity
        }

        /** A uniformly random 64 KiB-aligned offset of the 16 TiB disk (xorshift64). */
        final long nextRandom() {
            long x = rng;
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            rng = x;
            return (x >>> 36) * BLOCK;    // 28 random bits: the cluster index
        }

        @TearDown(Level.Trial)
        public void tearDown() throws IOException {
            close();
        }
    }

    /** Random offsets, bitmap cleared before every iteration (mostly clean, sparse chunks). */
    @State(Scope.Thread)
    public static class TrackClean extends Track {
        @Setup(Level.Trial)
        public void setUp() throws IOException {
            init("trackClean");
        }

        @Setup(Level.Iteration)
        public void clear() {
            bitmap.clear();
        }
    }

    /** Consecutive offsets from 0, bitmap cleared before every iteration. */
    @State(Scope.Thread)
    public static class TrackSequential extends Track {
        @Setup(Level.Trial)
        public void setUp() throws IOException {
            init("trackSequential");
        }

        @Setup(Level.Iteration)
        public void clear() {
            bitmap.clear();
            seq = 0;
        }

        final long nextSequential() {
            long off = seq;
            seq = off + BLOCK >= DISK ? 0 : off + BLOCK;
            return off;
        }
    }

    /**
     * Random offsets within the first 64 GiB of the disk (2^20 bits, a 128 KiB slice of
     * the bitmap that stays in the CPU cache), bitmap cleared before every iteration: the
     * cost of tracking itself, without the cache miss of {@code trackClean}.
     */
    @State(Scope.Thread)
    public static class TrackCleanLocal extends Track {
        static final long WINDOW = 64L << 30;

        @Setup(Level.Trial)
        public void setUp() throws IOException {
            init("trackCleanLocal");
        }

        @Setup(Level.Iteration)
        public void clear() {
            bitmap.clear();
        }

        final long nextLocal() {
            return nextRandom() & (WINDOW - 1);
        }
    }

    /** Random offsets on the fully dirty bitmap. */
    @State(Scope.Thread)
    public static class TrackDirty extends Track {
        @Setup(Level.Trial)
        public void setUp() throws IOException {
            init("trackDirty");
        }
    }

    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.NANOSECONDS)
    @Warmup(iterations = 3, time = 1)
    @Measurement(iterations = 5, time = 1)
    public void trackClean(TrackClean s) {
        s.bitmap.set(s.nextRandom(), BLOCK);
    }

    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.NANOSECONDS)
    @Warmup(iterations = 3, time = 1)
    @Measurement(iterations = 5, time = 1)
    public void trackCleanLocal(TrackCleanLocal s) {
        s.bitmap.set(s.nextLocal(), BLOCK);
    }

    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.NANOSECONDS)
    @Warmup(iterations = 3, time = 1)
    @Measurement(iterations = 5, time = 1)
    public void trackSequential(TrackSequential s) {
        s.bitmap.set(s.nextSequential(), BLOCK);
    }

    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.NANOSECONDS)
    @Warmup(iterations = 3, time = 1)
    @Measurement(iterations = 5, time = 1)
    public void trackDirty(TrackDirty s) {
        s.bitmap.set(s.nextRandom(), BLOCK);
    }

    // ------------------------------------------------------------------ guest writes

    /** A fresh 16 TiB image (2 MiB clusters) with 64 allocated 64 KiB-aligned ranges to overwrite. */
    public abstract static class WriteImage {
        static final long SPAN = 512L << 30;   // one L2 table's reach with 2 MiB clusters
        Path dir;
        Qcow2Image img;
        ByteBuffer buf;
        long[] offsets;
        int next;

        void init(boolean withBitmap) throws IOException {
            dir = BitmapImages.tempDir(withBitmap ? "writeWithBitmap" : "writeNoBitmap");
            img = Qcow2Image.create(dir.resolve("w.qcow2"), CreateOptions.size(DISK).clusterSize(CLUSTER));
            if (withBitmap) {
                Bitmaps.of(img).add(BitmapImages.BITMAP, Bitmaps.AddOptions.defaults().withGranularity(GRANULARITY));
                img.storeBitmaps();
            }
            buf = ByteBuffer.allocateDirect(BLOCK);
            byte[] pattern = new byte[BLOCK];
            new SplittableRandom(3).nextBytes(pattern);
            buf.put(pattern).clear();
            SplittableRandom r = new SplittableRandom(5);
            offsets = new long[64];
            for (int i = 0; i < offsets.length; i++) {
                offsets[i] = r.nextLong(SPAN / BLOCK) * BLOCK;
                buf.clear();
                img.write(offsets[i], buf);   // allocates (and, with a bitmap, sets in_use)
            }
            img.flush();
        }

        long nextOffset() {
            long off = offsets[next];
            next = (next + 1) & (offsets.length - 1);
            return off;
        }

        @TearDown(Level.Trial)
        public void tearDown() throws IOException {
            img.close();
            BitmapImages.deleteTree(dir);
        }
    }

    @State(Scope.Thread)
    public static class NoBitmap extends WriteImage {
        @Setup(Level.Trial)
        public void setUp() throws IOException {
            init(false);
        }
    }

    @State(Scope.Thread)
    public static class WithBitmap extends WriteImage {
        @Setup(Level.Trial)
        public void setUp() throws IOException {
            init(true);
        }
    }

    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.NANOSECONDS)
    @Warmup(iterations = 3, time = 1)
    @Measurement(iterations = 5, time = 1)
    public void writeNoBitmap(NoBitmap s) throws IOException {
        s.buf.clear();
        s.img.write(s.nextOffset(), s.buf);
    }

    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.NANOSECONDS)
    @Warmup(iterations = 3, time = 1)
    @Measurement(iterations = 5, time = 1)
    public void writeWithBitmap(WithBitmap s) throws IOException {
        s.buf.clear();
        s.img.write(s.nextOffset(), s.buf);
    }
}
