package io.qcow4j.core.check;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import io.qcow4j.core.bitmap.BitmapDirectory;
import io.qcow4j.core.engine.MetadataWalk;
import io.qcow4j.core.format.BitmapDirectoryEntry;
import io.qcow4j.core.format.BitmapTableEntry;
import io.qcow4j.core.format.BitmapsExtension;
import io.qcow4j.core.format.HostOffsets;

/**
 * The bitmaps as qemu-img check sees them: the directory, every bitmap table and every
 * data cluster a table entry names are references (qemu's qcow2_check_bitmaps_refcounts,
 * walked by {@link MetadataWalk}, read here with qemu's rules),
 * and the directory rules under which qemu refuses to open the image at all.
 */
final class BitmapScan {
    /** Table entries read at a time: a table may have 2^27 entries, most of them past the end of the file. */
    private static final int CHUNK = 1 << 16;

    /** A parsed directory entry (qemu keeps only these fields). */
    record Entry(long tableOffset, long tableSize, int flags, int granularityBits, String name) {
        boolean inUse() {
            return (flags & BitmapDirectoryEntry.FLAG_IN_USE) != 0;
        }

        /** The bitmap's table, as the metadata walk visits it. */
        MetadataWalk.BitmapTable table() {
            return new MetadataWalk.BitmapTable(tableOffset, tableSize, name);
        }
    }

    /** The directory does not parse; {@code message} is qemu's reason. */
    static final class Broken extends Exception {
        private static final long serialVersionUID = 1L;

        Broken(String message) {
            super(message, null, false, false);
        }
    }

    private BitmapScan() {
    }

    /** The directory's bitmaps, for the count of references; a directory qemu refuses ends the check (EINVAL). */
    static List<MetadataWalk.BitmapTable> directory(CheckRun run, CheckTally res, BitmapsExtension be) throws CheckFailure {
        List<Entry> list;
        try {
            list = parse(run, be);
        } catch (Broken | CheckFailure e) {
            res.corruptions++;
            throw new CheckFailure(CheckFailure.EINVAL);
        }
        List<MetadataWalk.BitmapTable> out = new ArrayList<>(list.size());
        for (Entry bm : list) {
            out.add(bm.table());
        }
        return out;
    }

    /**
     * The table's entries from {@code base} that lie in the file, {@link #CHUNK} at a time,
     * null past them; first the whole table is checked (a bad entry ends the check).
     */
    static long[] table(CheckRun run, CheckTally res, MetadataWalk.BitmapTable bm, long base) throws CheckFailure {
        if (base == 0) {
            String bad = validateTable(run, bm);
            if (bad != null) {
                res.corruptions++;
                throw new CheckFailure(bad);
            }
            run.charge(entriesInFile(run, bm));
        }
        long inFile = entriesInFile(run, bm);
        if (base >= inFile) {
            return null;
        }
        return run.readLongs(bm.offset() + 8 * base, (int) Math.min(CHUNK, inFile - base));
    }

    /** Null when every entry of the table passes qemu's check, else the error it fails with. */
    static String validateTable(CheckRun run, MetadataWalk.BitmapTable bm) {
        try {
            long inFile = entriesInFile(run, bm);
            run.charge(inFile);
            for (long base = 0; base < inFile; base += CHUNK) {
                int n = (int) Math.min(CHUNK, inFile - base);
                for (long t : run.readLongs(bm.offset() + 8 * base, n)) {
                    if (!entryOk(t, run.cs)) {
                        return CheckFailure.EINVAL;
                    }
                }
            }
        } catch (CheckFailure e) {
            return e.strerror();
        }
        return null;
    }

    /** Entries of the table that lie in the file; the rest read as zeros, which are valid and name nothing. */
    static long entriesInFile(CheckRun run, MetadataWalk.BitmapTable bm) throws CheckFailure {
        if (!HostOffsets.fits(bm.offset(), 8 * bm.entries(), CheckRun.MAX_LENGTH)) {
            throw new CheckFailure(CheckFailure.EIO);
        }
        long room = run.fileLength() - bm.offset();
        return room <= 0 ? 0 : Math.min(bm.entries(), (room + 7) / 8);
    }

    /** qemu's check_table_entry: no reserved bits; an offset is aligned and has no all-ones flag. */
    static boolean entryOk(long t, int cs) {
        long off = BitmapTableEntry.offset(t);
        if ((t & BitmapTableEntry.RESERVED_MASK) != 0) {
            return false;
        }
        if (off == 0) {
            return true;
        }
        return (t & BitmapTableEntry.ALL_ONES) == 0 && HostOffsets.aligned(off, cs);
    }

