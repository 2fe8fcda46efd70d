package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code amend} against qemu-img amend: each command line runs through qemu-img on one twin
 * and through qcow4j in drop-in mode on the other (copies of one setup made by qemu-img and
 * qemu-io); stdout (with {@code -p} progress), stderr and exit code must match, and after a
 * success the images must hold the same data, allocation, header fields and check clean.
 * After a refusal ours is byte-identical to before (qemu-img may have done earlier steps).
 */
class AmendIT {
    @TempDir
    static Path tmp;
    private static final Map<String, Path> SETUPS = new LinkedHashMap<>();
    private static int n;

    @BeforeAll
    static void setups() {
        setup("plain", "create -q -f qcow2 -o cluster_size=4k a.qcow2 10M",
                "io a.qcow2 write -P 1 0 1M|write -z 2M 1M|write -P 2 4M 64k|write -z 4M 64k|write -c -P 3 5M 64k");
        setup("backed", "create -q -f qcow2 -o cluster_size=4k base.qcow2 10M", "io base.qcow2 write -P 7 0 10M",
                "create -q -f qcow2 -o cluster_size=4k -b base.qcow2 -F qcow2 a.qcow2 12M",
                "io a.qcow2 write -P 1 0 1M|write -z 2M 1M|write -P 2 4M 64k|write -z 4M 64k|discard 6M 64k");
        setup("v2snap", "create -q -f qcow2 -o compat=0.10,cluster_size=4k a.qcow2 10M", "io a.qcow2 write -P 1 0 1M",
                "snapshot -c s1 a.qcow2", "io a.qcow2 write -P 2 64k 64k");
        setup("snap", "create -q -f qcow2 -o cluster_size=4k a.qcow2 10M",
                "io a.qcow2 write -P 1 0 1M|write -z 2M 64k", "snapshot -c s1 a.qcow2",
                "io a.qcow2 write -z 4M 64k|write -P 3 2M 64k|write -P 4 512k 4k");
        setup("bitmap", "create -q -f qcow2 -o cluster_size=4k a.qcow2 10M", "bitmap --add a.qcow2 b1", "io a.qcow2 write -P 1 0 1M");
        setup("extl2", "create -q -f qcow2 -o extended_l2=on,cluster_size=16k a.qcow2 10M", "io a.qcow2 write -P 1 0 1M|write -z 2M 64k");
        setup("zstd", "create -q -f qcow2 -o compression_type=zstd,cluster_size=4k a.qcow2 10M", "io a.qcow2 write -P 1 0 64k|write -z 1M 64k");
        setup("zstdc", "create -q -f qcow2 -o compression_type=zstd,cluster_size=4k a.qcow2 10M", "io a.qcow2 write -c -P 1 0 64k");
        setup("datafile", "create -q -f qcow2 -o data_file=d.raw,data_file_raw=on,cluster_size=4k a.qcow2 10M", "io a.qcow2 write -P 1 0 1M");
        setup("lazy", "create -q -f qcow2 -o lazy_refcounts=on,refcount_bits=8,cluster_size=4k a.qcow2 10M", "io a.qcow2 write -P 1 0 1M");
        // 64 KiB clusters: qemu-img takes a second or two to walk their refcount table once
        setup("plain64k", "create -q -f qcow2 a.qcow2 10M", "io a.qcow2 write -P 1 0 1M|write -z 2M 1M|write -z 4M 64k");
        setup("raw", "create -q -f raw r.raw 1M");
    }

    /** Runs qemu-img (or "io" for qemu-io -f qcow2 with '|'-separated commands) in a new template directory. */
    private static void setup(String name, String... commands) {
        Path dir = Cli.mkdir(tmp, "setup-" + name);
        for (String c : commands) {
            if (c.startsWith("io ")) {
                String[] parts = c.substring(3).split(" ", 2);
                List<String> args = new ArrayList<>(List.of("-f", "qcow2"));
                for (String io : parts[1].split("\\|")) {
                    args.add("-c");
                    args.add(io);
                }
                args.add(parts[0]);
                qemuIo(dir, args.toArray(String[]::new)).assertOk();
            } else {
                qemuImg(dir, c.split(" ")).assertOk();
            }
        }
        SETUPS.put(name, dir);
    }

