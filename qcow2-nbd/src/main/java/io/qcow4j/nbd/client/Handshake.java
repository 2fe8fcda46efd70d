package io.qcow4j.nbd.client;

import static io.qcow4j.nbd.protocol.Nbd.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;

/**
 * The client's side of the handshake: fixed newstyle (or oldstyle, or plain newstyle,
 * from old servers), STARTTLS, STRUCTURED_REPLY, SET_META_CONTEXT and GO, falling back to
 * EXPORT_NAME where the server knows no better. Everything the server sends is checked
 * before it is used: magic numbers, the option echoed, reply lengths, block sizes.
 */
final class Handshake {
    /** "IHAVEOPT"'s oldstyle counterpart. */
    static final long OLDSTYLE_MAGIC = 0x00420281861253L;
    /** Option replies are short (names and contexts are at most 4 KiB); anything longer is refused. */
    private static final int MAX_OPTION_REPLY = 64 * 1024;
    private static final String PROTOCOL_ERROR = "NBD protocol error: ";

    /** What the handshake settled. */
    record Session(String protocol, long size, int flags, int minBlock, int preferredBlock, int maxBlock,
                   boolean structured, Map<Integer, String> contexts, boolean tls) {
    }

    private final Wire wire;
    private final NbdUri uri;
    private final NbdClient.Options options;
    private boolean tls;

    private Handshake(Wire wire, NbdUri uri, NbdClient.Options options) {
        this.wire = wire;
        this.uri = uri;
        this.options = options;
    }

    /** Negotiates up to transmission. */
    static Session negotiate(Wire wire, NbdUri uri, NbdClient.Options options) throws IOException {
        return new Handshake(wire, uri, options).run(null);
    }

    /** Negotiates options only, lists the meta contexts matching {@code queries}, and aborts. */
    static List<String> listContexts(Wire wire, NbdUri uri, NbdClient.Options options, List<String> queries)
            throws IOException {
        List<String> found = new ArrayList<>();
        new Handshake(wire, uri, options).run(h -> {
            h.sendOption(OPT_LIST_META_CONTEXT, contextRequest(uri.export(), queries));
            h.readContexts(OPT_LIST_META_CONTEXT, found, null);
            h.sendOption(OPT_ABORT, new byte[0]);
        });
        return found;
    }

    private interface OptionPhase {
        void run(Handshake h) throws IOException;
    }

    private Session run(OptionPhase instead) throws IOException {
        if (wire.readLong() != NBDMAGIC) {
            throw protocol("the server did not greet with NBDMAGIC: not an NBD server");
        }
        long style = wire.readLong();
        if (style == OLDSTYLE_MAGIC) {
            return oldstyle();
        }
        if (style != IHAVEOPT) {
            throw protocol(String.format("unknown handshake style 0x%016x", style));
        }
        int serverFlags = wire.readShort() & 0xffff;
        boolean fixed = (serverFlags & FLAG_FIXED_NEWSTYLE) != 0;
        boolean noZeroes = (serverFlags & FLAG_NO_ZEROES) != 0;
        wire.writeInt((fixed ? FLAG_C_FIXED_NEWSTYLE : 0) | (noZeroes ? FLAG_C_NO_ZEROES : 0));
        wire.flush();
        if (!fixed) {
            // plain newstyle: no option but EXPORT_NAME may be sent
            if (uri.tls() || instead != null) {
                throw new NbdException("The server does not support fixed newstyle negotiation"
                        + (uri.tls() ? ", which TLS needs" : ""), REP_ERR_UNSUP);
            }
            return exportName(noZeroes, "newstyle", false, Map.of());
        }
        if (uri.tls()) {
            startTls();
            try {
                return options(instead, noZeroes);
            } catch (NbdException e) {
                throw e;
            } catch (IOException e) {
                if (e.getMessage() != null && e.getMessage().startsWith(PROTOCOL_ERROR)) {
                    throw e;
                }
                // TLS 1.3 ends the handshake before the server has checked the client's certificate
                throw new IOException("the server ended the TLS session: " + e.getMessage()
                        + " (a server that verifies its clients needs client-cert.pem and client-key.pem)", e);
            }
        }
        return options(instead, noZeroes);
    }

