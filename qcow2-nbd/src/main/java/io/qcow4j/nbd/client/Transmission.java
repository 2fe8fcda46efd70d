package io.qcow4j.nbd.client;

import static io.qcow4j.nbd.protocol.Nbd.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The transmission phase: requests go out with a cookie each, several may be in flight,
 * and replies (simple, or structured chunks in any order) are matched to them by cookie.
 * Driven by the calling thread alone: it sends, then reads replies until the request it
 * waits for is done. Every reply is checked against its request before anything of it is
 * used; a server that breaks the protocol breaks the connection (every later call fails
 * with the first error), a server that reports an error fails that request only.
 */
final class Transmission {
    /** More error chunks than this in one reply is a server gone wrong. */
    private static final int MAX_ERROR_CHUNKS = 16;
    /** Extents kept per context and reply; the rest is read and dropped (the caller asks again). */
    static final int MAX_EXTENTS = 1 << 16;
    private static final byte[] ZEROS = new byte[64 * 1024];

    /** One request in flight. */
    static final class Request {
        final int type;
        final int flags;
        final long offset;
        final int length;
        final long cookie;
        /** READ: where the data goes, position 0 at {@code offset}, limit {@code length}. */
        ByteBuffer dst;
        /** READ over structured replies: what the chunks covered so far (start to end). */
        private TreeMap<Long, Long> covered;
        private long coveredBytes;
        /** BLOCK_STATUS: extents by context name. */
        final Map<String, List<NbdClient.Extent>> extents = new HashMap<>();
        private int errorChunks;
        private boolean chunks;
        /** The first error the server reported, or null. */
        NbdException error;
        boolean done;

        Request(int type, int flags, long offset, int length, long cookie) {
            this.type = type;
            this.flags = flags;
            this.offset = offset;
            this.length = length;
            this.cookie = cookie;
        }

        /** The server's error for this request, as an {@link NbdException} saying {@code what} failed. */
        void throwIfFailed(String what) throws NbdException {
            if (error != null) {
                throw new NbdException(what + " failed: " + error.getMessage(), error.error());
            }
        }

        long end() {
            return offset + Integer.toUnsignedLong(length);
        }
    }

    private final Wire wire;
    private final boolean structured;
    private final Map<Integer, String> contexts;
    private final long size;
    private final Map<Long, Request> pending = new HashMap<>();
    private long nextCookie = 1;
    private IOException broken;

    Transmission(Wire wire, boolean structured, Map<Integer, String> contexts, long size) {
        this.wire = wire;
        this.structured = structured;
        this.contexts = contexts;
        this.size = size;
    }

    /** The first protocol or connection error, after which nothing more is sent; null while healthy. */
    IOException broken() {
        return broken;
    }

    int inFlight() {
        return pending.size();
    }

    /** Queues a request (and its payload, for WRITE); {@link #await} or {@link #awaitAny} sends it. */
    Request submit(int type, int flags, long offset, int length, ByteBuffer payload) throws IOException {
        checkHealthy();
        Request r = new Request(type, flags, offset, length, nextCookie++);
        try {
            wire.writeInt(REQUEST_MAGIC);
            wire.writeShort(flags);
            wire.writeShort(type);
            wire.writeLong(r.cookie);
            wire.writeLong(offset);
            wire.writeInt(length);
            if (payload != null) {
                wire.write(payload);
            }
        } catch (IOException e) {
            throw fail(e);
        }
        if (type != CMD_DISC) {
            pending.put(r.cookie, r);
        }
        return r;
    }

    /** Sends what is queued without waiting for anything. */
    void flush() throws IOException {
        checkHealthy();
        try {
            wire.flush();
        } catch (IOException e) {
            throw fail(e);
        }
    }

    /** Sends what is queued and reads replies until {@code r} is done. */
    void await(Request r) throws IOException {
        flush();
        while (!r.done) {
            receive();
        }
    }

    /** Sends what is queued and reads replies until some request is done; returns it. */
    Request awaitAny() throws IOException {
        flush();
        while (true) {
            Request r = receive();
            if (r != null) {
                return r;
            }
        }
    }

    private void checkHealthy() throws IOException {
        if (broken != null) {
            throw new IOException("the NBD connection is unusable after an earlier error: " + broken.getMessage(), broken);
        }
    }

    /** Marks the connection broken by {@code e} (the first error wins) and returns it. */
    IOException fail(IOException e) {
        if (broken == null) {
            broken = e;
        }
        return e;
    }

    private IOException protocol(String message) {
        return fail(new IOException("NBD protocol error: " + message));
    }

