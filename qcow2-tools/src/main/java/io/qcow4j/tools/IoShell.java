package io.qcow4j.tools;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * qemu-io's command interpreter: {@code read}, {@code write}, {@code discard},
 * {@code flush}. Results, failed operations and bad arguments go to stdout, unknown
 * commands and argument counts to stderr, as qemu-io does; a failure marks the run
 * failed (exit 1) and the next command still runs.
 */
final class IoShell {
    private static final int CHUNK = 4 << 20;
    private static final String READ_USAGE = "read [-qv] [-P pattern [-s off] [-l len]] off len"
            + " -- reads a number of bytes at a specified offset";
    private static final String WRITE_USAGE = "write [-cfnquz] [-P pattern] off len"
            + " -- writes a number of bytes at a specified offset";
    private static final String DISCARD_USAGE = "discard [-q] off len -- discards a number of bytes at a specified offset";
    private static final String FLUSH_USAGE = "flush -- flush all in-core file state to disk";

    private final IoTarget target;
    private final PrintWriter out;
    private final PrintWriter err;
    private boolean failed;

    IoShell(IoTarget target, PrintWriter out, PrintWriter err) {
        this.target = target;
        this.out = out;
        this.err = err;
    }

    boolean failed() {
        return failed;
    }

    /** Runs one command line; false when it asks to quit. */
    boolean run(String line) {
        List<String> words = new ArrayList<>();
        for (String w : line.trim().split("[ \t]+")) {
            if (!w.isEmpty()) {
                words.add(w);
            }
        }
        if (words.isEmpty()) {
            return true;
        }
        String name = words.get(0);
        List<String> args = words.subList(1, words.size());
        try {
            switch (name) {
                case "read", "r" -> read(args);
                case "write", "w" -> write(args);
                case "discard", "d" -> discard(args);
                case "flush", "f", "aio_flush" -> flush(name, args);
                case "help", "?" -> help();
                case "quit", "q" -> {
                    return false;
                }
                default -> {
                    err.println("command \"" + name + "\" not found");
                    failed = true;
                }
            }
        } catch (Getopt.BadOption e) {
            err.println(e.getMessage());
            failed = true;
        } catch (CommandFailed e) {
            failed = true;
        }
        out.flush();
        return true;
    }

    private void help() {
        for (String usage : List.of(READ_USAGE, WRITE_USAGE, DISCARD_USAGE, FLUSH_USAGE)) {
            out.println(usage);
        }
    }

    private void read(List<String> args) throws Getopt.BadOption {
        argCount("read", args, 2);
        Getopt g = new Getopt("read", "qvP:s:l:C", args);
        boolean quiet = false;
        boolean verbose = false;
        Integer pattern = null;
        long patternOffset = 0;
        long patternLength = -1;
        for (Getopt.Opt o : g.options()) {
            switch (o.letter()) {
                case 'q' -> quiet = true;
                case 'v' -> verbose = true;
                case 'P' -> pattern = pattern(o.value());
                case 's' -> patternOffset = number(o.value());
                case 'l' -> patternLength = number(o.value());
                default -> { }
            }
        }
        List<String> ops = operands(g, READ_USAGE);
        long offset = number(ops.get(0));
        long count = number(ops.get(1));
        if (patternLength < 0) {
            patternLength = count - patternOffset;
        }
        if (pattern != null && (patternLength < 0 || patternOffset + patternLength > count)) {
            out.println("pattern verification range exceeds end of read data");
            throw new CommandFailed();
        }
        if (!inBounds(offset, count)) {
            fail("read", "Input/output error");
        }
        long start = System.nanoTime();
        boolean mismatch = false;
        StringBuilder dump = verbose ? new StringBuilder() : null;
        ByteBuffer buf = ByteBuffer.allocate((int) Math.min(CHUNK, Math.max(count, 1)));
        for (long done = 0; done < count; ) {
            int n = (int) Math.min(buf.capacity(), count - done);
            buf.clear().limit(n);
            try {
                target.read(offset + done, buf);
            } catch (IOException | RuntimeException e) {
                fail("read", Images.reason(e));
            }
            buf.flip();
            if (pattern != null) {
                mismatch |= !matches(buf, done, patternOffset, patternLength, pattern.byteValue());
            }
            if (dump != null) {
                StringWriter sw = new StringWriter();
                PrintWriter pw = new PrintWriter(sw);
                Output.hexDump(pw, offset + done, buf.duplicate());
                pw.flush();
                dump.append(sw);
            }
            done += n;
        }
        long elapsed = System.nanoTime() - start;
        if (mismatch) {
            out.println("Pattern verification failed at offset " + (offset + patternOffset) + ", "
                    + patternLength + " bytes");
            failed = true;
        }
        if (dump != null) {
            out.print(dump);
        }
        if (!quiet) {
            report("read", offset, count, elapsed);
        }
    }

