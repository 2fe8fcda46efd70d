package io.qcow4j.tools;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * {@code compare [-f FMT] [-F FMT] [-T CACHE] [-s] [-q] [-p] [-U] A B}, as qemu-img compare: exit 0 when
 * the disks read the same, 1 when they differ (naming the first differing 512-byte
 * sector), 2 when an image cannot be opened, 3 when block status fails, 4 when a read
 * fails. Of two sizes, the common part is compared, then the rest of the larger disk
 * must read as zeros ("Warning: Image size mismatch!"). -s (strict) also requires the
 * same size and the same allocation. The command line is read as qemu-img reads it
 * ({@link QemuGetopt}); its usage errors exit 1, as qemu-img's do.
 */
final class CompareCommand {
    static final String NAME = "compare";
    private static final int SECTOR = 512;
    private static final int BUF = 2 << 20;
    private static final int SLICE = 64 << 10;
    private static final List<QemuGetopt.Long> LONG = List.of(
            new QemuGetopt.Long("help", false, "h"),
            new QemuGetopt.Long("object", true, "object"),
            new QemuGetopt.Long("image-opts", false, "image-opts"),
            new QemuGetopt.Long("force-share", false, "U"));

    private String format1;
    private String format2;
    private String cache = "writeback";
    private boolean strict;
    private boolean quiet;
    private boolean progress;
    private boolean forceShare;
    private String file1;
    private String file2;

    private PrintWriter out;
    // direct: the reads land in them without a copy, and the compares are vectorised
    private final ByteBuffer buf1 = ByteBuffer.allocateDirect(BUF);
    private final ByteBuffer buf2 = ByteBuffer.allocateDirect(BUF);
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(BUF).asReadOnlyBuffer();
    /** Reads the second image while this thread reads the first (both cores). */
    private ExecutorService second;

    /** Runs {@code compare ARGS}; the exit code. */
    static int run(List<String> args, PrintWriter out) throws Exception {
        CompareCommand c = new CompareCommand();
        c.out = out;
        List<String> files = QemuGetopt.handle(NAME, args, ":hf:F:T:pqsU", LONG, out, c::option);
        if (files.size() != 2) {
            throw new CliException(Program.usage("Expecting two image file names"));
        }
        c.file1 = files.get(0);
        c.file2 = files.get(1);
        if (!Images.CACHE_MODES.contains(c.cache)) {
            throw new CliException("Invalid source cache option: " + c.cache, 2);
        }
        return c.openAndCompare();
    }

    private void option(QemuGetopt.Opt o) {
        String v = o.value();
        switch (o.key()) {
            case "f" -> format1 = v;
            case "F" -> format2 = v;
            case "T" -> cache = v;
            case "p" -> progress = true;
            case "q" -> quiet = true;
            case "s" -> strict = true;
            case "U" -> forceShare = true;
            case "object" -> ObjectOption.accept(v, out);
            case "image-opts" -> ImageOpts.active(true);
            default -> throw new IllegalStateException(o.key());
        }
    }

