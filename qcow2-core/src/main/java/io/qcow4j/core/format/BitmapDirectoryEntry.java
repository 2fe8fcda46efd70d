package io.qcow4j.core.format;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

import io.qcow4j.core.api.CorruptImageException;

/**
 * Bitmap directory entry ({@code === Bitmap directory ===}):
 * <pre>
 *  0- 7 bitmap_table_offset   8-11 bitmap_table_size   12-15 flags
 *    16 type                    17 granularity_bits    18-19 name_size
 * 20-23 extra_data_size      extra_data, name, zero padding to a multiple of 8
 * </pre>
 */
public final class BitmapDirectoryEntry {
    public static final int FIXED_SIZE = 24;
    public static final int FLAG_IN_USE = 1;
    public static final int FLAG_AUTO = 1 << 1;
    public static final int FLAG_EXTRA_DATA_COMPATIBLE = 1 << 2;
    /** QEMU treats every flag but in_use and auto as reserved. */
    public static final int RESERVED_FLAGS = 0xfffffffc;
    public static final int TYPE_DIRTY_TRACKING = 1;
    public static final int MAX_NAME_SIZE = 1023;
    /** BME_MAX_TABLE_SIZE and BME_MAX_PHYS_SIZE. */
    public static final long MAX_TABLE_SIZE = 0x8000000L;
    public static final long MAX_PHYS_SIZE = 0x20000000L;
    public static final int MIN_GRANULARITY_BITS = 9;
    public static final int MAX_GRANULARITY_BITS = 31;

    public long tableOffset;
    public int tableSize;
    public int flags;
    public int type = TYPE_DIRTY_TRACKING;
    public int granularityBits;
    public String name;
    public byte[] extraData = new byte[0];

    public boolean inUse() {
        return (flags & FLAG_IN_USE) != 0;
    }

    public boolean auto() {
        return (flags & FLAG_AUTO) != 0;
    }

    /** Entry size in the directory, padding included. */
    public int size() {
        return sizeFor(name.getBytes(StandardCharsets.UTF_8).length, extraData.length);
    }

    public static int sizeFor(int nameBytes, int extraBytes) {
        return (FIXED_SIZE + extraBytes + nameBytes + 7) & ~7;
    }

    /** Parses the entry at {@code b.position()} (the directory starts at {@code dirOffset}) and advances. */
    public static BitmapDirectoryEntry parse(ByteBuffer b, long dirOffset) throws CorruptImageException {
        int start = b.position();
        long at = dirOffset + start;
        if (b.remaining() < FIXED_SIZE) {
            throw new CorruptImageException("bitmap directory", at, "Broken bitmap directory");
        }
        BitmapDirectoryEntry e = new BitmapDirectoryEntry();
        e.tableOffset = b.getLong(start);
        e.tableSize = b.getInt(start + 8);
        e.flags = b.getInt(start + 12);
        e.type = b.get(start + 16) & 0xff;
        e.granularityBits = b.get(start + 17) & 0xff;
        int nameSize = b.getShort(start + 18) & 0xffff;
        long extra = b.getInt(start + 20) & 0xffffffffL;
        long size = (FIXED_SIZE + extra + nameSize + 7) & ~7L;
        if (size > b.remaining()) {
            throw new CorruptImageException("bitmap directory", at, "Broken bitmap directory");
        }
        e.extraData = new byte[(int) extra];
        b.get(start + FIXED_SIZE, e.extraData);
        byte[] name = new byte[nameSize];
        b.get(start + FIXED_SIZE + (int) extra, name);
        e.name = new String(name, StandardCharsets.UTF_8);
        b.position(start + (int) size);
        return e;
    }

    public void serialize(ByteBuffer b) {
        int start = b.position();
        byte[] n = name.getBytes(StandardCharsets.UTF_8);
        b.putLong(tableOffset).putInt(tableSize).putInt(flags).put((byte) type).put((byte) granularityBits);
        b.putShort((short) n.length).putInt(extraData.length).put(extraData).put(n);
        while (b.position() < start + size()) {
            b.put((byte) 0);
        }
    }

    public BitmapDirectoryEntry copy() {
        BitmapDirectoryEntry e = new BitmapDirectoryEntry();
        e.tableOffset = tableOffset;
        e.tableSize = tableSize;
        e.flags = flags;
        e.type = type;
        e.granularityBits = granularityBits;
        e.name = name;
        e.extraData = extraData.clone();
        return e;
    }
}
