package io.qcow4j.nbd.client;

import static io.qcow4j.nbd.protocol.Nbd.*;

import io.qcow4j.core.BlockDevice;
import io.qcow4j.core.BlockStatus;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import javax.net.ssl.SSLContext;

/**
 * A client of one NBD export: QEMU's ({@code qemu-nbd}, a VM's export for pull-mode backup),
 * nbdkit's, or any server that follows the NetworkBlockDevice protocol.
 *
 * <pre>{@code
 * try (NbdClient nbd = NbdClient.connect("nbd+unix:///vda?socket=/run/backup.sock")) {
 *     ByteBuffer buf = ByteBuffer.allocate(1 << 20);
 *     nbd.read(0, buf);                                        // several requests in flight
 *     for (NbdClient.Extent e : nbd.extents("base:allocation", 0, nbd.size())) { ... }
 * }
 * // a dirty bitmap (qemu-nbd -B NAME) over TLS
 * NbdUri uri = NbdUri.parse("nbds://backup-host:10809/vda").withTls(Path.of("/etc/pki/qemu"));
 * try (NbdClient nbd = NbdClient.connect(uri, NbdClient.Options.defaults()
 *         .withMetaContexts("qemu:dirty-bitmap:since-monday"))) {
 *     for (long pos = 0; pos < nbd.size(); ) {
 *         for (NbdClient.Extent e : nbd.extents("qemu:dirty-bitmap:since-monday", pos, nbd.size() - pos)) {
 *             if (e.has(Nbd.STATE_DIRTY)) { ... }
 *             pos = e.end();
 *         }
 *     }
 * }
 * }</pre>
 *
 * <p>The handshake is fixed newstyle with OPT_GO (asking for the block size constraints),
 * structured replies and the meta contexts of {@link Options#metaContexts()} (those the
 * server knows; see {@link #metaContexts()}); an older server gets OPT_EXPORT_NAME and
 * simple replies, and then reports everything as data. Requests respect the server's block
 * sizes: a large read or write is split at the maximum size and its pieces go out together
 * (up to {@link Options#maxInFlight()} in flight), replies matched by cookie; unaligned
 * reads and writes are widened to the minimum block size (a write then reads the blocks
 * around it first).
 *
 * <p>As a {@link BlockDevice} it is a raw disk: {@link #blockStatus} reads
 * {@code base:allocation} (hole, zero) and, when the server offers it,
 * {@code qemu:allocation-depth} (allocated, and the layer of the export's backing chain that
 * answers, as {@link BlockStatus#depth()}; a run no layer allocates is unallocated at depth 0).
 * Without allocation depth, {@code allocated} is "data or zero", as QEMU's own NBD client
 * reports it. {@link BlockStatus#hostOffset()} is the offset in the export.
 *
 * <p>Everything the server sends is checked before use (magic numbers, cookies, chunk
 * lengths and offsets, extents); a server that breaks the protocol gets an
 * {@link IOException} naming what it did, and the connection is dropped (every later call
 * fails with that error). An error the server reports for a request is an
 * {@link NbdException} and leaves the connection usable.
 *
 * <p>Thread safety: every method holds the client's lock for its duration, so the client
 * may be shared, but calls from several threads run one after the other; the parallelism
 * is within a call (pipelined requests on the one connection), not across calls. Use one
 * client per thread for parallel calls (servers that advertise CAN_MULTI_CONN).
 */
public final class NbdClient implements BlockDevice {
    /** Largest length of one BLOCK_STATUS, TRIM or WRITE_ZEROES request (they carry no payload). */
    private static final long MAX_UNSIZED = Integer.MAX_VALUE;
    /** Pieces of a large read or write, when the server allows requests this large. */
    private static final int PIECE = 1 << 20;

    /** One run of a meta context: its flags over {@code [offset, offset + length)}. */
    public record Extent(long offset, long length, int flags) {
        public long end() {
            return offset + length;
        }

        /** True when every bit of {@code flag} is set (such as {@code Nbd.STATE_ZERO}). */
        public boolean has(int flag) {
            return (flags & flag) == flag;
        }
    }