    private int openAndCompare() {
        BlockDevice a = null;
        BlockDevice b = null;
        try {
            a = openOrExit2(file1, format1, forceShare);
            b = openOrExit2(file2, format2, forceShare);
            second = Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "qcow4j-compare-reader");
                t.setDaemon(true);
                return t;
            });
            return compare(a, b);
        } finally {
            if (second != null) {
                second.shutdownNow();
            }
            Images.closeQuietly(b);
            Images.closeQuietly(a);
        }
    }

    private static BlockDevice openOrExit2(String name, String format, boolean forceShare) {
        try {
            return Images.open(name, format, false, true, forceShare);
        } catch (CliException e) {
            throw e.prefixed("", 2);
        }
    }

    private int compare(BlockDevice a, BlockDevice b) {
        long size1 = Images.virtualSize(a);
        long size2 = Images.virtualSize(b);
        if (strict && size1 != size2) {
            say("Strict mode: Image size mismatch!");
            return 1;
        }
        long common = Math.min(size1, size2);
        long total = Math.max(size1, size2);
        Progress bar = new Progress(out, progress && !quiet, total);
        long pos = 0;
        while (pos < common) {
            BlockStatus s1 = status(a, file1, pos, common - pos);
            BlockStatus s2 = status(b, file2, pos, common - pos);
            long len = Math.max(1, Math.min(s1.length(), s2.length()));
            if (strict && !sameStatus(s1, s2)) {
                say("Strict mode: Offset " + pos + " block status mismatch!");
                return 1;
            }
            boolean zero1 = readsZero(s1);
            boolean zero2 = readsZero(s2);
            long diff = -1;
            if (zero1 && !zero2) {
                diff = firstNonZero(b, file2, pos, len);
            } else if (zero2 && !zero1) {
                diff = firstNonZero(a, file1, pos, len);
            } else if (!zero1) {
                diff = firstDifference(a, b, pos, len);
            }
            if (diff >= 0) {
                say("Content mismatch at offset " + diff + "!");
                return 1;
            }
            pos += len;
            bar.update(pos);
        }
        if (size1 != size2) {
            BlockDevice larger = size1 > size2 ? a : b;
            String name = size1 > size2 ? file1 : file2;
            while (pos < total) {
                BlockStatus s = status(larger, name, pos, total - pos);
                long len = Math.max(1, s.length());
                if (!readsZero(s)) {
                    long diff = firstNonZero(larger, name, pos, len);
                    if (diff >= 0) {
                        bar.finish();
                        say("Warning: Image size mismatch!");
                        say("Content mismatch at offset " + diff + "!");
                        return 1;
                    }
                }
                pos += len;
                bar.update(pos);
            }
            bar.finish();
            say("Warning: Image size mismatch!");
        } else {
            bar.finish();
        }
        say("Images are identical.");
        return 0;
    }

    private static boolean readsZero(BlockStatus s) {
        return !s.allocated() || s.zero();
    }

    private static boolean sameStatus(BlockStatus s1, BlockStatus s2) {
        return s1.allocated() == s2.allocated() && s1.zero() == s2.zero() && s1.data() == s2.data();
    }

    private BlockStatus status(BlockDevice dev, String name, long pos, long len) {
        try {
            return dev.blockStatus(pos, len);
        } catch (IOException | RuntimeException e) {
            throw new CliException("Sector allocation test failed for " + name + ": " + Images.reason(e), 3, e);
        }
    }

    /** First byte offset (rounded down to its sector) in [pos, pos+len) that is not zero, or -1. */
    private long firstNonZero(BlockDevice dev, String name, long pos, long len) {
        for (long done = 0; done < len; ) {
            int n = (int) Math.min(BUF, len - done);
            read(dev, name, pos + done, n, buf1);
            int at = mismatch(buf1, ZEROS, n);
            if (at >= 0) {
                return sectorOf(pos, pos + done + at);
            }
            done += n;
        }
        return -1;
    }

    /** First differing byte offset (rounded down to its sector) in [pos, pos+len), or -1. */
    private long firstDifference(BlockDevice a, BlockDevice b, long pos, long len) {
        for (long done = 0; done < len; ) {
            int n = (int) Math.min(BUF, len - done);
            long at2 = pos + done;
            Future<?> other = second.submit(() -> read(b, file2, at2, n, buf2));
            try {
                read(a, file1, pos + done, n, buf1);
            } finally {
                waitFor(other); // (a failure of the first image's read is the one reported)
            }
            int at = mismatch(buf1, buf2, n);
            if (at >= 0) {
                return sectorOf(pos, pos + done + at);
            }
            done += n;
        }
        return -1;
    }

    /**
     * The first index below {@code n} where the buffers differ, or -1. In slices of 64 KiB:
     * the JDK's mismatch loop runs vectorised only once its callers are compiled, and under
     * C1 alone that takes a couple of hundred calls, which 2 MiB calls would reach only
     * after 400 MiB compared by the plain loop.
     */
    private static int mismatch(ByteBuffer x, ByteBuffer y, int n) {
        for (int at = 0; at < n; at += SLICE) {
            int len = Math.min(SLICE, n - at);
            int d = x.slice(at, len).mismatch(y.slice(at, len));
            if (d >= 0) {
                return at + d;
            }
        }
        return -1;
    }

    /** The second image's read: its failure (a CliException) is thrown here, as if read on this thread. */
    private static void waitFor(Future<?> read) {
        try {
            read.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CliException("interrupted", 4, e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw new CliException("Error while reading: " + e.getCause(), 4, e.getCause());
        }
    }

    /** qemu reports whole sectors counted from the start of the run being compared. */
    private static long sectorOf(long runStart, long byteOffset) {
        return byteOffset - (byteOffset - runStart) % SECTOR;
    }

    private static void read(BlockDevice dev, String name, long offset, int n, ByteBuffer buf) {
        buf.clear().limit(n);
        try {
            dev.read(offset, buf);
        } catch (IOException | RuntimeException e) {
            throw new CliException("Error while reading offset " + offset + " of " + name + ": "
                    + Images.reason(e), 4, e);
        }
        buf.flip();
    }

    private void say(String line) {
        if (!quiet) {
            out.println(line);
        }
    }
}
