package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * One command line run through qemu-img and through qcow4j in drop-in mode on twin
 * directories, copies of one setup made by qemu-img and qemu-io: stdout, stderr and exit code must be
 * the same, and so must the images the command leaves (data, allocation as qemu-img map
 * shows it, qemu-img info, a clean check), and if asked the files' allocated sizes.
 */
final class DropInTwins {
    private final Path parent;
    private int n;
    /** Each setup run once, in a directory of its own, then copied into the twins. */
    private final java.util.Map<List<String>, Path> templates = new java.util.HashMap<>();
    /** Whether the files' allocated sizes must match too (preallocation); qcow2 layouts may differ otherwise. */
    boolean compareAllocation;

    DropInTwins(Path parent) {
        this.parent = parent;
    }

    /**
     * Runs {@code setup} (qemu-img argument lines; "io IMAGE CMD|CMD" for qemu-io -f qcow2;
     * "qemu-io|ARG|ARG..." for qemu-io with any arguments)
     * in both directories, then {@code args}; afterwards compares every image of the
     * directories. Returns qemu-img's result.
     */
    Qemu.Result same(List<String> setup, String... args) {
        return same(setup, d -> { }, args);
    }

    /** As {@link #same(List, String...)}, {@code then} run on each directory after the setup commands. */
    Qemu.Result same(List<String> setup, java.util.function.Consumer<Path> then, String... args) {
        Twins t = Twins.in(parent, "run" + n++);
        Path template = templates.computeIfAbsent(setup, k -> {
            Path d = Cli.mkdir(parent, "setup" + templates.size());
            for (String c : setup) {
                run(d, c);
            }
            return d;
        });
        for (Path d : List.of(t.ours, t.theirs)) {
            // both from one setup: byte-identical twins (snapshot dates included)
            files(template).forEach((name, content) -> writeSparse(d.resolve(name), content));
            then.accept(d);
        }
        TreeMap<String, byte[]> before = files(t.ours);
        TreeMap<String, byte[]> theirsBefore = files(t.theirs);
        Qemu.Result theirs = qemuImg(t.theirs, args);
        Qemu.Result ours = Cli.dropIn(t.ours, args);
        String what = String.join(" ", args);
        Cli.assertSameOutput(theirs, ours, what);
        if (theirs.exitCode() != 0) {
            TreeMap<String, byte[]> after = files(t.ours);
            // what qemu-img leaves too (a convert target made before the copy failed) may be there
            assertEquals(files(t.theirs).keySet(), after.keySet(), what + ": files after a failure");
            before.forEach((k, v) -> assertArrayEquals(v, after.get(k), what + ": " + k + " changed by a failure"));
            return theirs;
        }
        TreeMap<String, byte[]> theirsAfter = files(t.theirs);
        TreeMap<String, byte[]> oursAfter = files(t.ours);
        assertEquals(theirsAfter.keySet(), oursAfter.keySet(), what + ": files");
        for (String name : theirsAfter.keySet()) {
            boolean untouched = java.util.Arrays.equals(before.get(name), oursAfter.get(name))
                    && java.util.Arrays.equals(theirsBefore.get(name), theirsAfter.get(name));
            if (!untouched) { // a file neither side changed is as alike as the setup made it
                assertSameFile(t, name, what);
            }
        }
        return theirs;
    }

    private void assertSameFile(Twins t, String name, String what) {
        Path o = t.ours.resolve(name);
        Path q = t.theirs.resolve(name);
        String format = Qemu.run(t.theirs, Qemu.DEFAULT_TIMEOUT, "qemu-img", "info", "--output=json", "-U", name)
                .stdout().contains("\"format\": \"qcow2\"") ? "qcow2" : "raw";
        if (format.equals("raw")) {
            assertArrayEquals(bytes(q), bytes(o), what + ": " + name);
        } else if (Qemu.run(t.theirs, Qemu.DEFAULT_TIMEOUT, "qemu-img", "compare", "-U", name, o.toString()).exitCode() == 4) {
            // a damaged image qemu-img cannot read whole (the test made it so): byte for byte
            assertArrayEquals(bytes(q), bytes(o), what + ": " + name);
        } else {
            assertTrue(Qemu.compare(q, o), what + ": " + name + " data");
            assertEquals(CommitIT.mapWithoutOffsets(t.theirs, name), CommitIT.mapWithoutOffsets(t.ours, name),
                    what + ": " + name + " map");
            assertEquals(undated(OverlayIT.info(t.theirs, name)), undated(OverlayIT.info(t.ours, name)),
                    what + ": " + name + " info");
            Cli.checkJson(t.ours, name);
        }
        if (compareAllocation) {
            // in 64 KiB units, two apart at most: qcow2 metadata may be laid out (and written) apart
            long a = allocated(q);
            long b = allocated(o);
            assertTrue(Math.abs(a - b) <= 2, what + ": " + name + " allocated 64 KiB blocks: qemu-img " + a + ", ours " + b);
        }
    }

    /** info without allocation figures and without the snapshots' dates (taken apart on the two sides). */
    private static com.fasterxml.jackson.databind.JsonNode undated(com.fasterxml.jackson.databind.JsonNode info) {
        com.fasterxml.jackson.databind.JsonNode j = Cli.withoutAllocation(info);
        for (com.fasterxml.jackson.databind.JsonNode snap : j.path("snapshots")) {
            ((com.fasterxml.jackson.databind.node.ObjectNode) snap).remove(List.of("date-sec", "date-nsec"));
        }
        return j;
    }

    /** Bytes the file system gave the file, to 64 KiB (the qcow2 header may be written apart). */
    private static long allocated(Path p) {
        try {
            return ((Number) Files.getAttribute(p, "unix:size")).longValue() == 0 ? 0
                    : Long.parseLong(Qemu.run(p.getParent(), Qemu.DEFAULT_TIMEOUT, "du", "-B", "65536", p.getFileName()
                            .toString()).stdout().split("\\s")[0]);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The copy keeps the holes (4 KiB blocks of zeros) a copy through the file system would fill. */
    private static void writeSparse(Path p, byte[] content) {
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(p.toFile(), "rw")) {
            int block = 4096;
            for (int at = 0; at < content.length; at += block) {
                int len = Math.min(block, content.length - at);
                boolean zero = true;
                for (int i = at; i < at + len && zero; i++) {
                    zero = content[i] == 0;
                }
                if (!zero) {
                    f.seek(at);
                    f.write(content, at, len);
                }
            }
            f.setLength(content.length);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static void run(Path dir, String command) {
        if (command.startsWith("qemu-io|")) {
            // qemu-io with its arguments as given, '|' between them (encrypted images: --object, --image-opts)
            qemuIo(dir, command.substring(8).split("\\|")).assertOk();
        } else if (command.startsWith("io ")) {
            String[] parts = command.substring(3).split(" ", 2);
            List<String> args = new ArrayList<>(List.of("-f", "qcow2"));
            for (String io : parts[1].split("\\|")) {
                args.add("-c");
                args.add(io);
            }
            args.add(parts[0]);
            qemuIo(dir, args.toArray(String[]::new)).assertOk();
        } else {
            qemuImg(dir, command.split(" ")).assertOk();
        }
    }

    private static TreeMap<String, byte[]> files(Path dir) {
        TreeMap<String, byte[]> m = new TreeMap<>();
        try (Stream<Path> s = Files.list(dir)) {
            for (Path f : s.filter(Files::isRegularFile).toList()) {
                m.put(f.getFileName().toString(), bytes(f));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return m;
    }

    private static byte[] bytes(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
