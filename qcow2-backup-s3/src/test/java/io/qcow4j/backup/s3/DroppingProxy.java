package io.qcow4j.backup.s3;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BiPredicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A TCP relay in front of the S3 server that drops connections the way a network does: when
 * a request uploads a part ({@code PUT ...?partNumber=N}) the test wants dropped, it relays
 * 64 KiB of the request and then resets both sides. It counts the requests of each part
 * number. Nothing of S3 is imitated: every byte it lets through reaches the real server.
 */
final class DroppingProxy implements AutoCloseable {
    private static final Pattern PART = Pattern.compile("PUT [^ ]*[?&]partNumber=(\\d+)");
    private static final int BEFORE_DROP = 64 << 10;

    private final ServerSocket listener;
    private final int target;
    /** (part number, its attempt counting from 1): drop it? */
    private volatile BiPredicate<Integer, Integer> drop = (part, attempt) -> false;
    final Map<Integer, AtomicInteger> attempts = new ConcurrentHashMap<>();
    final AtomicInteger dropped = new AtomicInteger();

    DroppingProxy(URI server) throws IOException {
        target = server.getPort();
        listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread t = new Thread(this::accept, "dropping-proxy");
        t.setDaemon(true);
        t.start();
    }

    URI endpoint() {
        return URI.create("http://127.0.0.1:" + listener.getLocalPort());
    }

    /** Which part uploads to drop from now on; the attempt counts start again. */
    void drop(BiPredicate<Integer, Integer> which) {
        attempts.clear();
        drop = which;
    }

    private void accept() {
        while (!listener.isClosed()) {
            try {
                Socket client = listener.accept();
                Socket server = new Socket(InetAddress.getLoopbackAddress(), target);
                start(() -> relayRequests(client, server));
                start(() -> pump(server, client));
            } catch (IOException e) {
                return; // closed
            }
        }
    }

    private static void start(Runnable r) {
        Thread t = new Thread(r, "dropping-proxy-relay");
        t.setDaemon(true);
        t.start();
    }

    /** Client to server, watching for request lines; a dropped request ends the connection. */
    private void relayRequests(Socket client, Socket server) {
        byte[] buf = new byte[64 << 10];
        long left = -1; // bytes still to relay before the drop, or -1
        try (InputStream in = client.getInputStream(); OutputStream out = server.getOutputStream()) {
            int n;
            while ((n = in.read(buf)) > 0) {
                if (left < 0) {
                    // a request line starts a read after the previous exchange: look at its head
                    Matcher m = PART.matcher(new String(buf, 0, Math.min(n, 512), StandardCharsets.ISO_8859_1));
                    if (m.lookingAt()) {
                        int part = Integer.parseInt(m.group(1));
                        int attempt = attempts.computeIfAbsent(part, k -> new AtomicInteger()).incrementAndGet();
                        if (drop.test(part, attempt)) {
                            left = BEFORE_DROP;
                        }
                    }
                }
                if (left >= 0 && n >= left) {
                    out.write(buf, 0, (int) left);
                    out.flush();
                    dropped.incrementAndGet();
                    reset(client);
                    reset(server);
                    return;
                }
                out.write(buf, 0, n);
                if (left >= 0) {
                    left -= n;
                }
            }
        } catch (IOException e) {
            // the other side went away
        } finally {
            closeQuietly(server);
        }
    }

    private static void pump(Socket from, Socket to) {
        byte[] buf = new byte[64 << 10];
        try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
            int n;
            while ((n = in.read(buf)) > 0) {
                out.write(buf, 0, n);
            }
        } catch (IOException e) {
            // dropped or closed
        } finally {
            closeQuietly(to);
        }
    }

    /** Closes with a TCP reset (SO_LINGER 0), as a dropped connection looks. */
    private static void reset(Socket s) {
        try {
            s.setSoLinger(true, 0);
            s.close();
        } catch (IOException e) {
            // already gone
        }
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException e) {
            // already gone
        }
    }

    @Override
    public void close() throws IOException {
        listener.close();
    }
}
