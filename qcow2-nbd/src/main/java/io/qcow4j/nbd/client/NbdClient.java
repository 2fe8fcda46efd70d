package io.qcow4j.nbd.client;

import static io.qcow4j.nbd.protocol.Nbd.*;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
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
 * reports it. {@link BlockStatus#hostOffset()} is the offset in the export. One BLOCK_STATUS
 * reply answers the calls that follow while they fall inside it (a walk over the disk costs
 * one round trip per reply, not per run); this client's writes forget it, other clients'
 * writes to the export are not seen until the next request.
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
    private final Connection connection;
    private final Handshake.Session session;
    private final Transmission tx;
    private final List<String> contextNames;
    private final DataPath data;
    private final BlockStatusQueries status;
    private boolean closed;

    private NbdClient(NbdUri uri, Options options, Connection connection, Handshake.Session session) {
        this.uri = uri;
        this.connection = connection;
        this.session = session;
        this.tx = new Transmission(connection.wire(), session.structured(), session.contexts(), session.size());
        this.contextNames = List.copyOf(session.contexts().values());
        this.data = new DataPath(tx, session.size(), session.minBlock(), session.maxBlock(), options.maxInFlight());
        this.status = new BlockStatusQueries(tx, data, contextNames, options.oneExtentPerRequest());
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
            data.read(offset, target.limit((int) within).slice());
        }
        dst.position(dst.position() + n);
    }

    /** Writes {@code src} (position to limit) at {@code offset}, which must lie within the export. */
    public synchronized void write(long offset, ByteBuffer src) throws IOException {
        checkWritable();
        int n = src.remaining();
        checkRange(offset, n);
        checkWithin(offset, n);
        status.clear();
        data.write(offset, src.slice());
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
        status.clear();
        data.writeZeroes(offset, offset + length, (session.flags() & FLAG_SEND_WRITE_ZEROES) != 0);
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
        status.clear();
        if ((session.flags() & FLAG_SEND_TRIM) == 0) {
            return;
        }
        data.trim(offset, offset + length);
    }

    /** NBD_CMD_WRITE_ZEROES: the server records the zeros (without it, zeros are written). */
    @Override
    public boolean hasNativeZeroes() {
        return (session.flags() & FLAG_SEND_WRITE_ZEROES) != 0;
    }

    /** NBD_CMD_TRIM, when the server has it. */
    @Override
    public boolean canDiscard() {
        return (session.flags() & FLAG_SEND_TRIM) != 0;
    }

    /** {@link #trim}: advisory, the range may read as before or as zeros afterwards. */
    @Override
    public void discard(long offset, long length) throws IOException {
        trim(offset, length);
    }

    /** Asks the server to make what it acknowledged durable (nothing when it has no flush). */
    public synchronized void flush() throws IOException {
        checkOpen();
        if ((session.flags() & FLAG_SEND_FLUSH) != 0) {
            Transmission.Request r = tx.submit(CMD_FLUSH, 0, 0, 0, null);
            tx.await(r);
            r.throwIfFailed("flush");
        }
    }

    // ---------------------------------------------------------------- block status

    @Override
    public synchronized BlockStatus blockStatus(long offset, long length) throws IOException {
        checkOpen();
        if (offset < 0 || offset >= size() || length <= 0) {
            throw new IllegalArgumentException("Block status out of range: offset " + offset + " (export size " + size() + ")");
        }
        return status.blockStatus(offset, Math.min(length, size() - offset));
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
        return status.extents(context, offset, end);
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
}
