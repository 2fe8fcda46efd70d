package io.qcow4j.tools;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;

/**
 * The name the CLI runs under, and how it words its errors. Run as {@code qcow4j} it is
 * itself: every error one line {@code qcow4j: <what>: <why>}, its own warnings printed.
 * Run as {@code qemu-img} (the {@code bin/qemu-img} symlink: the launcher passes the name
 * it was invoked by in the system property {@code qcow4j.program}) it is a drop-in: it names
 * itself qemu-img, prints qemu-img's errors line for line (the continuation lines and the
 * "Try 'qemu-img --help'" hint included), and keeps its own warnings to itself unless
 * {@code QCOW4J_WARNINGS=1}.
 *
 * <p>An error message may hold several of qemu-img's lines: {@code "\n"} starts a
 * continuation line (qemu prints it bare), {@link #NEXT_ERROR} a line of its own with the
 * program's prefix, and {@link #USAGE_HINT} at the end stands for the "Try ... --help" line.
 */
final class Program {
    static final String QCOW4J = "qcow4j";
    static final String QEMU_IMG = "qemu-img";
    /** Between two errors that qemu-img prints as two prefixed lines. */
    static final String NEXT_ERROR = "\u001e";
    /** At the end of a usage error: qemu-img adds "Try 'qemu-img --help' for more information". */
    static final String USAGE_HINT = "\u001f";

    /** At the end of an error qemu-img reports without the "Try" line, though its words are a usage error's elsewhere. */
    static final String NO_HINT = "\u001d";

    private static final ThreadLocal<String> NAME = new ThreadLocal<>();

    /**
     * qemu-img's usage errors (error_exit): it follows each with the "Try" line, whichever
     * command of ours raises it. Whole messages, or beginnings ending in a quote or a blank.
     */
    private static final List<String> USAGE_ERRORS = List.of(
            "Expecting one image file name", "Expecting two image file names", "Expecting image file name",
            "Not enough arguments", "Must specify backing file (-b) or use unsafe mode (-u)",
            "Cannot mix '-l', '-a', '-c', '-d'", "Must specify options (-o)",
            "Unknown option value for -r ", "Unexpected argument: ", "Command not found: ", "unrecognized option '",
            "missing argument for option '");
    /** A file the file driver cannot open: qemu-img names it twice ("Could not open 'x': Could not open 'x': ..."). */
    private static final java.util.regex.Pattern FILE_OPEN_FAILED = java.util.regex.Pattern.compile(
            "(Could not open '(?:(?!': )[^\\n])*': )(No such file or directory|Permission denied)");

    private Program() {
    }

    /** "qemu-img" when run under that name, else "qcow4j". */
    static String name() {
        String n = NAME.get();
        if (n == null) {
            n = System.getProperty("qcow4j.program", QCOW4J);
        }
        return QEMU_IMG.equals(n) ? QEMU_IMG : QCOW4J;
    }

    static boolean dropIn() {
        return name().equals(QEMU_IMG);
    }

    /** The name for the command running on this thread (tests run both in one JVM); null: the property's. */
    static void set(String name) {
        if (name == null) {
            NAME.remove();
        } else {
            NAME.set(name);
        }
    }

    /** Whether qcow4j's own warnings (those qemu-img does not print) are printed. */
    static boolean ownWarnings() {
        return !dropIn() || "1".equals(System.getenv("QCOW4J_WARNINGS"));
    }

    /** Two errors qemu-img prints on two lines, each with its prefix. */
    static String twoErrors(String first, String second) {
        return first + NEXT_ERROR + second;
    }

    /** A usage error: qemu-img follows it with "Try 'qemu-img --help' for more information". */
    static String usage(String message) {
        return message + USAGE_HINT;
    }

    /** An error that qemu-img prints without its "Try" line (amend's "Expecting one image file name"). */
    static String withoutHint(String message) {
        return message + NO_HINT;
    }

    /** Prints an error message as the program it runs as words it. */
    static void printError(PrintWriter err, String message) {
        for (String line : errorLines(message)) {
            err.println(line);
        }
        err.flush();
    }

    /** The lines of an error, with their prefixes. */
    static List<String> errorLines(String message) {
        String m = message == null || message.isBlank() ? "unknown error" : message;
        boolean hint = m.endsWith(USAGE_HINT);
        if (hint) {
            m = m.substring(0, m.length() - USAGE_HINT.length());
        }
        boolean noHint = m.endsWith(NO_HINT);
        if (noHint) {
            m = m.substring(0, m.length() - NO_HINT.length());
        }
        List<String> lines = new ArrayList<>();
        if (!dropIn()) {
            lines.add(QCOW4J + ": " + oneLine(m.replace(NEXT_ERROR, " ")));
            return lines;
        }
        String plain = m;
        hint |= !noHint && USAGE_ERRORS.stream().anyMatch(u -> plain.equals(u)
                || (u.endsWith(" ") || u.endsWith("'")) && plain.startsWith(u));
        java.util.regex.Matcher fileFailed = FILE_OPEN_FAILED.matcher(m);
        if (fileFailed.matches()) {
            m = fileFailed.group(1) + m;
        }
        for (String part : m.split(NEXT_ERROR, -1)) {
            lines.add(QEMU_IMG + ": " + part.replaceAll("[\\r\\n]+$", ""));
        }
        if (hint) {
            lines.add("Try 'qemu-img --help' for more information");
        }
        return lines;
    }

    /** qcow4j's form: every error one line. */
    static String oneLine(String message) {
        return message.strip().replaceAll("\\s*[\\r\\n]+\\s*", " ");
    }
}
