package io.qcow4j.nbd.server;

import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.bitmaps.DirtyBitmap;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.nbd.protocol.Nbd;

/**
 * An NBD server exporting one disk, as {@code qemu-nbd} does: fixed newstyle handshake,
 * structured replies, the {@code base:allocation}, {@code qemu:dirty-bitmap:NAME} and
 * {@code qemu:allocation-depth} metadata contexts, several clients at once and several
 * requests in flight per client, optional TLS.
 *
 * <pre>{@code
 * try (Qcow2Image img = Qcow2Image.open(path, OpenOptions.readOnly());
 *      NbdServer server = NbdServer.builder(img).unixSocket(Path.of("/tmp/nbd.sock"))
 *              .bitmap("since-monday").shared(0).persistent(true).start()) {
 *     server.awaitTermination();   // until close() (another thread, a signal handler)
 * }
 * }</pre>
 *
 * The server never closes the device: {@link #close()} lets the requests in flight finish
 * and flushes it; the caller closes it after that (which stores the bitmaps).
 */
public final class NbdServer implements Closeable {
    /** How long {@link #close()} lets clients take their last replies before cutting them off. */
    private static final long DRAIN_MILLIS = 10_000;

    /**
     * What to export and how. {@code shared} is the most clients at once (0: no limit);
     * without {@code persistent} the server stops when its last client leaves.
     * {@code discard}: TRIM frees clusters (qemu-nbd's {@code --discard=unmap}); else it is ignored.
     */
    public record Options(BlockDevice device, String exportName, String description, boolean readOnly,
                          List<String> bitmaps, boolean allocationDepth, int shared, boolean persistent,
                          SocketAddress address, TlsCredentials tls, boolean discard) {
        public Options {
            Objects.requireNonNull(device, "device");
            Objects.requireNonNull(address, "address");
            exportName = exportName == null ? "" : exportName;
            bitmaps = List.copyOf(bitmaps == null ? List.of() : bitmaps);
            if (shared < 0) {
                throw new IllegalArgumentException("Invalid shared device number '" + shared + "'");
            }
        }
    }

    /** Builds {@link Options}; defaults are qemu-nbd's: export "", one client, port 10809 on all interfaces. */
    public static final class Builder {
        private final BlockDevice device;
        private String exportName = "";
        private String description;
        private boolean readOnly;
        private final List<String> bitmaps = new ArrayList<>();
        private boolean allocationDepth;
        private int shared = 1;
        private boolean persistent;
        private SocketAddress address = new InetSocketAddress(Nbd.DEFAULT_PORT);
        private TlsCredentials tls;
        private boolean discard;

        private Builder(BlockDevice device) {
            this.device = device;
        }

        public Builder exportName(String name) {
            this.exportName = name;
            return this;
        }

        public Builder description(String text) {
            this.description = text;
            return this;
        }

        public Builder readOnly(boolean on) {
            this.readOnly = on;
            return this;
        }

        /** Offers the persistent bitmap {@code name} (of the image or its backing chain) as {@code qemu:dirty-bitmap:name}. */
        public Builder bitmap(String name) {
            this.bitmaps.add(name);
            return this;
        }

        public Builder allocationDepth(boolean on) {
            this.allocationDepth = on;
            return this;
        }

        public Builder shared(int clients) {
            this.shared = clients;
            return this;
        }

        public Builder persistent(boolean on) {
            this.persistent = on;
            return this;
        }

        public Builder unixSocket(Path path) {
            this.address = UnixDomainSocketAddress.of(path);
            return this;
        }

        public Builder address(SocketAddress address) {
            this.address = address;
            return this;
        }

        public Builder tls(TlsCredentials credentials) {
            this.tls = credentials;
            return this;
        }

        public Builder discard(boolean unmap) {
            this.discard = unmap;
            return this;
        }

        public Options options() {
            return new Options(device, exportName, description, readOnly, bitmaps, allocationDepth, shared,
                    persistent, address, tls, discard);
        }

        /** Binds the socket and starts serving. */
        public NbdServer start() throws IOException {
            return NbdServer.start(options());
        }
    }

    private final Options options;
    private final Export export;
    private final ServerSocketChannel listener;
    private final SocketAddress localAddress;
    private final Path socketFile;
    private final Semaphore slots;
    private final Set<Connection> connections = ConcurrentHashMap.newKeySet();
    private final ExecutorService workers;
    private final AtomicInteger live = new AtomicInteger();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private final Thread acceptor;
    private volatile boolean stopping;
    private boolean closed;

    private NbdServer(Options options, Export export, ServerSocketChannel listener, Path socketFile) throws IOException {
        this.options = options;
        this.export = export;
        this.listener = listener;
        this.localAddress = listener.getLocalAddress();
        this.socketFile = socketFile;
        this.slots = new Semaphore(options.shared() == 0 ? Integer.MAX_VALUE : options.shared());
        this.workers = Executors.newCachedThreadPool(daemon("nbd-worker"));
        this.acceptor = daemon("nbd-accept").newThread(this::acceptLoop);
    }

    public static Builder builder(BlockDevice device) {
        return new Builder(device);
    }

