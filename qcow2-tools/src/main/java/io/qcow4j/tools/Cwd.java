package io.qcow4j.tools;

import java.nio.file.Path;

/**
 * File names as the user typed them, resolved against the working directory of this
 * command: the process's own, or the one {@link Main#run(String[], java.io.PrintStream,
 * java.io.PrintStream, Path)} was given (the test suite runs many commands in one JVM).
 * Messages keep printing the names as typed.
 */
final class Cwd {
    private static final ThreadLocal<Path> DIR = new ThreadLocal<>();
    /** DIR as a name prefix ("/dir/"), made once: a check report may print 10^5 lines through {@link #asTyped}. */
    private static final ThreadLocal<String> PREFIX = new ThreadLocal<>();

    private Cwd() {
    }

    static Path path(String name) {
        Path dir = DIR.get();
        return dir == null ? Path.of(name) : dir.resolve(name);
    }

    /**
     * A message as a process started in this command's working directory prints it: the
     * engine names files by the paths it was given, which {@link #path} made absolute.
     */
    static String asTyped(String message) {
        String prefix = PREFIX.get();
        return prefix == null || message == null ? message : message.replace(prefix, "");
    }

    static void set(Path dir) {
        if (dir == null) {
            DIR.remove();
            PREFIX.remove();
        } else {
            DIR.set(dir.toAbsolutePath());
            PREFIX.set(dir.toAbsolutePath() + "/");
        }
    }
}
