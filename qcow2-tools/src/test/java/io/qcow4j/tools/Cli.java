package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Runs the real {@code bin/qcow4j} (the shaded jar, as users run it) and the qemu oracles
 * in a working directory, so both see the same relative file names and print them alike.
 */
final class Cli {
    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static Path root;

    private Cli() {
    }

    /** The repository root: the directory above user.dir holding bin/qcow4j. */
    static synchronized Path root() {
        if (root == null) {
            for (Path p = Path.of(System.getProperty("user.dir")).toAbsolutePath(); p != null; p = p.getParent()) {
                if (Files.isRegularFile(p.resolve("bin/qcow4j"))) {
                    root = p;
                    break;
                }
            }
            if (root == null) {
                throw new IllegalStateException("no bin/qcow4j above " + System.getProperty("user.dir"));
            }
            if (!Files.isRegularFile(root.resolve("qcow2-tools/target/qcow4j.jar"))) {
                throw new IllegalStateException("qcow2-tools/target/qcow4j.jar missing: run after 'package'");
            }
        }
        return root;
    }

    /**
     * Runs a qcow4j command line in this JVM (Main.run with {@code dir} as its working
     * directory): the same code as bin/qcow4j without a JVM start per call. The launcher
     * itself is exercised by {@link #qcow4jProcess}.
     */
    static Qemu.Result qcow4j(Path dir, String... args) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        int code = Main.run(args, out, err, dir);
        java.nio.charset.Charset cs = java.nio.charset.Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
        return new Qemu.Result(List.of(prepend("qcow4j", args)), code, out.toString(cs), err.toString(cs));
    }

    /**
     * Runs a command line in this JVM in drop-in mode, as bin/qemu-img runs it: named
     * qemu-img, with qemu-img's messages line for line.
     */
    static Qemu.Result dropIn(Path dir, String... args) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        int code = Main.run("qemu-img", args, out, err, dir);
        java.nio.charset.Charset cs = java.nio.charset.Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
        return new Qemu.Result(List.of(prepend("qemu-img(qcow4j)", args)), code, out.toString(cs), err.toString(cs));
    }

    /** Asserts two runs printed the same on stdout and stderr and exited alike. */
    static void assertSameOutput(Qemu.Result expected, Qemu.Result actual, String context) {
        String where = context + "\n" + expected.describe() + "\n" + actual.describe();
        assertEquals(expected.stdout(), actual.stdout(), "stdout: " + where);
        assertEquals(expected.stderr(), actual.stderr(), "stderr: " + where);
        assertEquals(expected.exitCode(), actual.exitCode(), "exit code: " + where);
    }

    /** Runs the real bin/qcow4j (the shaded jar, in a new JVM), as users do. */
    static Qemu.Result qcow4jProcess(Path dir, String... args) {
        return Qemu.run(dir, TIMEOUT, prepend(root().resolve("bin/qcow4j").toString(), args));
    }

    static Qemu.Result qemuImg(Path dir, String... args) {
        for (int attempt = 1; ; attempt++) {
            Qemu.Result r = Qemu.run(dir, TIMEOUT, prepend("qemu-img", args));
            // qemu times PBKDF2 by CPU time before it makes a LUKS header, and gives up on a busy
            // machine: try again (the command changed nothing)
            if (attempt == 5 || !r.stderr().contains("Unable to get accurate CPU usage")) {
                return r;
            }
        }
    }

    static Qemu.Result qemuIo(Path dir, String... args) {
        return Qemu.run(dir, TIMEOUT, prepend("qemu-io", args));
    }

    /** {@code qemu-img check --output=json} of a clean image. */
    static JsonNode checkJson(Path dir, String image) {
        Qemu.Result r = qemuImg(dir, "check", "--output=json", image);
        assertEquals(0, r.exitCode(), r.describe());
        return json(r.stdout());
    }

    static JsonNode json(String text) {
        try {
            return JSON.readTree(text);
        } catch (IOException e) {
            throw new AssertionError("not JSON:\n" + text, e);
        }
    }

    /** The info JSON without the fields that legitimately differ between two writers. */
    static JsonNode withoutAllocation(JsonNode info) {
        JsonNode copy = info.deepCopy();
        if (copy instanceof ObjectNode o) {
            o.remove("actual-size"); // host allocation: layout and holes are the writer's choice
        }
        return copy;
    }

    /** qemu-io output without its timing lines ("64 KiB, 1 ops; 00.00 sec (...)"), which vary per run. */
    static String withoutTiming(String ioOutput) {
        return ioOutput.lines().filter(l -> !l.matches(".*, \\d+ ops; .* sec \\(.*/sec and .* ops/sec\\)"))
                .collect(Collectors.joining("\n"));
    }

    /** Asserts a failure is exactly one line {@code qcow4j: <expected>} and nothing else. */
    static void assertOneLineError(Qemu.Result r, int exit, String expected) {
        assertEquals(exit, r.exitCode(), r.describe());
        assertEquals("qcow4j: " + expected + "\n", r.stderr(), r.describe());
        assertNoStackTrace(r);
    }

    static void assertNoStackTrace(Qemu.Result r) {
        assertFalse(r.stderr().contains("\tat ") || r.stderr().contains("Exception"), r.describe());
    }

    /** qemu's error text without its program prefix, several lines joined as we print them. */
    static String qemuMessage(Qemu.Result qemu) {
        return Arrays.stream(qemu.stderr().split("\n"))
                .map(l -> l.replaceFirst("^qemu-img: ", "").replaceFirst("^qemu-io: ", ""))
                .filter(l -> !l.isBlank())
                .collect(Collectors.joining(" "));
    }

    static Path mkdir(Path parent, String name) {
        try {
            return Files.createDirectories(parent.resolve(name));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static String[] prepend(String first, String... rest) {
        List<String> all = new ArrayList<>();
        all.add(first);
        all.addAll(List.of(rest));
        return all.toArray(String[]::new);
    }
}
