package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code qcow4j nbd} as qemu-nbd: its errors, its exit after the last client without -t,
 * and SIGTERM on a busy server (the real launcher in a child process): what was
 * acknowledged is in the image, which checks clean, with its bitmap stored and its locks
 * released.
 */
@Timeout(120)
class NbdIT {
    @TempDir
    Path dir;

    private Qemu.Result run(String... cmd) {
        return Qemu.run(dir, Duration.ofSeconds(60), cmd).assertOk();
    }

    private void image(String name) {
        run("qemu-img", "create", "-q", "-f", "qcow2", name, "64M");
        run("qemu-io", "-c", "write -P 1 0 1M", name);
        run("qemu-img", "bitmap", "--add", name, "b");
    }

    /** bin/qcow4j nbd ARGS as a child process, once its socket is there. */
    private Process server(Path socket, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Cli.root().resolve("bin/qcow4j").toString(), "nbd"));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).directory(dir.toFile())
                .redirectOutput(dir.resolve("server.out").toFile()).redirectError(dir.resolve("server.err").toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!Files.exists(socket)) {
            assertTrue(p.isAlive(), () -> "server exited: " + read("server.err"));
            assertTrue(System.nanoTime() < deadline, "no socket");
            Thread.sleep(20);
        }
        return p;
    }

    private String read(String name) {
        try {
            return Files.readString(dir.resolve(name));
        } catch (IOException e) {
            return e.toString();
        }
    }

    @Test
    void errorsAreOneLineAndChangeNothing() throws Exception {
        image("img.qcow2");
        byte[] before = Files.readAllBytes(dir.resolve("img.qcow2"));
        Cli.assertOneLineError(Cli.qcow4j(dir, "nbd", "-B", "nosuch", "-k", "s", "img.qcow2"), 1, "Bitmap 'nosuch' is not found");
        Cli.assertOneLineError(Cli.qcow4j(dir, "nbd", "-e", "x", "img.qcow2"), 1, "Invalid shared device number 'x'");
        Cli.assertOneLineError(Cli.qcow4j(dir, "nbd", "--discard=foo", "img.qcow2"), 1, "Invalid discard mode `foo'");
        Cli.assertOneLineError(Cli.qcow4j(dir, "nbd", "-k", "s", "nosuch.qcow2"), 1,
                "Could not open 'nosuch.qcow2': No such file or directory");
        assertArrayEquals(before, Files.readAllBytes(dir.resolve("img.qcow2")));
        assertFalse(Files.exists(dir.resolve("s")));
        assertEquals("", Qemu.run(dir, Duration.ofSeconds(30), "qemu-nbd", "-B", "nosuch", "-k",
                dir.resolve("q").toString(), "img.qcow2").stdout());
    }

    @Test
    void exitsWhenTheLastClientLeaves() throws Exception {
        image("img.qcow2");
        Path socket = dir.resolve("s.sock");
        Process p = server(socket, "-r", "-k", socket.toString(), "img.qcow2");
        assertEquals("67108864", run("nbdinfo", "--size", "nbd+unix:///?socket=" + socket).stdout().strip());
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "server still running");
        assertEquals(0, p.exitValue(), read("server.err"));
        assertEquals("", read("server.out") + read("server.err"));
        assertFalse(Files.exists(socket));
    }

    @Test
    void sigtermLetsWritesFinishThenStoresAndUnlocks() throws Exception {
        image("img.qcow2");
        run("qemu-img", "create", "-q", "-f", "raw", "src.raw", "16M");
        run("qemu-io", "-f", "raw", "-c", "write -P 0x21 0 16M", "src.raw");
        Path socket = dir.resolve("s.sock");
        String uri = "nbd+unix:///?socket=" + socket;
        Process p = server(socket, "-t", "-e", "4", "-f", "qcow2", "-B", "b", "-k", socket.toString(), "img.qcow2");
        run("qemu-io", "-f", "raw", "-c", "write -P 0x5a 40M 1M", "-c", "write -z 50M 2M", "-c", "write -P 0x5b 60M 4k", uri);
        // a copy still writing when the signal comes
        Process copy = new ProcessBuilder("nbdcopy", "--connections=2", dir.resolve("src.raw").toString(), uri)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        Thread.sleep(100);
        p.destroy(); // SIGTERM
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "server did not stop on SIGTERM");
        assertEquals(0, p.exitValue(), read("server.err"));
        assertEquals("", read("server.err"));
        copy.waitFor(30, TimeUnit.SECONDS);
        assertFalse(Files.exists(socket));

        Qemu.Result check = Cli.qemuImg(dir, "check", "img.qcow2");
        assertEquals(0, check.exitCode(), check.describe());
        run("qemu-io", "-c", "read -P 0x5a 40M 1M", "-c", "read -P 0 50M 2M", "-c", "read -P 0x5b 60M 4k", "img.qcow2");
        String map = Qemu.nbdMap(dir.resolve("img.qcow2"), "b");
        assertTrue(map.contains("  41943040     1048576    1  dirty\n"), map);
        assertTrue(map.contains("  52428800     2097152    1  dirty\n"), map);
        assertTrue(map.contains("  62914560       65536    1  dirty\n"), map);
        assertTrue(Qemu.infoJson(dir.resolve("img.qcow2")).toString().contains("\"auto\""));
        assertFalse(Qemu.infoJson(dir.resolve("img.qcow2")).toString().contains("in-use"));
    }
}
