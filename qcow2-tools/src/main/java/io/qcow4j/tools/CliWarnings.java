package io.qcow4j.tools;

import java.io.PrintWriter;
import java.util.function.Consumer;

/**
 * Where the library's warnings go in the CLI: stderr, one line {@code qcow4j: warning: ...}
 * each, as qemu-img prints its own. Every image a command opens gets {@link #sink()}; like
 * {@link Cwd}, it belongs to the command running on this thread.
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
            err.println("qcow4j: warning: " + message);
            err.flush();
        };
    }
}
