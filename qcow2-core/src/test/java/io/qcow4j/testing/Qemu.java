package io.qcow4j.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs the real QEMU tools (the oracles of our tests) and captures what they say.
 * Every failure is an {@link AssertionError} carrying the command and both streams.
 */
public final class Qemu {
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);
    private static final ObjectMapper JSON = new ObjectMapper();

    private Qemu() {
    }

    /** What a finished command left behind. */
    public record Result(List<String> command, int exitCode, String stdout, String stderr) {
        /** Fails the test unless the exit code is 0. */
        public Result assertOk() {
            if (exitCode != 0) {
                throw new AssertionError(describe());
            }
            return this;
        }

        /** Fails the test unless the exit code is {@code expected}. */
        public Result assertExit(int expected) {
            if (exitCode != expected) {
                throw new AssertionError("expected exit " + expected + ": " + describe());
            }
            return this;
        }

        public String describe() {
            return String.join(" ", command) + " exited " + exitCode
                    + "\n--- stdout:\n" + stdout + "\n--- stderr:\n" + stderr;
        }
    }

    public static Result run(String... cmd) {
        return run(null, DEFAULT_TIMEOUT, cmd);
    }

    public static Result run(Duration timeout, String... cmd) {
        return run(null, timeout, cmd);
    }

    /**
     * Runs {@code cmd} in {@code workDir} (null: the JVM's); on timeout kills it (and anything
     * it started) and fails.
     */
    public static Result run(Path workDir, Duration timeout, String... cmd) {
        List<String> command = List.of(cmd);
        Path out = null;
        Path err = null;
        try {
            // Files, not pipes: a daemon (qemu-nbd --fork) may keep inherited pipes open forever.
            out = Files.createTempFile("qemu-out", ".txt");
            err = Files.createTempFile("qemu-err", ".txt");
            ProcessBuilder pb = new ProcessBuilder(command)
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .redirectOutput(out.toFile())
                    .redirectError(err.toFile());
            if (workDir != null) {
                pb.directory(workDir.toFile());
            }
            pb.environment().put("LC_ALL", "C"); // stable messages
            Process p;
            try {
                p = pb.start();
            } catch (IOException e) {
                throw new AssertionError("cannot run " + cmd[0]
                        + " (bin/test installs qemu-utils and libnbd-bin): " + e.getMessage(), e);
            }
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
                throw new AssertionError(String.join(" ", command) + " timed out after " + timeout
                        + "\n--- stdout:\n" + read(out) + "\n--- stderr:\n" + read(err));
            }
            return new Result(command, p.exitValue(), read(out), read(err));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted while running " + command, e);
        } finally {
            deleteQuietly(out);
            deleteQuietly(err);
        }
    }

    public static Result qemuImg(String... args) {
        return run(prepend("qemu-img", args));
    }

    public static Result qemuIo(String... args) {
        return run(prepend("qemu-io", args));
    }

    /**
     * Runs {@code cmd} with the image's directory as working directory: qemu 7.2 resolves a
     * relative external data file name against the working directory (backing file names
     * against the image's directory), so this makes both resolve beside the image.
     */
    public static Result besideImage(Path img, String... cmd) {
        return run(img.toAbsolutePath().getParent(), DEFAULT_TIMEOUT, cmd);
    }

    /** {@code qemu-io -f qcow2 -c CMD... IMG}; a failed command (e.g. a pattern mismatch) gives exit 1. */
    public static Result io(Path img, String... commands) {
        List<String> args = new ArrayList<>(List.of("qemu-io", "-f", "qcow2"));
        for (String c : commands) {
            args.add("-c");
            args.add(c);
        }
        args.add(abs(img));
        return besideImage(img, args.toArray(String[]::new));
    }

    /** {@code qemu-img info --output=json -U}: -U so an image someone holds open can be inspected. */
    public static JsonNode infoJson(Path img) {
        return parse(besideImage(img, "qemu-img", "info", "--output=json", "-U", abs(img)).assertOk());
    }

    /** {@code qemu-img check [OPTIONS] IMG}; exit 0 clean, 1 check error, 2 corrupt, 3 leaks only. */
    public static Result check(Path img, String... options) {
        List<String> args = new ArrayList<>(List.of("qemu-img", "check"));
        args.addAll(Arrays.asList(options));
        args.add(abs(img));
        return besideImage(img, args.toArray(String[]::new));
    }

    /** The JSON report of {@code qemu-img check}, whatever the exit code, as long as it printed one. */
    public static JsonNode checkJson(Path img) {
        return parse(check(img, "--output=json"));
    }

    /** {@code qemu-img compare}: true if the guest-visible contents are identical. */
    public static boolean compare(Path a, Path b) {
        Result r = besideImage(a, "qemu-img", "compare", abs(a), abs(b));
        return switch (r.exitCode()) {
            case 0 -> true;
            case 1 -> false;
            default -> throw new AssertionError(r.describe());
        };
    }

    public static void convertToRaw(Path src, Path dst) {
        besideImage(src, "qemu-img", "convert", "-O", "raw", abs(src), abs(dst)).assertOk();
    }

    /** {@code qemu-img create -f qcow2 [-o OPT,OPT...] IMG SIZE}. */
    public static void create(Path img, String size, String... opts) {
        List<String> args = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2"));
        if (opts.length > 0) {
            args.add("-o");
            args.add(String.join(",", opts));
        }
        args.add(abs(img));
        args.add(size);
        besideImage(img, args.toArray(String[]::new)).assertOk();
    }

    /**
     * Exports {@code img} read-only with {@code qemu-nbd -B bitmap} on a private unix socket and
     * returns {@code nbdinfo --map=qemu:dirty-bitmap:NAME} output, lines of
     * "start length flags dirty|clean".
     */
    /** {@link #nbdMap} (qemu-nbd resolves relative backing names against the image, so any directory works). */
    public static String besideImageNbdMap(Path img, String bitmap) {
        return nbdMap(img, bitmap);
    }

    public static String nbdMap(Path img, String bitmap) {
        return NbdExport.dirtyBitmapMap(img, bitmap);
    }

    static JsonNode parse(Result r) {
        try {
            return JSON.readTree(r.stdout());
        } catch (IOException e) {
            throw new AssertionError("not JSON: " + r.describe(), e);
        }
    }

    private static String abs(Path p) {
        return p.toAbsolutePath().toString();
    }

    private static String[] prepend(String first, String[] rest) {
        String[] all = new String[rest.length + 1];
        all[0] = first;
        System.arraycopy(rest, 0, all, 1, rest.length);
        return all;
    }

    private static String read(Path p) throws IOException {
        return Files.readString(p, StandardCharsets.UTF_8);
    }

    private static void deleteQuietly(Path p) {
        if (p != null) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException ignored) {
                // a leftover temp file is not worth failing a test
            }
        }
    }
}
