package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Holder;
import io.qcow4j.testing.Qemu;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CLI and QEMU's image locks: an image a qemu-io holds (as a running VM) is refused by
 * {@code qcow4j info} and {@code qcow4j io} with qemu-img's words, and read with -U; an
 * image {@code qcow4j io} holds is refused by qemu-img and qemu-io.
 */
class LockingIT {
    private static final String IMG = "disk.qcow2";
    private static final String HINT = " Is another process using the image [" + IMG + "]?";

    @TempDir
    Path tmp;

    private Path image() {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", IMG, "4M").assertOk();
        qemuIo(tmp, "-c", "write -P 0x5a 0 64k", IMG).assertOk();
        return tmp.resolve(IMG);
    }

    @Test
    void imageInUseByQemu() throws IOException {
        Path img = image();
        byte[] before = Files.readAllBytes(img);
        try (Holder vm = Holder.qemuIo(img)) {
            // info: refused exactly as qemu-img refuses, allowed with -U
            Qemu.Result theirs = qemuImg(tmp, "info", IMG);
            assertEquals(1, theirs.exitCode(), theirs.describe());
            Cli.assertOneLineError(Cli.qcow4jProcess(tmp, "info", IMG), 1, Cli.qemuMessage(theirs));
            assertEquals("Could not open '" + IMG + "': Failed to get shared \"write\" lock" + HINT, Cli.qemuMessage(theirs));
            for (String u : new String[] {"-U", "--force-share"}) {
                Qemu.Result ours = Cli.qcow4jProcess(tmp, "info", u, IMG);
                assertEquals(0, ours.exitCode(), ours.describe());
                assertEquals(qemuImg(tmp, "info", "-U", IMG).assertOk().stdout(), ours.stdout());
            }
            Qemu.Result json = Cli.qcow4jProcess(tmp, "info", "-U", "--output=json", IMG);
            assertEquals(qemuImg(tmp, "info", "-U", "--output=json", IMG).assertOk().stdout(), json.stdout());

            // io: writing and reading refused, reading with -r -U allowed, -U without -r refused
            Cli.assertOneLineError(Cli.qcow4jProcess(tmp, "io", "-c", "write 0 512", IMG), 1,
                    "Could not open '" + IMG + "': Failed to get \"write\" lock" + HINT);
            assertTrue(qemuIo(tmp, "-c", "write 0 512", IMG).stderr().contains("Failed to get \"write\" lock"));
            Cli.assertOneLineError(Cli.qcow4jProcess(tmp, "io", "-r", "-c", "read 0 512", IMG), 1,
                    "Could not open '" + IMG + "': Failed to get shared \"write\" lock" + HINT);
            Qemu.Result read = Cli.qcow4jProcess(tmp, "io", "-r", "-U", "-c", "read -P 0x5a 0 512", IMG);
            assertEquals(0, read.exitCode(), read.describe());
            assertEquals(Cli.withoutTiming(qemuIo(tmp, "-r", "-U", "-c", "read -P 0x5a 0 512", IMG).assertOk().stdout()),
                    Cli.withoutTiming(read.stdout()));
            Qemu.Result rwU = qemuIo(tmp, "-U", "-c", "read 0 512", IMG);
            assertEquals(1, rwU.exitCode());
            Cli.assertOneLineError(Cli.qcow4jProcess(tmp, "io", "-U", "-c", "read 0 512", IMG), 1,
                    "Could not open '" + IMG + "': force-share=on can only be used with read-only images");

            // create over it: refused before anything is emptied, as qemu-img create
            Qemu.Result create = Cli.qcow4jProcess(tmp, "create", "-q", "-f", "qcow2", IMG, "1M");
            Cli.assertOneLineError(create, 1, IMG + ": Failed to get \"write\" lock" + HINT);
            Qemu.Result qemuCreate = qemuImg(tmp, "create", "-q", "-f", "qcow2", IMG, "1M");
            assertEquals(Cli.qemuMessage(qemuCreate), create.stderr().strip().substring("qcow4j: ".length()));

            assertArrayEquals(before, Files.readAllBytes(img), "an image in use changed");
        }
        Cli.qcow4jProcess(tmp, "io", "-c", "read -P 0x5a 0 512", IMG).assertOk();
    }

