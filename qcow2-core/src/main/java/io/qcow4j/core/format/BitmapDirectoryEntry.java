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
 *
 * <p>Immutable: a change is a new entry ({@link #withFlags}, {@link #withTable}). Not a
 * record on purpose: the bitmap manager tells the entries of one directory apart by
 * identity (two bitmaps' entries may hold equal values while a store is under way), which
 * a record's value equality would blur.
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
    private static final byte[] NO_EXTRA_DATA = new byte[0];

    private final long tableOffset;
    private final int tableSize;
    private final int flags;
    private final int type;
    private final int granularityBits;
    private final String name;
    private final byte[] extraData;

    private BitmapDirectoryEntry(long tableOffset, int tableSize, int flags, int type, int granularityBits, String name,
                                 byte[] extraData) {
        this.tableOffset = tableOffset;
        this.tableSize = tableSize;
        this.flags = flags;
        this.type = type;
        this.granularityBits = granularityBits;
        this.name = name;
        this.extraData = extraData;
    }

    /** The entry of a dirty-tracking bitmap without extra data, the only kind we write. */
    public static BitmapDirectoryEntry dirtyTracking(String name, int granularityBits, long tableOffset, int tableSize,
                                                     int flags) {
        return new BitmapDirectoryEntry(tableOffset, tableSize, flags, TYPE_DIRTY_TRACKING, granularityBits, name,
                NO_EXTRA_DATA);
    }

    public long tableOffset() {
        return tableOffset;
    }

    /** bitmap_table_size: entries of the table, an unsigned 32-bit field. */
    public int tableSize() {
        return tableSize;
    }

    public int flags() {
        return flags;
    }

    public int type() {
        return type;
    }

    public int granularityBits() {
        return granularityBits;
    }

    public String name() {
        return name;
    }

    public int extraDataSize() {
        return extraData.length;
    }

    public boolean inUse() {
        return (flags & FLAG_IN_USE) != 0;
    }

    public boolean auto() {
        return (flags & FLAG_AUTO) != 0;
    }

    /** A new entry with {@code flags} (always a new object: see the class comment). */
    public BitmapDirectoryEntry withFlags(int flags) {
        return new BitmapDirectoryEntry(tableOffset, tableSize, flags, type, granularityBits, name, extraData);
    }

    /** A new entry naming another bitmap table. */
    public BitmapDirectoryEntry withTable(long tableOffset, int tableSize) {
        return new BitmapDirectoryEntry(tableOffset, tableSize, flags, type, granularityBits, name, extraData);
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
        long tableOffset = b.getLong(start);
        int tableSize = b.getInt(start + 8);
        int flags = b.getInt(start + 12);
        int type = b.get(start + 16) & 0xff;
        int granularityBits = b.get(start + 17) & 0xff;
        int nameSize = b.getShort(start + 18) & 0xffff;
        long extra = b.getInt(start + 20) & 0xffffffffL;
        long size = (FIXED_SIZE + extra + nameSize + 7) & ~7L;
        if (size > b.remaining()) {
            throw new CorruptImageException("bitmap directory", at, "Broken bitmap directory");
        }
        byte[] extraData = new byte[(int) extra];
        b.get(start + FIXED_SIZE, extraData);
        byte[] name = new byte[nameSize];
        b.get(start + FIXED_SIZE + (int) extra, name);
        b.position(start + (int) size);
        return new BitmapDirectoryEntry(tableOffset, tableSize, flags, type, granularityBits,
                new String(name, StandardCharsets.UTF_8), extraData);
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
}
