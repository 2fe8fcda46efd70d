package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * convert's options beyond the plain copy (-S, -n, --target-is-zero, -B/-F, -o backing_file,
 * -l, several sources, -C, -m, -W, -t, -T) against qemu-img convert on twin directories:
 * the same output, exit code and resulting image (contents, {@code map --output=json},
 * {@code info --output=json} without the host allocation, {@code check}).
 */
class ConvertOptionsIT {
    @TempDir
    static Path tmp;
    static Path theirs;
    static Path ours;

    @BeforeAll
    static void images() {
        theirs = Cli.mkdir(tmp, "theirs");
        ours = Cli.mkdir(tmp, "ours");
        for (Path d : List.of(theirs, ours)) {
            img(d, "create", "-q", "-f", "qcow2", "base.qcow2", "4M");
            io(d, "base.qcow2", "write -P 1 0 4M");
            img(d, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
            io(d, "top.qcow2", "write -P 2 1M 64k", "write -z 2M 64k", "write -P 0 3M 4k");
            img(d, "snapshot", "-c", "snap", "top.qcow2");
            io(d, "top.qcow2", "write -P 5 0 64k");
            img(d, "create", "-q", "-f", "qcow2", "nobacking.qcow2", "1M");
            io(d, "nobacking.qcow2", "write -P 7 64k 4k");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "-O qcow2 -S 0 top.qcow2 OUT",
        "-S 0 top.qcow2 OUT",
        "-S 512 top.qcow2 OUT",
        "-O qcow2 -S 64k top.qcow2 OUT",
        "-O qcow2 -B base.qcow2 -F qcow2 top.qcow2 OUT",
        "-O qcow2 -o backing_file=base.qcow2,backing_fmt=qcow2 top.qcow2 OUT",
        "-O qcow2 -B base.qcow2 -F qcow2 -o backing_file=other.qcow2 top.qcow2 OUT",
        "-O qcow2 -S 0 -B base.qcow2 -F qcow2 top.qcow2 OUT",
        "-O qcow2 -c -B base.qcow2 -F qcow2 top.qcow2 OUT",
        "-O qcow2 -B base.qcow2 -F qcow2 nobacking.qcow2 OUT",
        "base.qcow2 top.qcow2 nobacking.qcow2 OUT",
        "-O qcow2 base.qcow2 nobacking.qcow2 OUT",
        "-O qcow2 -l snap top.qcow2 OUT",
        "-l snapshot.id=1 top.qcow2 OUT",
        "-O qcow2 -o size=1M -m 16 -t unsafe -T writeback top.qcow2 OUT",
        "-W -m 4 top.qcow2 OUT", // out of order: a qcow2 layout would be qemu-img's schedule
        "-C top.qcow2 OUT",
        "-S 3 top.qcow2 OUT", "-S 1G top.qcow2 OUT", "-S abc top.qcow2 OUT", "-m 0 top.qcow2 OUT",
        "-m abc top.qcow2 OUT", "-C -c -O qcow2 top.qcow2 OUT", "-C -S 4k top.qcow2 OUT",
        "--target-is-zero top.qcow2 OUT", "-n -o cluster_size=4k top.qcow2 OUT", "-n top.qcow2 nosuch.qcow2",
        "-B base.qcow2 top.qcow2 OUT", "-F qcow2 top.qcow2 OUT", "-O qcow2 -B base.qcow2 top.qcow2 OUT",
        "-O qcow2 -o backing_file=base.qcow2 top.qcow2 OUT", "-O qcow2 -F qcow2 top.qcow2 OUT",
        "-O qcow2 -B base.qcow2 -F qcow2 base.qcow2 top.qcow2 OUT", "-O qcow2 --bitmaps base.qcow2 top.qcow2 OUT",
        "-l nosuch top.qcow2 OUT", "-l snap base.qcow2 top.qcow2 OUT", "-l snapshot.foo=1 top.qcow2 OUT",
        "-T foo top.qcow2 OUT", "-t foo top.qcow2 OUT", "top.qcow2",
    })
    void sameAsQemuImg(String line) throws IOException {
        String[] args = Cli.prepend("convert", line.replace("OUT", "out.img").split(" "));
        Cli.assertSameOutput(Cli.qemuImg(theirs, args), Cli.dropIn(ours, args), line);
        assertSameTarget(line);
    }

    /** -n into an existing image full of other data: zeros written where the source reads zeros, unless told. */
    @ParameterizedTest
    @ValueSource(strings = {
        "-n -O qcow2 top.qcow2 OUT",
        "-n --target-is-zero -O qcow2 top.qcow2 OUT",
        "-n -O qcow2 -B base.qcow2 -F qcow2 top.qcow2 OUT",
        "-n -O qcow2 -S 0 top.qcow2 OUT",
        "-n -O qcow2 -l snap top.qcow2 OUT",
        "-n -O qcow2 base.qcow2 nobacking.qcow2 OUT",
        "-n -f raw -O raw nobacking.qcow2 OUT",
    })
    void existingTarget(String line) throws IOException {
        String fmt = line.contains("-O raw") ? "raw" : "qcow2";
        for (Path d : List.of(theirs, ours)) {
            img(d, "create", "-q", "-f", fmt, "out.img", "8M");
            Qemu.run(d, Qemu.DEFAULT_TIMEOUT, "qemu-io", "-f", fmt, "-c", "write -P 9 0 8M", "out.img").assertOk();
        }
        String[] args = Cli.prepend("convert", line.replace("OUT", "out.img").split(" "));
        Cli.assertSameOutput(Cli.qemuImg(theirs, args), Cli.dropIn(ours, args), line);
        assertSameTarget(line);
    }

    @Test
    void existingTargetTooSmall() throws IOException {
        for (Path d : List.of(theirs, ours)) {
            img(d, "create", "-q", "-f", "qcow2", "out.img", "1M");
        }
        String[] args = {"convert", "-n", "-O", "qcow2", "top.qcow2", "out.img"};
        Cli.assertSameOutput(Cli.qemuImg(theirs, args), Cli.dropIn(ours, args), "too small");
        assertSameTarget("too small");
    }

    /** Where qcow4j refuses what qemu-img does: -n -O raw over a qcow2 image would destroy it. */
    @Test
    void rawOverQcow2IsRefused() throws IOException {
        img(ours, "create", "-q", "-f", "qcow2", "out.img", "8M");
        byte[] before = Files.readAllBytes(ours.resolve("out.img"));
        Qemu.Result r = Cli.qcow4j(ours, "convert", "-n", "top.qcow2", "out.img");
        Cli.assertOneLineError(r, 1, "Could not open 'out.img': it is a qcow2 image: -n with -O raw would overwrite"
                + " its metadata (use -O qcow2)");
        assertTrue(java.util.Arrays.equals(before, Files.readAllBytes(ours.resolve("out.img"))));
        Files.delete(ours.resolve("out.img"));
    }

    private static void assertSameTarget(String context) throws IOException {
        Path a = theirs.resolve("out.img");
        Path b = ours.resolve("out.img");
        assertEquals(Files.exists(a), Files.exists(b), context);
        if (Files.exists(a)) {
            Qemu.Result cmp = Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "qemu-img", "compare", a.toString(), b.toString());
            assertEquals(0, cmp.exitCode(), context + "\n" + cmp.describe());
            if (Cli.qemuImg(ours, "info", "out.img").stdout().contains("file format: qcow2")) {
                // a qcow2 image's layout is the format's; a raw file's holes are the writer's choice
                assertEquals(Cli.qemuImg(theirs, "map", "--output=json", "out.img").stdout(),
                        Cli.qemuImg(ours, "map", "--output=json", "out.img").stdout(), context);
            }
            assertEquals(Cli.withoutAllocation(Cli.json(Cli.qemuImg(theirs, "info", "--output=json", "out.img").stdout())),
                    Cli.withoutAllocation(Cli.json(Cli.qemuImg(ours, "info", "--output=json", "out.img").stdout())), context);
            Qemu.Result check = Cli.qemuImg(ours, "check", "out.img");
            assertFalse(check.exitCode() != 0 && check.exitCode() != 63, context + check.describe());
            Files.delete(a);
            Files.delete(b);
        }
    }

    private static void img(Path d, String... args) {
        Cli.qemuImg(d, args).assertOk();
    }

    private static void io(Path d, String image, String... commands) {
        List<String> argv = new java.util.ArrayList<>(List.of("qemu-io"));
        for (String c : commands) {
            argv.addAll(List.of("-c", c));
        }
        argv.add(image);
        Qemu.run(d, Qemu.DEFAULT_TIMEOUT, argv.toArray(String[]::new)).assertOk();
    }
}
