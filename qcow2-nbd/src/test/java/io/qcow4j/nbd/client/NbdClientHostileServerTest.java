package io.qcow4j.nbd.client;

import static io.qcow4j.nbd.protocol.Nbd.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * A server that breaks the protocol, each way at a time: the client fails with an
 * IOException that says what the server did, within seconds (never a hang), allocates
 * nothing the server asked for, and refuses every later call on that connection. A server
 * that reports an error for one request fails that request only.
 */
class NbdClientHostileServerTest {
    private static final Duration LIMIT = Duration.ofSeconds(10);

    @TempDir
    Path tmp;

    /** Reads 4 KiB at 0 from a server whose reply to the read is {@code reply}; returns the failure. */
    private IOException readFails(Reply reply) throws IOException {
        try (FakeServer server = FakeServer.modern(tmp, (in, out) -> {
            FakeServer.Request r = FakeServer.request(in);
            reply.send(out, r);
            out.flush();
            in.read(); // wait for the client to hang up
        }); NbdClient client = NbdClient.connect(server.uri(), NbdClient.Options.defaults())) {
            IOException e = failsWithin(() -> client.read(0, ByteBuffer.allocate(4096)));
            IOException again = assertThrows(IOException.class, () -> client.read(0, ByteBuffer.allocate(1)));
            assertTrue(again.getMessage().contains("unusable after an earlier error"), again.getMessage());
            return e;
        }
    }

    private interface Reply {
        void send(DataOutputStream out, FakeServer.Request r) throws IOException;
    }

    private static IOException failsWithin(Executable call) {
        return assertTimeoutPreemptively(LIMIT, () -> assertThrows(IOException.class, call));
    }

    private static void assertSays(IOException e, String words) {
        assertTrue(e.getMessage().contains(words), "'" + e.getMessage() + "' should say '" + words + "'");
        assertFalse(e instanceof NbdException, "a protocol error, not a server's error reply");
    }

    @Test
    void badReplyMagic() throws IOException {
        assertSays(readFails((out, r) -> out.writeInt(0x12345678)), "bad reply magic 0x12345678");
    }