    /** The options after the greeting (and STARTTLS): the caller's, or those that lead to transmission. */
    private Session options(OptionPhase instead, boolean noZeroes) throws IOException {
        if (instead != null) {
            instead.run(this);
            return null;
        }
        boolean structured = false;
        if (options.structuredReplies()) {
            sendOption(OPT_STRUCTURED_REPLY, new byte[0]);
            Reply r = readReply(OPT_STRUCTURED_REPLY);
            if (r.type == REP_ACK) {
                structured = true;
            } else if (!isError(r.type)) {
                throw protocol("unexpected reply " + r.type + " to OPT_STRUCTURED_REPLY");
            }
            // an error (TLS required too: OPT_GO then says so, as QEMU reports it): simple replies
        }
        Map<Integer, String> contexts = new LinkedHashMap<>();
        if (structured && !options.metaContexts().isEmpty()) {
            sendOption(OPT_SET_META_CONTEXT, contextRequest(uri.export(), options.metaContexts()));
            readContexts(OPT_SET_META_CONTEXT, null, contexts);
        }
        Session s = go(structured, contexts);
        // a server without GO: what was negotiated before still holds (structured replies, contexts)
        return s != null ? s : exportName(noZeroes, "newstyle-fixed", structured, contexts);
    }

    /** OPT_GO with INFO_BLOCK_SIZE; null when the server does not know GO (then EXPORT_NAME). */
    private Session go(boolean structured, Map<Integer, String> contexts) throws IOException {
        byte[] name = uri.export().getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(4 + name.length + 2 + 2);
        b.putInt(name.length).put(name).putShort((short) 1).putShort((short) INFO_BLOCK_SIZE);
        sendOption(OPT_GO, b.array());
        long size = -1;
        int flags = 0;
        int min = 1;
        int preferred = 4096;
        int max = MAX_PAYLOAD;
        boolean gotBlockSize = false;
        while (true) {
            Reply r = readReply(OPT_GO);
            if (r.type == REP_ACK) {
                break;
            }
            if (r.type == REP_ERR_UNSUP) {
                return null;
            }
            if (isError(r.type)) {
                throw refusal(r, OPT_GO);
            }
            if (r.type != REP_INFO) {
                throw protocol("unexpected reply " + r.type + " to OPT_GO");
            }
            if (r.data.length < 2) {
                throw protocol("NBD_REP_INFO of " + r.data.length + " bytes");
            }
            ByteBuffer d = ByteBuffer.wrap(r.data);
            int info = d.getShort() & 0xffff;
            if (info == INFO_EXPORT) {
                if (r.data.length != 12) {
                    throw protocol("NBD_INFO_EXPORT of " + r.data.length + " bytes (not 12)");
                }
                size = d.getLong();
                flags = d.getShort() & 0xffff;
                if (size < 0) {
                    throw protocol("export size " + Long.toUnsignedString(size) + " is too large");
                }
            } else if (info == INFO_BLOCK_SIZE) {
                if (r.data.length != 14) {
                    throw protocol("NBD_INFO_BLOCK_SIZE of " + r.data.length + " bytes (not 14)");
                }
                min = d.getInt();
                preferred = d.getInt();
                max = d.getInt();
                gotBlockSize = true;
            }
            // NAME, DESCRIPTION and unknown information are ignored, as the spec allows
        }
        if (size < 0) {
            throw protocol("the server sent no NBD_INFO_EXPORT before acknowledging OPT_GO");
        }
        if (gotBlockSize) {
            checkBlockSizes(min, preferred, max);
        }
        // the maximum may be 0xffffffff ("no limit"); requests stay within the default either way
        int limit = max == -1 ? MAX_PAYLOAD : Math.min(max, MAX_PAYLOAD);
        return new Session("newstyle-fixed", size, flags, min, preferred, Math.max(limit, min),
                structured, contexts, tls);
    }