    private static Twins twins(String setup) {
        Twins t = Twins.in(tmp, setup + "-" + n++);
        try (Stream<Path> files = Files.list(SETUPS.get(setup))) {
            for (Path f : files.toList()) {
                Files.copy(f, t.ours.resolve(f.getFileName()));
                Files.copy(f, t.theirs.resolve(f.getFileName()));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return t;
    }

    /** One command line on fresh twins of {@code setup}; returns qemu-img's exit code. */
    private static int same(String setup, String image, String... args) {
        Twins t = twins(setup);
        byte[] before = bytes(t.ours.resolve(image));
        Qemu.Result theirs = qemuImg(t.theirs, args);
        Qemu.Result ours = Cli.dropIn(t.ours, args);
        String what = setup + ": " + String.join(" ", args);
        Cli.assertSameOutput(theirs, ours, what);
        if (theirs.exitCode() != 0) {
            assertArrayEquals(before, bytes(t.ours.resolve(image)), what + ": a refused amend changed the file");
            return theirs.exitCode();
        }
        if (image.endsWith(".qcow2")) {
            assertSameImage(t, image, what);
        }
        return 0;
    }

    /** Same data, allocation, info (format-specific fields included) and a clean check. */
    private static void assertSameImage(Twins t, String image, String what) {
        if (Files.exists(t.ours.resolve("d.raw"))) {
            assertArrayEquals(content(t.theirs, image), content(t.ours, image), what + ": data");
        } else {
            assertTrue(Qemu.compare(t.theirs.resolve(image), t.ours.resolve(image)), what + ": data");
        }
        for (Path d : List.of(t.ours, t.theirs)) {
            MapIT.nonSparse(d.resolve(image));
        }
        assertEquals(CommitIT.mapWithoutOffsets(t.theirs, image), CommitIT.mapWithoutOffsets(t.ours, image), what + ": map");
        assertEquals(info(t.theirs, image), info(t.ours, image), what + ": info");
        Cli.checkJson(t.ours, image);
    }

    private static JsonNode info(Path dir, String image) {
        ObjectNode o = (ObjectNode) Cli.withoutAllocation(OverlayIT.info(dir, image));
        o.remove("dirty-flag");
        return o;
    }

    /** The disk as raw bytes, read by qemu-img in the image's own directory (data files resolve there). */
    static byte[] content(Path dir, String image) {
        qemuImg(dir, "convert", "-O", "raw", image, "content.raw").assertOk();
        byte[] b = bytes(dir.resolve("content.raw"));
        dir.resolve("content.raw").toFile().delete();
        return b;
    }

    private static byte[] bytes(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String[] amend(String... args) {
        return Cli.prepend("amend", args);
    }

    @Test
    void compatBothWays() {
        for (String setup : List.of("plain", "backed", "v2snap", "extl2", "zstd", "zstdc", "lazy", "datafile")) {
            String compat = setup.equals("v2snap") ? "compat=1.1" : "compat=0.10";
            same(setup, "a.qcow2", amend("-p", "-o", compat, "a.qcow2"));
        }
        same("plain", "a.qcow2", amend("-o", "compat=v2", "a.qcow2"));
        same("v2snap", "a.qcow2", amend("-o", "compat=v3", "a.qcow2"));
        same("plain", "a.qcow2", amend("-p", "-o", "compat=1.1", "a.qcow2"));
        // the upgrade rewrites the v2 snapshot table; the downgrade needs every snapshot at the disk's size
        same("v2snap", "a.qcow2", amend("-o", "compat=1.1,lazy_refcounts=on,refcount_bits=2", "a.qcow2"));
        assertEquals(1, same("v2snap", "a.qcow2", amend("-p", "-o", "compat=1.1,size=20M,backing_file=x", "a.qcow2")));
        assertEquals(1, same("snap", "a.qcow2", amend("-o", "size=20M,compat=0.10", "a.qcow2")));
    }

    @Test
    void everyRefcountWidth() {
        for (int bits = 1; bits <= 64; bits *= 2) {
            same(bits == 2 || bits == 64 ? "snap" : "plain", "a.qcow2", amend("-p", "-o", "refcount_bits=" + bits, "a.qcow2"));
        }
        same("plain64k", "a.qcow2", amend("-p", "-o", "refcount_bits=8,compat=0.10,refcount_bits=16", "a.qcow2"));
        same("lazy", "a.qcow2", amend("-p", "-o", "refcount_bits=1,compat=0.10", "a.qcow2"));
        same("lazy", "a.qcow2", amend("-p", "-o", "refcount_bits=16,compat=0.10", "a.qcow2"));
        same("v2snap", "a.qcow2", amend("-p", "-o", "refcount_bits=4,compat=1.1", "a.qcow2"));
    }

    @Test
    void otherOptions() {
        for (String o : List.of("lazy_refcounts=on", "size=20M", "size=5M", "size=0", "compat=1.1,size=30M,lazy_refcounts=on")) {
            same("plain", "a.qcow2", amend("-p", "-o", o, "a.qcow2"));
        }
        same("lazy", "a.qcow2", amend("-o", "nolazy_refcounts", "a.qcow2"));
        for (String o : List.of("size=20M", "size=6M", "backing_file=base.qcow2,backing_fmt=qcow2")) {
            same("backed", "a.qcow2", amend("-p", "-o", o, "a.qcow2"));
        }
        for (String o : List.of("data_file_raw=off", "data_file=d.raw,refcount_bits=32,size=20M")) {
            same("datafile", "a.qcow2", amend("-o", o, "a.qcow2"));
        }
        same("bitmap", "a.qcow2", amend("-o", "size=20M,refcount_bits=8", "a.qcow2"));
    }

    @Test
    void refusalsInQemusWordsAndOrder() {
        List<String[]> lines = List.of(
                new String[] {"plain", "compat=foo"}, new String[] {"plain", "compat="},
                new String[] {"plain", "refcount_bits=3"}, new String[] {"plain", "refcount_bits=128,compat=foo"},
                new String[] {"plain", "refcount_bits=abc"},
                new String[] {"plain", "lazy_refcounts=maybe"}, new String[] {"plain", "size=abc,foo=1"},
                new String[] {"plain", "size=1000"}, new String[] {"plain", "cluster_size=4k"},
                new String[] {"plain", "cluster_size=4k,foo=1"}, new String[] {"plain", "preallocation=full"},
                new String[] {"plain", "encrypt.format=luks"}, new String[] {"plain", "encryption=on"},
                new String[] {"plain", "nocow=on"}, new String[] {"plain", "compat=0.10,encrypt.keyslot=0"},
                new String[] {"plain", "backing_file=x"}, new String[] {"plain", "backing_fmt=raw"},
                new String[] {"plain", "data_file=x"}, new String[] {"plain", "data_file_raw=on"},
                new String[] {"plain", "lazy_refcounts=on,compat=0.10"}, new String[] {"plain", "backing_file=x,refcount_bits=8"},
                new String[] {"plain", "compat=0.10,refcount_bits=8"}, new String[] {"plain", "data_file=x,backing_file=y"},
                new String[] {"backed", "backing_fmt=qcow2"}, new String[] {"backed", "backing_file=base.qcow2,backing_fmt=raw"},
                new String[] {"backed", "backing_file="},
                new String[] {"snap", "refcount_bits=1"},
                new String[] {"v2snap", "refcount_bits=8"}, new String[] {"v2snap", "size=20M"},
                new String[] {"v2snap", "compat=1.1,refcount_bits=8,lazy_refcounts=on,backing_file=y"},
                new String[] {"extl2", "compat=0.10"}, new String[] {"zstdc", "compat=0.10"},
                new String[] {"datafile", "compat=0.10"}, new String[] {"datafile", "refcount_bits=8,compat=0.10"});
        for (String[] l : lines) {
            assertEquals(1, same(l[0], "a.qcow2", amend("-p", "-o", l[1], "a.qcow2")), l[0] + " " + l[1]);
        }
    }

    @Test
    void commandLinesAsQemuImg() {
        for (String[] a : new String[][] {{"a.qcow2"}, {"-o", "compat=0.10"}, {"-o", "compat=0.10", "a.qcow2", "b.qcow2"},
            {"-o", "help", "a.qcow2"}, {"-o", "compat=0.10,help", "a.qcow2"}, {"-o", "?", "a.qcow2"}, {"-f", "qcow2", "-o", "help"},
            {"-f", "raw", "-o", "help"}, {"-f", "vmdk", "-o", "help"}, {"-f", "foo", "-o", "help"}, {"-o", "help"},
            {"-p", "-o", "help", "a.qcow2"}, {"-o", "help", "nonexist.qcow2"}, {"-o", "size=1M", "nonexist.qcow2"},
            {"-f", "raw", "-o", "size=2M", "r.raw"}, {"-o", "size=2M", "r.raw"}, {"-o", "help", "r.raw"},
            {"-f", "foo", "-o", "size=2M", "a.qcow2"}, {"-x", "-o", "compat=1.1", "a.qcow2"}, {"-U", "-o", "compat=1.1", "a.qcow2"},
            {"-o", "", "a.qcow2"}, {"-o", ",", "a.qcow2"}, {"-o", "compat=0.10,", "a.qcow2"}, {"-o", "compat=1.1", "-o"},
            {"-t", "none", "-o", "compat=1.1", "a.qcow2"}, {"-t", "foo", "-o", "compat=1.1", "a.qcow2"},
            {"--force", "-o", "compat=1.1", "a.qcow2"}, {"--forc", "-o", "compat=0.10", "a.qcow2"},
            {"-o", "compat=0.10", "-o", "compat=1.1", "a.qcow2"}, {"-q", "-p", "-o", "compat=0.10", "a.qcow2"},
            {"--object", "secret,id=s,data=x", "-o", "compat=0.10", "a.qcow2"}, {"--object", "foo", "-o", "compat=0.10", "a.qcow2"},
            {"-o", "help", "-t", "foo", "-f", "qcow2"}}) {
            String image = a.length > 0 && a[a.length - 1].equals("r.raw") ? "r.raw" : "a.qcow2";
            same(image.equals("r.raw") ? "raw" : "plain", image, amend(a));
        }
    }

    /** Where QEMU loses data or leaks, qcow4j does not (the command's output is still qemu-img's). */
    @Test
    void downgradeKeepsSnapshotsAndFreesBitmaps() {
        Twins t = twins("snap");
        qemuIo(t.ours, "-f", "qcow2", "-c", "write -z 0 64k", "a.qcow2").assertOk();
        Cli.dropIn(t.ours, "amend", "-o", "compat=0.10", "a.qcow2").assertOk();
        // the snapshot still reads what it held where the active disk was zeroed after it (QEMU writes
        // zeros into the shared cluster and so into the snapshot)
        qemuImg(t.ours, "convert", "-l", "s1", "-O", "raw", "a.qcow2", "s1.raw").assertOk();
        Qemu.run(t.ours, Qemu.DEFAULT_TIMEOUT, "qemu-io", "-f", "raw", "-c", "read -P 1 0 1M", "s1.raw").assertOk();
        qemuIo(t.ours, "-f", "qcow2", "-c", "read -P 0 0 64k", "-c", "read -P 4 512k 4k", "a.qcow2").assertOk();
        assertEquals("0.10", OverlayIT.info(t.ours, "a.qcow2").path("format-specific").path("data").path("compat").asText());
        Cli.checkJson(t.ours, "a.qcow2");

        Twins b = twins("bitmap");
        same("bitmap", "a.qcow2", amend("-o", "compat=0.10", "a.qcow2")); // qemu-img check of ours is clean
        Cli.dropIn(b.ours, amend("-o", "compat=0.10", "a.qcow2")).assertOk();
        Qemu.Result check = qemuImg(b.ours, "check", "a.qcow2");
        assertEquals(0, check.exitCode(), check.describe());
        assertFalse(check.stderr().contains("bitmaps"), check.describe());
        qemuImg(b.theirs, "amend", "-o", "compat=0.10", "a.qcow2").assertOk();
        assertEquals(3, qemuImg(b.theirs, "check", "a.qcow2").exitCode(), "qemu-img leaks the bitmap's clusters");
        assertArrayEquals(content(b.theirs, "a.qcow2"), content(b.ours, "a.qcow2"));
    }

    @Test
    void qcow4jModeErrorsOnOneLine() {
        Twins t = twins("plain");
        Qemu.Result theirs = qemuImg(t.theirs, "amend", "-o", "backing_file=x", "a.qcow2");
        assertEquals(2, theirs.stderr().lines().count(), theirs.describe());
        Cli.assertOneLineError(Cli.qcow4j(t.ours, "amend", "-o", "backing_file=x", "a.qcow2"), 1, Cli.qemuMessage(theirs));
        assertTrue(Cli.qcow4j(t.ours, "amend", "-o", "compat=0.10", "a.qcow2").assertOk().stderr().isEmpty());
    }
}
