package io.qcow4j.tools;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.BlockDevice;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Locale;

/**
 * {@code bench [-c COUNT] [-d DEPTH] [-f FMT] [--flush-interval=N] [-i AIO] [-n] [--no-drain]
 * [-o OFFSET] [--pattern=BYTE] [-q] [-s SIZE] [-S STEP] [-t CACHE] [-w] [-U] FILE}, as qemu-img
 * bench: COUNT requests of SIZE bytes (reads, or writes of BYTE with -w) from OFFSET on, each
 * STEP bytes after the last and wrapping at the end of the disk, with qemu-img's options,
 * checks, messages and output. The time is ours: the requests go one after the other through
 * the engine (DEPTH, the AIO mode and the cache mode are accepted and shown; the
 * write-through modes flush after every write), and a flush follows every N writes.
 */
final class BenchCommand {
    static final String NAME = "bench";
    private static final List<QemuGetopt.Long> LONG = List.of(
            new QemuGetopt.Long("help", false, "h"),
            new QemuGetopt.Long("flush-interval", true, "flush-interval"),
            new QemuGetopt.Long("image-opts", false, "image-opts"),
            new QemuGetopt.Long("pattern", true, "pattern"),
            new QemuGetopt.Long("no-drain", false, "no-drain"),
            new QemuGetopt.Long("force-share", false, "U"));

    private int count = 75000;
    private int depth = 64;
    private String format;
    private boolean nativeAio;
    private long offset;
    private int bufferSize = 4096;
    private int step;
    private String cache = "writeback";
    private boolean write;
    private boolean forceShare;
    private boolean imageOpts;
    private int pattern;
    private int flushInterval;

    static int run(List<String> args, PrintWriter out, PrintWriter err) throws IOException {
        QemuGetopt opts;
        try {
            opts = new QemuGetopt(NAME, args, "hc:d:f:ni:o:qs:S:t:wU", LONG);
        } catch (QemuGetopt.BadOption e) {
            throw e.qemuImgError();
        }
        BenchCommand c = new BenchCommand();
        for (QemuGetopt.Opt o : opts.options()) {
            if (o.key().equals("h")) {
                PicocliCommands.printUsage(out);
                return 0;
            }
            c.option(o.key(), o.value());
        }
        if (opts.operands().size() != 1) {
            throw new CliException(Program.usage("Expecting one image file name"));
        }
        return c.bench(opts.operands().get(0), out, err);
    }

    private void option(String key, String v) {
        switch (key) {
            case "c" -> count = (int) strtoul(v, Integer.MAX_VALUE, "Invalid request count specified");
            case "d" -> depth = (int) strtoul(v, Integer.MAX_VALUE, "Invalid queue depth specified");
            case "f" -> format = v;
            case "n" -> nativeAio = true;
            case "i" -> {
                switch (v) {
                    case "native" -> nativeAio = true;
                    case "threads", "io_uring" -> {
                        // qemu-img only adds flags: an earlier -n or -i native stays
                    }
                    default -> throw new CliException("Invalid aio option: " + v);
                }
            }
            case "o" -> offset = size("offset", v, Long.MAX_VALUE);
            case "q" -> {
                // qemu-img bench prints its lines even with -q
            }
            case "s" -> bufferSize = (int) size("buffer size", v, Integer.MAX_VALUE);
            case "S" -> step = (int) size("step_size", v, Integer.MAX_VALUE);
            case "t" -> {
                if (!Images.CACHE_MODES.contains(v)) {
                    throw new CliException("Invalid cache mode");
                }
                cache = v;
            }
            case "w" -> write = true;
            case "U" -> forceShare = true;
            case "image-opts" -> imageOpts = true;
            case "pattern" -> pattern = (int) strtoul(v, 0xff, "Invalid pattern byte specified");
            case "flush-interval" -> flushInterval = (int) strtoul(v, Integer.MAX_VALUE, "Invalid flush interval specified");
            case "no-drain" -> {
                // requests run one after the other: there is nothing in flight to drain
            }
            default -> throw new IllegalStateException(key);
        }
    }

