package io.qcow4j.nbd.server;

import static io.qcow4j.nbd.protocol.Nbd.REPLY_FLAG_DONE;
import static io.qcow4j.nbd.protocol.Nbd.REPLY_TYPE_BLOCK_STATUS;
import static io.qcow4j.nbd.protocol.Nbd.REPLY_TYPE_ERROR;
import static io.qcow4j.nbd.protocol.Nbd.REPLY_TYPE_NONE;
import static io.qcow4j.nbd.protocol.Nbd.REPLY_TYPE_OFFSET_DATA;
import static io.qcow4j.nbd.protocol.Nbd.REPLY_TYPE_OFFSET_HOLE;
import static io.qcow4j.nbd.protocol.Nbd.SIMPLE_REPLY_MAGIC;
import static io.qcow4j.nbd.protocol.Nbd.STRUCTURED_REPLY_MAGIC;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** The transmission phase's reply messages, as byte buffers ready to write. */
final class Replies {
    static final int SIMPLE_SIZE = 16;
    static final int CHUNK_HEADER = 20;
    /** Longest error message sent: the spec's advice for strings. */
    private static final int MAX_MESSAGE = 256;

    private Replies() {
    }

    /** Simple reply: magic, error, handle (no payload here; a read's data follows separately). */
    static ByteBuffer simple(long handle, int error) {
        return ByteBuffer.allocate(SIMPLE_SIZE).putInt(SIMPLE_REPLY_MAGIC).putInt(error).putLong(handle).flip();
    }

    /** Structured chunk header announcing {@code length} payload bytes. */
    static ByteBuffer chunkHeader(ByteBuffer dst, long handle, boolean done, int type, int length) {
        return dst.putInt(STRUCTURED_REPLY_MAGIC).putShort((short) (done ? REPLY_FLAG_DONE : 0))
                .putShort((short) type).putLong(handle).putInt(length);
    }

    static ByteBuffer none(long handle) {
        return chunkHeader(ByteBuffer.allocate(CHUNK_HEADER), handle, true, REPLY_TYPE_NONE, 0).flip();
    }

    /** OFFSET_DATA header and offset; the {@code dataLength} bytes follow. */
    static ByteBuffer dataHeader(long handle, boolean done, long offset, int dataLength) {
        ByteBuffer b = ByteBuffer.allocate(CHUNK_HEADER + 8);
        return chunkHeader(b, handle, done, REPLY_TYPE_OFFSET_DATA, dataLength + 8).putLong(offset).flip();
    }

    static ByteBuffer hole(long handle, boolean done, long offset, int length) {
        ByteBuffer b = ByteBuffer.allocate(CHUNK_HEADER + 12);
        return chunkHeader(b, handle, done, REPLY_TYPE_OFFSET_HOLE, 12).putLong(offset).putInt(length).flip();
    }

    static ByteBuffer error(long handle, int error, String message) {
        byte[] m = message == null ? new byte[0] : message.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(m.length, MAX_MESSAGE);
        ByteBuffer b = ByteBuffer.allocate(CHUNK_HEADER + 6 + n);
        chunkHeader(b, handle, true, REPLY_TYPE_ERROR, 6 + n).putInt(error).putShort((short) n).put(m, 0, n);
        return b.flip();
    }

    /** BLOCK_STATUS chunk: the context id, then (length, flags) pairs. */
    static ByteBuffer blockStatus(long handle, boolean done, int contextId, ExtentList extents) {
        int n = extents.size();
        ByteBuffer b = ByteBuffer.allocate(CHUNK_HEADER + 4 + 8 * n);
        chunkHeader(b, handle, done, REPLY_TYPE_BLOCK_STATUS, 4 + 8 * n).putInt(contextId);
        for (int i = 0; i < n; i++) {
            b.putInt((int) extents.length(i)).putInt(extents.flags(i));
        }
        return b.flip();
    }
}
