package io.qcow4j.testing;

import org.apache.commons.io.file.PathUtils;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/** A short-lived {@code qemu-nbd --fork} export, used by {@link Qemu#nbdMap}. */
final class NbdExport {
    private static final Duration START_WAIT = Duration.ofSeconds(10);
    private static final Duration STOP_WAIT = Duration.ofSeconds(10);

    private NbdExport() {
    }

    static String dirtyBitmapMap(Path img, String bitmap) {
        Path dir = null;
        try {
            // /tmp keeps the socket path under the 108-byte limit of unix sockets
            dir = Files.createTempDirectory(Path.of("/tmp"), "qcow4j-nbd");
            Path socket = dir.resolve("sock");
            Path pidFile = dir.resolve("pid");
            Qemu.besideImage(img, "qemu-nbd", "--persistent", "--fork", "--pid-file=" + pidFile, "-r",
                    "-f", "qcow2", "-B", bitmap, "--socket=" + socket, img.toAbsolutePath().toString()).assertOk();
            long pid = readPid(pidFile);
            try {
                return Qemu.run("nbdinfo", "--map=qemu:dirty-bitmap:" + bitmap,
                        "nbd+unix:///?socket=" + socket).assertOk().stdout();
            } finally {
                stop(pid);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            if (dir != null) {
                try {
                    PathUtils.deleteDirectory(dir);
                } catch (IOException ignored) {
                    // leftovers in /tmp are harmless
                }
            }
        }
    }

    private static long readPid(Path pidFile) throws IOException {
        long deadline = System.nanoTime() + START_WAIT.toNanos();
        while (System.nanoTime() < deadline) {
            if (Files.exists(pidFile)) {
                String s = Files.readString(pidFile).trim();
                if (!s.isEmpty()) {
                    return Long.parseLong(s);
                }
            }
            sleep();
        }
        throw new AssertionError("qemu-nbd wrote no pid file " + pidFile);
    }

    /**
     * SIGTERM, then wait until the process is gone or a zombie: a forked qemu-nbd is reparented
     * to init and may stay a zombie for a while, which kill -0 would still call alive.
     */
    private static void stop(long pid) {
        ProcessHandle.of(pid).ifPresent(ProcessHandle::destroy);
        long deadline = System.nanoTime() + STOP_WAIT.toNanos();
        while (System.nanoTime() < deadline) {
            if (exited(pid)) {
                return;
            }
            sleep();
        }
        ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
        throw new AssertionError("qemu-nbd (pid " + pid + ") did not stop on SIGTERM");
    }

    private static boolean exited(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            // the state letter follows the ")" that closes the command name
            char state = stat.charAt(stat.lastIndexOf(')') + 2);
            return state == 'Z' || state == 'X';
        } catch (IOException e) {
            return true; // no /proc entry: already reaped
        }
    }

    private static void sleep() {
        try {
            Thread.sleep(20);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }
}
