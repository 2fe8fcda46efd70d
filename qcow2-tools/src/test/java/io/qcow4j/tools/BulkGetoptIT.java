package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * create, check, compare, convert, commit, rebase, map, resize, snapshot and bitmap read their
 * command line as qemu-img 7.2 does (getopt_long, each option checked as it comes), twinned with
 * qemu-img on the same files: as qemu-img (drop-in) the same stdout, stderr and exit code;
 * as qcow4j the same words on one line and the same exit code. And they start without picocli.
 */
class BulkGetoptIT {
    @TempDir
    static Path dir;

    @BeforeAll
    static void images() {
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "small.qcow2", "1M").assertOk();
        Cli.qemuIo(dir, "-f", "qcow2", "-c", "write -P 0x11 0 64k", "small.qcow2").assertOk();
        Cli.qemuImg(dir, "convert", "-O", "raw", "small.qcow2", "small.raw").assertOk();
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "-b", "small.qcow2", "-F", "qcow2", "top.qcow2").assertOk();
    }

    @ParameterizedTest
    @ValueSource(strings = {
        // a bad letter inside a cluster: getopt names the argument before it, after permuting
        "check -xq small.qcow2", "check -qx small.qcow2", "check small.qcow2 -Usf qcow2", "check -f qcow2 -xq small.qcow2",
        "check small.qcow2 -q -xq",
        // long options: abbreviated, with '=' or the next argument, a value where none is taken
        "check --out", "check --out=json small.qcow2", "check --format=qcow2 --rep=all small.qcow2",
        "check -U -T none --output human small.qcow2", "check --image-opts=1 small.qcow2", "check --force small.qcow2",
        // options checked as they come: -r before a later bad option, after an earlier one
        "check -r foo -x small.qcow2", "check -x -r foo small.qcow2", "check -r",
        // after the loop: the file names, then --output, then -T
        "check", "check a b", "check --output=foo small.qcow2 a", "check -T foo --output=xx small.qcow2",
        "check -T foo small.qcow2", "check -- -x",
        "compare small.qcow2", "compare a b c", "compare -f", "compare small.qcow2 -Uxs small.raw",
        "compare -T foo small.qcow2 small.raw", "compare -T foo a", "compare -T none -sq small.qcow2 small.raw",
        "compare --force small.qcow2 small.raw", "compare --strict small.qcow2 small.raw",
        "compare -Ff raw small.qcow2 small.raw", "compare -- small.qcow2 small.raw", "compare nosuch small.raw",
        // convert: -S, -m, -r, -o, -l checked in the option loop, in command-line order
        "convert -m 0 -S 3 small.qcow2 o.raw", "convert -S 3 -m 0 small.qcow2 o.raw", "convert -S -1 small.qcow2 o.raw",
        "convert -S 99999E small.qcow2 o.raw", "convert -m 0x4 -r 1M -W -q small.qcow2 o.raw",
        "convert -m x small.qcow2 o.raw", "convert -r x small.qcow2 o.raw", "convert -r 99999E small.qcow2 o.raw",
        "convert -o a, -S 3 small.qcow2 o.raw", "convert -C -c -x small.qcow2 o.raw", "convert -O",
        "convert --target small.qcow2 o.raw", "convert --bitm small.qcow2 o.raw", "convert --salv -fraw small.raw o.raw",
        // after the loop, in qemu-img's order: the sources open before the target format is looked at
        "convert", "convert -c", "convert -T foo a", "convert -O foo nosuch o.raw", "convert -O foo -o help",
        "convert -c nosuch o.raw", "convert -c -o foo=1 small.qcow2 o.raw", "convert -c --bitmaps small.qcow2 o.raw",
        "convert small.qcow2 o.raw -Ox qcow2", "convert -B small.qcow2 -F qcow2 -O raw small.raw o.raw",
        "convert -O qcow2 --target-image-opts -n nosuch o.raw",
        // commit, rebase: the cache modes after the file names; map: -s/-l (--start-offset, --max-length) as they come
        "commit -t foo top.qcow2", "commit -r x top.qcow2", "commit -t foo a b", "commit -x -t foo top.qcow2",
        "commit -qx top.qcow2", "commit -U top.qcow2", "commit -b nosuch top.qcow2", "commit --image-opts=1 top.qcow2",
        "rebase top.qcow2", "rebase -t foo -u top.qcow2", "rebase -T foo -u top.qcow2", "rebase -u -t foo top.qcow2 x",
        "rebase -F foo -u top.qcow2", "rebase -F foo -t foo -u top.qcow2", "rebase -b x -F raw -T foo -t foo top.qcow2",
        "rebase -t foo -u nosuch", "rebase -Uqx top.qcow2",
        "map --start-offset=x small.qcow2", "map --max-length=99999E --start-offset=x small.qcow2",
        "map --output=foo --start-offset=x small.qcow2", "map --output=foo a b", "map --output=foo small.qcow2",
        "map --start=1 --max=2 --out=json small.qcow2", "map -s 1 -l 2 --output=json top.qcow2", "map -Us 64k top.qcow2",
        "map -x small.qcow2", "map", "map --max-length 1 small.qcow2 --output json",
        // create: -o's syntax as it comes, a negative size read as an option, as getopt reads it
        "create -o a, -x", "create -x -o a,", "create -f qcow2 n.qcow2 -1M", "create -f qcow2 -qx n.qcow2 1M",
        "create -f qcow2 n.qcow2 1M x", "create -f foo n.qcow2 1M", "create -F",
        // resize: the size off the end first (so "-64k" is no option), then getopt over the rest
        "resize --help", "resize a b c", "resize --preallocation=foo small.qcow2 +1M", "resize -f raw -x small.qcow2 1M",
        "resize small.qcow2", "resize -q small.qcow2 --", "resize -U small.qcow2 1M",
        "resize --prealloc=full --shr small.qcow2 -64k", "resize --image-opts=x small.qcow2 +1M",
        "snapshot -lx small.qcow2", "snapshot -xl small.qcow2", "snapshot -l -c x small.qcow2", "snapshot -lc x small.qcow2",
        "snapshot -U -c s1 small.qcow2", "snapshot -l a b", "snapshot -f qcow2 -l small.qcow2", "snapshot --forc -l top.qcow2",
        "snapshot -a nosuch small.qcow2",
        "bitmap -g x --add small.qcow2 b0", "bitmap -g x -x --add small.qcow2 b0", "bitmap --add -g 99999E small.qcow2 b0",
        "bitmap --add small.qcow2", "bitmap -g 64k small.qcow2 b0", "bitmap --merge", "bitmap --rem -q small.qcow2 b0",
        "bitmap -F qcow2 --add small.qcow2 b0", "bitmap -b top.qcow2 --add small.qcow2 b0", "bitmap --remove small.qcow2 b0",
        "bitmap --add small.qcow2 b0 extra",
    })
    void asQemuImgReadsIt(String line) throws IOException {
        String[] args = line.split(" ");
        byte[] image = Files.readAllBytes(dir.resolve("small.qcow2"));
        byte[] top = Files.readAllBytes(dir.resolve("top.qcow2"));
        Qemu.Result theirs = Cli.qemuImg(dir, args);
        Files.deleteIfExists(dir.resolve("o.raw"));
        Qemu.Result dropIn = Cli.dropIn(dir, args);
        Files.deleteIfExists(dir.resolve("o.raw"));
        Cli.assertSameOutput(theirs, dropIn, line);
        Qemu.Result own = Cli.qcow4j(dir, args);
        Files.deleteIfExists(dir.resolve("o.raw"));
        assertEquals(theirs.exitCode(), own.exitCode(), own.describe());
        if (theirs.exitCode() != 0 && !theirs.stderr().isEmpty()) {
            // qemu-img's lines after its name, on one line, without the "Try" hint (a file that
            // cannot be opened is named once as qcow4j, twice as qemu-img)
            String words = theirs.stderr().lines().filter(l -> !l.startsWith("Try 'qemu-img --help'"))
                    .map(l -> l.replaceFirst("^qemu-img: ", "")).collect(Collectors.joining(" "))
                    .replaceFirst("^(Could not open '[^']*': )\\1", "$1");
            assertEquals("qcow4j: " + words + "\n", own.stderr(), own.describe());
        }
        assertArrayEquals(image, Files.readAllBytes(dir.resolve("small.qcow2")), line + ": small.qcow2 changed");
        assertArrayEquals(top, Files.readAllBytes(dir.resolve("top.qcow2")), line + ": top.qcow2 changed");
    }

    /** -h and --help (abbreviated too) print the usage and exit 0, as qemu-img's help does. */
    @Test
    void helpPrintsTheUsage() {
        for (String line : List.of("check --help", "compare -h", "convert --he", "convert -q -h -x", "help convert",
                "help check")) {
            Qemu.Result r = Cli.qcow4j(dir, line.split(" ")).assertOk();
            assertTrue(r.stdout().startsWith("Usage: qcow4j"), r.describe());
            assertEquals("", r.stderr(), r.describe());
        }
        assertTrue(Cli.qcow4j(dir, "--help").stdout().contains("\n  convert "), "the command list names convert");
    }

    /** The bulk commands' path loads no picocli class (its model costs most of a short run's start). */
    @Test
    void noPicocliOnTheBulkPath() throws IOException {
        for (String line : List.of("check small.qcow2", "compare small.qcow2 small.raw", "convert -O qcow2 small.raw o.qcow2")) {
            Path log = dir.resolve("classes.log");
            Qemu.Result r = Qemu.run(dir, Qemu.DEFAULT_TIMEOUT, Cli.prepend("env",
                    Cli.prepend("QCOW4J_JAVA_OPTS=-Xlog:class+load=info:file=" + log,
                            Cli.prepend(Cli.root().resolve("bin/qcow4j").toString(), line.split(" "))))).assertOk();
            String classes = Files.readString(log);
            assertTrue(classes.contains("io.qcow4j.tools.RawCommands"), r.describe() + ": the log lists our classes");
            assertFalse(classes.contains(" picocli."), line + " loaded picocli");
            Files.deleteIfExists(dir.resolve("o.qcow2"));
        }
    }
}