    /** How to connect; immutable, each {@code with...} returns a copy. */
    public static final class Options {
        private final List<String> metaContexts;
        private final boolean structuredReplies;
        private final int maxInFlight;
        private final SSLContext sslContext;
        private final boolean oneExtent;
        private final Duration handshakeTimeout;

        private Options(List<String> metaContexts, boolean structuredReplies, int maxInFlight, SSLContext sslContext,
                        boolean oneExtent, Duration handshakeTimeout) {
            this.metaContexts = List.copyOf(metaContexts);
            this.structuredReplies = structuredReplies;
            this.maxInFlight = maxInFlight;
            this.sslContext = sslContext;
            this.oneExtent = oneExtent;
            this.handshakeTimeout = handshakeTimeout;
        }

        /**
         * base:allocation and qemu:allocation-depth, structured replies, 4 requests (of 1 MiB)
         * in flight, 30 s for the handshake. More in flight made reads from qemu-nbd over a
         * Unix socket slower, not faster, on a 2-core machine (qemu-nbd reads each request
         * into a buffer of its own, on its own thread).
         */
        public static Options defaults() {
            return new Options(List.of(CONTEXT_BASE_ALLOCATION, CONTEXT_ALLOCATION_DEPTH), true, 4, null, false,
                    Duration.ofSeconds(30));
        }

        /**
         * How long the server may take to greet and negotiate (a qemu-nbd without {@code -e}
         * serves one client at a time and leaves the next one waiting); then connect fails.
         */
        public Options withHandshakeTimeout(Duration timeout) {
            if (timeout.isNegative() || timeout.isZero()) {
                throw new IllegalArgumentException("handshake timeout must be positive: " + timeout);
            }
            return new Options(metaContexts, structuredReplies, maxInFlight, sslContext, oneExtent, timeout);
        }

        public Duration handshakeTimeout() {
            return handshakeTimeout;
        }

        /** The meta contexts to negotiate (replacing the defaults); the server selects those it knows. */
        public Options withMetaContexts(String... names) {
            return new Options(List.of(names), structuredReplies, maxInFlight, sslContext, oneExtent, handshakeTimeout);
        }

        /** False: ask for simple replies only (no meta contexts then), as against a very old server. */
        public Options withStructuredReplies(boolean on) {
            return new Options(metaContexts, on, maxInFlight, sslContext, oneExtent, handshakeTimeout);
        }

        /** At most this many requests in flight within one call (1: one at a time); a high-latency link wants more. */
        public Options withMaxInFlight(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("max in flight must be at least 1: " + n);
            }
            return new Options(metaContexts, structuredReplies, n, sslContext, oneExtent, handshakeTimeout);
        }

        /** TLS with this context (instead of the URI's certificate directory or the JDK's defaults). */
        public Options withSslContext(SSLContext context) {
            return new Options(metaContexts, structuredReplies, maxInFlight, context, oneExtent, handshakeTimeout);
        }

        /** True: block status requests ask for one extent per context (NBD_CMD_FLAG_REQ_ONE). */
        public Options withOneExtentPerRequest(boolean on) {
            return new Options(metaContexts, structuredReplies, maxInFlight, sslContext, on, handshakeTimeout);
        }

        public List<String> metaContexts() {
            return metaContexts;
        }

        public boolean structuredReplies() {
            return structuredReplies;
        }

        public int maxInFlight() {
            return maxInFlight;
        }

        public SSLContext sslContext() {
            return sslContext;
        }