    /** Reads one reply (simple) or chunk (structured); returns the request it completed, or null. */
    private Request receive() throws IOException {
        checkHealthy();
        if (pending.isEmpty()) {
            throw new IllegalStateException("waiting for a reply with no request in flight");
        }
        try {
            int magic = wire.readInt();
            Request r;
            if (magic == SIMPLE_REPLY_MAGIC) {
                r = simpleReply();
            } else if (magic == STRUCTURED_REPLY_MAGIC && structured) {
                r = chunk();
            } else {
                throw protocol(String.format("bad reply magic 0x%08x", magic));
            }
            if (r.done) {
                pending.remove(r.cookie);
                return r;
            }
            return null;
        } catch (IOException e) {
            throw fail(e);
        }
    }

    private Request request(long cookie) throws IOException {
        Request r = pending.get(cookie);
        if (r == null) {
            throw protocol("reply for unknown cookie " + Long.toUnsignedString(cookie));
        }
        return r;
    }

    private Request simpleReply() throws IOException {
        int error = wire.readInt();
        Request r = request(wire.readLong());
        if (r.chunks) {
            throw protocol("simple reply after structured chunks for cookie " + r.cookie);
        }
        if (error != 0) {
            r.error = error(r, error, "");
        } else if (r.type == CMD_READ) {
            if (structured) {
                throw protocol("simple reply with data to a read, after structured replies were negotiated");
            }
            wire.readFully(r.dst.duplicate().clear().limit(r.length));
        } else if (r.type == CMD_BLOCK_STATUS) {
            throw protocol("simple reply without extents to a block status request");
        }
        r.done = true;
        return r;
    }

    private Request chunk() throws IOException {
        int flags = wire.readShort() & 0xffff;
        int type = wire.readShort() & 0xffff;
        Request r = request(wire.readLong());
        long length = Integer.toUnsignedLong(wire.readInt());
        r.chunks = true;
        boolean done = (flags & REPLY_FLAG_DONE) != 0;
        switch (type) {
            case REPLY_TYPE_NONE -> {
                if (length != 0 || !done) {
                    throw protocol("NBD_REPLY_TYPE_NONE with length " + length + (done ? "" : " and without the done flag"));
                }
            }
            case REPLY_TYPE_OFFSET_DATA -> offsetData(r, length);
            case REPLY_TYPE_OFFSET_HOLE -> offsetHole(r, length);
            case REPLY_TYPE_BLOCK_STATUS -> blockStatus(r, length);
            default -> {
                if ((type & 0x8000) == 0) {
                    throw protocol("unknown reply chunk type " + type);
                }
                errorChunk(r, type, length);
            }
        }
        if (done) {
            finish(r);
        }
        return r;
    }

    private void offsetData(Request r, long length) throws IOException {
        if (r.type != CMD_READ) {
            throw protocol("data chunk in the reply to a request that is not a read");
        }
        if (length < 9) {
            throw protocol("data chunk of " + length + " bytes");
        }
        long at = wire.readLong();
        long n = length - 8;
        cover(r, at, n);
        int pos = (int) (at - r.offset);
        wire.readFully(r.dst.duplicate().clear().position(pos).limit(pos + (int) n));
    }

    private void offsetHole(Request r, long length) throws IOException {
        if (r.type != CMD_READ) {
            throw protocol("hole chunk in the reply to a request that is not a read");
        }
        if (length != 12) {
            throw protocol("hole chunk of " + length + " bytes (not 12)");
        }
        long at = wire.readLong();
        long n = Integer.toUnsignedLong(wire.readInt());
        if (n == 0) {
            throw protocol("hole chunk of length 0");
        }
        cover(r, at, n);
        int pos = (int) (at - r.offset);
        ByteBuffer d = r.dst.duplicate().clear().position(pos).limit(pos + (int) n);
        while (d.hasRemaining()) {
            d.put(ZEROS, 0, Math.min(ZEROS.length, d.remaining()));
        }
    }

    /** Checks that [at, at+n) lies in the request and overlaps nothing seen before, and records it. */
    private void cover(Request r, long at, long n) throws IOException {
        if (at < r.offset || at - r.offset > Integer.toUnsignedLong(r.length) || n > r.end() - at) {
            throw protocol("chunk for [" + at + ", +" + n + ") outside the read of [" + r.offset + ", +"
                    + Integer.toUnsignedLong(r.length) + ")");
        }
        if (r.covered == null) {
            r.covered = new TreeMap<>();
        }
        long end = at + n;
        Map.Entry<Long, Long> before = r.covered.floorEntry(at);
        Map.Entry<Long, Long> after = r.covered.ceilingEntry(at);
        if ((before != null && before.getValue() > at) || (after != null && after.getKey() < end)) {
            throw protocol("overlapping chunks in the reply to the read at " + r.offset);
        }
        long start = at;
        if (before != null && before.getValue() == at) {
            start = before.getKey();
            r.covered.remove(start);
        }
        if (after != null && after.getKey() == end) {
            end = after.getValue();
            r.covered.remove(after.getKey());
        }
        r.covered.put(start, end);
        r.coveredBytes += n;
    }

