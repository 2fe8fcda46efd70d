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
