package io.qcow4j.nbd.client;

import java.io.Closeable;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.net.UnknownHostException;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/** The socket to the server (Unix or TCP) and the wire over it; connect errors in qemu's words. */
final class Connection implements Closeable {
    private static final ScheduledExecutorService WATCHDOG = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "nbd-handshake-watchdog");
        t.setDaemon(true);
        return t;
    });

    private final SocketChannel socket;
    private final Wire wire;

    private Connection(SocketChannel socket) {
        this.socket = socket;
        this.wire = new Wire(socket);
    }

    Wire wire() {
        return wire;
    }

    static Connection open(NbdUri uri) throws IOException {
        if (uri.socket() != null) {
            SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            try {
                ch.connect(UnixDomainSocketAddress.of(uri.socket()));
            } catch (IOException e) {
                ch.close();
                throw failed(uri, e);
            }
            return new Connection(ch);
        }
        InetAddress[] addresses;
        try {
            addresses = InetAddress.getAllByName(uri.host());
        } catch (UnknownHostException e) {
            throw new IOException("address resolution failed for " + uri.host() + ":" + uri.port()
                    + ": Name or service not known", e);
        }
        IOException last = null;
        for (InetAddress a : addresses) {
            SocketChannel ch = SocketChannel.open();
            try {
                ch.connect(new InetSocketAddress(a, uri.port()));
                ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
                return new Connection(ch);
            } catch (IOException e) {
                ch.close();
                last = e;
            }
        }
        throw failed(uri, last);
    }

    private static IOException failed(NbdUri uri, IOException e) {
        String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return new IOException("Failed to connect to '" + uri.address() + "': " + why, e);
    }

    interface Step<T> {
        T run() throws IOException;
    }

    /**
     * Runs {@code step} (the handshake), closing the socket if it takes longer than
     * {@code timeout}: a blocking channel has no read timeout, and a server that never
     * answers must not hang the caller.
     */
    <T> T withDeadline(Duration timeout, Step<T> step) throws IOException {
        AtomicBoolean expired = new AtomicBoolean();
        ScheduledFuture<?> alarm = WATCHDOG.schedule(() -> {
            expired.set(true);
            try {
                socket.close();
            } catch (IOException ignored) {
                // closing is all the alarm does
            }
        }, timeout.toMillis(), TimeUnit.MILLISECONDS);
        try {
            return step.run();
        } catch (IOException e) {
            if (expired.get()) {
                throw new IOException("the server did not complete the handshake within " + timeout.toSeconds()
                        + " s (a qemu-nbd without -e serves one client at a time)", e);
            }
            throw e;
        } finally {
            alarm.cancel(false);
        }
    }

    /** Closes the channel the wire uses now (TLS closes the socket under it). */
    @Override
    public void close() throws IOException {
        try {
            wire.channel().close();
        } finally {
            socket.close();
        }
    }
}
