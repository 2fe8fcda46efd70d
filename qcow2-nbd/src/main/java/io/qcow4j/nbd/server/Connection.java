package io.qcow4j.nbd.server;

import static io.qcow4j.nbd.protocol.Nbd.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

import io.qcow4j.core.api.BlockStatus;

/**
 * One client: the handshake, then the transmission phase. This thread reads requests (and
 * write payloads) in order; each request runs on the shared worker pool, at most
 * {@link #IN_FLIGHT} at a time for this client (so one client that stops reading its
 * replies holds only its own threads); replies go out whole, one at a time, under
 * {@link #replyLock}. A protocol violation (bad magic, a truncated request) drops this
 * client only.
 */
final class Connection {
    static final int IN_FLIGHT = 16;
    /** Most descriptors in one BLOCK_STATUS chunk; the client asks again for the rest. */
    private static final int MAX_EXTENTS = 1 << 16;
    private static final Buffers BUFFERS = new Buffers();

    private final NbdServer server;
    private final Export export;
    private final SocketChannel channel;
    private final TlsCredentials tls;
    private final ExecutorService workers;
    private final Semaphore inFlight = new Semaphore(IN_FLIGHT);
    private final ReentrantLock replyLock = new ReentrantLock();
    private volatile Transport transport;
    private boolean structured;
    private List<MetaContext> contexts = List.of();

    /** A request that passed the checks done while reading it. */
    private record Request(int flags, int type, long handle, long offset, long length, ByteBuffer payload) {
        boolean has(int flag) {
            return (flags & flag) != 0;
        }
    }

    Connection(NbdServer server, Export export, SocketChannel channel, TlsCredentials tls, ExecutorService workers) {
        this.server = server;
        this.export = export;
        this.channel = channel;
        this.tls = tls;
        this.workers = workers;
        this.transport = new PlainTransport(channel);
    }

    void run() {
        try {
            Handshake.Session s = new Handshake(export, transport, tls).negotiate();
            if (s != null && !server.stopping()) {
                transport = s.transport();
                structured = s.structured();
                contexts = s.contexts();
                transmission();
            }
        } catch (IOException | RuntimeException e) {
            // the client left, or broke the protocol: this connection ends, the others go on
        } finally {
            awaitIdle(TimeUnit.SECONDS.toNanos(10));
            closeChannel();
            server.ended(this);
        }
    }

    private void transmission() throws IOException {
        ByteBuffer header = ByteBuffer.allocate(REQUEST_SIZE);
        while (!server.stopping()) {
            header.clear();
            transport.readFully(header);
            header.flip();
            if (header.getInt() != REQUEST_MAGIC) {
                throw new Handshake.Dropped("bad request magic");
            }
            int flags = header.getShort() & 0xffff;
            int type = header.getShort() & 0xffff;
            long handle = header.getLong();
            long offset = header.getLong();
            long length = header.getInt() & 0xffffffffL;
            if (type == CMD_DISC) {
                return;
            }
            ByteBuffer payload = null;
            if (type == CMD_WRITE) {
                if (length > MAX_PAYLOAD) {
                    skip(length); // never a buffer sized by the client: read and drop
                    fail(handle, EOVERFLOW, "len (" + length + ") is larger than max len (" + MAX_PAYLOAD + ")");
                    continue;
                }
                payload = BUFFERS.take((int) length);
                try {
                    transport.readFully(payload);
                } catch (IOException | RuntimeException e) {
                    BUFFERS.give(payload);
                    throw e;
                }
                payload.flip();
            }
            String error = check(flags, type, offset, length);
            if (error != null) {
                BUFFERS.give(payload);
                fail(handle, errno(type, error), error.substring(error.indexOf(':') + 1));
                continue;
            }
            Request r = new Request(flags, type, handle, offset, length, payload);
            inFlight.acquireUninterruptibly();
            try {
                workers.execute(() -> execute(r));
            } catch (RejectedExecutionException e) {
                inFlight.release();
                BUFFERS.give(payload);
                return; // the server is stopping
            }
        }
    }

