package io.qcow4j.tools.dump;

import java.math.BigInteger;
import java.util.Map;

/** How the dump sections write values: unsigned numbers, raw entries as hex, counts of what lists leave out. */
final class DumpValues {
    /** Bytes read from the file at a time when a table is walked. */
    static final int CHUNK = 1 << 20;
    private static final int UNKNOWN_DATA_SHOWN = 256;

    private DumpValues() {
    }

    static void omitted(Map<String, Object> m, String list, long n) {
        if (n > 0) {
            m.put(list + "_omitted", n);
        }
    }

    static Object u64(long v) {
        return v >= 0 ? (Object) v : new BigInteger(Long.toUnsignedString(v));
    }

    static long u32(int v) {
        return v & 0xffffffffL;
    }

    static String rawHex(long v) {
        return String.format("0x%016x", v);
    }

    static String hex(byte[] data) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < Math.min(data.length, UNKNOWN_DATA_SHOWN); i++) {
            b.append(String.format("%02x", data[i] & 0xff));
        }
        if (data.length > UNKNOWN_DATA_SHOWN) {
            b.append("...");
        }
        return b.toString();
    }
}
