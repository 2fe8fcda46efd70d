package io.qcow4j.backup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;

/**
 * Reads the structure of a sparse stream file (ours or virtnbdbackup's): its meta data and
 * the guest extents its frames hold, with where each payload lies. Every frame and length is
 * checked against the file; a bad one is a {@link BackupException} naming the file offset.
 */
final class StreamIndex {
    final Map<String, Object> meta;
    final List<ExtentRecord> extents;
    final boolean compressed;

    private StreamIndex(Map<String, Object> meta, List<ExtentRecord> extents, boolean compressed) {
        this.meta = meta;
        this.extents = extents;
        this.compressed = compressed;
    }

    static StreamIndex scan(SetStore.ReadFile ch) throws IOException {
        String file = ch.name();
        long size = ch.size();
        SparseStream.Frame meta = frameAt(file, ch, 0);
        if (!meta.kind().equals(SparseStream.META)) {
            throw bad(file, 0, "no meta frame: not a sparse stream");
        }
        if (meta.length() > 1 << 20 || SparseStream.FRAME_LEN + meta.length() + 2 > size) {
            throw bad(file, 0, "meta frame of " + meta.length() + " bytes");
        }
        byte[] json = bytes(file, ch, SparseStream.FRAME_LEN, (int) meta.length());
        Map<String, Object> m;
        try {
            m = Manifest.JSON.readValue(json, new TypeReference<Map<String, Object>>() { });
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw bad(file, SparseStream.FRAME_LEN, "meta data is not JSON: " + e.getOriginalMessage());
        }
        if (!(m.get("virtualSize") instanceof Number) || ((Number) m.get("virtualSize")).longValue() < 0) {
            throw bad(file, SparseStream.FRAME_LEN, "meta data without a virtualSize");
        }
        long pos = SparseStream.FRAME_LEN + meta.length();
        term(file, ch, pos);
        pos += 2;
        boolean compressed = isCompressed(m);
        long[] stored = compressed ? trailer(file, ch, size) : null;
        List<ExtentRecord> extents = new ArrayList<>();
        int dataFrames = 0;
        while (true) {
            SparseStream.Frame f = frameAt(file, ch, pos);
            long payload = pos + SparseStream.FRAME_LEN;
            switch (f.kind()) {
                case SparseStream.DATA -> {
                    long n = f.length();
                    if (compressed) {
                        if (dataFrames >= stored.length) {
                            throw bad(file, pos, "more data frames than the compression trailer lists");
                        }
                        n = stored[dataFrames];
                    }
                    if (n < 0 || n > size - payload - 2 || f.length() > Integer.MAX_VALUE - 16) {
                        throw bad(file, pos, "data frame of " + f.length() + " bytes overruns the file");
                    }
                    ExtentRecord e = new ExtentRecord();
                    e.start = f.start();
                    e.length = f.length();
                    e.pos = payload;
                    e.stored = n;
                    extents.add(e);
                    dataFrames++;
                    term(file, ch, payload + n);
                    pos = payload + n + 2;
                }
                case SparseStream.ZERO -> {
                    extents.add(ExtentRecord.zero(f.start(), f.length()));
                    pos = payload;
                }
                case SparseStream.STOP -> {
                    return new StreamIndex(m, extents, compressed);
                }
                default -> throw bad(file, pos, "unexpected frame '" + f.kind() + "'");
            }
        }
    }

    static boolean isCompressed(Map<String, Object> meta) {
        Object v = meta.containsKey("stream-version") ? meta.get("stream-version") : meta.get("streamVersion");
        Object c = meta.get("compressed");
        return v instanceof Number n && n.intValue() == 2 && c != null && !Boolean.FALSE.equals(c);
    }

    /** The stored size of each data frame's payload, from the trailer at the end of the file. */
    private static long[] trailer(String file, SetStore.ReadFile ch, long size) throws IOException {
        long at = size - SparseStream.FRAME_LEN;
        if (at < 0) {
            throw bad(file, 0, "too short for a compression trailer");
        }
        SparseStream.Frame comp = frameAt(file, ch, at);
        if (!comp.kind().equals(SparseStream.COMP) || comp.length() > at - 2) {
            throw bad(file, at, "no compression trailer at the end");
        }
        long jsonAt = at - 2 - comp.length();
        term(file, ch, at - 2);
        JsonNode list;
        try {
            list = Manifest.JSON.readTree(bytes(file, ch, jsonAt, (int) comp.length()));
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw bad(file, jsonAt, "compression trailer is not JSON");
        }
        if (list == null || !list.isArray()) {
            throw bad(file, jsonAt, "compression trailer is not a list");
        }
        long[] out = new long[list.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode e = list.get(i);
            if (e.isIntegralNumber()) {
                out[i] = e.asLong();
            } else if (e.isObject() && e.size() == 1) {
                long sum = 0; // a chunked payload: {"total": [frame sizes]}
                for (JsonNode s : e.elements().next()) {
                    sum += s.asLong();
                }
                out[i] = sum;
            } else {
                throw bad(file, jsonAt, "compression trailer entry " + i + " is neither a size nor a chunk list");
            }
        }
        return out;
    }

    private static SparseStream.Frame frameAt(String file, SetStore.ReadFile ch, long pos) throws IOException {
        SparseStream.Frame f = SparseStream.parse(bytes(file, ch, pos, SparseStream.FRAME_LEN));
        if (f == null) {
            throw bad(file, pos, "not a frame header");
        }
        return f;
    }

    private static void term(String file, SetStore.ReadFile ch, long pos) throws IOException {
        if (!Arrays.equals(bytes(file, ch, pos, 2), SparseStream.TERM)) {
            throw bad(file, pos, "frame terminator missing");
        }
    }

    static byte[] bytes(String file, SetStore.ReadFile ch, long pos, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        if (pos < 0 || ch.read(pos, b) != n) {
            throw bad(file, pos, "unexpected end of file");
        }
        return b.array();
    }

    static BackupException bad(String file, long offset, String why) {
        return new BackupException("'" + file + "' damaged at offset " + offset + ": " + why);
    }
}