    /**
     * Every command that reads an image, on an image a qemu-io holds read-write: refused
     * without -U with qemu-img's words and exit code, run with -U with qemu-img's output;
     * -U with a write refused as qemu-img refuses it. The image stays byte for byte.
     */
    @Test
    void readingCommandsNeedForceShare() throws IOException {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "base.qcow2", "4M").assertOk();
        qemuIo(tmp, "-c", "write -P 0x11 0 1M", "base.qcow2").assertOk();
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", IMG).assertOk();
        qemuIo(tmp, "-c", "write -P 0x5a 64k 64k", IMG).assertOk();
        Files.copy(tmp.resolve(IMG), tmp.resolve("other.qcow2"));
        qemuImg(tmp, "snapshot", "-c", "s1", IMG).assertOk();
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "nb.qcow2", "4M").assertOk();
        for (String x : new String[] {"x.qcow2", "x2.qcow2"}) {
            qemuImg(tmp, "create", "-q", "-f", "qcow2", "-b", "nb.qcow2", "-F", "qcow2", x).assertOk();
        }
        Path img = tmp.resolve(IMG);
        byte[] before = Files.readAllBytes(img);
        try (Holder vm = Holder.qemuIo(img)) {
            String[][] reading = {
                {"check", IMG}, {"check", "--output=json", IMG}, {"map", IMG}, {"map", "--output=json", IMG},
                {"compare", IMG, "other.qcow2"}, {"compare", "other.qcow2", IMG}, {"snapshot", "-l", IMG},
            };
            for (String[] args : reading) {
                String what = String.join(" ", args);
                Qemu.Result theirs = qemuImg(tmp, args);
                assertTrue(theirs.exitCode() != 0 && theirs.stderr().contains("lock"), theirs.describe());
                Cli.assertOneLineError(qcow4j(tmp, args), theirs.exitCode(), Cli.qemuMessage(theirs));
                String[] shared = Cli.prepend(args[0], Cli.prepend("-U", java.util.Arrays.copyOfRange(args, 1, args.length)));
                Qemu.Result ours = qcow4j(tmp, shared);
                assertEquals(0, ours.exitCode(), ours.describe());
                assertEquals(qemuImg(tmp, shared).assertOk().stdout(), ours.stdout(), what + " -U");
                assertEquals("", ours.stderr(), what + " -U");
            }
            // the launcher's way too (a separate JVM)
            Cli.assertOneLineError(Cli.qcow4jProcess(tmp, "check", IMG), 1,
                    "Could not open '" + IMG + "': Failed to get shared \"write\" lock" + HINT);
            assertEquals(qemuImg(tmp, "check", "-U", IMG).stdout(), Cli.qcow4jProcess(tmp, "check", "-U", IMG).assertOk().stdout());

            // convert: the source is shared with -U; the copies are alike
            Qemu.Result theirs = qemuImg(tmp, "convert", IMG, "theirs.raw");
            Cli.assertOneLineError(qcow4j(tmp, "convert", IMG, "ours.raw"), 1, Cli.qemuMessage(theirs));
            assertTrue(!Files.exists(tmp.resolve("ours.raw")));
            qemuImg(tmp, "convert", "-U", IMG, "theirs.raw").assertOk();
            qcow4j(tmp, "convert", "-U", IMG, "ours.raw").assertOk();
            assertArrayEquals(Files.readAllBytes(tmp.resolve("theirs.raw")), Files.readAllBytes(tmp.resolve("ours.raw")));

            // rebase: -U shares the new backing file (the image itself is written, so it is locked)
            theirs = qemuImg(tmp, "rebase", "-b", IMG, "-F", "qcow2", "x2.qcow2");
            assertEquals("Could not open new backing file '" + IMG + "': Failed to get shared \"write\" lock" + HINT,
                    Cli.qemuMessage(theirs));
            Cli.assertOneLineError(qcow4j(tmp, "rebase", "-b", IMG, "-F", "qcow2", "x.qcow2"), 1, Cli.qemuMessage(theirs));
            qemuImg(tmp, "rebase", "-U", "-b", IMG, "-F", "qcow2", "x2.qcow2").assertOk();
            qcow4j(tmp, "rebase", "-U", "-b", IMG, "-F", "qcow2", "x.qcow2").assertOk();
            assertEquals("Images are identical.\n", qemuImg(tmp, "compare", "-U", "x.qcow2", "x2.qcow2").assertOk().stdout());
            assertEquals(Cli.json(qemuImg(tmp, "info", "--output=json", "x2.qcow2").stdout()).get("backing-filename"),
                    Cli.json(qemuImg(tmp, "info", "--output=json", "x.qcow2").stdout()).get("backing-filename"));

            // -U with a write: qemu-img's refusal, before anything is opened
            for (String[] args : new String[][] {
                {"check", "-U", "-r", "all", IMG}, {"check", "-U", "-r", "leaks", IMG},
                {"snapshot", "-U", "-c", "s2", IMG}, {"snapshot", "-U", "-a", "s1", IMG}, {"snapshot", "-U", "-d", "s1", IMG},
            }) {
                theirs = qemuImg(tmp, args);
                assertEquals("Could not open '" + IMG + "': force-share=on can only be used with read-only images",
                        Cli.qemuMessage(theirs), theirs.describe());
                Cli.assertOneLineError(qcow4j(tmp, args), theirs.exitCode(), Cli.qemuMessage(theirs));
            }

            // qcow4j's own readers: refused as info is, allowed with -U
            Cli.assertOneLineError(qcow4j(tmp, "dump", IMG), 1,
                    "Could not open '" + IMG + "': Failed to get shared \"write\" lock" + HINT);
            qcow4j(tmp, "dump", "-U", IMG, "header").assertOk();
            Cli.assertOneLineError(qcow4j(tmp, "checkpoint", "list", IMG), 1,
                    "Could not open '" + IMG + "': Failed to get shared \"write\" lock" + HINT);
            qcow4j(tmp, "checkpoint", "list", "-U", IMG).assertOk();
            Cli.assertOneLineError(qcow4j(tmp, "map", "--bitmap", "b", IMG), 1,
                    "Could not open '" + IMG + "': Failed to get shared \"write\" lock" + HINT);

            assertArrayEquals(before, Files.readAllBytes(img), "an image in use changed");
        }
    }

    @Test
    void imageInUseByQcow4j() throws Exception {
        image();
        Process io = new ProcessBuilder(Cli.root().resolve("bin/qcow4j").toString(), "io", IMG)
                .directory(tmp.toFile()).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        try {
            OutputStream in = io.getOutputStream();
            BufferedReader out = new BufferedReader(new InputStreamReader(io.getInputStream(), StandardCharsets.UTF_8));
            in.write("read -P 0x5a 0 512\n".getBytes(StandardCharsets.US_ASCII));
            in.flush();
            String line = out.readLine();
            assertTrue(line != null && line.contains("read 512/512 bytes at offset 0"), String.valueOf(line));

            Qemu.Result info = qemuImg(tmp, "info", IMG);
            assertEquals(1, info.exitCode(), info.describe());
            assertEquals("qemu-img: Could not open '" + IMG + "': Failed to get shared \"write\" lock\n"
                    + HINT.strip() + "\n", info.stderr());
            qemuImg(tmp, "info", "-U", IMG).assertOk();
            Qemu.Result write = qemuIo(tmp, "-c", "write 0 512", IMG);
            assertEquals(1, write.exitCode(), write.describe());
            assertTrue(write.stderr().contains("Failed to get \"write\" lock"), write.describe());
            Cli.assertOneLineError(Cli.qcow4jProcess(tmp, "info", IMG), 1,
                    "Could not open '" + IMG + "': Failed to get shared \"write\" lock" + HINT);
            Cli.qcow4jProcess(tmp, "info", "-U", IMG).assertOk();

            in.write("write -P 0x33 0 512\n".getBytes(StandardCharsets.US_ASCII));
            in.close();
            assertTrue(io.waitFor(60, TimeUnit.SECONDS));
            assertEquals(0, io.exitValue());
        } finally {
            io.destroyForcibly();
        }
        qemuIo(tmp, "-c", "read -P 0x33 0 512", IMG).assertOk();
        assertEquals(0, qemuImg(tmp, "check", IMG).exitCode());
    }
}
