package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code qcow4j io} against qemu-io: what qcow4j writes, qemu-io reads back with its own
 * pattern check; the same command list on twin images prints the same (timing lines
 * aside) and exits the same; failures show up as qemu-io shows them.
 */
class IoIT {
    @TempDir
    Path tmp;

    private static final List<String> WRITES = List.of(
            "write -P 0xab 0 64k",
            "write 64k 512",
            "write -P 0x11 1000 1536",
            "write -P 0x22 131000 70000",
            "write -z 256k 64k",
            "write -z -u 384k 64k",
            "write -P 0x33 512k 128k",
            "discard 512k 64k",
            "write -P 0x44 1M 4k",
            "write -z 1M 512",
            "flush",
            "write -P 0x55 1048575 1");

    private static final List<String> READS = List.of(
            "read -P 0xab 0 1000",
            "read -P 0x11 1000 1536",
            "read -P 0xab 2536 62000",
            "read -P 0xcd 64k 512",
            "read -P 0x22 131000 70000",
            "read -P 0 256k 128k",
            "read -P 0x33 576k 64k",
            "read -P 0 1M 512",
            "read -P 0x44 1049088 3584",
            "read -P 0x55 1048575 1");

    @ParameterizedTest
    @ValueSource(strings = {"", "compat=0.10", "cluster_size=4k", "extended_l2=on", "refcount_bits=1",
        "cluster_size=512", "lazy_refcounts=on"})
    void qemuIoReadsWhatQcow4jWrote(String options) {
        List<String> create = new ArrayList<>(List.of("create", "-q", "-f", "qcow2"));
        if (!options.isEmpty()) {
            create.addAll(List.of("-o", options));
        }
        create.addAll(List.of("t.qcow2", "2M"));
        qemuImg(tmp, create.toArray(String[]::new)).assertOk();
        Qemu.Result w = qcow4j(tmp, ioArgs(WRITES, "t.qcow2"));
        assertEquals(0, w.exitCode(), w.describe());
        Qemu.Result r = qemuIo(tmp, qemuIoArgs(READS, "t.qcow2"));
        assertEquals(0, r.exitCode(), r.describe());
        assertFalse(r.stdout().contains("Pattern verification failed"), r.describe());
        assertEquals(0, qemuImg(tmp, "check", "t.qcow2").exitCode());
        // and qcow4j's own reads agree
        Qemu.Result own = qcow4j(tmp, ioArgs(READS, "-r", "t.qcow2"));
        assertEquals(0, own.exitCode(), own.describe());
    }

