package io.qcow4j.nbd.client;

import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Objects;

/**
 * Where an NBD export is: a Unix socket or a TCP host and port, the export name, and
 * whether to use TLS. Parsed from the URIs qemu-img takes, with qemu's rules and messages:
 * <ul>
 * <li>{@code nbd://HOST[:PORT][/EXPORT]} and {@code nbd+tcp://...} (port 10809 by default, no query);</li>
 * <li>{@code nbd+unix:///[EXPORT]?socket=PATH} (no host, no port, {@code socket} the only query parameter);</li>
 * <li>qemu's older form {@code nbd:HOST:PORT[:exportname=EXPORT]} and {@code nbd:unix:PATH[:exportname=EXPORT]};</li>
 * <li>beyond qemu-img, as libnbd's URIs: {@code nbds://}, {@code nbds+tcp://} and {@code nbds+unix://}
 * with TLS, and an optional {@code tls-certificates=DIR} query parameter naming a QEMU
 * {@code tls-creds-x509} directory ({@code ca-cert.pem}, optional {@code client-cert.pem} and
 * {@code client-key.pem}).</li>
 * </ul>
 * The export name is percent-decoded; a fragment is ignored. {@link #toString()} is the
 * name qemu-img prints for the export ({@code nbd+unix:///exp?socket=/run/s},
 * {@code nbd://host:10809/exp}).
 *
 * @param socket          the Unix socket, or null for TCP
 * @param host            the TCP host (without IPv6 brackets), or null for a Unix socket
 * @param port            the TCP port, or 0 for a Unix socket
 * @param export          the export name, "" for the server's default export
 * @param tls             negotiate TLS (OPT_STARTTLS) before anything else
 * @param tlsCertificates the tls-creds-x509 directory, or null (the JDK's trusted CAs)
 */
public record NbdUri(Path socket, String host, int port, String export, boolean tls, Path tlsCertificates) {
    /** The NBD port IANA assigned, qemu's default. */
    public static final int DEFAULT_PORT = 10809;
    private static final String INVALID = "No valid URL specified";

    public NbdUri {
        Objects.requireNonNull(export, "export");
        if ((socket == null) == (host == null)) {
            throw new IllegalArgumentException("an NBD address is either a Unix socket or a TCP host");
        }
        if (host != null && (port < 1 || port > 65535)) {
            throw new IllegalArgumentException("TCP port out of range: " + port);
        }
    }

    /** An export on a Unix socket, without TLS. */
    public static NbdUri unix(Path socket, String export) {
        return new NbdUri(socket, null, 0, export, false, null);
    }

    /** An export on a TCP host and port, without TLS. */
    public static NbdUri tcp(String host, int port, String export) {
        return new NbdUri(null, host, port, export, false, null);
    }

    /** This address with TLS, trusting the CA of the QEMU tls-creds-x509 directory {@code dir} (null: the JDK's CAs). */
    public NbdUri withTls(Path dir) {
        return new NbdUri(socket, host, port, export, true, dir);
    }

    /** The same export on another socket path (a relative socket name resolved by the caller). */
    public NbdUri withSocket(Path path) {
        return new NbdUri(path, null, 0, export, tls, tlsCertificates);
    }

    /** True when {@code name} is meant as an NBD address: its protocol prefix starts with "nbd". */
    public static boolean isNbd(String name) {
        String p = protocol(name);
        return p != null && p.startsWith("nbd");
    }

