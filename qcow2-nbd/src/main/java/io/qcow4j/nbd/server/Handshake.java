package io.qcow4j.nbd.server;

import static io.qcow4j.nbd.protocol.Nbd.*;

import java.io.IOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Option haggling, as the fixed newstyle handshake has it: answered the way qemu-nbd
 * answers (the same replies, in the same order, for the same options and queries), except
 * that an option's data is always read whole, so a malformed one cannot desynchronise the
 * stream. Returns the negotiated session, or null when the client left or was dropped.
 */
final class Handshake {
    /** Longest option data read; longer options are skipped and refused (ERR_TOO_BIG). */
    private static final int MAX_OPTION = 1 << 20;
    private static final int ZEROES = 124;

    /** What the transmission phase needs from the handshake. */
    record Session(Transport transport, boolean structured, List<MetaContext> contexts) {
    }

    /** The client broke the protocol: drop the connection. */
    static final class Dropped extends IOException {
        private static final long serialVersionUID = 1L;

        Dropped(String why) {
            super(why);
        }
    }

    private final Export export;
    private final TlsCredentials tls;
    private Transport io;
    private boolean structured;
    private boolean noZeroes;
    private boolean tlsDone;
    private List<MetaContext> selected = List.of();

    Handshake(Export export, Transport io, TlsCredentials tls) {
        this.export = export;
        this.io = io;
        this.tls = tls;
    }

    Session negotiate() throws IOException {
        ByteBuffer hello = ByteBuffer.allocate(18).putLong(NBDMAGIC).putLong(IHAVEOPT)
                .putShort((short) (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)).flip();
        io.write(hello);
        int clientFlags = readInt();
        if ((clientFlags & ~(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES)) != 0) {
            throw new Dropped("unknown client flags 0x" + Integer.toHexString(clientFlags));
        }
        boolean fixed = (clientFlags & FLAG_C_FIXED_NEWSTYLE) != 0;
        noZeroes = (clientFlags & FLAG_C_NO_ZEROES) != 0;
        if (!fixed && tls != null) {
            throw new Dropped("TLS needs the fixed newstyle handshake");
        }
        while (true) {
            ByteBuffer h = read(16);
            if (h.getLong() != IHAVEOPT) {
                throw new Dropped("bad option magic");
            }
            int option = h.getInt();
            long length = h.getInt() & 0xffffffffL;
            if (!fixed && option != OPT_EXPORT_NAME) {
                throw new Dropped("option " + option + " without fixed newstyle");
            }
            if (length > MAX_OPTION) {
                skip(length);
                if (option == OPT_EXPORT_NAME) {
                    throw new Dropped("export name too long");
                }
                error(option, REP_ERR_TOO_BIG, "option " + option + " too long");
                continue;
            }
            ByteBuffer data = read((int) length);
            if (tls != null && !tlsDone) {
                if (!beforeTls(option, data)) {
                    return null;
                }
                continue;
            }
            Session s = option(option, data);
            if (s != null) {
                return s.transport() == null ? null : s;
            }
        }
    }

    /** FORCEDTLS: only STARTTLS and ABORT before TLS. False: the session ends. */
    private boolean beforeTls(int option, ByteBuffer data) throws IOException {
        switch (option) {
            case OPT_STARTTLS -> {
                if (data.hasRemaining()) {
                    error(option, REP_ERR_INVALID, "option 'starttls' has unexpected length");
                    return true;
                }
                reply(option, REP_ACK, null);
                io = tls.handshake((PlainTransport) io);
                tlsDone = true;
                return true;
            }
            case OPT_ABORT -> {
                reply(option, REP_ACK, null);
                return false;
            }
            case OPT_EXPORT_NAME -> throw new Dropped("option export-name not permitted before TLS");
            default -> {
                error(option, REP_ERR_TLS_REQD, "Option 0x" + Integer.toHexString(option) + " not permitted before TLS");
                return true;
            }
        }
    }

