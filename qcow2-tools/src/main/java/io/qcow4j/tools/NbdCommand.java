package io.qcow4j.tools;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.nbd.protocol.Nbd;
import io.qcow4j.nbd.server.NbdServer;
import io.qcow4j.nbd.server.TlsCredentials;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code nbd [-r] [-B NAME]... [-A] [-x EXPORT] [-k SOCKET | -p PORT [-b ADDR]] [-e SHARED] [-t]
 * [-f FMT] [--tls-creds DIR] FILE}, as qemu-nbd: serves FILE until the last client leaves
 * (or, with -t, until SIGTERM/SIGINT). On a signal the requests in flight complete, then the
 * image is flushed and closed (bitmaps stored, locks released). Prints nothing.
 */
@Command(name = "nbd", mixinStandardHelpOptions = true,
        description = "Export an image over NBD, as qemu-nbd does.")
final class NbdCommand implements Callable<Integer> {
    @Option(names = {"-r", "--read-only"}, description = "export read-only")
    boolean readOnly;

    @Option(names = {"-B", "--bitmap"}, paramLabel = "NAME", description = "expose a persistent dirty bitmap as qemu:dirty-bitmap:NAME")
    List<String> bitmaps = new ArrayList<>();

    @Option(names = {"-A", "--allocation-depth"}, description = "expose the allocation depth (qemu:allocation-depth)")
    boolean allocationDepth;

    @Option(names = {"-x", "--export-name"}, paramLabel = "NAME", description = "export name (default: empty)")
    String exportName = "";

    @Option(names = {"-D", "--description"}, paramLabel = "TEXT", description = "a human-readable description of the export")
    String description;

    @Option(names = {"-k", "--socket"}, paramLabel = "PATH", description = "listen on this unix socket")
    String socket;

    @Option(names = {"-p", "--port"}, paramLabel = "PORT", description = "TCP port to listen on (default 10809)")
    String port;

    @Option(names = {"-b", "--bind"}, paramLabel = "ADDR", description = "interface to bind to (default 0.0.0.0)")
    String bind;

    @Option(names = {"-e", "--shared"}, paramLabel = "NUM", description = "serve up to NUM clients at once (default 1, 0: no limit)")
    String shared = "1";

    @Option(names = {"-t", "--persistent"}, description = "do not exit when the last client leaves")
    boolean persistent;

    @Option(names = {"-f", "--format"}, paramLabel = "FMT", description = "image format: qcow2 or raw (default: probe)")
    String format;

    @Option(names = "--tls-creds", paramLabel = "DIR",
            description = "require TLS, with ca-cert.pem, server-cert.pem, server-key.pem from DIR (clients need a certificate from that CA)")
    String tlsCreds;

    @Option(names = "--discard", paramLabel = "MODE", description = "ignore (default) or unmap: whether TRIM frees clusters")
    String discard = "ignore";

    @Option(names = {"-n", "--nocache"}, description = "accepted for compatibility")
    boolean noCache;

    @Option(names = "--cache", paramLabel = "MODE", description = "accepted for compatibility")
    String cacheMode;

    @Option(names = "--aio", paramLabel = "MODE", description = "accepted for compatibility")
    String aio;

    @Parameters(paramLabel = "FILE", arity = "1")
    String file;

    @Override
    public Integer call() throws Exception {
        int clients = parseShared(shared);
        if (!discard.equals("ignore") && !discard.equals("off") && !discard.equals("unmap") && !discard.equals("on")) {
            throw new CliException("Invalid discard mode `" + discard + "'");
        }
        SocketAddress address = address();
        TlsCredentials tls = null;
        if (tlsCreds != null) {
            try {
                tls = TlsCredentials.fromDirectory(Cwd.path(tlsCreds));
            } catch (IOException | GeneralSecurityException e) {
                throw new CliException(Images.reason(e), 1, e);
            }
        }
        BlockDevice dev = Images.open(file, format, !readOnly, true);
        NbdServer server;
        try {
            NbdServer.Builder b = NbdServer.builder(dev).readOnly(readOnly).exportName(exportName)
                    .description(description).allocationDepth(allocationDepth).shared(clients)
                    .persistent(persistent).address(address).tls(tls)
                    .discard(discard.equals("unmap") || discard.equals("on"));
            bitmaps.forEach(b::bitmap);
            server = b.start();
        } catch (IOException e) {
            Images.closeQuietly(dev);
            throw new CliException("Failed to bind socket: " + Images.reason(e), 1, e);
        } catch (RuntimeException e) {
            Images.closeQuietly(dev);
            throw new CliException(Images.reason(e), 1, e);
        }
        return serve(server, dev);
    }

    /** Runs until the server stops; a signal stops it in order. Then the image is closed. */
    private int serve(NbdServer server, BlockDevice dev) throws InterruptedException {
        Runnable stop = () -> {
            try {
                server.close();
            } catch (IOException e) {
                // reported when the image is closed below
            }
        };
        Thread hook = new Thread(() -> {
            stop.run();
            Images.closeQuietly(dev);
        }, "qcow4j-nbd-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        Signals signals = Signals.install(() -> new Thread(stop, "qcow4j-nbd-signal").start());
        try {
            server.awaitTermination();
            stop.run();
            try {
                dev.close();
            } catch (IOException e) {
                throw new CliException("Failed to close '" + file + "': " + Images.reason(e), 1, e);
            }
            return 0;
        } finally {
            signals.restore();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // the JVM is shutting down: the hook runs, and finds everything closed
            }
        }
    }

    private static int parseShared(String s) {
        try {
            int n = Integer.parseInt(s);
            if (n >= 0) {
                return n;
            }
        } catch (NumberFormatException e) {
            // below
        }
        throw new CliException("Invalid shared device number '" + s + "'");
    }

    private SocketAddress address() {
        if (socket != null) {
            return UnixDomainSocketAddress.of(Cwd.path(socket));
        }
        String host = bind == null ? "0.0.0.0" : bind;
        int p = Nbd.DEFAULT_PORT;
        if (port != null) {
            try {
                p = Integer.parseInt(port);
            } catch (NumberFormatException e) {
                p = -1;
            }
            if (p < 0 || p > 65535) {
                throw new CliException("address resolution failed for " + host + ":" + port + ": Servname not supported for ai_socktype");
            }
        }
        try {
            return new InetSocketAddress(InetAddress.getByName(host), p);
        } catch (UnknownHostException e) {
            throw new CliException("address resolution failed for " + host + ":" + p + ": Name or service not known", 1, e);
        }
    }

    /** SIGTERM and SIGINT handlers for the time the server runs (qemu-nbd exits 0 on them). */
    static final class Signals {
        private final List<Object[]> previous = new ArrayList<>();

        static Signals install(Runnable onSignal) {
            Signals s = new Signals();
            for (String name : new String[] {"TERM", "INT"}) {
                try {
                    sun.misc.Signal sig = new sun.misc.Signal(name);
                    sun.misc.SignalHandler old = sun.misc.Signal.handle(sig, x -> onSignal.run());
                    s.previous.add(new Object[] {sig, old});
                } catch (IllegalArgumentException | UnsupportedOperationException | LinkageError e) {
                    // no such signal here, or taken by the JVM (-Xrs): the shutdown hook serves
                }
            }
            return s;
        }

        void restore() {
            for (Object[] p : previous) {
                sun.misc.Signal.handle((sun.misc.Signal) p[0], (sun.misc.SignalHandler) p[1]);
            }
        }
    }
}