    private static void checkBlockSizes(int min, int preferred, int max) throws IOException {
        boolean ok = min > 0 && min <= 65536 && Integer.bitCount(min) == 1
                && preferred >= min && Integer.bitCount(preferred) == 1
                && (max == -1 || (max >= min && max % min == 0));
        if (!ok) {
            throw protocol("invalid block sizes: minimum " + Integer.toUnsignedString(min) + ", preferred "
                    + Integer.toUnsignedString(preferred) + ", maximum " + Integer.toUnsignedString(max));
        }
    }

    /** OPT_EXPORT_NAME: no reply on failure (the server just hangs up), size and flags on success. */
    private Session exportName(boolean noZeroes, String protocol, boolean structured, Map<Integer, String> contexts)
            throws IOException {
        byte[] name = uri.export().getBytes(StandardCharsets.UTF_8);
        wire.writeLong(IHAVEOPT);
        wire.writeInt(OPT_EXPORT_NAME);
        wire.writeInt(name.length);
        wire.write(name);
        wire.flush();
        long size;
        try {
            size = wire.readLong();
        } catch (java.io.EOFException e) {
            throw new NbdException("Requested export not available (the server closed the connection)", REP_ERR_UNKNOWN);
        }
        int flags = wire.readShort() & 0xffff;
        if (!noZeroes) {
            wire.skip(124);
        }
        if (size < 0) {
            throw protocol("export size " + Long.toUnsignedString(size) + " is too large");
        }
        return new Session(protocol, size, flags, 1, 4096, MAX_PAYLOAD, structured, contexts, tls);
    }

    private Session oldstyle() throws IOException {
        if (uri.tls()) {
            throw new NbdException("The server uses the oldstyle protocol, which has no TLS", REP_ERR_UNSUP);
        }
        long size = wire.readLong();
        int flags = wire.readInt() & 0xffff;
        wire.skip(124);
        if (size < 0) {
            throw protocol("export size " + Long.toUnsignedString(size) + " is too large");
        }
        return new Session("oldstyle", size, flags, 1, 4096, MAX_PAYLOAD, false, Map.of(), false);
    }

    private void startTls() throws IOException {
        sendOption(OPT_STARTTLS, new byte[0]);
        Reply r = readReply(OPT_STARTTLS);
        if (r.type != REP_ACK) {
            if (isError(r.type)) {
                throw refusal(r, OPT_STARTTLS);
            }
            throw protocol("unexpected reply " + r.type + " to OPT_STARTTLS");
        }
        SSLContext ctx = options.sslContext() != null ? options.sslContext()
                : uri.tlsCertificates() != null ? TlsCredentials.fromDirectory(uri.tlsCertificates())
                : defaultContext();
        SSLEngine engine;
        if (uri.host() != null) {
            engine = ctx.createSSLEngine(uri.host(), uri.port());
            SSLParameters p = engine.getSSLParameters();
            p.setEndpointIdentificationAlgorithm("HTTPS"); // the certificate must name the host
            engine.setSSLParameters(p);
        } else {
            engine = ctx.createSSLEngine();
        }
        try {
            wire.switchTo(TlsChannel.handshake(wire.channel(), engine));
        } catch (javax.net.ssl.SSLException | java.net.SocketException | java.io.EOFException e) {
            throw new IOException("TLS handshake failed: " + e.getMessage(), e);
        }
        tls = true;
    }

    private static SSLContext defaultContext() throws IOException {
        try {
            return SSLContext.getDefault();
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IOException("no TLS in this JVM", e);
        }
    }

    // ---------------------------------------------------------------- meta contexts

    static byte[] contextRequest(String export, List<String> queries) {
        byte[] name = export.getBytes(StandardCharsets.UTF_8);
        List<byte[]> q = queries.stream().map(s -> s.getBytes(StandardCharsets.UTF_8)).toList();
        int n = 4 + name.length + 4 + q.stream().mapToInt(x -> 4 + x.length).sum();
        ByteBuffer b = ByteBuffer.allocate(n);
        b.putInt(name.length).put(name).putInt(q.size());
        for (byte[] x : q) {
            b.putInt(x.length).put(x);
        }
        return b.array();
    }