    /**
     * Parses an NBD URI (see the class comment). A malformed one is an
     * {@link IllegalArgumentException} with qemu's message ("No valid URL specified",
     * "Unknown protocol 'nbd+foo'").
     */
    public static NbdUri parse(String uri) {
        String protocol = protocol(uri);
        if (protocol == null || !protocol.startsWith("nbd")) {
            throw new IllegalArgumentException("File name string for NBD must start with 'nbd:'");
        }
        if (!uri.startsWith(protocol + "://")) {
            if (!protocol.equals("nbd")) {
                throw new IllegalArgumentException(
                        uri.contains("://") ? "Unknown protocol '" + protocol + "'" : "File name string for NBD must start with 'nbd:'");
            }
            return parseLegacy(uri);
        }
        boolean tls;
        boolean unix;
        switch (protocol) {
            case "nbd", "nbd+tcp" -> { tls = false; unix = false; }
            case "nbd+unix" -> { tls = false; unix = true; }
            case "nbds", "nbds+tcp" -> { tls = true; unix = false; }
            case "nbds+unix" -> { tls = true; unix = true; }
            default -> throw new IllegalArgumentException("Unknown protocol '" + protocol + "'");
        }
        String rest = uri.substring(protocol.length() + 3);
        int hash = rest.indexOf('#');
        if (hash >= 0) {
            rest = rest.substring(0, hash);
        }
        String query = null;
        int q = rest.indexOf('?');
        if (q >= 0) {
            query = rest.substring(q + 1);
            rest = rest.substring(0, q);
        }
        int slash = rest.indexOf('/');
        String authority = slash < 0 ? rest : rest.substring(0, slash);
        String path = slash < 0 ? "" : rest.substring(slash + 1);
        String export = decode(path);
        String socket = null;
        Path certs = null;
        if (query != null && !query.isEmpty()) {
            for (String param : query.split("[&;]")) {
                int eq = param.indexOf('=');
                String key = eq < 0 ? param : param.substring(0, eq);
                String value = eq < 0 ? "" : decode(param.substring(eq + 1));
                if (unix && key.equals("socket") && socket == null) {
                    socket = value;
                } else if (tls && key.equals("tls-certificates") && certs == null) {
                    certs = Path.of(value);
                } else {
                    throw new IllegalArgumentException(INVALID);
                }
            }
        }
        if (unix) {
            if (!authority.isEmpty() || socket == null || socket.isEmpty()) {
                throw new IllegalArgumentException(INVALID);
            }
            return new NbdUri(Path.of(socket), null, 0, export, tls, certs);
        }
        String host = authority;
        int port = DEFAULT_PORT;
        int colon = authority.lastIndexOf(':');
        if (colon >= 0 && colon > authority.lastIndexOf(']')) {
            host = authority.substring(0, colon);
            port = port(authority.substring(colon + 1));
        }
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        if (host.isEmpty() || authority.contains("@")) {
            throw new IllegalArgumentException(INVALID);
        }
        return new NbdUri(null, host, port, export, tls, certs);
    }

    /** {@code nbd:unix:PATH[:exportname=E]} and {@code nbd:HOST:PORT[:exportname=E]}, as qemu reads them. */
    private static NbdUri parseLegacy(String spec) {
        String rest = spec.substring("nbd:".length());
        String export = "";
        int e = rest.indexOf(":exportname=");
        if (e >= 0) {
            export = rest.substring(e + ":exportname=".length());
            rest = rest.substring(0, e);
        }
        if (rest.startsWith("unix:")) {
            String path = rest.substring("unix:".length());
            if (path.isEmpty()) {
                throw new IllegalArgumentException("error parsing address '" + rest + "'");
            }
            return new NbdUri(Path.of(path), null, 0, export, false, null);
        }
        int colon = rest.lastIndexOf(':');
        if (colon <= 0) {
            throw new IllegalArgumentException("error parsing address '" + rest + "'");
        }
        String host = rest.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port;
        try {
            port = port(rest.substring(colon + 1));
        } catch (IllegalArgumentException ex) {
            throw new IllegalArgumentException("error parsing address '" + rest + "'");
        }
        return new NbdUri(null, host, port, export, false, null);
    }

    /** The scheme of a "scheme:..." name, or null when a '/' comes before any ':' (a file name). */
    private static String protocol(String name) {
        int colon = name.indexOf(':');
        if (colon <= 0) {
            return null;
        }
        int slash = name.indexOf('/');
        if (slash >= 0 && slash < colon) {
            return null;
        }
        return name.substring(0, colon);
    }

    private static int port(String text) {
        if (text.isEmpty()) {
            return DEFAULT_PORT;
        }
        if (!text.chars().allMatch(c -> c >= '0' && c <= '9') || text.length() > 9) {
            throw new IllegalArgumentException(INVALID);
        }
        int port = Integer.parseInt(text);
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException(INVALID);
        }
        return port;
    }

    private static String decode(String s) {
        try {
            // '+' is a plain character in a URI path, not a space
            return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(INVALID);
        }
    }

    /** The address as qemu names it in messages: the socket path, or "host:port". */
    public String address() {
        return socket != null ? socket.toString() : host + ":" + port;
    }

    /** The name qemu-img prints for this export. */
    @Override
    public String toString() {
        String name = export.isEmpty() ? "" : "/" + export;
        String scheme = tls ? "nbds" : "nbd";
        if (socket != null) {
            return scheme + "+unix://" + name + "?socket=" + socket;
        }
        return scheme + "://" + host + ":" + port + name;
    }
}