    /** Whether the part of the pattern range inside this chunk holds only {@code p}. */
    private static boolean matches(ByteBuffer chunk, long chunkStart, long pOff, long pLen, byte p) {
        long from = Math.max(pOff, chunkStart);
        long to = Math.min(pOff + pLen, chunkStart + chunk.remaining());
        for (long i = from; i < to; i++) {
            if (chunk.get(chunk.position() + (int) (i - chunkStart)) != p) {
                return false;
            }
        }
        return true;
    }

    private void write(List<String> args) throws Getopt.BadOption {
        argCount("write", args, 2);
        Getopt g = new Getopt("write", "cfnquzP:", args);
        boolean quiet = false;
        boolean zero = false;
        boolean unmap = false;
        boolean compressed = false;
        Integer pattern = null;
        for (Getopt.Opt o : g.options()) {
            switch (o.letter()) {
                case 'q' -> quiet = true;
                case 'z' -> zero = true;
                case 'u' -> unmap = true;
                case 'c' -> compressed = true;
                case 'P' -> pattern = pattern(o.value());
                default -> { } // -f (FUA), -n (no cache): no meaning here
            }
        }
        List<String> ops = operands(g, WRITE_USAGE);
        if (zero && pattern != null) {
            out.println("Only one of -z, -P, and -s can be specified at the same time");
            throw new CommandFailed();
        }
        if (unmap && !zero) {
            out.println("-u requires -z to be specified");
            throw new CommandFailed();
        }
        long offset = number(ops.get(0));
        long count = number(ops.get(1));
        requireWritable();
        if (!inBounds(offset, count)) {
            fail("write", "Input/output error");
        }
        byte fill = pattern != null ? pattern.byteValue() : (byte) 0xcd;
        long start = System.nanoTime();
        try {
            if (zero) {
                target.writeZeroes(offset, count);
            } else if (compressed) {
                writeCompressed(offset, count, fill);
            } else {
                writePattern(offset, count, fill);
            }
        } catch (IOException | RuntimeException e) {
            fail("write", Images.reason(e));
        }
        if (!quiet) {
            report("wrote", offset, count, System.nanoTime() - start);
        }
    }

    private void writePattern(long offset, long count, byte fill) throws IOException {
        byte[] data = new byte[(int) Math.min(CHUNK, Math.max(count, 1))];
        Arrays.fill(data, fill);
        for (long done = 0; done < count; ) {
            int n = (int) Math.min(data.length, count - done);
            target.write(offset + done, ByteBuffer.wrap(data, 0, n));
            done += n;
        }
    }

    /** Whole clusters only (or the image's last, partial one), as qemu requires. */
    private void writeCompressed(long offset, long count, byte fill) throws IOException {
        int cluster = target.clusterSize();
        long end = offset + count;
        if (cluster == 0) {
            fail("write", "Operation not supported");
        }
        if (offset % cluster != 0 || (end % cluster != 0 && end != target.size())) {
            fail("write", "Invalid argument");
        }
        byte[] data = new byte[cluster];
        Arrays.fill(data, fill);
        for (long pos = offset; pos < end; pos += cluster) {
            int n = (int) Math.min(cluster, end - pos);
            if (!target.writeCompressed(pos, ByteBuffer.wrap(data, 0, n))) {
                fail("write", "Operation not supported");
            }
        }
    }

