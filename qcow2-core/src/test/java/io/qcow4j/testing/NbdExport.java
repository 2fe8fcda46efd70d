package io.qcow4j.testing;

import org.apache.commons.io.file.PathUtils;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A short-lived NBD server on a private Unix socket: {@code qemu-nbd --fork} (or
 * {@code nbdkit}), started with a pid file and stopped (SIGTERM, waited for) on close.
 * Used by {@link Qemu#nbdMap} and by the NBD client's tests.
 *
 * <pre>{@code
 * try (NbdExport nbd = NbdExport.qemuNbd(img, "-r", "-f", "qcow2", "-B", "b0")) {
 *     nbdinfo --map nbd.uri("") ...
 * }
 * }</pre>
 */
public final class NbdExport implements AutoCloseable {
    private static final Duration START_WAIT = Duration.ofSeconds(10);
    private static final Duration STOP_WAIT = Duration.ofSeconds(10);

    private final Path dir;
    private final Path socket;
    private final long pid;

    private NbdExport(Path dir, Path socket, long pid) {
        this.dir = dir;
        this.socket = socket;
        this.pid = pid;
    }

    /**
     * {@code qemu-nbd --persistent --fork ARGS... --socket=S IMG}, run beside the image; ARGS
     * are qemu-nbd's options ("-r", "-f", "qcow2", "-B", "NAME", "-A", "-x", "EXPORT", ...).
     */
    public static NbdExport qemuNbd(Path img, String... args) {
        return start(dir -> {
            List<String> cmd = new ArrayList<>(List.of("qemu-nbd", "--persistent", "--fork",
                    "--pid-file=" + dir.resolve("pid"), "--socket=" + dir.resolve("sock")));
            cmd.addAll(Arrays.asList(args));
            cmd.add(img.toAbsolutePath().toString());
            Qemu.besideImage(img, cmd.toArray(String[]::new)).assertOk();
        }, true);
    }

    /**
     * {@code qemu-nbd --persistent --fork -b 127.0.0.1 -p PORT ARGS... IMG}: over TCP on the
     * loopback ({@link #socket()} is then null).
     */
    public static NbdExport qemuNbdTcp(Path img, int port, String... args) {
        return start(dir -> {
            List<String> cmd = new ArrayList<>(List.of("qemu-nbd", "--persistent", "--fork",
                    "--pid-file=" + dir.resolve("pid"), "-b", "127.0.0.1", "-p", Integer.toString(port)));
            cmd.addAll(Arrays.asList(args));
            cmd.add(img.toAbsolutePath().toString());
            Qemu.besideImage(img, cmd.toArray(String[]::new)).assertOk();
        }, false);
    }

    /** {@code nbdkit -U S -P PIDFILE ARGS...} (nbdkit forks into the background by itself). */
    public static NbdExport nbdkit(String... args) {
        return start(dir -> {
            List<String> cmd = new ArrayList<>(List.of("nbdkit", "-U", dir.resolve("sock").toString(),
                    "-P", dir.resolve("pid").toString()));
            cmd.addAll(Arrays.asList(args));
            Qemu.run(cmd.toArray(String[]::new)).assertOk();
        }, true);
    }

    private interface Starter {
        void start(Path dir) throws IOException;
    }

    private static NbdExport start(Starter starter, boolean unix) {
        Path dir = null;
        try {
            // /tmp keeps the socket path under the 108-byte limit of unix sockets
            dir = Files.createTempDirectory(Path.of("/tmp"), "qcow4j-nbd");
            starter.start(dir);
            long pid = readPid(dir.resolve("pid"));
            if (!unix) {
                return new NbdExport(dir, null, pid);
            }
            waitForSocket(dir.resolve("sock"));
            return new NbdExport(dir, dir.resolve("sock"), pid);
        } catch (IOException e) {
            deleteQuietly(dir);
            throw new UncheckedIOException(e);
        } catch (RuntimeException | Error e) {
            deleteQuietly(dir);
            throw e;
        }
    }

    /** The Unix socket the server listens on. */
    public Path socket() {
        return socket;
    }

    /** A private directory beside the socket, removed on close. */
    public Path dir() {
        return dir;
    }

    /** The server's process id. */
    public long pid() {
        return pid;
    }

    /** {@code nbd+unix:///EXPORT?socket=S}. */
    public String uri(String export) {
        return "nbd+unix:///" + export + "?socket=" + socket;
    }

    /** {@code nbd+unix:///?socket=S}: qemu-nbd's one export (without -x). */
    public String uri() {
        return uri("");
    }

    /** Kills the server at once (SIGKILL) and waits until it is gone. */
    public void kill() {
        ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
        waitExited(pid);
    }

    /** Stops the server (SIGTERM, waited for) and removes its directory. */
    @Override
    public void close() {
        try {
            stop(pid);
        } finally {
            deleteQuietly(dir);
        }
    }

    static String dirtyBitmapMap(Path img, String bitmap) {
        try (NbdExport nbd = qemuNbd(img, "-r", "-f", "qcow2", "-B", bitmap)) {
            return Qemu.run("nbdinfo", "--map=qemu:dirty-bitmap:" + bitmap, nbd.uri()).assertOk().stdout();
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
        throw new AssertionError("the NBD server wrote no pid file " + pidFile);
    }

    private static void waitForSocket(Path socket) {
        long deadline = System.nanoTime() + START_WAIT.toNanos();
        while (!Files.exists(socket)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the NBD server made no socket " + socket);
            }
            sleep();
        }
    }

    /**
     * SIGTERM, then wait until the process is gone or a zombie: a forked qemu-nbd is reparented
     * to init and may stay a zombie for a while, which kill -0 would still call alive.
     */
    private static void stop(long pid) {
        ProcessHandle.of(pid).ifPresent(ProcessHandle::destroy);
        if (!waitExited(pid)) {
            ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
            throw new AssertionError("the NBD server (pid " + pid + ") did not stop on SIGTERM");
        }
    }

    private static boolean waitExited(long pid) {
        long deadline = System.nanoTime() + STOP_WAIT.toNanos();
        while (System.nanoTime() < deadline) {
            if (exited(pid)) {
                return true;
            }
            sleep();
        }
        return false;
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

    private static void deleteQuietly(Path dir) {
        if (dir != null) {
            try {
                PathUtils.deleteDirectory(dir);
            } catch (IOException ignored) {
                // leftovers in /tmp are harmless
            }
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
