package io.qcow4j.nbd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import io.qcow4j.nbd.protocol.Nbd;
import io.qcow4j.testing.Qemu;

/**
 * Many clients and bad ones: libnbd's Python binding reads over 8 connections while another
 * sends malformed and out-of-range requests and a third drops mid-write; raw sockets send
 * garbage. Each bad client gets the spec's error or is dropped; the others are served and
 * the image stays clean and unchanged.
 */
@Timeout(120)
class NbdClientsTest {
    @TempDir
    Path dir;

    private void run(String... cmd) {
        Qemu.run(dir, Duration.ofSeconds(60), cmd).assertOk();
    }

    private Path image() {
        run("qemu-img", "create", "-q", "-f", "qcow2", "img.qcow2", "32M");
        run("qemu-io", "-c", "write -P 1 0 3M", "-c", "write -P 2 8M 2M", "-c", "write -z 12M 1M",
                "-c", "write -P 3 31M 1M", "img.qcow2");
        run("qemu-img", "convert", "-O", "raw", "img.qcow2", "img.raw");
        return dir.resolve("img.qcow2");
    }

    @Test
    void pythonClientsGoodAndBad() throws Exception {
        Path img = image();
        Path script = dir.resolve("nbd-clients.py");
        try (var in = getClass().getResourceAsStream("nbd-clients.py")) {
            Files.copy(in, script);
        }
        Path socket = dir.resolve("o.sock");
        try (Servers.Ours o = new Servers.Ours(img, "qcow2", true, socket, b -> b.shared(0))) {
            Qemu.Result r = Qemu.run(Duration.ofSeconds(60), "/usr/bin/python3", script.toString(), o.uri(),
                    socket.toString(), dir.resolve("img.raw").toString());
            assertEquals(0, r.exitCode(), r.describe());
            assertEquals("OK", r.stdout().strip());
        }
        assertEquals(0, Qemu.check(img).exitCode());
        assertTrue(Qemu.compare(img, dir.resolve("img.raw")));
    }

    @Test
    void garbageDropsOnlyItsSender() throws Exception {
        Path img = image();
        Path socket = dir.resolve("o.sock");
        try (Servers.Ours o = new Servers.Ours(img, "qcow2", true, socket, b -> b.shared(0))) {
            try (Raw good = new Raw(socket)) {
                good.go();
                // bad magic in the option phase
                try (Raw r = new Raw(socket)) {
                    r.hello();
                    r.send(ByteBuffer.allocate(16).putLong(0x1234).putInt(Nbd.OPT_GO).putInt(0).flip());
                    r.assertDropped();
                }
                // unknown client flags
                try (Raw r = new Raw(socket)) {
                    r.read(18);
                    r.send(ByteBuffer.allocate(4).putInt(0x80).flip());
                    r.assertDropped();
                }
                // an option far over any sane size: skipped and refused, the session goes on
                try (Raw r = new Raw(socket)) {
                    r.hello();
                    r.send(ByteBuffer.allocate(16).putLong(Nbd.IHAVEOPT).putInt(99).putInt(2 << 20).flip());
                    r.send(ByteBuffer.allocate(2 << 20));
                    assertEquals(Nbd.REP_ERR_TOO_BIG, r.optionReply());
                    r.go();
                    r.request(0, Nbd.CMD_READ, 0, 4096);
                    assertEquals(0, r.simpleReply());
                }
                // bad magic in a request
                try (Raw r = new Raw(socket)) {
                    r.go();
                    r.send(ByteBuffer.allocate(28).putInt(0xdeadbeef).position(28).flip());
                    r.assertDropped();
                }
                // a truncated request, then a write whose payload never comes
                try (Raw r = new Raw(socket)) {
                    r.go();
                    r.send(ByteBuffer.allocate(10).putInt(Nbd.REQUEST_MAGIC).flip());
                }
                try (Raw r = new Raw(socket)) {
                    r.go();
                    r.request(0, Nbd.CMD_WRITE, 8 << 20, 1 << 20);
                    r.send(ByteBuffer.wrap(new byte[4096]));
                }
                // a write over the maximum: its payload is read and dropped, EOVERFLOW, the connection goes on
                try (Raw r = new Raw(socket)) {
                    r.go();
                    r.request(0, Nbd.CMD_WRITE, 0, 40 << 20);
                    r.send(ByteBuffer.allocate(40 << 20));
                    assertEquals(Nbd.EOVERFLOW, r.simpleReply());
                    r.request(0, Nbd.CMD_READ, 0, 1 << 20);
                    assertEquals(0, r.simpleReply());
                }
                // the first client was served throughout
                good.request(0, Nbd.CMD_READ, 8 << 20, 4096);
                assertEquals(0, good.simpleReply());
                ByteBuffer data = good.read(4096);
                assertEquals(2, data.get(0));
            }
            assertEquals("33554432", Servers.nbdinfo(o.uri(), "--size").strip());
        }
        assertEquals(0, Qemu.check(img).exitCode());
        assertTrue(Qemu.compare(img, dir.resolve("img.raw")));
    }

    /** A hand-driven client: fixed newstyle, OPT_GO, simple replies. */
    private static final class Raw implements AutoCloseable {
        private final SocketChannel ch;

        Raw(Path socket) throws IOException {
            ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            ch.connect(UnixDomainSocketAddress.of(socket));
        }

        void hello() throws IOException {
            ByteBuffer h = read(18);
            assertEquals(Nbd.NBDMAGIC, h.getLong());
            assertEquals(Nbd.IHAVEOPT, h.getLong());
            send(ByteBuffer.allocate(4).putInt(Nbd.FLAG_C_FIXED_NEWSTYLE | Nbd.FLAG_C_NO_ZEROES).flip());
        }

        void go() throws IOException {
            if (ch.isConnected() && !hadHello) {
                hello();
                hadHello = true;
            }
            send(ByteBuffer.allocate(22).putLong(Nbd.IHAVEOPT).putInt(Nbd.OPT_GO).putInt(6).putInt(0).putShort((short) 0).flip());
            int type;
            do {
                type = optionReply();
            } while (type == Nbd.REP_INFO);
            assertEquals(Nbd.REP_ACK, type);
        }

        private boolean hadHello;

        int optionReply() throws IOException {
            ByteBuffer h = read(20);
            assertEquals(Nbd.OPTION_REPLY_MAGIC, h.getLong());
            h.getInt();
            int type = h.getInt();
            read(h.getInt());
            hadHello = true;
            return type;
        }

        void request(int flags, int type, long offset, int length) throws IOException {
            send(ByteBuffer.allocate(28).putInt(Nbd.REQUEST_MAGIC).putShort((short) flags).putShort((short) type)
                    .putLong(7).putLong(offset).putInt(length).flip());
        }

        int simpleReply() throws IOException {
            ByteBuffer r = read(16);
            assertEquals(Nbd.SIMPLE_REPLY_MAGIC, r.getInt());
            int error = r.getInt();
            assertEquals(7, r.getLong());
            return error;
        }

        void send(ByteBuffer b) throws IOException {
            while (b.hasRemaining()) {
                ch.write(b);
            }
        }

        ByteBuffer read(int n) throws IOException {
            ByteBuffer b = ByteBuffer.allocate(n);
            while (b.hasRemaining()) {
                if (ch.read(b) < 0) {
                    throw new EOFException();
                }
            }
            return b.flip();
        }

        void assertDropped() {
            assertThrows(IOException.class, () -> read(1));
        }

        @Override
        public void close() throws IOException {
            ch.close();
        }
    }
}