    /**
     * Why qemu would refuse to open the image for its bitmaps (then qemu-img check prints
     * "Could not open"), or null. A bitmap not in use has its table read and its size
     * checked; an in-use one only its directory entry.
     */
    static String openError(CheckRun run) {
        String unparsable = run.bitmapsExtensionError();
        if (unparsable != null) {
            return unparsable;
        }
        BitmapsExtension be = run.bitmapsExtension();
        if (be == null) {
            return null;
        }
        List<Entry> list;
        try {
            list = parse(run, be);
        } catch (Broken e) {
            return e.getMessage();
        } catch (CheckFailure e) {
            return "Failed to read bitmap directory: " + e.strerror();
        }
        Set<String> names = new HashSet<>();
        for (Entry bm : list) {
            if (!names.add(bm.name())) {
                return "Bitmap already exists: " + bm.name();
            }
            if (bm.inUse()) {
                continue;
            }
            String bad = validateTable(run, bm.table());
            if (bad != null) {
                return "Could not read bitmap_table table from image for bitmap '" + bm.name() + "': " + bad;
            }
            long want = BitmapDirectory.tableSizeFor(run.virtualSize(), bm.granularityBits(), run.cs);
            if (want != bm.tableSize()) {
                return "Could not read bitmap '" + bm.name() + "' from image: " + CheckFailure.EINVAL;
            }
        }
        return null;
    }

    /** qemu's bitmap_list_load: the directory must hold exactly nb_bitmaps valid entries. */
    static List<Entry> parse(CheckRun run, BitmapsExtension be) throws Broken, CheckFailure {
        long size = be.directorySize();
        if (size == 0) {
            throw new Broken("Requested bitmap directory size is zero");
        }
        if (size > BitmapsExtension.MAX_DIRECTORY_SIZE) {
            throw new Broken("Requested bitmap directory size is too big");
        }
        ByteBuffer dir = ByteBuffer.allocate((int) size);
        run.read(be.directoryOffset(), dir);
        dir.flip();
        List<Entry> out = new ArrayList<>();
        int pos = 0;
        while (pos < size) {
            if (size - pos < BitmapDirectoryEntry.FIXED_SIZE) {
                throw new Broken("Broken bitmap directory");
            }
            if (out.size() + 1 > be.nbBitmaps()) {
                throw new Broken("More bitmaps found than specified in header extension");
            }
            long tableOffset = dir.getLong(pos);
            long tableSize = Integer.toUnsignedLong(dir.getInt(pos + 8));
            int flags = dir.getInt(pos + 12);
            int type = dir.get(pos + 16) & 0xff;
            int granularityBits = dir.get(pos + 17) & 0xff;
            int nameSize = dir.getShort(pos + 18) & 0xffff;
            long extra = Integer.toUnsignedLong(dir.getInt(pos + 20));
            long next = pos + ((BitmapDirectoryEntry.FIXED_SIZE + nameSize + extra + 7) & ~7L);
            if (next > size) {
                throw new Broken("Broken bitmap directory");
            }
            byte[] nameBytes = new byte[nameSize];
            dir.get(pos + BitmapDirectoryEntry.FIXED_SIZE + (int) extra, nameBytes);
            String name = new String(nameBytes, StandardCharsets.UTF_8);
            if (extra != 0) {
                throw new Broken("Bitmap extra data is not supported");
            }
            if (!entryOk(run, tableOffset, tableSize, flags, type, granularityBits, nameSize)) {
                throw new Broken("Bitmap '" + name + "' doesn't satisfy the constraints");
            }
            out.add(new Entry(tableOffset, tableSize, flags, granularityBits, name));
            pos = (int) next;
        }
        if (out.size() != be.nbBitmaps()) {
            throw new Broken("Less bitmaps found than specified in header extension");
        }
        return out;
    }

    /** qemu's check_dir_entry. */
    private static boolean entryOk(CheckRun run, long tableOffset, long tableSize, int flags, int type,
                                   int granularityBits, int nameSize) {
        boolean fail = tableSize == 0 || tableOffset == 0 || !HostOffsets.aligned(tableOffset, run.cs)
                || tableSize > BitmapDirectoryEntry.MAX_TABLE_SIZE
                || granularityBits > BitmapDirectoryEntry.MAX_GRANULARITY_BITS
                || granularityBits < BitmapDirectoryEntry.MIN_GRANULARITY_BITS
                || (flags & BitmapDirectoryEntry.RESERVED_FLAGS) != 0
                || nameSize > BitmapDirectoryEntry.MAX_NAME_SIZE
                || type != BitmapDirectoryEntry.TYPE_DIRTY_TRACKING;
        if (fail) {
            return false;
        }
        if ((flags & BitmapDirectoryEntry.FLAG_IN_USE) != 0) {
            return true;
        }
        long phys = tableSize * run.cs;
        long size = run.p.header().size();
        // at most 2^32 << 31 = 2^63: compared unsigned, as qemu's uint64_t
        return phys <= BitmapDirectoryEntry.MAX_PHYS_SIZE && Long.compareUnsigned(size, (phys * 8) << granularityBits) <= 0;
    }
}