    /** META_CONTEXT replies up to the ACK, into {@code names} (LIST) or {@code ids} (SET). */
    private void readContexts(int option, List<String> names, Map<Integer, String> ids) throws IOException {
        while (true) {
            Reply r = readReply(option);
            if (r.type == REP_ACK) {
                return;
            }
            if (r.type == REP_ERR_UNSUP) {
                return; // the server has no meta contexts: none negotiated
            }
            if (isError(r.type)) {
                throw refusal(r, option);
            }
            if (r.type != REP_META_CONTEXT || r.data.length < 5) {
                throw protocol("unexpected reply " + r.type + " of " + r.data.length + " bytes to a meta context option");
            }
            ByteBuffer d = ByteBuffer.wrap(r.data);
            int id = d.getInt();
            String name = new String(r.data, 4, r.data.length - 4, StandardCharsets.UTF_8);
            if (names != null) {
                names.add(name);
            } else {
                if (!options.metaContexts().contains(name)) {
                    throw protocol("the server selected meta context '" + name + "', which was not asked for");
                }
                if (ids.containsKey(id) || ids.containsValue(name)) {
                    throw protocol("the server selected meta context '" + name + "' (id " + id + ") twice");
                }
                ids.put(id, name);
            }
        }
    }

    // ---------------------------------------------------------------- option requests and replies

    private record Reply(int type, byte[] data) {
    }

    void sendOption(int option, byte[] data) throws IOException {
        wire.writeLong(IHAVEOPT);
        wire.writeInt(option);
        wire.writeInt(data.length);
        wire.write(data);
        wire.flush();
    }

    private Reply readReply(int option) throws IOException {
        long magic = wire.readLong();
        if (magic != OPTION_REPLY_MAGIC) {
            throw protocol(String.format("bad option reply magic 0x%016x", magic));
        }
        int echoed = wire.readInt();
        if (echoed != option) {
            throw protocol("the server replied to option " + echoed + " when option " + option + " was sent");
        }
        int type = wire.readInt();
        int length = wire.readInt();
        if (length < 0 || length > MAX_OPTION_REPLY) {
            throw protocol("option reply of " + Integer.toUnsignedString(length) + " bytes (at most "
                    + MAX_OPTION_REPLY + ")");
        }
        return new Reply(type, wire.readBytes(length));
    }

    private static boolean isError(int type) {
        return type < 0; // bit 31
    }

    /** An error reply, in qemu's words, with the server's message on a last line. */
    private NbdException refusal(Reply r, int option) {
        String what = "option " + option + " (" + optionName(option) + ")";
        String why = switch (r.type) {
            case REP_ERR_UNKNOWN -> "Requested export not available";
            case REP_ERR_POLICY -> "Denied by server for " + what;
            case REP_ERR_INVALID -> "Invalid parameters for " + what;
            case REP_ERR_PLATFORM -> "Server lacks support for " + what;
            case REP_ERR_TLS_REQD -> "TLS negotiation required before " + what + "\nDid you forget a valid tls-creds?";
            case REP_ERR_SHUTDOWN -> "Server shutting down before " + what;
            case REP_ERR_BLOCK_SIZE_REQD -> "Server requires INFO_BLOCK_SIZE for " + what;
            case REP_ERR_TOO_BIG -> "Request too big for " + what;
            case REP_ERR_UNSUP -> "Unsupported option " + what;
            default -> "Unknown error code when asking for " + what;
        };
        String said = new String(r.data, StandardCharsets.UTF_8);
        return new NbdException(said.isEmpty() ? why : why + "\nserver reported: " + said, r.type);
    }

    private static String optionName(int option) {
        return switch (option) {
            case OPT_EXPORT_NAME -> "export name";
            case OPT_ABORT -> "abort";
            case OPT_LIST -> "list";
            case OPT_STARTTLS -> "starttls";
            case OPT_INFO -> "info";
            case OPT_GO -> "go";
            case OPT_STRUCTURED_REPLY -> "structured reply";
            case OPT_LIST_META_CONTEXT -> "list meta context";
            case OPT_SET_META_CONTEXT -> "set meta context";
            default -> "unknown";
        };
    }

    private static IOException protocol(String message) {
        return new IOException(PROTOCOL_ERROR + message);
    }
}