        public boolean oneExtentPerRequest() {
            return oneExtent;
        }
    }

    private final NbdUri uri;
    private final Options options;
    private final Connection connection;
    private final Handshake.Session session;
    private final Transmission tx;
    private final List<String> contextNames;
    private final int minBlock;
    private final int piece;
    private final StatusCache cache = new StatusCache();
    private boolean closed;

    private NbdClient(NbdUri uri, Options options, Connection connection, Handshake.Session session) {
        this.uri = uri;
        this.options = options;
        this.connection = connection;
        this.session = session;
        this.tx = new Transmission(connection.wire(), session.structured(), session.contexts(), session.size());
        this.contextNames = List.copyOf(session.contexts().values());
        this.minBlock = session.minBlock();
        int p = Math.min(PIECE, session.maxBlock());
        this.piece = p - p % minBlock;
    }

    /** Connects to the export {@code uri} names (see {@link NbdUri#parse}) with the default options. */
    public static NbdClient connect(String uri) throws IOException {
        return connect(NbdUri.parse(uri), Options.defaults());
    }

    /**
     * Connects and negotiates. Failures are {@link IOException}s in qemu's words:
     * "Failed to connect to 'PATH': Connection refused", "Requested export not available"
     * (an {@link NbdException} carrying the server's message), a TLS failure.
     */
    public static NbdClient connect(NbdUri uri, Options options) throws IOException {
        Objects.requireNonNull(options, "options");
        Connection c = Connection.open(uri);
        try {
            Handshake.Session s = c.withDeadline(options.handshakeTimeout(),
                    () -> Handshake.negotiate(c.wire(), uri, options));
            return new NbdClient(uri, options, c, s);
        } catch (IOException | RuntimeException e) {
            c.close();
            throw e;
        }
    }

    /**
     * The meta contexts the export offers that match {@code queries} (none: all of them;
     * "qemu:" all of qemu's; "qemu:dirty-bitmap:" every bitmap), with NBD_OPT_LIST_META_CONTEXT
     * on a connection of its own that ends before transmission.
     */
    public static List<String> listMetaContexts(NbdUri uri, Options options, String... queries) throws IOException {
        try (Connection c = Connection.open(uri)) {
            return c.withDeadline(options.handshakeTimeout(),
                    () -> Handshake.listContexts(c.wire(), uri, options, List.of(queries)));
        }
    }

    // ---------------------------------------------------------------- what was negotiated

    public NbdUri uri() {
        return uri;
    }

    @Override
    public long size() {
        return session.size();
    }

    @Override
    public String formatName() {
        return "raw";
    }

    /** Null: an NBD export is not a file here. */
    @Override
    public Path path() {
        return null;
    }

    /** The transmission flags (Nbd.FLAG_*). */
    public int transmissionFlags() {
        return session.flags();
    }

    public boolean isReadOnly() {
        return (session.flags() & FLAG_READ_ONLY) != 0;
    }

    /** Whether chunked (structured) replies were negotiated: sparse reads, meta contexts. */
    public boolean structuredReplies() {
        return session.structured();
    }

    /** Whether the connection runs over TLS. */
    public boolean tls() {
        return session.tls();
    }

    /** The meta contexts the server selected, in its order. */
    public List<String> metaContexts() {
        return contextNames;
    }

    public int minimumBlockSize() {
        return session.minBlock();
    }

    public int preferredBlockSize() {
        return session.preferredBlock();
    }

    /** The largest request payload this client sends (the server's maximum, at most 32 MiB). */
    public int maximumBlockSize() {
        return session.maxBlock();
    }

    // ---------------------------------------------------------------- data

    /** Fills {@code dst} from {@code offset}; bytes past the end of the export read as zeros. */
    @Override
    public synchronized void read(long offset, ByteBuffer dst) throws IOException {
        checkOpen();
        int n = dst.remaining();
        checkRange(offset, n);
        long within = Math.max(0, Math.min(n, size() - offset));
        ByteBuffer target = dst.slice();
        for (int i = (int) within; i < n; i++) {
            target.put(i, (byte) 0);
        }
        if (within > 0) {
            readAligned(offset, target.limit((int) within).slice());
        }
        dst.position(dst.position() + n);
    }

    /** Writes {@code src} (position to limit) at {@code offset}, which must lie within the export. */
    public synchronized void write(long offset, ByteBuffer src) throws IOException {
        checkWritable();
        int n = src.remaining();
        checkRange(offset, n);
        checkWithin(offset, n);
        cache.clear();
        ByteBuffer data = src.slice();
        if (alignDown(offset) == offset && alignUp(offset + n) == offset + n) {
            pipeline(CMD_WRITE, offset, data);
        } else {
            writeUnaligned(offset, data);
        }
        src.position(src.position() + n);
    }

    /**
     * Makes {@code [offset, offset + length)} read as zeros: NBD_CMD_WRITE_ZEROES where the
     * server has it (it may free the space), written zeros where it does not.
     */
    public synchronized void writeZeroes(long offset, long length) throws IOException {
        checkWritable();
        checkRange(offset, length);
        checkWithin(offset, length);
        cache.clear();
        long end = offset + length;
        long start = alignUp(offset);
        long alignedEnd = alignDownToEnd(end);
        if ((session.flags() & FLAG_SEND_WRITE_ZEROES) == 0 || alignedEnd <= start) {
            writeZeroBuffers(offset, end);
            return;
        }
        writeZeroBuffers(offset, start);
        unsized(CMD_WRITE_ZEROES, start, alignedEnd);
        writeZeroBuffers(alignedEnd, end);
    }

    /**
     * Tells the server that {@code [offset, offset + length)} is no longer needed
     * (NBD_CMD_TRIM, whole minimum blocks only). Advisory: nothing is sent when the server
     * does not support it, and the range may read as before or as zeros afterwards.
     */
    public synchronized void trim(long offset, long length) throws IOException {
        checkWritable();
        checkRange(offset, length);
        checkWithin(offset, length);
        cache.clear();
        if ((session.flags() & FLAG_SEND_TRIM) == 0) {
            return;
        }
        long start = alignUp(offset);
        long end = alignDownToEnd(offset + length);
        if (end > start) {
            unsized(CMD_TRIM, start, end);
        }
    }

    /** Asks the server to make what it acknowledged durable (nothing when it has no flush). */
    public synchronized void flush() throws IOException {
        checkOpen();
        if ((session.flags() & FLAG_SEND_FLUSH) != 0) {
            Transmission.Request r = tx.submit(CMD_FLUSH, 0, 0, 0, null);
            tx.await(r);
            throwIfFailed(r, "flush");
        }
    }

    // ---------------------------------------------------------------- block status

    @Override
    public synchronized BlockStatus blockStatus(long offset, long length) throws IOException {
        checkOpen();
        if (offset < 0 || offset >= size() || length <= 0) {
            throw new IllegalArgumentException("Block status out of range: offset " + offset + " (export size " + size() + ")");
        }
        long max = Math.min(length, size() - offset);
        boolean base = contextNames.contains(CONTEXT_BASE_ALLOCATION);
        boolean depth = contextNames.contains(CONTEXT_ALLOCATION_DEPTH);
        if (!base && !depth) {
            return new BlockStatus(offset, max, true, false, true, 0, offset, false);
        }
        Extent a = base ? extentAt(CONTEXT_BASE_ALLOCATION, offset, max) : null;
        Extent d = depth ? extentAt(CONTEXT_ALLOCATION_DEPTH, offset, max) : null;
        long n = max;
        if (a != null) {
            n = Math.min(n, a.end() - offset);
        }
        if (d != null) {
            n = Math.min(n, d.end() - offset);
        }
        boolean zero = a != null && a.has(STATE_ZERO);
        boolean data = a == null || !a.has(STATE_HOLE);
        boolean allocated = data || zero;
        int layer = 0;
        if (d != null) {
            allocated = d.flags() != 0 || data;
            layer = d.flags() > 0 ? d.flags() - 1 : 0;
        }
        return new BlockStatus(offset, n, allocated, zero, data, layer, data || zero ? offset : -1, false);
    }

    /**
     * The extents of meta context {@code context} from {@code offset}, as far as one reply of
     * the server goes (at least one extent; call again from the last one's end for more),
     * clipped to {@code [offset, offset + length)} and to the export.
     *
     * @throws IllegalArgumentException when the context was not negotiated (see {@link #metaContexts()})
     */
    public synchronized List<Extent> extents(String context, long offset, long length) throws IOException {
        checkOpen();
        if (!contextNames.contains(context)) {
            throw new IllegalArgumentException("meta context " + context + " was not negotiated with the server"
                    + " (negotiated: " + contextNames + ")");
        }
        if (offset < 0 || offset >= size() || length <= 0) {
            throw new IllegalArgumentException("extents out of range: offset " + offset + " (export size " + size() + ")");
        }
        long end = Math.min(size(), offset + Math.min(length, Long.MAX_VALUE - offset));
        extentAt(context, offset, end - offset);
        List<Extent> all = cache.get(context);
        List<Extent> out = new ArrayList<>();
        for (int i = cache.indexOf(context, offset); i < all.size() && all.get(i).offset() < end; i++) {
            Extent e = all.get(i);
            long s = Math.max(e.offset(), offset);
            out.add(new Extent(s, Math.min(e.end(), end) - s, e.flags()));
        }
        return out;
    }

    /** The cached extent of {@code context} holding {@code offset}, after a request if need be. */
    private Extent extentAt(String context, long offset, long max) throws IOException {
        Extent e = cache.find(context, offset);
        if (e == null) {
            fetchStatus(offset, max);
            e = cache.find(context, offset);
            if (e == null) {
                throw new IOException(tx.fail(new IOException("NBD protocol error: no extents for meta context "
                        + context + " at offset " + offset)));
            }
        }
        return e;
    }

    private void fetchStatus(long offset, long max) throws IOException {
        long start = alignDown(offset);
        long end = Math.min(size(), alignUp(offset + max));
        long length = Math.min(end - start, MAX_UNSIZED - MAX_UNSIZED % minBlock);
        int flags = options.oneExtentPerRequest() ? CMD_FLAG_REQ_ONE : 0;
        Transmission.Request r = tx.submit(CMD_BLOCK_STATUS, flags, start, (int) length, null);
        tx.await(r);
        throwIfFailed(r, "block status");
        cache.fill(r.extents);
    }

    // ---------------------------------------------------------------- requests

    private void readAligned(long offset, ByteBuffer dst) throws IOException {
        int n = dst.remaining();
        long start = alignDown(offset);
        long end = Math.min(size(), alignUp(offset + n));
        if (start == offset && end == offset + n) {
            pipeline(CMD_READ, offset, dst);
            return;
        }
        ByteBuffer whole = ByteBuffer.allocate((int) (end - start));
        pipeline(CMD_READ, start, whole);
        dst.put(whole.slice((int) (offset - start), n));
    }

    /**
     * READ into or WRITE from {@code buf} (position 0 at {@code offset}) in pieces of at most
     * {@link #piece} bytes, up to maxInFlight of them out at once. A piece the server
     * refuses fails the call, after the replies of the others are in.
     */
    private void pipeline(int type, long offset, ByteBuffer buf) throws IOException {
        int length = buf.remaining();
        int window = options.maxInFlight();
        NbdException first = null;
        long firstAt = 0;
        int next = 0;
        while (next < length || tx.inFlight() > 0) {
            while (next < length && tx.inFlight() < window && first == null) {
                int k = Math.min(piece, length - next);
                ByteBuffer part = buf.slice(buf.position() + next, k);
                Transmission.Request r = tx.submit(type, 0, offset + next, k, type == CMD_WRITE ? part : null);
                r.dst = part;
                next += k;
            }
            if (tx.inFlight() == 0) {
                break;
            }
            Transmission.Request done = tx.awaitAny();
            if (done.error != null && (first == null || done.offset < firstAt)) {
                first = done.error;
                firstAt = done.offset;
            }
        }
        if (first != null) {
            throw first;
        }
    }

    /** TRIM or WRITE_ZEROES over [start, end), in requests of at most MAX_UNSIZED bytes. */
    private void unsized(int type, long start, long end) throws IOException {
        long limit = MAX_UNSIZED - MAX_UNSIZED % minBlock;
        NbdException first = null;
        long pos = start;
        while (pos < end || tx.inFlight() > 0) {
            while (pos < end && tx.inFlight() < options.maxInFlight() && first == null) {
                int k = (int) Math.min(limit, end - pos);
                tx.submit(type, 0, pos, k, null);
                pos += k;
            }
            if (tx.inFlight() == 0) {
                break;
            }
            Transmission.Request done = tx.awaitAny();
            if (done.error != null && first == null) {
                first = done.error;
            }
        }
        if (first != null) {
            throw first;
        }
    }

    private void writeZeroBuffers(long start, long end) throws IOException {
        if (end <= start) {
            return;
        }
        ByteBuffer zeros = ByteBuffer.allocate((int) Math.min(end - start, 4L << 20));
        for (long pos = start; pos < end; ) {
            int k = (int) Math.min(zeros.capacity(), end - pos);
            zeros.clear().limit(k);
            if (alignDown(pos) == pos && alignUp(pos + k) == pos + k) {
                pipeline(CMD_WRITE, pos, zeros);
            } else {
                writeUnaligned(pos, zeros);
            }
            pos += k;
        }
    }

    /**
     * Read-modify-write of the minimum blocks at both ends of an unaligned write (not
     * atomic against other clients of the export).
     */
    private void writeUnaligned(long offset, ByteBuffer data) throws IOException {
        int n = data.remaining();
        long start = alignDown(offset);
        long end = alignUp(offset + n);
        ByteBuffer whole = ByteBuffer.allocate((int) (end - start));
        int head = (int) Math.min(minBlock, end - start);
        pipeline(CMD_READ, start, whole.slice(0, head));
        long tail = alignDown(end - 1);
        if (tail >= start + head) {
            pipeline(CMD_READ, tail, whole.slice((int) (tail - start), (int) (end - tail)));
        }
        whole.put((int) (offset - start), data, data.position(), n);
        pipeline(CMD_WRITE, start, whole);
    }

    private void throwIfFailed(Transmission.Request r, String what) throws IOException {
        if (r.error != null) {
            throw new NbdException(what + " failed: " + r.error.getMessage(), r.error.error());
        }
    }

    private long alignDown(long v) {
        return v - v % minBlock;
    }

    /** Up to the minimum block size, but never past the end of the export (its tail may be short). */
    private long alignUp(long v) {
        long r = v % minBlock;
        return r == 0 ? v : Math.min(size(), v + (minBlock - r));
    }

    /** Down to the minimum block size, except that the end of the export stays the end. */
    private long alignDownToEnd(long v) {
        return v == size() ? v : alignDown(v);
    }

    private void checkOpen() throws IOException {
        if (closed) {
            throw new IOException("the NBD client is closed");
        }
        IOException broken = tx.broken();
        if (broken != null) {
            throw new IOException("the NBD connection is unusable after an earlier error: " + broken.getMessage(), broken);
        }
    }

    private void checkWritable() throws IOException {
        checkOpen();
        if (isReadOnly()) {
            throw new NbdException("the export is read-only", EPERM);
        }
    }

    private static void checkRange(long offset, long length) {
        if (offset < 0 || length < 0 || offset > Long.MAX_VALUE - length) {
            throw new IllegalArgumentException("invalid range: offset " + offset + ", length " + length);
        }
    }

    private void checkWithin(long offset, long length) {
        if (offset + length > size()) {
            throw new IllegalArgumentException("range [" + offset + ", +" + length + ") past the end of the export ("
                    + size() + " bytes)");
        }
    }

    /** Ends the session (NBD_CMD_DISC, when the connection is healthy) and closes the socket. */
    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (tx.broken() == null) {
                tx.submit(CMD_DISC, 0, 0, 0, null);
                tx.flush();
            }
        } catch (IOException e) {
            // the server may be gone already: nothing is lost, nothing was pending
        } finally {
            connection.close();
        }
    }

    @Override
    public String toString() {
        return uri.toString();
    }

    /** Extents of the last BLOCK_STATUS reply, per context, contiguous from its start. */
    private static final class StatusCache {
        private Map<String, List<Extent>> lists = Map.of();

        void clear() {
            lists = Map.of();
        }

        void fill(Map<String, List<Extent>> extents) {
            lists = extents;
        }

        List<Extent> get(String context) {
            return lists.getOrDefault(context, List.of());
        }

        Extent find(String context, long offset) {
            List<Extent> l = get(context);
            int i = indexOf(context, offset);
            return i < l.size() && l.get(i).offset() <= offset && offset < l.get(i).end() ? l.get(i) : null;
        }

        /** Index of the extent holding {@code offset} (or where it would be). */
        int indexOf(String context, long offset) {
            List<Extent> l = get(context);
            int lo = 0;
            int hi = l.size() - 1;
            while (lo <= hi) {
                int mid = (lo + hi) >>> 1;
                Extent e = l.get(mid);
                if (e.end() <= offset) {
                    lo = mid + 1;
                } else if (e.offset() > offset) {
                    hi = mid - 1;
                } else {
                    return mid;
                }
            }
            return lo;
        }
    }
}