    /** Null when the request may run, else "ERRNO:message" (the errno as a name, mapped in {@link #errno}). */
    private String check(int flags, int type, long offset, long length) {
        int allowed = CMD_FLAG_FUA;
        switch (type) {
            case CMD_READ -> allowed |= structured ? CMD_FLAG_DF : 0;
            case CMD_WRITE, CMD_FLUSH, CMD_TRIM, CMD_CACHE -> {
            }
            case CMD_WRITE_ZEROES -> allowed |= CMD_FLAG_NO_HOLE | CMD_FLAG_FAST_ZERO;
            case CMD_BLOCK_STATUS -> allowed |= CMD_FLAG_REQ_ONE;
            default -> {
                return "EINVAL:invalid request type (" + type + ") received";
            }
        }
        if ((flags & ~allowed) != 0) {
            return "EINVAL:unsupported flags for command " + name(type) + " (got 0x" + Integer.toHexString(flags) + ")";
        }
        if (export.readOnly && (type == CMD_WRITE || type == CMD_TRIM || type == CMD_WRITE_ZEROES)) {
            return "EPERM:Export is read-only";
        }
        if (type == CMD_FLUSH) {
            return null;
        }
        if (type == CMD_READ && length > MAX_PAYLOAD) {
            return "EOVERFLOW:len (" + length + ") is larger than max len (" + MAX_PAYLOAD + ")";
        }
        if (Long.compareUnsigned(offset, export.size) > 0 || length > export.size - offset) {
            boolean write = type == CMD_WRITE || type == CMD_WRITE_ZEROES;
            return (write ? "ENOSPC" : "EINVAL") + ":operation past EOF; From: " + Long.toUnsignedString(offset)
                    + ", Len: " + length + ", Size: " + export.size;
        }
        if (type == CMD_BLOCK_STATUS) {
            if (contexts.isEmpty()) {
                return "EINVAL:no metadata contexts negotiated";
            }
            if (length == 0) {
                return "EINVAL:need non-zero length";
            }
        }
        return null;
    }

    private static int errno(int type, String error) {
        return switch (error.substring(0, error.indexOf(':'))) {
            case "EPERM" -> EPERM;
            case "ENOSPC" -> ENOSPC;
            case "EOVERFLOW" -> EOVERFLOW;
            default -> EINVAL;
        };
    }

    private static String name(int type) {
        return switch (type) {
            case CMD_READ -> "read";
            case CMD_WRITE -> "write";
            case CMD_FLUSH -> "flush";
            case CMD_TRIM -> "trim";
            case CMD_CACHE -> "cache";
            case CMD_WRITE_ZEROES -> "write zeroes";
            case CMD_BLOCK_STATUS -> "block status";
            default -> "(unknown)";
        };
    }

    // ------------------------------------------------------------ execution (worker threads)

    private void execute(Request r) {
        try {
            switch (r.type()) {
                case CMD_READ -> read(r);
                case CMD_WRITE -> {
                    export.write(r.offset(), r.payload());
                    done(r);
                }
                case CMD_FLUSH -> {
                    export.flush();
                    send(Replies.simple(r.handle(), 0));
                }
                case CMD_TRIM -> {
                    export.trim(r.offset(), r.length());
                    done(r);
                }
                case CMD_WRITE_ZEROES -> {
                    if (export.writeZeroes(r.offset(), r.length(), r.has(CMD_FLAG_FAST_ZERO))) {
                        done(r);
                    } else {
                        fail(r.handle(), ENOTSUP, "fast zero is not possible here");
                    }
                }
                case CMD_CACHE -> send(Replies.simple(r.handle(), 0));
                case CMD_BLOCK_STATUS -> blockStatus(r);
                default -> fail(r.handle(), EINVAL, "invalid request type");
            }
        } catch (IOException | RuntimeException e) {
            // the image failed this request: the client hears of it, the connection goes on
            int err = e instanceof IllegalArgumentException ? EINVAL
                    : String.valueOf(e.getMessage()).contains("No space left") ? ENOSPC : EIO;
            try {
                fail(r.handle(), err, String.valueOf(e.getMessage()));
            } catch (IOException ignored) {
                closeChannel();
            }
        } finally {
            BUFFERS.give(r.payload());
            inFlight.release();
        }
    }

    /** A write-type command succeeded: FUA first makes it durable. */
    private void done(Request r) throws IOException {
        if (r.has(CMD_FLAG_FUA)) {
            export.flush();
        }
        send(Replies.simple(r.handle(), 0));
    }

    private void read(Request r) throws IOException {
        int len = (int) r.length();
        long handle = r.handle();
        if (structured && len == 0) {
            send(Replies.none(handle));
            return;
        }
        if (structured && !r.has(CMD_FLAG_DF) && transport instanceof PlainTransport plain && sendDirect(r, plain)) {
            return;
        }
        ByteBuffer data = BUFFERS.take(len);
        try {
            if (!structured || r.has(CMD_FLAG_DF) || !export.sparse()) {
                export.read(r.offset(), data);
                data.flip();
                send(structured ? Replies.dataHeader(handle, true, r.offset(), len) : Replies.simple(handle, 0), data);
                return;
            }
            // holes as OFFSET_HOLE, the rest read into place and sent as OFFSET_DATA
            List<ByteBuffer> out = new ArrayList<>();
            long end = r.offset() + len;
            long at = r.offset();
            while (at < end) {
                BlockStatus st = export.readStatus(at, end - at);
                boolean zero = st.zero();
                long runEnd = at + st.length();
                while (runEnd < end) {
                    BlockStatus next = export.readStatus(runEnd, end - runEnd);
                    if (next.zero() != zero) {
                        break;
                    }
                    runEnd += next.length();
                }
                int n = (int) (runEnd - at);
                boolean last = runEnd == end;
                if (zero) {
                    out.add(Replies.hole(handle, last, at, n));
                } else {
                    int pos = (int) (at - r.offset());
                    ByteBuffer slice = data.duplicate().position(pos).limit(pos + n).slice();
                    export.read(at, slice);
                    slice.flip();
                    out.add(Replies.dataHeader(handle, last, at, n));
                    out.add(slice);
                }
                at = runEnd;
            }
            send(out.toArray(new ByteBuffer[0]));
        } finally {
            BUFFERS.give(data);
        }
    }