    private void discard(List<String> args) throws Getopt.BadOption {
        argCount("discard", args, 2);
        Getopt g = new Getopt("discard", "qC", args);
        boolean quiet = g.options().stream().anyMatch(o -> o.letter() == 'q');
        List<String> ops = operands(g, DISCARD_USAGE);
        long offset = number(ops.get(0));
        long count = number(ops.get(1));
        requireWritable();
        if (!inBounds(offset, count)) {
            fail("discard", "Input/output error");
        }
        long start = System.nanoTime();
        try {
            target.discard(offset, count);
        } catch (IOException | RuntimeException e) {
            fail("discard", Images.reason(e));
        }
        if (!quiet) {
            report("discard", offset, count, System.nanoTime() - start);
        }
    }

    private void flush(String name, List<String> args) {
        if (!args.isEmpty()) {
            err.println("bad argument count " + args.size() + " to " + name + ", expected 0 arguments");
            throw new CommandFailed();
        }
        try {
            target.flush();
        } catch (IOException | RuntimeException e) {
            fail("flush", Images.reason(e));
        }
    }

    private void requireWritable() {
        if (target.readOnly()) {
            err.println("qcow4j: Block node is read-only");
            throw new CommandFailed();
        }
    }

    private boolean inBounds(long offset, long count) {
        return count <= target.size() && offset <= target.size() - count;
    }

    private void argCount(String name, List<String> args, int min) {
        if (args.size() < min) {
            err.println("bad argument count " + args.size() + " to " + name + ", expected at least " + min
                    + " arguments");
            throw new CommandFailed();
        }
    }

    private List<String> operands(Getopt g, String usage) {
        if (g.operands().size() != 2) {
            out.println(usage);
            throw new CommandFailed();
        }
        return g.operands();
    }

    /** An offset or length: qemu's sizes with suffixes; its messages on failure. */
    private long number(String text) {
        try {
            return Sizes.parse(text);
        } catch (Sizes.SizeException e) {
            out.println(e.problem() == Sizes.Problem.INVALID
                    ? "Parsing error: non-numeric argument, or extraneous/unrecognized suffix -- " + text
                    : "Parsing error: argument too large -- " + text);
            throw new CommandFailed();
        }
    }

    /** A pattern byte: decimal, 0x hex or 0 octal, 0..255. */
    private int pattern(String text) {
        try {
            long v = OptionList.parseNumber("pattern", text);
            if (v >= 0 && v <= 255 && !text.strip().startsWith("-")) {
                return (int) v;
            }
        } catch (CliException e) {
            // falls through to qemu-io's message
        }
        out.println(text + " is not a valid pattern byte");
        throw new CommandFailed();
    }

    private void fail(String op, String why) {
        out.println(op + " failed: " + why);
        throw new CommandFailed();
    }

    /** "wrote N/N bytes at offset O" and qemu-io's timing line (its numbers vary run to run). */
    private void report(String verb, long offset, long count, long nanos) {
        out.println(verb + " " + count + "/" + count + " bytes at offset " + offset);
        double secs = Math.max(nanos, 1) / 1e9;
        out.println(Output.ioSize(count) + ", 1 ops; " + Output.ioTime(nanos) + " ("
                + Output.ioSize(count / secs) + "/sec and " + String.format(Locale.ROOT, "%.4f", 1 / secs)
                + " ops/sec)");
    }

    /** Ends a command that failed; its message is already printed. */
    private static final class CommandFailed extends RuntimeException {
        private static final long serialVersionUID = 1L;

        CommandFailed() {
            super(null, null, false, false);
        }
    }
}