    /** One option; a non-null session ends the haggling (a null transport in it: the client aborted). */
    private Session option(int option, ByteBuffer data) throws IOException {
        switch (option) {
            case OPT_EXPORT_NAME -> {
                String name = string(data, data.remaining());
                if (!name.equals(export.name)) {
                    throw new Dropped("export '" + name + "' not present");
                }
                ByteBuffer b = ByteBuffer.allocate(10 + (noZeroes ? 0 : ZEROES));
                b.putLong(export.size).putShort((short) transmissionFlags());
                io.write(b.position(b.capacity()).flip());
                return new Session(io, structured, selected);
            }
            case OPT_ABORT -> {
                reply(option, REP_ACK, null);
                return new Session(null, false, List.of());
            }
            case OPT_LIST -> {
                if (data.hasRemaining()) {
                    error(option, REP_ERR_INVALID, "option 'list' has unexpected length");
                } else {
                    byte[] name = utf8(export.name);
                    byte[] desc = export.description == null ? new byte[0] : utf8(export.description);
                    reply(option, REP_SERVER, ByteBuffer.allocate(4 + name.length + desc.length)
                            .putInt(name.length).put(name).put(desc).flip());
                    reply(option, REP_ACK, null);
                }
            }
            case OPT_STARTTLS -> {
                if (data.hasRemaining()) {
                    error(option, REP_ERR_INVALID, "option 'starttls' has unexpected length");
                } else if (tlsDone) {
                    error(option, REP_ERR_INVALID, "TLS already enabled");
                } else {
                    error(option, REP_ERR_POLICY, "TLS not configured");
                }
            }
            case OPT_INFO, OPT_GO -> {
                if (info(option, data)) {
                    return new Session(io, structured, selected);
                }
            }
            case OPT_STRUCTURED_REPLY -> {
                if (data.hasRemaining()) {
                    error(option, REP_ERR_INVALID, "option 'structured reply' has unexpected length");
                } else if (structured) {
                    error(option, REP_ERR_INVALID, "structured reply already negotiated");
                } else {
                    structured = true;
                    reply(option, REP_ACK, null);
                }
            }
            case OPT_LIST_META_CONTEXT, OPT_SET_META_CONTEXT -> meta(option, data);
            default -> error(option, REP_ERR_UNSUP, "Unsupported option " + Integer.toUnsignedString(option));
        }
        return null;
    }

    /** OPT_INFO / OPT_GO: true when GO succeeded and transmission starts. */
    private boolean info(int option, ByteBuffer data) throws IOException {
        String name;
        List<Integer> requests = new ArrayList<>();
        try {
            int nameLength = data.getInt();
            if (nameLength < 0 || nameLength > data.remaining()) {
                throw new BufferUnderflowException();
            }
            if (nameLength > MAX_STRING) {
                error(option, REP_ERR_INVALID, "export name too long");
                return false;
            }
            name = string(data, nameLength);
            int n = data.getShort() & 0xffff;
            if (data.remaining() < 2 * n) {
                throw new BufferUnderflowException();
            }
            for (int i = 0; i < n; i++) {
                requests.add(data.getShort() & 0xffff);
            }
        } catch (BufferUnderflowException e) {
            error(option, REP_ERR_INVALID, "Inconsistent lengths in option " + (option == OPT_GO ? "go" : "info"));
            return false;
        }
        if (data.hasRemaining()) {
            error(option, REP_ERR_INVALID, "option '" + (option == OPT_GO ? "go" : "info") + "' has unexpected length");
            return false;
        }
        if (!name.equals(export.name)) {
            error(option, REP_ERR_UNKNOWN, "export '" + name + "' not present");
            return false;
        }
        if (requests.contains(INFO_NAME)) {
            byte[] n = utf8(export.name);
            reply(option, REP_INFO, ByteBuffer.allocate(2 + n.length).putShort((short) INFO_NAME).put(n).flip());
        }
        if (export.description != null) {
            byte[] d = utf8(export.description);
            reply(option, REP_INFO, ByteBuffer.allocate(2 + d.length).putShort((short) INFO_DESCRIPTION).put(d).flip());
        }
        // as qemu-nbd: byte granularity, 4 KiB preferred, 32 MiB payloads
        reply(option, REP_INFO, ByteBuffer.allocate(14).putShort((short) INFO_BLOCK_SIZE)
                .putInt(1).putInt(4096).putInt(MAX_PAYLOAD).flip());
        reply(option, REP_INFO, ByteBuffer.allocate(12).putShort((short) INFO_EXPORT)
                .putLong(export.size).putShort((short) transmissionFlags()).flip());
        reply(option, REP_ACK, null);
        return option == OPT_GO;
    }

