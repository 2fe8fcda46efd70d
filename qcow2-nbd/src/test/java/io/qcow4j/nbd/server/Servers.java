package io.qcow4j.nbd.server;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.RawImage;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.Qemu;

/** Starting qemu-nbd and our server on unix sockets side by side, and asking nbdinfo about them. */
final class Servers {
    private Servers() {
    }

    static String uri(Path socket) {
        return "nbd+unix:///?socket=" + socket;
    }

    /** qemu-nbd -t OPTS -k SOCKET IMG, as a child process, ready when the socket exists. */
    static final class QemuNbd implements AutoCloseable {
        final Path socket;
        private final Process process;

        QemuNbd(Path img, Path socket, String... opts) throws IOException {
            this.socket = socket;
            List<String> cmd = new ArrayList<>(List.of("qemu-nbd", "-t"));
            cmd.addAll(List.of(opts));
            cmd.addAll(List.of("-k", socket.toString(), img.toString()));
            process = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .redirectError(ProcessBuilder.Redirect.to(new File("/dev/null"))).start();
            awaitSocket(socket, process);
        }

        String uri() {
            return Servers.uri(socket);
        }

        @Override
        public void close() throws InterruptedException {
            process.destroy();
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        }
    }

    /** Our server on {@code socket} over {@code img} (opened here, closed with the server). */
    static final class Ours implements AutoCloseable {
        final NbdServer server;
        final BlockDevice device;
        final Path socket;

        Ours(Path img, String format, boolean writable, Path socket, Consumer<NbdServer.Builder> options) throws IOException {
            this.socket = socket;
            this.device = format.equals("raw") ? RawImage.open(img, !writable)
                    : Qcow2Image.open(img, writable ? OpenOptions.readWrite() : OpenOptions.readOnly());
            try {
                NbdServer.Builder b = NbdServer.builder(device).unixSocket(socket).persistent(true).readOnly(!writable);
                options.accept(b);
                server = b.start();
            } catch (IOException | RuntimeException e) {
                device.close();
                throw e;
            }
        }

        String uri() {
            return Servers.uri(socket);
        }

        @Override
        public void close() throws IOException {
            try {
                server.close();
            } finally {
                device.close();
            }
        }
    }

    /**
     * Until qemu-nbd accepts connections on {@code socket}: it makes the socket file before it
     * listens, so a client started when the file appears may be refused ("Connection refused"
     * from nbdinfo under load). A probe that connects and hangs up is harmless with -t.
     */
    static void awaitSocket(Path socket, Process p) throws IOException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!accepts(socket)) {
            if (!p.isAlive() || System.nanoTime() > deadline) {
                throw new IOException("qemu-nbd did not start (exit " + (p.isAlive() ? "none" : p.exitValue()) + ")");
            }
            try {
                Thread.sleep(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException(e);
            }
        }
    }

    private static boolean accepts(Path socket) {
        if (!Files.exists(socket)) {
            return false;
        }
        try (java.nio.channels.SocketChannel probe = java.nio.channels.SocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            return probe.connect(java.net.UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            return false; // refused: not listening yet
        }
    }

    /** nbdinfo ARGS URI, its output with the socket's name taken out (so two servers compare). */
    static String nbdinfo(String uri, String... args) {
        List<String> cmd = new ArrayList<>(List.of("nbdinfo"));
        cmd.addAll(List.of(args));
        cmd.add(uri);
        Qemu.Result r = Qemu.run(cmd.toArray(new String[0])).assertOk();
        return r.stdout().replace(uri, "URI");
    }
}