    /** The same commands on twins made by qemu-img: same stdout without timings, same stderr, same exit. */
    @Test
    void sameOutputAsQemuIo() {
        List<String> cmds = new ArrayList<>(WRITES);
        cmds.addAll(READS);
        cmds.addAll(List.of(
                "read -P 0x11 0 4k",           // mismatch: reported, exit 1 at the end, next command runs
                "read -v 990 40",
                "read -v -P 0 0 17",
                "read -q -P 0xab 0 512",
                "write -q 0 512",
                "read 2M 1",                   // past the end
                "write 2047k 2k",
                "discard 2M 512",
                "read 0 0",
                "read 1.5k 1k",
                "read abc 5",
                "read 0 1x",
                "write -P 300 0 1",
                "write -P 0x1ff 0 1",
                "write -P -1 0 1",
                "write -u 0 64k",
                "write -z -P 1 0 1",
                "write -P 010 0 1",
                "read -P 8 0 1",
                "nosuchcommand",
                "read",
                "discard 0",
                "flush 1",
                "read 0 5 -v"));
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "q.qcow2", "2M").assertOk();
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "j.qcow2", "2M").assertOk();
        Qemu.Result expected = qemuIo(tmp, qemuIoArgs(cmds, "q.qcow2"));
        Qemu.Result actual = qcow4j(tmp, ioArgs(cmds, "j.qcow2"));
        assertEquals(Cli.withoutTiming(expected.stdout()), Cli.withoutTiming(actual.stdout()), actual.describe());
        assertEquals(expected.stderr(), actual.stderr(), actual.describe());
        assertEquals(1, expected.exitCode());
        assertEquals(1, actual.exitCode());
        assertEquals(0, qemuImg(tmp, "compare", "q.qcow2", "j.qcow2").exitCode());
    }

    @Test
    void timingLineHasQemuIoShape() {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "t.qcow2", "1M").assertOk();
        Qemu.Result r = qcow4j(tmp, "io", "-c", "write 0 64k", "-c", "write 0 1536", "-c", "read 0 1", "t.qcow2")
                .assertOk();
        List<String> lines = r.stdout().lines().toList();
        assertEquals(6, lines.size(), r.describe());
        assertEquals("wrote 65536/65536 bytes at offset 0", lines.get(0));
        assertTrue(lines.get(1).matches("64 KiB, 1 ops; \\d\\d\\.\\d\\d sec \\([0-9.]+ [KMGT]?i?B(ytes)?/sec"
                + " and [0-9]+\\.\\d{4} ops/sec\\)"), lines.get(1));
        assertTrue(lines.get(3).startsWith("1.500 KiB, 1 ops; "), lines.get(3));
        assertTrue(lines.get(5).startsWith("1 bytes, 1 ops; "), lines.get(5));
    }

    @Test
    void rawImages() {
        qemuImg(tmp, "create", "-q", "-f", "raw", "t.raw", "1M").assertOk();
        qcow4j(tmp, "io", "-f", "raw", "-c", "write -P 0x61 0 4k", "-c", "write -z 4k 4k", "-c", "discard 8k 4k",
                "t.raw").assertOk();
        Qemu.Result r = qemuIo(tmp, "-f", "raw", "-c", "read -P 0x61 0 4k", "-c", "read -P 0 4k 1020k", "t.raw");
        assertEquals(0, r.exitCode(), r.describe());
        assertFalse(r.stdout().contains("Pattern verification failed"), r.describe());
    }

    @Test
    void compressedWrites() {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "t.qcow2", "1M").assertOk();
        Qemu.Result w = qcow4j(tmp, "io", "-c", "write -c -P 0x77 0 64k", "-c", "write -c 64k 128k",
                "-c", "write -c 0 512", "t.qcow2");
        assertEquals(1, w.exitCode(), w.describe());
        assertTrue(w.stdout().contains("write failed: Invalid argument"), w.describe());
        assertEquals(0, qemuImg(tmp, "check", "t.qcow2").exitCode());
        assertEquals(3, Cli.checkJson(tmp, "t.qcow2").get("compressed-clusters").asInt());
        Qemu.Result r = qemuIo(tmp, "-c", "read -P 0x77 0 64k", "-c", "read -P 0xcd 64k 128k", "t.qcow2");
        assertFalse(r.stdout().contains("Pattern verification failed"), r.describe());
    }

    @Test
    void readOnlyRefusesWrites() {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "t.qcow2", "1M").assertOk();
        Qemu.Result r = qcow4j(tmp, "io", "-r", "-c", "write 0 1", "-c", "discard 0 1", "-c", "read 0 1", "t.qcow2");
        assertEquals(1, r.exitCode(), r.describe());
        assertEquals("qcow4j: Block node is read-only\nqcow4j: Block node is read-only\n", r.stderr());
        assertTrue(r.stdout().startsWith("read 1/1 bytes at offset 0\n"), r.describe());
    }

    @Test
    void commandsFromStdinWithoutDashC() throws Exception {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "t.qcow2", "1M").assertOk();
        Path script = tmp.resolve("cmds.txt");
        java.nio.file.Files.writeString(script, "write -P 0x42 0 4k\nread -P 0x42 0 4k\nquit\nwrite 8k 4k\n");
        Qemu.Result r = Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "sh", "-c",
                Cli.root().resolve("bin/qcow4j") + " io t.qcow2 < cmds.txt");
        assertEquals(0, r.exitCode(), r.describe());
        Qemu.Result check = qemuIo(tmp, "-c", "read -P 0x42 0 4k", "-c", "read -P 0 4k 8k", "t.qcow2");
        assertFalse(check.stdout().contains("Pattern verification failed"), check.describe());
    }

    /**
     * Zero writes map as qemu-io's (issue 16, item 6, where rebase zero-filled data): a whole
     * cluster gets a zero flag even where no L2 table exists yet, and a cluster (subcluster)
     * covered only in part becomes a zero one when it maps no data and the rest of it reads
     * as zeros already; otherwise zero data is written. A v2 image without a backing file
     * unmaps instead.
     */
    @ParameterizedTest
    @ValueSource(strings = {"extended_l2=off", "extended_l2=on", "extended_l2=off,backing", "extended_l2=on,backing",
        "compat=0.10", "compat=0.10,backing"})
    void zeroWritesMapAsQemuIos(String variant) {
        Twins t = Twins.in(tmp, "zero");
        t.img("create", "-q", "-f", "qcow2", "b", "1M").io("b", "write -P 1 0 512k", "write -P 0 600k 64k");
        String ext = variant.split(",")[0];
        if (variant.endsWith("backing")) {
            t.img("create", "-q", "-f", "qcow2", "-o", ext, "-b", "b", "-F", "qcow2", "t", "4M");
        } else {
            t.img("create", "-q", "-f", "qcow2", "-o", ext, "t", "4M");
        }
        List<String> cmds = List.of("write -z 1M 64k", "write -z 3M 4k", "write -z 500k 40k", "write -z 590k 4k",
                "write -z 700k 3k", "write -P 5 2M 1k", "write -z 2052k 1k", "write -z 2047k 2k", "write -P 6 1200k 4k",
                "write -z 1202k 1k", "write -z 3500k 1000");
        qemuIo(t.theirs, qemuIoArgs(cmds, "t")).assertOk();
        qcow4j(t.ours, ioArgs(cmds, "t")).assertOk();
        t.assertSameImages("t");
    }

    /** "io -c C1 -c C2 ... TAIL" for qcow4j. */
    static String[] ioArgs(List<String> commands, String... tail) {
        return Cli.prepend("io", qemuIoArgs(commands, tail));
    }

    /** "-c C1 -c C2 ... TAIL" for qemu-io. */
    static String[] qemuIoArgs(List<String> commands, String... tail) {
        List<String> args = new ArrayList<>();
        for (String c : commands) {
            args.add("-c");
            args.add(c);
        }
        args.addAll(List.of(tail));
        return args.toArray(String[]::new);
    }
}
