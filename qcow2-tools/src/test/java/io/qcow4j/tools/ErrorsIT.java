package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Bad input of every kind: exactly one line {@code qcow4j: <what>: <why>} on stderr, the
 * documented exit code, nothing on stdout, never a stack trace (unless --debug).
 */
class ErrorsIT {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {
        "info nosuch.qcow2",
        "info -f qcow2 nosuch.qcow2",
        "info --output=json nosuch.qcow2",
        "io -c flush nosuch.qcow2",
        "io -r -c flush nosuch.qcow2",
        "convert nosuch.qcow2 out.raw",
        "convert -O qcow2 nosuch.qcow2 out.qcow2",
    })
    void missingFile(String args) {
        Qemu.Result r = qcow4j(tmp, args.split(" "));
        Cli.assertOneLineError(r, 1, "Could not open 'nosuch.qcow2': No such file or directory");
        assertEquals("", r.stdout());
        assertTrue(!Files.exists(tmp.resolve("out.raw")) && !Files.exists(tmp.resolve("out.qcow2")));
    }

    /**
     * A backing file that is missing (one level down, two levels down, named from a
     * subdirectory, absolute, raw): every command that opens the chain says what qemu-img
     * says, with its exit code, and changes nothing.
     */
    @ParameterizedTest
    @ValueSource(strings = {
        "check IMG", "check --output=json IMG", "map IMG", "map --output=json IMG", "convert IMG out.raw",
        "convert -O qcow2 IMG out.qcow2", "compare IMG IMG", "snapshot -l IMG", "snapshot -c s IMG", "commit IMG",
        "rebase -b other.qcow2 -F qcow2 IMG", "resize IMG 8M",
    })
    void missingBackingFile(String command) throws IOException {
        Path ours = Cli.mkdir(tmp, "ours");
        Path theirs = Cli.mkdir(tmp, "theirs");
        for (Path d : List.of(ours, theirs)) {
            Cli.qemuImg(d, "create", "-q", "-f", "qcow2", "b.qcow2", "4M").assertOk();
            Cli.qemuImg(d, "create", "-q", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", "mid.qcow2").assertOk();
            Cli.qemuImg(d, "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2").assertOk();
            Cli.qemuImg(d, "create", "-q", "-f", "qcow2", "other.qcow2", "4M").assertOk();
            Cli.mkdir(d, "sub");
            Cli.qemuImg(d, "create", "-q", "-f", "qcow2", "-u", "-b", "b.qcow2", "-F", "qcow2", "sub/s.qcow2", "4M").assertOk();
            Cli.qemuImg(d, "create", "-q", "-f", "qcow2", "-u", "-b", tmp.resolve("elsewhere/gone.qcow2").toString(),
                    "-F", "qcow2", "abs.qcow2", "4M").assertOk();
            Cli.qemuImg(d, "create", "-q", "-f", "qcow2", "-u", "-b", "gone.raw", "-F", "raw", "raw.qcow2", "4M").assertOk();
            Files.delete(d.resolve("b.qcow2"));
        }
        for (String image : List.of("mid.qcow2", "top.qcow2", "sub/s.qcow2", "abs.qcow2", "raw.qcow2")) {
            String[] args = command.replace("IMG", image).split(" ");
            byte[] before = Files.readAllBytes(ours.resolve(image));
            Qemu.Result expected = Cli.qemuImg(theirs, args);
            assertTrue(expected.exitCode() != 0 && expected.stderr().contains("Could not open backing file: "), expected.describe());
            Cli.assertOneLineError(qcow4j(ours, args), expected.exitCode(), Cli.qemuMessage(expected));
            assertArrayEquals(before, Files.readAllBytes(ours.resolve(image)), image);
        }
        // nothing of a target was left behind
        assertTrue(!Files.exists(ours.resolve("out.raw")) && !Files.exists(ours.resolve("out.qcow2")));
    }

    @Test
    void notQcow2() throws IOException {
        Files.writeString(tmp.resolve("junk.qcow2"), "garbage\n");
        Cli.assertOneLineError(qcow4j(tmp, "info", "-f", "qcow2", "junk.qcow2"), 1,
                "Could not open 'junk.qcow2': Image is not in qcow2 format");
        // probed, it is a raw file, as qemu-img says
        Qemu.Result r = qcow4j(tmp, "info", "junk.qcow2").assertOk();
        assertTrue(r.stdout().contains("file format: raw\n"), r.describe());
        Cli.assertOneLineError(qcow4j(tmp, "info", "-f", "vmdk", "junk.qcow2"), 1,
                "Could not open 'junk.qcow2': Format 'vmdk' is not supported by qcow4j (only qcow2 and raw)");
        Cli.assertOneLineError(qcow4j(tmp, "info", "-f", "foo", "junk.qcow2"), 1,
                "Could not open 'junk.qcow2': Unknown driver 'foo'");
        Cli.assertOneLineError(qcow4j(tmp, "info", "."), 1,
                "Could not open '.': 'file' driver requires '.' to be a regular file");
    }

    /** A header that lies (huge L1 size, cluster bits out of range, truncated file): one line, no trace. */
    @ParameterizedTest
    @ValueSource(ints = {0, 1, 2, 3})
    void damagedHeaders(int kind) throws IOException {
        Cli.qemuImg(tmp, "create", "-q", "-f", "qcow2", "d.qcow2", "1M").assertOk();
        Path p = tmp.resolve("d.qcow2");
        byte[] b = Files.readAllBytes(p);
        ByteBuffer bb = ByteBuffer.wrap(b);
        switch (kind) {
            case 0 -> bb.putInt(20, 40);                 // cluster_bits 40
            case 1 -> bb.putInt(36, 0x7fffffff);         // l1_size
            case 2 -> b = java.util.Arrays.copyOf(b, 50); // truncated header
            default -> bb.putLong(48, 1L << 62);         // refcount_table_offset past the end
        }
        Files.write(p, b);
        for (String cmd : new String[] {"info", "io -c read 0 512", "convert", "compare"}) {
            String[] argv = switch (cmd) {
                case "info" -> new String[] {"info", "d.qcow2"};
                case "convert" -> new String[] {"convert", "-O", "raw", "d.qcow2", "out.raw"};
                case "compare" -> new String[] {"compare", "d.qcow2", "d.qcow2"};
                default -> new String[] {"io", "-c", "read 0 512", "d.qcow2"};
            };
            Qemu.Result r = qcow4j(tmp, argv);
            assertTrue(r.exitCode() != 0, r.describe());
            assertEquals(1, r.stderr().lines().count(), r.describe());
            assertTrue(r.stderr().startsWith("qcow4j: "), r.describe());
            Cli.assertNoStackTrace(r);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {
        "nosuchcommand",
        "info",
        "info --bogus x",
        "create -Z t.qcow2 1M",
        "compare onlyone",
        "io",
    })
    void usageErrors(String args) {
        Qemu.Result r = qcow4j(tmp, args.split(" "));
        assertEquals(1, r.exitCode(), r.describe());
        assertEquals(1, r.stderr().lines().count(), r.describe());
        assertTrue(r.stderr().startsWith("qcow4j: "), r.describe());
        assertEquals("", r.stdout(), r.describe());
    }

    @ParameterizedTest
    @ValueSource(strings = {"info --foo a.qcow2", "commit -U a.qcow2", "resize -U a.qcow2 2M", "bitmap -U a.qcow2 b",
        "check --nosuch a.qcow2"})
    void unknownOptionsInQemuImgsWords(String args) throws IOException {
        Qemu.create(tmp.resolve("a.qcow2"), "1M");
        byte[] before = Files.readAllBytes(tmp.resolve("a.qcow2"));
        Qemu.Result theirs = Cli.qemuImg(tmp, args.split(" "));
        Qemu.Result ours = qcow4j(tmp, args.split(" "));
        assertEquals(theirs.exitCode(), ours.exitCode(), ours.describe());
        // qemu-img adds a second line, "Try 'qemu-img --help' ..."; ours is one line
        String first = theirs.stderr().lines().findFirst().orElseThrow();
        assertEquals(first.replaceFirst("^qemu-img: ", "qcow4j: ") + "\n", ours.stderr(), ours.describe());
        assertArrayEquals(before, Files.readAllBytes(tmp.resolve("a.qcow2")));
    }

    @Test
    void helpWorks() {
        for (String[] argv : new String[][] {{"--help"}, {"create", "--help"}, {"help", "convert"},
            {"io", "--help"}, {"info", "-h"}, {"compare", "--help"}}) {
            Qemu.Result r = qcow4j(tmp, argv).assertOk();
            assertTrue(r.stdout().startsWith("Usage: qcow4j"), r.describe());
            assertEquals("", r.stderr());
        }
    }

    @Test
    void debugShowsTheTrace() {
        Qemu.Result r = qcow4j(tmp, "--debug", "info", "nosuch.qcow2");
        assertEquals(1, r.exitCode());
        assertTrue(r.stderr().startsWith("qcow4j: Could not open 'nosuch.qcow2': No such file or directory\n"));
        assertTrue(r.stderr().contains("\tat "), r.describe());
    }

    @Test
    void badSizeAndOption() {
        Cli.assertOneLineError(qcow4j(tmp, "create", "-f", "qcow2", "t.qcow2", "12Q"), 1,
                "Invalid image size specified. You may use k, M, G, T, P or E suffixes for kilobytes,"
                        + " megabytes, gigabytes, terabytes, petabytes and exabytes.");
        Cli.assertOneLineError(qcow4j(tmp, "create", "-f", "qcow2", "-o", "nosuch=1", "t.qcow2", "1M"), 1,
                "t.qcow2: Invalid parameter 'nosuch'");
        assertTrue(!Files.exists(tmp.resolve("t.qcow2")));
    }
}
