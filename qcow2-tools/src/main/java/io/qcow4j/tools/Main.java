package io.qcow4j.tools;

import io.qcow4j.core.storage.Warmup;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.Charset;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code qcow4j} command: qemu-img's commands for qcow2 and raw images, plus
 * qemu-io as {@code qcow4j io}. Every failure is one line {@code qcow4j: <what>: <why>}
 * on stderr and a non-zero exit; a hidden {@code --debug} adds the stack trace.
 */
public final class Main {
    static final String VERSION = "0.1.0";
    static final String DEBUG_FLAG = "--debug";

    public static void main(String[] args) {
        warmUp(args);
        System.exit(run(args));
    }

    /** Commands that open an image read-write, so Chronicle Bytes maps its metadata. */
    private static final java.util.Set<String> READ_WRITE = java.util.Set.of("amend", "bitmap", "commit", "rebase",
            "resize", "snapshot");

    /**
     * Starts initialising the native and mapping machinery the command needs beside this
     * thread ({@link Warmup}). Not for info and check, which start on their own archives of
     * few classes and are measured by their start-up and memory, nor for the long-running
     * nbd server or a bare --help.
     */
    private static void warmUp(String[] args) {
        if (args.length == 0 || args[0].startsWith("-") || args[0].equals("info") || args[0].equals("check")
                || args[0].equals("nbd")) {
            return;
        }
        List<String> a = List.of(args);
        boolean readWrite = READ_WRITE.contains(args[0])
                || args[0].equals("convert") && (a.contains("-Oqcow2") || a.indexOf("-O") >= 0
                        && a.indexOf("-O") + 1 < a.size() && a.get(a.indexOf("-O") + 1).equals("qcow2"))
                || args[0].equals("io") && !a.contains("-r");
        Warmup.start(readWrite);
    }

    /** Runs one command line and returns its exit code; never throws, never exits. */
    public static int run(String[] args) {
        return run(args, new FileOutputStream(FileDescriptor.out), new FileOutputStream(FileDescriptor.err), null);
    }

    /**
     * Runs one command line with its output on {@code stdout}/{@code stderr} and relative
     * file names resolved against {@code workingDir} (null: the process's own).
     */
    public static int run(String[] args, java.io.OutputStream stdout, java.io.OutputStream stderr, java.nio.file.Path workingDir) {
        return run(null, args, stdout, stderr, workingDir);
    }

    /**
     * As {@link #run(String[], java.io.OutputStream, java.io.OutputStream, java.nio.file.Path)},
     * run under the name {@code program} ("qemu-img": drop-in mode; null: as the launcher said).
     */
    public static int run(String program, String[] args, java.io.OutputStream stdout, java.io.OutputStream stderr,
            java.nio.file.Path workingDir) {
        Cwd.set(workingDir);
        Program.set(program);
        try {
            return runIn(args, stdout, stderr);
        } finally {
            Cwd.set(null);
            Program.set(null);
        }
    }

    private static int runIn(String[] args, java.io.OutputStream stdout, java.io.OutputStream stderr) {
        List<String> rest = new ArrayList<>(List.of(args));
        boolean debug = rest.remove(DEBUG_FLAG);
        // qemu prints file names byte for byte: write with the charset Java decoded argv with
        Charset cs = Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
        PrintWriter out = new PrintWriter(new OutputStreamWriter(stdout, cs), false);
        PrintWriter err = new PrintWriter(new OutputStreamWriter(stderr, cs), true);
        CliWarnings.set(err);
        ObjectOption.reset();
        try {
            return runWith(rest, debug, out, err);
        } finally {
            CliWarnings.set(null);
            ObjectOption.reset();
            ImageOpts.active(false);
        }
    }

    /** The commands whose file names --image-opts turns into option lists (the others read it themselves). */
    private static final java.util.Set<String> IMAGE_OPTS = java.util.Set.of("bitmap", "check", "commit", "compare",
            "convert", "rebase");

    /** Takes --image-opts off the command line of those commands and makes their file names option lists. */
    private static List<String> imageOpts(List<String> rest) {
        if (rest.isEmpty() || !IMAGE_OPTS.contains(rest.get(0))) {
            return rest;
        }
        List<String> out = new ArrayList<>();
        boolean done = false;
        for (String a : rest) {
            if (!done && a.equals("--image-opts")) {
                ImageOpts.active(true);
                continue;
            }
            done |= a.equals("--");
            out.add(a);
        }
        return out;
    }

    private static int runWith(List<String> rest, boolean debug, PrintWriter out, PrintWriter err) {
        if (Program.dropIn() && rest.size() >= 1 && (rest.get(0).equals("-V") || rest.get(0).equals("--version"))) {
            // qemu-img's form, which scripts parse; the version is the one whose behaviour we follow
            out.println("qemu-img version 7.2.0 (qcow4j " + VERSION + ")");
            out.flush();
            return 0;
        }
        try {
            // --object, which every command takes, read before the command parses the rest
            rest = ObjectOption.extract(rest, out);
            rest = imageOpts(rest);
        } catch (Exception | Error e) {
            int code = failure(e, out, err, debug);
            out.flush();
            err.flush();
            return code;
        }
        InfoCommand info = InfoCommand.plain(rest);
        if (info != null) {
            // the most common call, and the one that must start fast: no picocli at all
            int code;
            try {
                code = info.run(out);
            } catch (Exception | Error e) {
                code = failure(e, out, err, debug);
            }
            out.flush();
            err.flush();
            return code;
        }
        if (!rest.isEmpty() && RawCommands.has(rest.get(0))) {
            // parsed as qemu-img parses them (getopt_long, options checked in order): no picocli
            int code;
            try {
                code = RawCommands.run(rest.get(0), rest.subList(1, rest.size()), out, err);
            } catch (Exception | Error e) {
                code = failure(e, out, err, debug);
            }
            out.flush();
            err.flush();
            return code;
        }
        return PicocliCommands.run(rest, debug, out, err);
    }

    /** A command failed: its one line on stderr (and the stack trace with --debug); the exit code. */
    static int failure(Throwable ex, PrintWriter out, PrintWriter err, boolean debug) {
        out.flush();
        int code = 1;
        String message;
        if (ex instanceof CliException ce && ce.silent()) {
            err.flush();
            return ce.exitCode();
        }
        if (ex instanceof CliException ce) {
            code = ce.exitCode();
            message = Program.dropIn() && ce.qemuWords() != null ? ce.qemuWords() : ce.getMessage();
        } else {
            message = Images.reason(ex);
        }
        Program.printError(err, Cwd.asTyped(message));
        if (debug) {
            ex.printStackTrace(err);
        }
        return code;
    }

}