    /**
     * A structured read whose every non-zero run is a plain data cluster of the top image's
     * own file: holes as OFFSET_HOLE, data sent from the file by sendfile. False, with nothing
     * sent, when some run is not (compressed, from a backing file) or the export cannot.
     */
    private boolean sendDirect(Request r, PlainTransport plain) throws IOException {
        FileChannel file = export.directFile();
        if (file == null) {
            return false;
        }
        long end = r.offset() + r.length();
        long fileSize = -1;
        List<BlockStatus> runs = new ArrayList<>();
        for (long at = r.offset(); at < end; ) {
            BlockStatus st = export.readStatus(at, end - at);
            long n = Math.min(st.length(), end - at);
            if (n <= 0 || !st.zero() && (!st.data() || st.depth() != 0 || st.compressed() || st.hostOffset() < 0)) {
                return false;
            }
            if (!st.zero()) {
                fileSize = fileSize < 0 ? file.size() : fileSize;
                if (st.hostOffset() + n > fileSize) {
                    return false; // a cluster cut off the file's end reads zeros, as qemu reads it: the buffered path
                }
            }
            runs.add(st.withRange(at, n));
            at += n;
        }
        replyLock.lock();
        try {
            for (int i = 0; i < runs.size(); ) {
                boolean zero = runs.get(i).zero();
                int j = i;
                long n = 0;
                while (j < runs.size() && runs.get(j).zero() == zero) {
                    n += runs.get(j++).length();
                }
                long at = runs.get(i).offset();
                boolean last = j == runs.size();
                if (zero) {
                    transport.write(Replies.hole(r.handle(), last, at, (int) n));
                } else {
                    transport.write(Replies.dataHeader(r.handle(), last, at, (int) n));
                    for (int k = i; k < j; k++) {
                        plain.transferFrom(file, runs.get(k).hostOffset(), runs.get(k).length());
                    }
                }
                i = j;
            }
        } catch (IOException | RuntimeException e) {
            closeChannel(); // a chunk may be cut short: the stream cannot go on
            throw e;
        } finally {
            replyLock.unlock();
        }
        return true;
    }

    private void blockStatus(Request r) throws IOException {
        List<ByteBuffer> chunks = new ArrayList<>();
        for (int i = 0; i < contexts.size(); i++) {
            MetaContext c = contexts.get(i);
            ExtentList list = new ExtentList(r.has(CMD_FLAG_REQ_ONE) ? 1 : MAX_EXTENTS);
            export.extents(c, r.offset(), r.length(), list);
            chunks.add(Replies.blockStatus(r.handle(), i == contexts.size() - 1, c.id(), list));
        }
        send(chunks.toArray(new ByteBuffer[0]));
    }

    // ------------------------------------------------------------ replies

    private void fail(long handle, int error, String message) throws IOException {
        send(structured ? Replies.error(handle, error, message) : Replies.simple(handle, error));
    }

    private void send(ByteBuffer... buffers) throws IOException {
        replyLock.lock();
        try {
            transport.write(buffers);
        } finally {
            replyLock.unlock();
        }
    }

    private void skip(long n) throws IOException {
        ByteBuffer b = BUFFERS.take(1 << 20);
        try {
            while (n > 0) {
                b.clear().limit((int) Math.min(n, b.capacity()));
                transport.readFully(b);
                n -= b.limit();
            }
        } finally {
            BUFFERS.give(b);
        }
    }

    // ------------------------------------------------------------ stopping

    /** No more requests: the reader sees end of stream; replies still go out. */
    void stopReading() {
        transport.shutdownInput();
    }

    /** Waits up to {@code nanos} for the requests in flight to complete. */
    void awaitIdle(long nanos) {
        try {
            if (inFlight.tryAcquire(IN_FLIGHT, nanos, TimeUnit.NANOSECONDS)) {
                inFlight.release(IN_FLIGHT);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    void closeChannel() {
        try {
            if (replyLock.tryLock()) {
                try {
                    transport.close(); // a TLS close_notify when nobody is writing
                } finally {
                    replyLock.unlock();
                }
            }
        } catch (IOException e) {
            // gone already
        } finally {
            try {
                channel.close();
            } catch (IOException e) {
                // gone already
            }
        }
    }
}