    /** Checks the options (bitmaps exist and are usable), binds the socket and starts serving. */
    public static NbdServer start(Options options) throws IOException {
        Export export = new Export(options, contexts(options));
        ServerSocketChannel listener = null;
        Path socketFile = null;
        try {
            if (options.address() instanceof UnixDomainSocketAddress unix) {
                socketFile = unix.getPath();
                // a socket left by a server that died: qemu-nbd replaces it too
                if (Files.exists(socketFile) && "socket".equals(fileType(socketFile))) {
                    Files.delete(socketFile);
                }
                listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            } else {
                listener = ServerSocketChannel.open();
                listener.setOption(StandardSocketOptions.SO_REUSEADDR, true);
            }
            listener.bind(options.address(), 32);
            NbdServer server = new NbdServer(options, export, listener, socketFile);
            server.acceptor.start();
            return server;
        } catch (IOException | RuntimeException e) {
            if (listener != null) {
                listener.close();
                if (socketFile != null) {
                    Files.deleteIfExists(socketFile);
                }
            }
            export.close();
            throw e;
        }
    }

    private static String fileType(Path p) {
        try {
            int mode = (int) Files.getAttribute(p, "unix:mode");
            return (mode & 0170000) == 0140000 ? "socket" : "other";
        } catch (IOException | RuntimeException e) {
            return "other";
        }
    }

    /** The contexts the export offers: base:allocation, allocation depth with -A, each bitmap (qemu-nbd lists the last -B first). */
    private static List<MetaContext> contexts(Options o) {
        List<MetaContext> list = new ArrayList<>();
        list.add(new MetaContext(0, Nbd.CONTEXT_BASE_ALLOCATION, MetaContext.Kind.BASE_ALLOCATION, null, null));
        if (o.allocationDepth()) {
            list.add(new MetaContext(1, Nbd.CONTEXT_ALLOCATION_DEPTH, MetaContext.Kind.ALLOCATION_DEPTH, null, null));
        }
        List<String> names = new ArrayList<>();
        for (String n : o.bitmaps()) {
            if (!names.contains(n)) {
                names.add(0, n);
            }
        }
        for (int i = 0; i < names.size(); i++) {
            String n = names.get(i);
            Qcow2Image owner = null;
            DirtyBitmap bitmap = null;
            for (BlockDevice d = o.device(); d instanceof Qcow2Image q; d = q.chain().backing()) {
                Bitmaps bitmaps = Bitmaps.of(q);
                if (bitmaps.contains(n)) {
                    owner = q;
                    bitmap = bitmaps.get(n);
                    break;
                }
            }
            if (bitmap == null) {
                throw new IllegalArgumentException("Bitmap '" + n + "' is not found");
            }
            if (bitmap.isInconsistent()) {
                throw new IllegalArgumentException("Bitmap '" + n + "' is inconsistent and cannot be used");
            }
            if (bitmap.isBusy()) {
                throw new IllegalArgumentException("Bitmap '" + n + "' is currently in use by another operation and cannot be used");
            }
            list.add(new MetaContext(2 + i, Nbd.CONTEXT_DIRTY_BITMAP_PREFIX + n, MetaContext.Kind.DIRTY_BITMAP, bitmap, owner));
        }
        return List.copyOf(list);
    }

    /** Where the server listens (the port chosen when it was 0). */
    public SocketAddress localAddress() {
        return localAddress;
    }

    public Options options() {
        return options;
    }

    /** Blocks until the server stopped: {@link #close()}, or the last client left a non-persistent server. */
    public void awaitTermination() throws InterruptedException {
        stopped.await();
    }

    public boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
        return stopped.await(timeout, unit);
    }

    private void acceptLoop() {
        try {
            while (!stopping) {
                slots.acquire();
                SocketChannel ch;
                try {
                    ch = listener.accept();
                } catch (IOException e) {
                    slots.release();
                    if (stopping || e instanceof ClosedChannelException) {
                        break;
                    }
                    continue; // a client that vanished before accept: keep serving
                }
                live.incrementAndGet();
                Connection c = new Connection(this, export, ch, options.tls(), workers);
                connections.add(c);
                daemon("nbd-client").newThread(c::run).start();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            if (!stopping) {
                // the listener failed for good: stop as qemu-nbd would
                new Thread(this::closeQuietly, "nbd-stop").start();
            }
        }
    }

    /** A connection ended (the client left, or was dropped): frees its slot; the last one stops a non-persistent server. */
    void ended(Connection c) {
        if (connections.remove(c)) {
            slots.release();
            if (live.decrementAndGet() == 0 && !options.persistent() && !stopping) {
                new Thread(this::closeQuietly, "nbd-stop").start();
            }
        }
    }

    boolean stopping() {
        return stopping;
    }

    private void closeQuietly() {
        try {
            close();
        } catch (IOException e) {
            // the caller of awaitTermination closes the device and reports its errors
        }
    }

    /**
     * Stops serving: no new clients, no new requests; the requests in flight complete and
     * their replies go out (clients that do not take them are cut off after a while), then
     * the device is flushed. The device stays open.
     */
    @Override
    public void close() throws IOException {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            stopping = true;
        }
        try {
            listener.close();
            acceptor.interrupt();
            for (Connection c : connections) {
                c.stopReading();
            }
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(DRAIN_MILLIS);
            for (Connection c : connections) {
                c.awaitIdle(Math.max(0, deadline - System.nanoTime()));
            }
            for (Connection c : connections) {
                c.closeChannel();
            }
            workers.shutdown();
            // whatever was taken from a client completes on the image before the flush
            while (!workers.awaitTermination(1, TimeUnit.SECONDS)) {
                Thread.onSpinWait();
            }
            if (!export.readOnly) {
                export.flush();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while stopping the NBD server", e);
        } finally {
            export.close();
            if (socketFile != null) {
                Files.deleteIfExists(socketFile);
            }
            stopped.countDown();
        }
    }

    private static ThreadFactory daemon(String name) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, name + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }
}