    /** LIST/SET_META_CONTEXT, with qemu-nbd's queries: exact names, and for LIST "base:", "qemu:", "qemu:dirty-bitmap:". */
    private void meta(int option, ByteBuffer data) throws IOException {
        boolean list = option == OPT_LIST_META_CONTEXT;
        String what = list ? "list meta context" : "set meta context";
        if (!list && !structured) {
            error(option, REP_ERR_INVALID, "request option '" + what + "' when structured reply is not negotiated");
            return;
        }
        String name;
        List<String> queries = new ArrayList<>();
        try {
            int nameLength = data.getInt();
            if (nameLength < 0 || nameLength > data.remaining()) {
                throw new BufferUnderflowException();
            }
            name = string(data, nameLength);
            int n = data.getInt();
            if (n < 0) {
                throw new BufferUnderflowException();
            }
            for (int i = 0; i < n; i++) {
                int len = data.getInt();
                if (len < 0 || len > data.remaining()) {
                    throw new BufferUnderflowException();
                }
                queries.add(string(data, len));
            }
        } catch (BufferUnderflowException e) {
            error(option, REP_ERR_INVALID, "Inconsistent lengths in option " + what);
            return;
        }
        if (data.hasRemaining()) {
            error(option, REP_ERR_INVALID, "Inconsistent lengths in option " + what);
            return;
        }
        if (!name.equals(export.name)) {
            error(option, REP_ERR_UNKNOWN, "export '" + name + "' not present");
            return;
        }
        Set<MetaContext> chosen = new LinkedHashSet<>();
        for (MetaContext c : export.contexts) {
            if (list && queries.isEmpty()) {
                chosen.add(c);
                continue;
            }
            for (String q : queries) {
                if (q.equals(c.name()) || list && prefixQuery(q, c.name())) {
                    chosen.add(c);
                }
            }
        }
        for (MetaContext c : chosen) {
            byte[] n = utf8(c.name());
            reply(option, REP_META_CONTEXT, ByteBuffer.allocate(4 + n.length).putInt(list ? 0 : c.id()).put(n).flip());
        }
        reply(option, REP_ACK, null);
        if (!list) {
            selected = List.copyOf(chosen);
        }
    }

    private static boolean prefixQuery(String query, String context) {
        return (query.equals("base:") || query.equals("qemu:") || query.equals(CONTEXT_DIRTY_BITMAP_PREFIX))
                && context.startsWith(query);
    }

    private int transmissionFlags() {
        int f = FLAG_HAS_FLAGS | FLAG_SEND_FLUSH | FLAG_SEND_FUA | FLAG_SEND_CACHE;
        if (export.readOnly) {
            f |= FLAG_READ_ONLY;
        } else {
            f |= FLAG_SEND_TRIM | FLAG_SEND_WRITE_ZEROES | FLAG_SEND_FAST_ZERO;
        }
        if (structured) {
            f |= FLAG_SEND_DF;
        }
        if (export.multiConn) {
            f |= FLAG_CAN_MULTI_CONN;
        }
        return f;
    }

    // ------------------------------------------------------------ wire

    private void reply(int option, int type, ByteBuffer data) throws IOException {
        int n = data == null ? 0 : data.remaining();
        ByteBuffer h = ByteBuffer.allocate(20).putLong(OPTION_REPLY_MAGIC).putInt(option).putInt(type).putInt(n).flip();
        if (data == null) {
            io.write(h);
        } else {
            io.write(h, data);
        }
    }

    private void error(int option, int type, String message) throws IOException {
        reply(option, type, ByteBuffer.wrap(utf8(message)));
    }

    private int readInt() throws IOException {
        return read(4).getInt();
    }

    private ByteBuffer read(int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        io.readFully(b);
        return b.flip();
    }

    private void skip(long n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(64 << 10);
        while (n > 0) {
            b.clear().limit((int) Math.min(n, b.capacity()));
            io.readFully(b);
            n -= b.limit();
        }
    }

    private static String string(ByteBuffer data, int n) {
        byte[] b = new byte[n];
        data.get(b);
        return new String(b, StandardCharsets.UTF_8);
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
