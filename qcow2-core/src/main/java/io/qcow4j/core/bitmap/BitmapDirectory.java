package io.qcow4j.core.bitmap;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.format.BitmapDirectoryEntry;
import io.qcow4j.core.format.BitmapTableEntry;
import io.qcow4j.core.format.BitmapsExtension;
import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.storage.Storage;

/**
 * Reads and checks the bitmap directory and bitmap tables the way QEMU does before it
 * trusts them: bounds against the file, QEMU's limits, and the size rule.
 */
public final class BitmapDirectory {
    private BitmapDirectory() {
    }

    public static List<BitmapDirectoryEntry> read(Storage storage, BitmapsExtension ext, int clusterSize,
                                                  long virtualSize) throws IOException {
        long off = ext.directoryOffset();
        HostOffsets.requireFits(off, ext.directorySize(), storage.length(), "bitmap directory", off,
                o -> "Bitmap directory extends past the end of the file");
        ByteBuffer buf = ByteBuffer.allocate((int) ext.directorySize());
        storage.read(off, buf);
        buf.flip();
        List<BitmapDirectoryEntry> out = new ArrayList<>();
        Set<String> names = new HashSet<>();
        while (buf.hasRemaining()) {
            if (out.size() >= ext.nbBitmaps()) {
                throw new CorruptImageException("bitmap directory", off, "More bitmaps found than specified in header extension");
            }
            long at = off + buf.position();
            BitmapDirectoryEntry e = BitmapDirectoryEntry.parse(buf, off);
            check(e, at, storage, clusterSize, virtualSize);
            if (!names.add(e.name())) {
                throw new CorruptImageException("bitmap directory", at, "Bitmap already exists: " + e.name());
            }
            out.add(e);
        }
        if (out.size() != ext.nbBitmaps()) {
            throw new CorruptImageException("bitmap directory", off, "Less bitmaps found than specified in header extension");
        }
        return out;
    }

    private static void check(BitmapDirectoryEntry e, long at, Storage storage, int cs, long virtualSize) throws IOException {
        if (e.extraDataSize() != 0) {
            throw new CorruptImageException("bitmap directory", at, "Bitmap extra data is not supported");
        }
        long tableBytes = 8L * Integer.toUnsignedLong(e.tableSize());
        boolean bad = (e.flags() & BitmapDirectoryEntry.RESERVED_FLAGS) != 0
                || e.type() != BitmapDirectoryEntry.TYPE_DIRTY_TRACKING
                || e.granularityBits() < BitmapDirectoryEntry.MIN_GRANULARITY_BITS
                || e.granularityBits() > BitmapDirectoryEntry.MAX_GRANULARITY_BITS
                || e.name().isEmpty() || e.name().getBytes(java.nio.charset.StandardCharsets.UTF_8).length > BitmapDirectoryEntry.MAX_NAME_SIZE
                || !HostOffsets.isCluster(e.tableOffset(), cs)
                || e.tableSize() == 0 || Integer.toUnsignedLong(e.tableSize()) > BitmapDirectoryEntry.MAX_TABLE_SIZE
                || Integer.toUnsignedLong(e.tableSize()) * cs > BitmapDirectoryEntry.MAX_PHYS_SIZE
                || !HostOffsets.fits(e.tableOffset(), tableBytes, storage.length());
        if (!bad && !e.inUse()) {
            // an in_use bitmap may have a stale size after a resize; any other must cover the disk
            long coverage = Integer.toUnsignedLong(e.tableSize()) * cs * 8;
            bad = coverage < Long.MAX_VALUE >> e.granularityBits()
                    && virtualSize > coverage << e.granularityBits();
        }
        if (bad) {
            throw new CorruptImageException("bitmap directory", at, "Bitmap '" + e.name() + "' doesn't satisfy the constraints");
        }
    }

    /** Reads and checks a bitmap's table (the entry already passed {@link #read}). */
    public static long[] readTable(Storage storage, BitmapDirectoryEntry e, int cs) throws IOException {
        return readTable(storage, e.tableOffset(), e.tableSize(), e.name(), cs);
    }

    /** Reads and checks the table of {@code size} entries at {@code offset} of the bitmap {@code name}. */
    public static long[] readTable(Storage storage, long offset, int size, String name, int cs) throws IOException {
        long[] table = new long[size];
        storage.readLongs(offset, table, 0, table.length);
        for (int i = 0; i < table.length; i++) {
            long t = table[i];
            long off = BitmapTableEntry.offset(t);
            if ((t & BitmapTableEntry.RESERVED_MASK) != 0 || (off != 0 && (t & BitmapTableEntry.ALL_ONES) != 0)
                    || (off != 0 && !HostOffsets.clusterStartsInFile(off, cs, storage.length()))) {
                throw new CorruptImageException("bitmap table", offset + 8L * i,
                        "invalid entry 0x" + Long.toHexString(t) + " of bitmap '" + name + "'");
            }
        }
        return table;
    }

    /** Table entries needed for a bitmap of {@code virtualSize} at this granularity. */
    public static long tableSizeFor(long virtualSize, int granularityBits, int cs) {
        long bits = (virtualSize + (1L << granularityBits) - 1) >>> granularityBits;
        long bytes = (bits + 7) / 8;
        return (bytes + cs - 1) / cs;
    }
}
