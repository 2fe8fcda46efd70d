package io.qcow4j.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Another process holding an image open, as a running VM does: {@code qemu-io FILE}
 * reading commands from a pipe we keep open, or a second JVM opening it with qcow4j
 * ({@link LockHolder}). {@link #close()} ends it.
 */
public final class Holder implements AutoCloseable {
    private final Process process;
    private final Path stderr;

    private Holder(Process process, Path stderr) {
        this.process = process;
        this.stderr = stderr;
    }

    /**
     * {@code qemu-io [options] FILE} (in the image's directory), kept running; returns once
     * it has the image open with all its locks: when it has answered a first read.
     */
    public static Holder qemuIo(Path image, String... options) {
        List<String> cmd = new ArrayList<>();
        cmd.add("qemu-io");
        cmd.addAll(List.of(options));
        cmd.add(image.getFileName().toString());
        Holder h = start(cmd, image.toAbsolutePath().getParent(), ProcessBuilder.Redirect.PIPE);
        try {
            h.process.getOutputStream().write("read 0 512\n".getBytes(StandardCharsets.US_ASCII));
            h.process.getOutputStream().flush();
            BufferedReader out = new BufferedReader(new InputStreamReader(h.process.getInputStream(), StandardCharsets.UTF_8));
            for (String line = out.readLine(); ; line = out.readLine()) {
                if (line == null) {
                    String err = h.stderr();
                    h.close();
                    throw new AssertionError("qemu-io holder ended: " + err);
                }
                if (line.contains("bytes at offset")) {
                    break;
                }
            }
        } catch (IOException e) {
            h.close();
            throw new UncheckedIOException(e);
        }
        if (!holdsLocks(h.pid())) {
            h.close();
            throw new AssertionError("qemu-io holds no locks");
        }
        return h;
    }

    /**
     * A second JVM that opens {@code image} with qcow4j ({@code mode}: rw, ro or ro-U) and
     * keeps it open; returns once it reports the open, or throws with its one-line failure.
     * {@code jvmOptions} go before the main class (e.g. -Dqcow4j.lock=posix).
     */
    public static Holder qcow4j(Path image, String mode, String... jvmOptions) {
        List<String> cmd = ChildJvm.command(List.of(jvmOptions), LockHolder.class, image.toAbsolutePath().toString(), mode);
        Holder h = start(cmd, null, ProcessBuilder.Redirect.PIPE);
        String line;
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(h.process.getInputStream(), StandardCharsets.UTF_8));
            line = out.readLine();
        } catch (IOException e) {
            h.close();
            throw new UncheckedIOException(e);
        }
        if (!"ready".equals(line)) {
            String err = h.stderr();
            h.close();
            throw new HolderFailed(line == null ? "no output; stderr: " + err : line);
        }
        return h;
    }

    /** The second JVM could not open the image: its message. */
    public static final class HolderFailed extends RuntimeException {
        private static final long serialVersionUID = 1L;

        HolderFailed(String message) {
            super(message);
        }
    }

    private static Holder start(List<String> cmd, Path dir, ProcessBuilder.Redirect out) {
        try {
            Path err = Files.createTempFile("holder-err", ".txt");
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(out).redirectError(err.toFile());
            if (dir != null) {
                pb.directory(dir.toFile());
            }
            pb.environment().put("LC_ALL", "C");
            return new Holder(pb.start(), err);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public long pid() {
        return process.pid();
    }

    /** Whether any descriptor of {@code pid} has byte-range locks ("lock:" lines in fdinfo). */
    public static boolean holdsLocks(long pid) {
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc", Long.toString(pid), "fdinfo"))) {
            for (Path fd : fds) {
                try {
                    if (Files.readString(fd).contains("lock:")) {
                        return true;
                    }
                } catch (IOException e) {
                    // the descriptor closed meanwhile
                }
            }
        } catch (IOException e) {
            return false;
        }
        return false;
    }

    private String stderr() {
        try {
            return Files.readString(stderr).strip();
        } catch (IOException e) {
            return "";
        }
    }

    /** Ends the holder: EOF on its stdin (a clean exit), forcibly after a few seconds. */
    @Override
    public void close() {
        try {
            process.getOutputStream().close();
        } catch (IOException e) {
            // already gone
        }
        try {
            if (!process.waitFor(5, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            Files.deleteIfExists(stderr);
        } catch (IOException e) {
            // a temp file
        }
    }
}