    @Test
    void unknownCookie() throws IOException {
        assertSays(readFails((out, r) -> FakeServer.chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_NONE, r.cookie() + 99, 0)),
                "unknown cookie");
    }

    @Test
    void dataOutsideTheRead() throws IOException {
        assertSays(readFails((out, r) -> {
            FakeServer.chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_DATA, r.cookie(), 8 + 16);
            out.writeLong(r.offset() + r.length() - 8);
            out.write(new byte[16]);
        }), "outside the read");
    }

    /** A 4 GiB chunk length: refused from the header, nothing allocated or awaited. */
    @Test
    void hugeChunkLength() throws IOException {
        assertSays(readFails((out, r) -> {
            FakeServer.chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_DATA, r.cookie(), 0xfffffff0);
            out.writeLong(r.offset());
        }), "outside the read");
    }

    @Test
    void replyThatDoesNotCoverTheRead() throws IOException {
        assertSays(readFails((out, r) -> {
            FakeServer.chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_DATA, r.cookie(), 8 + 100);
            out.writeLong(r.offset());
            out.write(new byte[100]);
        }), "covered 100 bytes");
    }

    @Test
    void overlappingChunks() throws IOException {
        assertSays(readFails((out, r) -> {
            FakeServer.chunk(out, 0, REPLY_TYPE_OFFSET_HOLE, r.cookie(), 12);
            out.writeLong(r.offset());
            out.writeInt(2048);
            FakeServer.chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_HOLE, r.cookie(), 12);
            out.writeLong(r.offset() + 1024);
            out.writeInt(3072);
        }), "overlapping chunks");
    }

    @Test
    void chunkTypeUnknown() throws IOException {
        assertSays(readFails((out, r) -> FakeServer.chunk(out, REPLY_FLAG_DONE, 77, r.cookie(), 0)),
                "unknown reply chunk type 77");
    }

    @Test
    void simpleReplyWithDataAfterStructuredReplies() throws IOException {
        assertSays(readFails((out, r) -> {
            out.writeInt(SIMPLE_REPLY_MAGIC);
            out.writeInt(0);
            out.writeLong(r.cookie());
        }), "simple reply with data");
    }

    @Test
    void serverDiesMidReply() throws IOException {
        assertSays(readFails((out, r) -> {
            FakeServer.chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_DATA, r.cookie(), 8 + r.length());
            out.writeLong(r.offset());
            out.write(new byte[100]);
            out.flush();
            throw new IOException("hang up");
        }), "closed the connection");
    }

    /** Block status replies are checked too: an extent of length 0 never advances. */
    @Test
    void extentOfLengthZero() throws IOException {
        try (FakeServer server = FakeServer.modern(tmp, (in, out) -> {
            FakeServer.Request r = FakeServer.request(in);
            FakeServer.chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, r.cookie(), 4 + 16);
            out.writeInt(FakeServer.BASE_ID);
            out.writeInt(4096);
            out.writeInt(0);
            out.writeInt(0);
            out.writeInt(0);
            out.flush();
            in.read();
        }); NbdClient client = NbdClient.connect(server.uri(), NbdClient.Options.defaults())) {
            assertSays(failsWithin(() -> client.blockStatus(0, FakeServer.SIZE)), "extent of length 0");
        }
    }

    @Test
    void statusForAContextNotNegotiated() throws IOException {
        try (FakeServer server = FakeServer.modern(tmp, (in, out) -> {
            FakeServer.Request r = FakeServer.request(in);
            FakeServer.chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, r.cookie(), 12);
            out.writeInt(42);
            out.writeInt(4096);
            out.writeInt(0);
            out.flush();
            in.read();
        }); NbdClient client = NbdClient.connect(server.uri(), NbdClient.Options.defaults())) {
            assertSays(failsWithin(() -> client.blockStatus(0, FakeServer.SIZE)), "id 42, which was not negotiated");
        }
    }

    /** More than was asked for (past the request, past the export): clipped; fewer: asked again. */
    @Test
    void extentsPastTheRequestAreClipped() throws IOException {
        try (FakeServer server = FakeServer.modern(tmp, (in, out) -> {
            while (true) {
                FakeServer.Request r = FakeServer.request(in);
                if (r.type() == CMD_DISC) {
                    return;
                }
                FakeServer.chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, r.cookie(), 4 + 3 * 8);
                out.writeInt(FakeServer.BASE_ID);
                for (int i = 0; i < 3; i++) {
                    out.writeInt(1 << 20); // 1 MiB each: far past the request and the 1 MiB export
                    out.writeInt(i == 0 ? STATE_HOLE | STATE_ZERO : 0);
                }
                out.flush();
            }
        }); NbdClient client = NbdClient.connect(server.uri(), NbdClient.Options.defaults())) {
            List<NbdClient.Extent> list = assertTimeoutPreemptively(LIMIT,
                    () -> client.extents(CONTEXT_BASE_ALLOCATION, 4096, 8192));
            assertEquals(List.of(new NbdClient.Extent(4096, 8192, 3)), list);
        }
    }

    /** An error reply fails that request; the connection goes on. */
    @Test
    void errorChunkFailsOneRequestOnly() throws IOException {
        try (FakeServer server = FakeServer.modern(tmp, (in, out) -> {
            FakeServer.Request r = FakeServer.request(in);
            byte[] message = "disk on fire".getBytes();
            FakeServer.chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_ERROR, r.cookie(), 6 + message.length);
            out.writeInt(EIO);
            out.writeShort(message.length);
            out.write(message);
            out.flush();
            FakeServer.goodRead(out, FakeServer.request(in), 7);
            in.read();
        }); NbdClient client = NbdClient.connect(server.uri(), NbdClient.Options.defaults())) {
            NbdException e = assertTimeoutPreemptively(LIMIT,
                    () -> assertThrows(NbdException.class, () -> client.read(0, ByteBuffer.allocate(512))));
            assertEquals(EIO, e.error());
            assertEquals("Input/output error (server reported: disk on fire)", e.getMessage());
            ByteBuffer b = ByteBuffer.allocate(512);
            client.read(512, b);
            byte[] sevens = new byte[512];
            java.util.Arrays.fill(sevens, (byte) 7);
            assertArrayEquals(sevens, b.array());
        }
    }

    // ---------------------------------------------------------------- the handshake

    private IOException connectFails(FakeServer.Script script, NbdClient.Options options) throws IOException {
        try (FakeServer server = FakeServer.raw(tmp, script)) {
            return failsWithin(() -> NbdClient.connect(server.uri(), options).close());
        }
    }

    @Test
    void serverThatNeverGreets() throws IOException {
        IOException e = connectFails((in, out) -> in.read(),
                NbdClient.Options.defaults().withHandshakeTimeout(Duration.ofMillis(300)));
        assertSays(e, "did not complete the handshake within");
    }

    @Test
    void notAnNbdServer() throws IOException {
        IOException e = connectFails((in, out) -> {
            out.writeBytes("SSH-2.0-OpenSSH_9.2\r\n");
            out.flush();
            in.read();
        }, NbdClient.Options.defaults());
        assertSays(e, "not an NBD server");
    }

    @Test
    void optionReplyTooLong() throws IOException {
        IOException e = connectFails((in, out) -> {
            FakeServer.greet(in, out);
            in.readLong();
            int option = in.readInt();
            in.skipNBytes(in.readInt());
            out.writeLong(OPTION_REPLY_MAGIC);
            out.writeInt(option);
            out.writeInt(REP_ACK);
            out.writeInt(1 << 30);
            out.flush();
            in.read();
        }, NbdClient.Options.defaults());
        assertSays(e, "option reply of 1073741824 bytes");
    }

    @Test
    void invalidBlockSizes() throws IOException {
        IOException e = connectFails((in, out) -> {
            FakeServer.greet(in, out);
            FakeServer.negotiate(in, out, FakeServer.SIZE, new int[] {3, 4096, 65536});
            in.read();
        }, NbdClient.Options.defaults());
        assertSays(e, "invalid block sizes: minimum 3");
    }

    @Test
    void exportSizeOver8EiB() throws IOException {
        IOException e = connectFails((in, out) -> {
            FakeServer.greet(in, out);
            FakeServer.negotiate(in, out, -4096, null);
            in.read();
        }, NbdClient.Options.defaults());
        assertSays(e, "is too large");
    }

    /**
     * A server without OPT_GO (it answers ERR_UNSUP) gets OPT_EXPORT_NAME; the structured
     * replies and meta context it accepted before still hold.
     */
    @Test
    void serverWithoutGoGetsExportName() throws IOException {
        try (FakeServer server = FakeServer.raw(tmp, (in, out) -> {
            FakeServer.greet(in, out);
            while (true) {
                in.readLong();
                int option = in.readInt();
                in.skipNBytes(in.readInt());
                if (option == OPT_EXPORT_NAME) {
                    out.writeLong(FakeServer.SIZE);
                    out.writeShort(FLAG_HAS_FLAGS);
                    out.flush();
                    break;
                } else if (option == OPT_GO) {
                    FakeServer.optionReply(out, option, REP_ERR_UNSUP, new byte[0]);
                } else if (option == OPT_SET_META_CONTEXT) {
                    byte[] name = CONTEXT_BASE_ALLOCATION.getBytes();
                    FakeServer.optionReply(out, option, REP_META_CONTEXT,
                            ByteBuffer.allocate(4 + name.length).putInt(FakeServer.BASE_ID).put(name).array());
                    FakeServer.optionReply(out, option, REP_ACK, new byte[0]);
                } else {
                    FakeServer.optionReply(out, option, REP_ACK, new byte[0]);
                }
            }
            FakeServer.Request r = FakeServer.request(in);
            FakeServer.chunk(out, REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, r.cookie(), 12);
            out.writeInt(FakeServer.BASE_ID);
            out.writeInt(r.length());
            out.writeInt(STATE_HOLE | STATE_ZERO);
            out.flush();
            in.read();
        }); NbdClient client = NbdClient.connect(server.uri(), NbdClient.Options.defaults())) {
            assertTrue(client.structuredReplies());
            assertEquals(List.of(CONTEXT_BASE_ALLOCATION), client.metaContexts());
            assertEquals(FakeServer.SIZE, client.size());
            assertTrue(assertTimeoutPreemptively(LIMIT, () -> client.blockStatus(0, FakeServer.SIZE)).zero());
        }
    }

    @Test
    void missingExportIsTheServersError() throws IOException {
        try (FakeServer server = FakeServer.raw(tmp, (in, out) -> {
            FakeServer.greet(in, out);
            while (true) {
                in.readLong();
                int option = in.readInt();
                in.skipNBytes(in.readInt());
                if (option == OPT_GO) {
                    FakeServer.optionReply(out, option, REP_ERR_UNKNOWN, "no export named 'vda'".getBytes());
                } else {
                    FakeServer.optionReply(out, option, REP_ACK, new byte[0]);
                }
            }
        })) {
            NbdException e = assertTimeoutPreemptively(LIMIT, () -> assertThrows(NbdException.class,
                    () -> NbdClient.connect(server.uri(), NbdClient.Options.defaults())));
            assertEquals(REP_ERR_UNKNOWN, e.error());
            assertEquals("Requested export not available\nserver reported: no export named 'vda'", e.getMessage());
        }
    }
}