    private int bench(String file, PrintWriter out, PrintWriter err) throws IOException {
        if (flushInterval != 0 && !write) {
            throw new CliException("--flush-interval is only available in write tests");
        }
        if (flushInterval != 0 && flushInterval < depth) {
            throw new CliException("Flush interval can't be smaller than depth");
        }
        if (imageOpts) {
            ImageOpts.active(true); // the file names are option lists (see Images.open)
        }
        String prefix = "Could not open '" + file + "': ";
        if (write && forceShare) {
            Images.checkFormat(format, prefix);
            throw new CliException(prefix + "force-share=on can only be used with read-only images");
        }
        BlockDevice dev = Images.open(file, format, write, true, forceShare);
        try {
            boolean direct = cache.equals("none") || cache.equals("off") || cache.equals("directsync");
            if (nativeAio && !direct) {
                throw new CliException(prefix + "aio=native was specified, but it requires cache.direct=on,"
                        + " which was not specified.");
            }
            if (step == 0) {
                step = bufferSize;
            }
            out.println("Sending " + count + " " + (write ? "write" : "read") + " requests, " + bufferSize
                    + " bytes each, " + depth + " in parallel (starting at offset " + offset + ", step size " + step + ")");
            if (flushInterval != 0) {
                out.println("Sending flush every " + flushInterval + " requests");
            }
            out.flush();
            long start = System.nanoTime();
            String failure = requests(dev, cache.equals("writethrough") || cache.equals("directsync"));
            long elapsed = System.nanoTime() - start;
            if (failure != null) {
                Program.printError(err, "Failed request: " + failure);
                return 1;
            }
            out.println(String.format(Locale.ROOT, "Run completed in %3.3f seconds.", elapsed / 1e9));
        } finally {
            Images.closeQuietly(dev);
        }
        return 0;
    }

    /** Runs the requests; null, or what failed (strerror's words, as qemu-img prints them). */
    private String requests(BlockDevice dev, boolean writeThrough) {
        long size = Images.virtualSize(dev);
        ByteBuffer buf = ByteBuffer.allocate(bufferSize);
        byte[] fill = new byte[bufferSize];
        java.util.Arrays.fill(fill, (byte) pattern);
        long pos = offset;
        int sinceFlush = 0;
        for (int i = 0; i < count; i++) {
            if (pos > size - bufferSize) {
                return "Input/output error"; // past the end of the disk: EIO, as QEMU's block layer
            }
            try {
                buf.clear();
                if (write) {
                    buf.put(fill).flip();
                    dev.write(pos, buf);
                    sinceFlush++;
                    if (writeThrough || flushInterval != 0 && sinceFlush >= flushInterval) {
                        flush(dev);
                        sinceFlush = 0;
                    }
                } else {
                    dev.read(pos, buf);
                }
            } catch (IOException | RuntimeException e) {
                return Images.reason(e);
            }
            pos += step;
            pos = size == 0 ? 0 : Long.remainderUnsigned(pos, size);
        }
        return null;
    }

    private static void flush(BlockDevice dev) throws IOException {
        dev.flush();
    }

    /** qemu_strtoul with base 0, then a range check: a number or {@code message}. */
    private static long strtoul(String s, long max, String message) {
        String t = s.stripLeading();
        boolean negative = false;
        if (t.startsWith("+") || t.startsWith("-")) {
            negative = t.startsWith("-");
            t = t.substring(1);
        }
        long v;
        try {
            if (t.startsWith("0x") || t.startsWith("0X")) {
                v = Long.parseUnsignedLong(t.substring(2), 16);
            } else if (t.length() > 1 && t.startsWith("0")) {
                v = Long.parseUnsignedLong(t.substring(1), 8);
            } else {
                v = Long.parseUnsignedLong(t);
            }
        } catch (NumberFormatException e) {
            throw new CliException(message);
        }
        if (negative && v != 0 || Long.compareUnsigned(v, max) > 0) {
            throw new CliException(message); // strtoul wraps a negative number: too large
        }
        return v;
    }

    /** qemu-img's cvtnum: a size with suffixes, between 0 and {@code max}, with its words. */
    private static long size(String name, String value, long max) {
        try {
            long v = Sizes.parse(value);
            if (v <= max) {
                return v;
            }
        } catch (Sizes.SizeException e) {
            if (e.problem() == Sizes.Problem.INVALID) {
                throw new CliException(Program.twoErrors(
                        "Invalid " + name + " specified. You may use k, M, G, T, P or E suffixes for",
                        "kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes."));
            }
        }
        throw new CliException("Invalid " + name + " specified. Must be between 0 and " + max + ".");
    }
}
