package io.qcow4j.core.format;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Feature name table extension ({@code == Feature name table ==}): 48-byte entries of
 * u8 type (0 incompatible, 1 compatible, 2 autoclear), u8 bit, char name[46].
 */
public final class FeatureNameTable {
    public static final int ENTRY_SIZE = 48;
    public static final int NAME_SIZE = 46;
    public static final int INCOMPATIBLE = 0;
    public static final int COMPATIBLE = 1;
    public static final int AUTOCLEAR = 2;

    public record Entry(int type, int bit, String name) {
    }

    /** The table qemu-img 7.2 writes, in its order. */
    public static final List<Entry> QEMU = List.of(
            new Entry(INCOMPATIBLE, 0, "dirty bit"),
            new Entry(INCOMPATIBLE, 1, "corrupt bit"),
            new Entry(INCOMPATIBLE, 2, "external data file"),
            new Entry(INCOMPATIBLE, 3, "compression type"),
            new Entry(INCOMPATIBLE, 4, "extended L2 entries"),
            new Entry(COMPATIBLE, 0, "lazy refcounts"),
            new Entry(AUTOCLEAR, 0, "bitmaps"),
            new Entry(AUTOCLEAR, 1, "raw external data"));

    private FeatureNameTable() {
    }

    public static List<Entry> parse(byte[] data) {
        List<Entry> out = new ArrayList<>();
        for (int off = 0; off + ENTRY_SIZE <= data.length; off += ENTRY_SIZE) {
            int type = data[off] & 0xff;
            int bit = data[off + 1] & 0xff;
            int len = 0;
            while (len < NAME_SIZE && data[off + 2 + len] != 0) {
                len++;
            }
            out.add(new Entry(type, bit, new String(data, off + 2, len, StandardCharsets.UTF_8)));
        }
        return out;
    }

    public static byte[] serialize(List<Entry> entries) {
        ByteBuffer buf = ByteBuffer.allocate(entries.size() * ENTRY_SIZE);
        for (Entry e : entries) {
            int start = buf.position();
            buf.put((byte) e.type()).put((byte) e.bit());
            byte[] name = e.name().getBytes(StandardCharsets.UTF_8);
            buf.put(name, 0, Math.min(name.length, NAME_SIZE));
            buf.position(start + ENTRY_SIZE);
        }
        return buf.array();
    }

    /**
     * What qemu says of the unknown incompatible bits {@code mask}: the names the image's
     * table ({@code data}, the extension's bytes, or null) gives them, in the table's order,
     * then the bits left unnamed as one hex mask ("Test feature, Unknown incompatible
     * feature: 40"). As qemu reads the table: an entry with an empty name ends it, a cut last
     * entry counts (its missing bytes zero), and a bit number is taken modulo 64 (x86's
     * shift, which qemu's {@code 1ULL << bit} gets for bits over 63).
     */
    public static String describeIncompatible(byte[] data, long mask) {
        List<String> parts = new ArrayList<>();
        if (data != null) {
            byte[] padded = java.util.Arrays.copyOf(data, (data.length + ENTRY_SIZE - 1) / ENTRY_SIZE * ENTRY_SIZE);
            for (Entry e : parse(padded)) {
                if (e.name().isEmpty()) {
                    break;
                }
                long bit = 1L << (e.bit() & 63);
                if (e.type() == INCOMPATIBLE && (mask & bit) != 0) {
                    parts.add(e.name());
                    mask &= ~bit;
                }
            }
        }
        if (mask != 0) {
            parts.add("Unknown incompatible feature: " + Long.toHexString(mask));
        }
        return String.join(", ", parts);
    }

    /** Name of a feature bit, or null when the table does not name it. */
    public static String nameOf(List<Entry> table, int type, int bit) {
        for (Entry e : table) {
            if (e.type() == type && e.bit() == bit) {
                return e.name();
            }
        }
        return null;
    }
}
