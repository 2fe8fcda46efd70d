package io.qcow4j.jmh;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
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
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The engine's bulk path in one warm JVM (the regression guard of issue 11): requests of
 * 2 MiB and 8 MiB, sequential, on a 1 GiB image with 64 KiB clusters, one at a time.
 * Scores are ops/s; MiB/s = ops/s x request MiB.
 *
 * <ul>
 *   <li>{@code read}: an image fully written (non-zero data): one positional read per
 *       contiguous host run;</li>
 *   <li>{@code overwrite}: the same image rewritten in place (no metadata changes);</li>
 *   <li>{@code writeAllocating}: every request lands on clusters never written, on a fresh
 *       image ({@code SingleShotTime}: one invocation is one whole pass over a fresh image,
 *       created before and dropped after, neither timed; MiB/s = 1024 / score).</li>
 * </ul>
 * Through the page cache, never flushed ({@code qcow4j.jmh.dir} picks the directory).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(1)
public class BulkBenchmark {
    static final long SIZE = Long.getLong("qcow4j.jmh.bulk.size", 1L << 30);

    /** A directory, one request buffer of non-zero bytes. */
    @State(Scope.Thread)
    public static class Base {
        @Param({"2097152", "8388608"})
        int request;
        Path dir;
        ByteBuffer buf;

        void init() throws IOException {
            String parent = System.getProperty("qcow4j.jmh.dir", System.getProperty("java.io.tmpdir"));
            dir = Files.createTempDirectory(Path.of(parent), "qcow4j-bulk-");
            buf = ByteBuffer.allocateDirect(request);
            SplittableRandom r = new SplittableRandom(42);
            while (buf.hasRemaining()) {
                buf.put((byte) (1 + r.nextInt(255)));
            }
            buf.clear();
        }

        Qcow2Image fill(Path file) throws IOException {
            Qcow2Image img = Qcow2Image.create(file, CreateOptions.size(SIZE));
            for (long off = 0; off < SIZE; off += request) {
                buf.clear();
                img.write(off, buf);
            }
            return img;
        }

        void clean() throws IOException {
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

    /** A fully written image. */
    public static class FullImage extends Base {
        Qcow2Image img;
        long next;

        @Setup(Level.Trial)
        public void setUp() throws IOException {
            init();
            img = fill(dir.resolve("full.qcow2"));
            img.flush();
        }

        long nextOffset() {
            long off = next;
            next = (next + request) % SIZE;
            return off;
        }

        @TearDown(Level.Trial)
        public void tearDown() throws IOException {
            ReadWriteBenchmark.discard(img, dir.resolve("full.qcow2"));
            clean();
        }
    }

    /** A fresh image per invocation (one pass of allocating writes). */
    public static class FreshImage extends Base {
        Qcow2Image img;
        Path file;
        int pass;

        @Setup(Level.Trial)
        public void setUpTrial() throws IOException {
            init();
        }

        @Setup(Level.Invocation)
        public void setUpPass() throws IOException {
            file = dir.resolve("fresh" + pass++ + ".qcow2");
            img = Qcow2Image.create(file, CreateOptions.size(SIZE));
        }

        @TearDown(Level.Invocation)
        public void tearDownPass() {
            ReadWriteBenchmark.discard(img, file);
        }

        @TearDown(Level.Trial)
        public void tearDownTrial() throws IOException {
            clean();
        }
    }

    @Benchmark
    public ByteBuffer read(FullImage s) throws IOException {
        s.buf.clear();
        s.img.read(s.nextOffset(), s.buf);
        return s.buf;
    }

    @Benchmark
    public void overwrite(FullImage s) throws IOException {
        s.buf.clear();
        s.img.write(s.nextOffset(), s.buf);
    }

    @Benchmark
    @BenchmarkMode(Mode.SingleShotTime)
    @OutputTimeUnit(TimeUnit.SECONDS)
    @Warmup(iterations = 1)
    @Measurement(iterations = 3)
    public void writeAllocating(FreshImage s) throws IOException {
        for (long off = 0; off < SIZE; off += s.request) {
            s.buf.clear();
            s.img.write(off, s.buf);
        }
    }
}
