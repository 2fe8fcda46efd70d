package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Holder;
import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Drop-in mode: qcow4j run as {@code qemu-img} (bin/qemu-img, or any symlink of that name)
 * names itself qemu-img and prints qemu-img's errors line for line (continuation lines and
 * the "Try 'qemu-img --help'" hint included); its own warnings only with QCOW4J_WARNINGS=1.
 * Run as qcow4j it keeps its own name, its one-line errors and its warnings.
 */
class DropInIT {
    @TempDir
    Path tmp;

    /** Error lines as qemu-img prints them, through the real launcher under the name qemu-img. */
    @ParameterizedTest
    @ValueSource(strings = {
        "create -f qcow2 t.qcow2 12Q",                       // size: two prefixed lines
        "create -f qcow2 -o cluster_size=abc t.qcow2 1M",    // option type: one error over three lines
        "info --bogus a.qcow2",                              // unknown option and the "Try" line
        "info",                                              // usage error and the "Try" line
        "compare a.qcow2",
        "info -f",
        "info nosuch.qcow2",                                 // the file named twice, as qemu-img does
        "create -f qcow2 -b gone.qcow2 -F qcow2 t.qcow2",    // "Could not open backing image." below
        "measure --size 1G -O qcow2",
        "nosuchcommand",
        "",
    })
    void errorsAsQemuImgPrintsThem(String line) throws IOException {
        Cli.qemuImg(tmp, "create", "-q", "-f", "qcow2", "a.qcow2", "1M").assertOk();
        String[] args = line.isEmpty() ? new String[0] : line.split(" ");
        Qemu.Result theirs = Cli.qemuImg(tmp, args);
        Qemu.Result ours = dropIn(tmp, args);
        Cli.assertSameOutput(theirs, ours, line);
        Files.deleteIfExists(tmp.resolve("t.qcow2"));
    }

    @Test
    void lockConflictOverTwoLines() throws IOException {
        Cli.qemuImg(tmp, "create", "-q", "-f", "qcow2", "a.qcow2", "1M").assertOk();
        try (Holder vm = Holder.qemuIo(tmp.resolve("a.qcow2"))) {
            for (String[] args : List.of(new String[] {"info", "a.qcow2"}, new String[] {"measure", "a.qcow2"},
                    new String[] {"dd", "if=a.qcow2", "of=b.raw"})) {
                Qemu.Result theirs = Cli.qemuImg(tmp, args);
                assertTrue(theirs.stderr().contains("\nIs another process using the image [a.qcow2]?"), theirs.describe());
                Cli.assertSameOutput(theirs, Cli.dropIn(tmp, args), String.join(" ", args));
            }
            // as qcow4j: one line
            Qemu.Result own = Cli.qcow4j(tmp, "info", "a.qcow2");
            Cli.assertOneLineError(own, 1, "Could not open 'a.qcow2': Failed to get shared \"write\" lock"
                    + " Is another process using the image [a.qcow2]?");
        }
    }

    /** qcow4j's own warnings: printed as qcow4j, silent as qemu-img, back with QCOW4J_WARNINGS=1. */
    @Test
    void ownWarningsOnlyWhenAsked() throws IOException {
        Cli.qemuImg(tmp, "create", "-q", "-f", "qcow2", "b.qcow2", "1M").assertOk();
        Cli.qemuImg(tmp, "bitmap", "--add", "b.qcow2", "x").assertOk();
        String warning = "warning: 'b.qcow2' has bitmaps, which are not copied (use --bitmaps)\n";
        Qemu.Result theirs = Cli.qemuImg(tmp, "convert", "-O", "qcow2", "b.qcow2", "c1.qcow2").assertOk();
        assertEquals("", theirs.stderr());
        assertEquals("qcow4j: " + warning, Cli.qcow4jProcess(tmp, "convert", "-O", "qcow2", "b.qcow2", "c2.qcow2")
                .assertOk().stderr());
        assertEquals("", dropIn(tmp, "convert", "-O", "qcow2", "b.qcow2", "c3.qcow2").assertOk().stderr());
        Qemu.Result asked = Qemu.run(tmp, Duration.ofSeconds(120), Cli.prepend("env",
                Cli.prepend("QCOW4J_WARNINGS=1", Cli.prepend(Cli.root().resolve("bin/qemu-img").toString(),
                        "convert", "-O", "qcow2", "b.qcow2", "c4.qcow2")))).assertOk();
        assertEquals("qemu-img: " + warning, asked.stderr());
    }

    /** A symlink named qemu-img anywhere (as installed in a PATH directory) is a drop-in too. */
    @Test
    void symlinkElsewhere() throws IOException {
        Path bin = Files.createDirectories(tmp.resolve("bin"));
        Path link = Files.createSymbolicLink(bin.resolve("qemu-img"), Cli.root().resolve("bin/qcow4j"));
        Qemu.Result r = Qemu.run(tmp, Duration.ofSeconds(120), link.toString(), "info", "nosuch.qcow2");
        assertEquals(1, r.exitCode(), r.describe());
        assertEquals("qemu-img: Could not open 'nosuch.qcow2': Could not open 'nosuch.qcow2': No such file or directory\n",
                r.stderr());
        Qemu.Result v = Qemu.run(tmp, Duration.ofSeconds(120), link.toString(), "--version").assertOk();
        assertTrue(v.stdout().startsWith("qemu-img version 7.2.0 (qcow4j "), v.describe());
        // the same launcher under its own name stays qcow4j
        Qemu.Result own = Cli.qcow4jProcess(tmp, "info", "nosuch.qcow2");
        assertEquals("qcow4j: Could not open 'nosuch.qcow2': No such file or directory\n", own.stderr());
    }

    /** bin/qemu-img, the repository's symlink, as a new process. */
    private static Qemu.Result dropIn(Path dir, String... args) {
        List<String> argv = new ArrayList<>();
        argv.add(Cli.root().resolve("bin/qemu-img").toString());
        argv.addAll(List.of(args));
        return Qemu.run(dir, Duration.ofSeconds(120), argv.toArray(String[]::new));
    }
}
