package io.qcow4j.nbd.client;

import static io.qcow4j.nbd.protocol.Nbd.*;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A scripted NBD server on a Unix socket, for the client's behaviour against servers that
 * break the protocol (QEMU's and nbdkit's servers do not). It negotiates like a modern
 * server (fixed newstyle, structured replies, base:allocation as context id 1, a 1 MiB
 * export) unless the script takes over earlier; then the script plays the transmission
 * phase. One connection, served on a daemon thread.
 */
final class FakeServer implements AutoCloseable {
    static final long SIZE = 1 << 20;
    static final int BASE_ID = 1;

    /** What the server does; it may throw when the client hangs up. */
    interface Script {
        void run(DataInputStream in, DataOutputStream out) throws IOException;
    }

    /** One request as the client sent it. */
    record Request(int flags, int type, long cookie, long offset, int length) {
    }

    private final ServerSocketChannel listener;
    private final Path socket;
    private final Thread thread;
    private volatile SocketChannel connection;

    private FakeServer(Path dir, Script script) throws IOException {
        socket = dir.resolve("fake.sock");
        Files.deleteIfExists(socket);
        listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        listener.bind(UnixDomainSocketAddress.of(socket));
        thread = new Thread(() -> {
            try (SocketChannel c = listener.accept()) {
                connection = c;
                script.run(new DataInputStream(Channels.newInputStream(c)),
                        new DataOutputStream(Channels.newOutputStream(c)));
            } catch (IOException e) {
                // the client hung up: the end of every script
            }
        }, "fake-nbd-server");
        thread.setDaemon(true);
        thread.start();
    }

    /** A server that negotiates normally, then runs {@code transmission}. */
    static FakeServer modern(Path dir, Script transmission) throws IOException {
        return new FakeServer(dir, (in, out) -> {
            greet(in, out);
            negotiate(in, out, SIZE, null);
            transmission.run(in, out);
        });
    }

    /** A server that runs {@code script} from the first byte on. */
    static FakeServer raw(Path dir, Script script) throws IOException {
        return new FakeServer(dir, script);
    }

    NbdUri uri() {
        return NbdUri.unix(socket, "");
    }

    static void greet(DataInputStream in, DataOutputStream out) throws IOException {
        out.writeLong(NBDMAGIC);
        out.writeLong(IHAVEOPT);
        out.writeShort(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
        out.flush();
        in.readInt(); // client flags
    }

    /**
     * Answers options up to OPT_GO: structured replies yes, base:allocation as id 1, the
     * export of {@code size} bytes, with {@code blockSizes} (min, preferred, max) if given.
     */
    static void negotiate(DataInputStream in, DataOutputStream out, long size, int[] blockSizes) throws IOException {
        while (true) {
            if (in.readLong() != IHAVEOPT) {
                throw new IOException("bad option magic");
            }
            int option = in.readInt();
            byte[] data = new byte[in.readInt()];
            in.readFully(data);
            switch (option) {
                case OPT_STRUCTURED_REPLY -> optionReply(out, option, REP_ACK, new byte[0]);
                case OPT_SET_META_CONTEXT -> {
                    if (new String(data, StandardCharsets.ISO_8859_1).contains(CONTEXT_BASE_ALLOCATION)) {
                        byte[] name = CONTEXT_BASE_ALLOCATION.getBytes(StandardCharsets.UTF_8);
                        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 + name.length).putInt(BASE_ID).put(name);
                        optionReply(out, option, REP_META_CONTEXT, b.array());
                    }
                    optionReply(out, option, REP_ACK, new byte[0]);
                }
                case OPT_GO -> {
                    optionReply(out, option, REP_INFO,
                            java.nio.ByteBuffer.allocate(12).putShort((short) INFO_EXPORT).putLong(size)
                                    .putShort((short) (FLAG_HAS_FLAGS | FLAG_SEND_FLUSH)).array());
                    if (blockSizes != null) {
                        optionReply(out, option, REP_INFO, java.nio.ByteBuffer.allocate(14)
                                .putShort((short) INFO_BLOCK_SIZE).putInt(blockSizes[0]).putInt(blockSizes[1])
                                .putInt(blockSizes[2]).array());
                    }
                    optionReply(out, option, REP_ACK, new byte[0]);
                    return;
                }
                default -> optionReply(out, option, REP_ERR_UNSUP, new byte[0]);
            }
        }
    }

    static void optionReply(DataOutputStream out, int option, int type, byte[] data) throws IOException {
        out.writeLong(OPTION_REPLY_MAGIC);
        out.writeInt(option);
        out.writeInt(type);
        out.writeInt(data.length);
        out.write(data);
        out.flush();
    }

    static Request request(DataInputStream in) throws IOException {
        if (in.readInt() != REQUEST_MAGIC) {
            throw new IOException("bad request magic");
        }
        Request r = new Request(in.readUnsignedShort(), in.readUnsignedShort(), in.readLong(), in.readLong(), in.readInt());
        if (r.type() == CMD_WRITE) {
            in.skipNBytes(r.length());
        }
        return r;
    }

    /** A structured chunk header. */
    static void chunk(DataOutputStream out, int flags, int type, long cookie, int length) throws IOException {
        out.writeInt(STRUCTURED_REPLY_MAGIC);
        out.writeShort(flags);
        out.writeShort(type);
        out.writeLong(cookie);
        out.writeInt(length);
    }

    /** A correct reply to a read: one data chunk of {@code fill} bytes, done. */
    static void goodRead(DataOutputStream out, Request r, int fill) throws IOException {
        chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_DATA, r.cookie(), 8 + r.length());
        out.writeLong(r.offset());
        byte[] data = new byte[r.length()];
        java.util.Arrays.fill(data, (byte) fill);
        out.write(data);
        out.flush();
    }

    /** Closes the connection at once. */
    void drop() throws IOException {
        SocketChannel c = connection;
        if (c != null) {
            c.close();
        }
    }

    @Override
    public void close() throws IOException {
        drop();
        listener.close();
        Files.deleteIfExists(socket);
    }
}