    private void blockStatus(Request r, long length) throws IOException {
        if (r.type != CMD_BLOCK_STATUS) {
            throw protocol("block status chunk in the reply to another request");
        }
        if (length < 12 || (length - 4) % 8 != 0) {
            throw protocol("block status chunk of " + length + " bytes");
        }
        int id = wire.readInt();
        String name = contexts.get(id);
        if (name == null) {
            throw protocol("block status for meta context id " + Integer.toUnsignedString(id) + ", which was not negotiated");
        }
        if (r.extents.containsKey(name)) {
            throw protocol("two block status chunks for meta context " + name + " in one reply");
        }
        List<NbdClient.Extent> list = new ArrayList<>();
        r.extents.put(name, list);
        long count = (length - 4) / 8;
        long pos = r.offset;
        long end = Math.min(r.end(), size);
        boolean one = (r.flags & CMD_FLAG_REQ_ONE) != 0;
        for (long i = 0; i < count; i++) {
            long n = Integer.toUnsignedLong(wire.readInt());
            int state = wire.readInt();
            if (n == 0) {
                throw protocol("extent of length 0 for meta context " + name + " at offset " + pos);
            }
            // past the request (a longer last extent, more than one with REQ_ONE): dropped, as is
            // anything past the cap; the caller asks again from where the list ends
            if (pos < end && list.size() < MAX_EXTENTS && !(one && i > 0)) {
                list.add(new NbdClient.Extent(pos, Math.min(n, end - pos), state));
            }
            pos += n;
        }
    }

    private void errorChunk(Request r, int type, long length) throws IOException {
        if (++r.errorChunks > MAX_ERROR_CHUNKS) {
            throw protocol("more than " + MAX_ERROR_CHUNKS + " error chunks in one reply");
        }
        if (length < 6) {
            throw protocol("error chunk of " + length + " bytes");
        }
        int error = wire.readInt();
        int messageLength = wire.readShort() & 0xffff;
        if (messageLength > length - 6) {
            throw protocol("error message of " + messageLength + " bytes in a chunk of " + length);
        }
        String message = new String(wire.readBytes(messageLength), StandardCharsets.UTF_8);
        long rest = length - 6 - messageLength;
        if (type == REPLY_TYPE_ERROR && rest != 0) {
            throw protocol("error chunk with " + rest + " bytes after its message");
        }
        if (type == REPLY_TYPE_ERROR_OFFSET) {
            if (rest != 8) {
                throw protocol("error-offset chunk with " + rest + " bytes after its message");
            }
            long at = wire.readLong();
            if (at < r.offset || at >= r.end()) {
                throw protocol("error at offset " + at + ", outside the request");
            }
        } else {
            wire.skip(rest); // an error type this client does not know: still an error
        }
        if (error == 0) {
            throw protocol("error chunk with error number 0");
        }
        if (r.error == null) {
            r.error = error(r, error, message);
        }
    }

    private void finish(Request r) throws IOException {
        r.done = true;
        if (r.error != null) {
            return;
        }
        if (r.type == CMD_READ && r.coveredBytes != Integer.toUnsignedLong(r.length)) {
            throw protocol("the reply to the read of [" + r.offset + ", +" + Integer.toUnsignedLong(r.length)
                    + ") covered " + r.coveredBytes + " bytes");
        }
    }

    private static NbdException error(Request r, int error, String message) {
        String text = strerror(error);
        return new NbdException(message.isEmpty() ? text : text + " (server reported: " + message + ")", error);
    }

    /** The spec's error numbers in the words of strerror (what qemu-img prints). */
    static String strerror(int error) {
        return switch (error) {
            case EPERM -> "Operation not permitted";
            case EIO -> "Input/output error";
            case ENOMEM -> "Cannot allocate memory";
            case EINVAL -> "Invalid argument";
            case ENOSPC -> "No space left on device";
            case EOVERFLOW -> "Value too large for defined data type";
            case ENOTSUP -> "Operation not supported";
            case ESHUTDOWN -> "Cannot send after transport endpoint shutdown";
            default -> "error " + Integer.toUnsignedString(error);
        };
    }
}
