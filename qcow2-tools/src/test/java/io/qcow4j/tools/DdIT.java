package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code dd} against qemu-img dd on twin directories: the same command line in each, the
 * same stdout, stderr (drop-in mode) and exit code, and the same resulting output image:
 * same contents ({@code qemu-img compare}), same {@code qemu-img check} report (qemu-img
 * writes every block, so the layout is the same too) and {@code info --output=json}.
 */
class DdIT {
    @TempDir
    static Path tmp;
    static Path theirs;
    static Path ours;

    @BeforeAll
    static void inputs() throws IOException {
        theirs = Cli.mkdir(tmp, "theirs");
        ours = Cli.mkdir(tmp, "ours");
        for (Path d : List.of(theirs, ours)) {
            Cli.qemuImg(d, "create", "-q", "-f", "qcow2", "base.qcow2", "6M").assertOk();
            Qemu.run(d, Qemu.DEFAULT_TIMEOUT, "qemu-io", "-c", "write -P 7 0 2M", "base.qcow2").assertOk();
            Cli.qemuImg(d, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "s.qcow2", "10M").assertOk();
            Qemu.run(d, Qemu.DEFAULT_TIMEOUT, "qemu-io", "-c", "write -P 1 1M 1M", "-c", "write -P 2 5M 100k",
                    "-c", "write -P 3 10239k 1k", "s.qcow2").assertOk();
            Files.write(d.resolve("odd.raw"), "0123456789abc".getBytes());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "if=s.qcow2 of=OUT",
        "-O qcow2 if=s.qcow2 of=OUT",
        "-O raw -f qcow2 if=s.qcow2 of=OUT bs=3000 count=5",
        "-O qcow2 if=s.qcow2 of=OUT bs=1M count=9 skip=1",   // qemu copies 8 blocks
        "if=s.qcow2 of=OUT bs=1M skip=20",                   // past the end: a message, exit 0, empty output
        "if=s.qcow2 of=OUT bs=1M skip=9 count=5",            // count first, then skip: past that end
        "if=s.qcow2 of=OUT bs=1M skip=10",
        "-O qcow2 if=s.qcow2 of=OUT bs=100 count=7",
        "if=s.qcow2 of=OUT bs=1G count=1",
        "if=s.qcow2 of=OUT bs=1k bs=2k count=1 skip=3",
        "if=s.qcow2 of=OUT count=1.5k",
        "if=s.qcow2 of=OUT bs=0x10 count=3 skip=1",
        "-U if=odd.raw of=OUT bs=5 skip=1",
        "-f raw if=s.qcow2 of=OUT",
        "if=nosuch.qcow2 of=OUT",
        "if=s.qcow2 of=OUT bs=0",
        "if=s.qcow2 of=OUT bs=8E",
        "if=s.qcow2 of=OUT bs=-1",
        "if=s.qcow2 of=OUT count=8E",
        "if=s.qcow2 of=OUT skip=abc",
        "bs=abc foo=1",
        "foo=1 bs=abc",
        "if=s.qcow2 of=OUT bs",
        "if=s.qcow2",
        "of=OUT",
        "-O foo if=s.qcow2 of=OUT",
        "-O null-co if=s.qcow2 of=OUT",
        "-f foo if=s.qcow2 of=OUT",
        "-o x if=s.qcow2 of=OUT",
        "--image-opts=x if=s.qcow2 of=OUT",
        "-O if=s.qcow2",
        "if=s.qcow2 of=s.qcow2",
        "if=s.qcow2 of=nodir/OUT",
    })
    void sameAsQemuImg(String line) throws IOException {
        String[] args = Cli.prepend("dd", line.replace("OUT", "out.img").split(" "));
        byte[] before = Files.readAllBytes(ours.resolve("s.qcow2"));
        Qemu.Result expected = Cli.qemuImg(theirs, args);
        Qemu.Result actual = Cli.dropIn(ours, args);
        Cli.assertSameOutput(expected, actual, line);
        assertEquals(Files.exists(theirs.resolve("out.img")), Files.exists(ours.resolve("out.img")), line);
        if (Files.exists(theirs.resolve("out.img"))) {
            assertSameImage(line);
        }
        assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(ours.resolve("s.qcow2"))), "input changed: " + line);
        Files.deleteIfExists(theirs.resolve("out.img"));
        Files.deleteIfExists(ours.resolve("out.img"));
    }

    /** An existing output is emptied and made anew (a raw file bigger than the new one, a qcow2 image). */
    @Test
    void existingOutputIsReplaced() throws IOException {
        for (String fmt : List.of("raw", "qcow2")) {
            for (Path d : List.of(theirs, ours)) {
                Cli.qemuImg(d, "create", "-q", "-f", fmt, "out.img", "64M").assertOk();
            }
            String[] args = {"dd", "-O", fmt, "if=s.qcow2", "of=out.img", "bs=64k", "count=20"};
            Cli.assertSameOutput(Cli.qemuImg(theirs, args), Cli.dropIn(ours, args), fmt);
            assertSameImage(fmt);
        }
    }

    /** Random bs/count/skip: the arithmetic of every combination, as qemu-img does it. */
    @Test
    void randomBlockArithmetic() throws IOException {
        long seed = 424242L + Long.getLong("qcow4j.seed", 0);
        Random r = new Random(seed);
        for (int i = 0; i < 12; i++) {
            List<String> args = new ArrayList<>(List.of("dd", "-O", r.nextBoolean() ? "qcow2" : "raw", "if=s.qcow2",
                    "of=out.img"));
            String[] sizes = {"1", "511", "512", "4096", "65536", "100000", "1M", "3M"};
            args.add("bs=" + sizes[r.nextInt(sizes.length)]);
            if (r.nextBoolean()) {
                args.add("count=" + r.nextInt(40));
            }
            if (r.nextBoolean()) {
                args.add("skip=" + r.nextInt(30));
            }
            if (args.contains("bs=1") && !args.stream().anyMatch(a -> a.startsWith("count="))) {
                args.add("count=70000"); // keep qemu-img's byte-by-byte copy short
            }
            String[] argv = args.toArray(String[]::new);
            String context = "seed " + seed + ": " + String.join(" ", argv);
            Cli.assertSameOutput(Cli.qemuImg(theirs, argv), Cli.dropIn(ours, argv), context);
            assertSameImage(context);
        }
    }

    private static void assertSameImage(String context) {
        Path a = theirs.resolve("out.img");
        Path b = ours.resolve("out.img");
        Qemu.Result cmp = Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "qemu-img", "compare", a.toString(), b.toString());
        assertEquals(0, cmp.exitCode(), context + "\n" + cmp.describe());
        Qemu.Result ca = Cli.qemuImg(theirs, "check", "--output=json", "out.img");
        Qemu.Result cb = Cli.qemuImg(ours, "check", "--output=json", "out.img");
        assertEquals(ca.stdout(), cb.stdout(), context);
        assertEquals(ca.exitCode(), cb.exitCode(), context);
        assertEquals(Cli.withoutAllocation(Cli.json(Cli.qemuImg(theirs, "info", "--output=json", "out.img").stdout())),
                Cli.withoutAllocation(Cli.json(Cli.qemuImg(ours, "info", "--output=json", "out.img").stdout())), context);
    }
}
