package io.qcow4j.tools;

/**
 * A failure the CLI reports as one line {@code qcow4j: <message>} on stderr, with the
 * exit code qemu-img uses for it (1 unless a command documents otherwise).
 */
public final class CliException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final int exitCode;
    private String qemuWords;
    private boolean silent;

    public CliException(String message) {
        this(message, 1, null);
    }

    public CliException(String message, int exitCode) {
        this(message, exitCode, null);
    }

    public CliException(String message, int exitCode, Throwable cause) {
        super(message, cause);
        this.exitCode = exitCode;
    }

    public int exitCode() {
        return exitCode;
    }

    /** qemu-img's own text where it differs from ours (printed in drop-in mode), or null. */
    public String qemuWords() {
        return qemuWords;
    }

    /** The same failure with {@code prefix} before its text (and qemu-img's), and another exit code. */
    public CliException prefixed(String prefix, int exitCode) {
        CliException e = new CliException(prefix + getMessage(), exitCode, this);
        e.qemuWords = qemuWords == null ? null : prefix + qemuWords;
        return e;
    }

    /** Ends the command with {@code exitCode} and nothing more printed (it printed what it had to: a help text). */
    public static CliException exit(int exitCode) {
        CliException e = new CliException("exit " + exitCode, exitCode);
        e.silent = true;
        return e;
    }

    public boolean silent() {
        return silent;
    }

    /** Sets the text qemu-img prints for this failure, word for word (see {@link Program}). */
    public CliException withQemuWords(String words) {
        this.qemuWords = words;
        return this;
    }
}
