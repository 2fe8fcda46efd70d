package io.qcow4j.backup;

import java.nio.charset.StandardCharsets;

/**
 * virtnbdbackup's sparse stream format, version 2: frames of a 40-byte header
 * {@code KIND START LENGTH\r\n} (kind {@code meta}, {@code data}, {@code zero}, {@code stop},
 * {@code comp}; start and length as 16 hex digits). The first frame is {@code meta} with a
 * JSON payload; a {@code data} frame's payload follows its header, then {@code \r\n};
 * {@code zero} and {@code stop} have none. A compressed stream stores each data payload as
 * LZ4 frames and ends, after {@code stop}, with a JSON list of the payloads' stored sizes,
 * {@code \r\n}, and a {@code comp} frame whose length is that JSON's.
 */
final class SparseStream {
    static final String META = "meta";
    static final String DATA = "data";
    static final String ZERO = "zero";
    static final String STOP = "stop";
    static final String COMP = "comp";
    static final byte[] TERM = {'\r', '\n'};
    static final int FRAME_LEN = 40;
    /** Data frames stay below virtnbdrestore's request size, so each is one LZ4 frame. */
    static final int MAX_DATA_FRAME = 4 << 20;

    /** A parsed frame header. */
    record Frame(String kind, long start, long length) {
    }

    private SparseStream() {
    }

    static byte[] frame(String kind, long start, long length) {
        return String.format("%s %016x %016x\r\n", kind, start, length).getBytes(StandardCharsets.US_ASCII);
    }

    /** Parses a 40-byte header; null when it is not one. */
    static Frame parse(byte[] h) {
        if (h.length != FRAME_LEN || h[4] != ' ' || h[21] != ' ' || h[38] != '\r' || h[39] != '\n') {
            return null;
        }
        String kind = new String(h, 0, 4, StandardCharsets.US_ASCII);
        try {
            long start = Long.parseUnsignedLong(new String(h, 5, 16, StandardCharsets.US_ASCII), 16);
            long length = Long.parseUnsignedLong(new String(h, 22, 16, StandardCharsets.US_ASCII), 16);
            if (start < 0 || length < 0) {
                return null;
            }
            return new Frame(kind, start, length);
        } catch (NumberFormatException e) {
            return null;
        }
    }
}
