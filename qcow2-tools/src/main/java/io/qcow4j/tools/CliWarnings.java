package io.qcow4j.tools;

import java.io.PrintWriter;
import java.util.function.Consumer;

/**
 * Where the library's warnings go in the CLI: stderr, one line {@code qcow4j: warning: ...}
 * each, as qemu-img prints its own. Every image a command opens gets {@link #sink()}; like
 * {@link Cwd}, it belongs to the command running on this thread. In drop-in mode (see
 * {@link Program}) only the warnings qemu-img prints too are printed, in its words, unless
 * {@code QCOW4J_WARNINGS=1} asks for qcow4j's own as well.
 */
final class CliWarnings {
    private static final ThreadLocal<PrintWriter> ERR = new ThreadLocal<>();

    private CliWarnings() {
    }

    static void set(PrintWriter err) {
        if (err == null) {
            ERR.remove();
        } else {
            ERR.set(err);
        }
    }

    /** Prints to the stderr of the command running now (the process's, outside a command). */
    static Consumer<String> sink() {
        PrintWriter err = ERR.get();
        return err != null ? to(err) : to(new PrintWriter(System.err, true));
    }

    static Consumer<String> to(PrintWriter err) {
        return message -> {
            if (message.startsWith(QEMU_CONTINUATION)) {
                // qemu prints this bare, after its warning, and without a newline
                if (Program.dropIn()) {
                    err.print(message);
                } else {
                    err.println(Program.name() + ": warning: " + message);
                }
            } else if (QEMU_WARNINGS.stream().anyMatch(message::startsWith) || Program.ownWarnings()) {
                err.println(Program.name() + ": warning: " + message);
            }
            err.flush();
        };
    }

    /**
     * qemu's warning when a raw image opened for writing had its format probed: three lines
     * as qemu-img prints them in drop-in mode, one of qcow4j's otherwise.
     */
    static void probedRaw(String file) {
        PrintWriter err = ERR.get();
        if (err == null) {
            err = new PrintWriter(System.err, true);
        }
        if (Program.dropIn()) {
            err.println("WARNING: Image format was not specified for '" + file + "' and probing guessed raw.");
            err.println("         Automatically detecting the format is dangerous for raw images, write operations on"
                    + " block 0 will be restricted.");
            err.println("         Specify the 'raw' format explicitly to remove the restrictions.");
        } else {
            err.println(Program.name() + ": warning: Image format was not specified for '" + file
                    + "' and probing guessed raw.");
        }
        err.flush();
    }

    /** The library's warnings that QEMU prints too (bitmaps a program without bitmap support touched). */
    private static final java.util.List<String> QEMU_WARNINGS = java.util.List.of(
            "a program lacking bitmap support");
    private static final String QEMU_CONTINUATION = "Some clusters may be leaked, run 'qemu-img check -r'";
}
