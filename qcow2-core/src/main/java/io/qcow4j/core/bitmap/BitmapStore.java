package io.qcow4j.core.bitmap;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.format.BitmapDirectoryEntry;
import io.qcow4j.core.format.BitmapTableEntry;
import io.qcow4j.core.format.BitmapsExtension;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HeaderExtension;
import io.qcow4j.core.storage.Storage;

/**
 * One store of the bitmaps: writes only the data clusters that changed, then a new
 * directory, switches the header to it in one write, and only then frees what the old
 * directory referenced. A crash before the switch leaves the old, consistent state (and
 * leaked clusters); in-place updates happen only under an in_use flag.
 */
final class BitmapStore {
    private final Storage storage;
    private final Header header;
    private final RefcountManager refcounts;
    private final BitmapManager.HeaderWriter headerWriter;
    private final int cs;
    private final long virtualSize;
    /** [offset, length] pairs freed once the header points at the new directory. */
    private final List<long[]> freeAfterSwitch = new ArrayList<>();
    private final ByteBuffer cluster;
    private long[] newTable;

    BitmapStore(Storage storage, Header header, RefcountManager refcounts, BitmapManager.HeaderWriter headerWriter,
                int cs, long virtualSize) {
        this.storage = storage;
        this.header = header;
        this.refcounts = refcounts;
        this.headerWriter = headerWriter;
        this.cs = cs;
        this.virtualSize = virtualSize;
        this.cluster = ByteBuffer.allocateDirect(cs);
    }

    /** Returns the directory now on disk. */
    List<BitmapDirectoryEntry> store(List<PersistentBitmap> bitmaps, List<BitmapDirectoryEntry> onDisk,
                                     List<BitmapDirectoryEntry> removed) throws IOException {
        for (BitmapDirectoryEntry e : removed) {
            freeBitmapClusters(e);
        }
        List<BitmapDirectoryEntry> dir = new ArrayList<>();
        List<Runnable> commit = new ArrayList<>();
        for (BitmapDirectoryEntry e : onDisk) {
            if (removed.contains(e)) {
                continue;
            }
            PersistentBitmap b = owner(bitmaps, e);
            if (b == null || !BitmapManager.storable(b)) {
                dir.add(e);
            } else {
                dir.add(write(b, commit));
            }
        }
        for (PersistentBitmap b : bitmaps) {
            if (b.disk == null && BitmapManager.storable(b)) {
                dir.add(write(b, commit));
            }
        }
        storage.flush();
        switchDirectory(storage, header, refcounts, headerWriter, cs, dir, freeAfterSwitch);
        for (Runnable r : commit) {
            r.run();
        }
        for (long[] r : freeAfterSwitch) {
            refcounts.free(r[0], r[1]);
        }
        return dir;
    }

    /**
     * Writes {@code dir} to new clusters, flushes, points the header at it in one write
     * (autoclear bit 0 set; no extension at all when empty), flushes, and adds the old
     * directory to {@code freeAfter}. A crash leaves either the old directory or the new.
     */
    static void switchDirectory(Storage storage, Header header, RefcountManager refcounts,
                                BitmapManager.HeaderWriter headerWriter, int cs, List<BitmapDirectoryEntry> dir,
                                List<long[]> freeAfter) throws IOException {
        HeaderExtension oldExt = header.extension(HeaderExtension.BITMAPS);
        if (oldExt != null) {
            BitmapsExtension old = BitmapsExtension.parse(oldExt.data(), cs);
            freeAfter.add(new long[] {old.directoryOffset(), old.directorySize()});
        }
        if (dir.isEmpty()) {
            header.setExtension(HeaderExtension.BITMAPS, null);
            header.autoclearFeatures &= ~Header.AUTOCLEAR_BITMAPS;
        } else {
            ByteBuffer bytes = BitmapManager.serializeDirectory(dir);
            int size = bytes.remaining();
            long off = refcounts.allocate((size + cs - 1) / cs, size);
            storage.write(off, bytes);
            storage.flush();
            header.setExtension(HeaderExtension.BITMAPS, new BitmapsExtension(dir.size(), size, off).serialize());
            header.autoclearFeatures |= Header.AUTOCLEAR_BITMAPS;
        }
        headerWriter.writeHeader();
        storage.flush();
    }

    private static PersistentBitmap owner(List<PersistentBitmap> bitmaps, BitmapDirectoryEntry e) {
        for (PersistentBitmap b : bitmaps) {
            if (b.disk == e) {
                return b;
            }
        }
        return null;
    }

    /** Writes one bitmap's changed data and table; returns its new directory entry. */
    private BitmapDirectoryEntry write(PersistentBitmap b, List<Runnable> commit) throws IOException {
        int flags = b.enabled ? BitmapDirectoryEntry.FLAG_AUTO : 0;
        BitmapBits bits = b.bits;
        if (bits == null) {
            // never loaded, so never changed: only its flags are rewritten
            BitmapDirectoryEntry e = b.disk.copy();
            e.flags = flags;
            commit.add(() -> {
                b.disk = e;
                b.inUseOnDisk = false;
                b.metaChanged = false;
            });
            return e;
        }
        long expected = BitmapDirectory.tableSizeFor(virtualSize, b.granularityBits, cs);
        BitmapDirectoryEntry e;
        if (b.disk != null && b.inUseOnDisk && b.table != null && b.disk.tableSize == expected) {
            writeInPlace(b, bits);
            e = b.disk.copy();
        } else {
            e = writeCopy(b, bits, (int) expected);
        }
        e.flags = flags;
        long[] table = newTable != null ? newTable : b.table;
        newTable = null;
        commit.add(() -> {
            b.table = table;
            b.disk = e;
            b.inUseOnDisk = false;
            b.metaChanged = false;
            bits.clearChanged();
        });
        return e;
    }

    /** Under in_use: changed clusters are rewritten where they are, table entries in place. */
    private void writeInPlace(PersistentBitmap b, BitmapBits bits) throws IOException {
        long[] table = b.table;
        for (int i = 0; i < table.length; i++) {
            long at = (long) i * cs;
            if (!bits.changed(at, cs)) {
                continue;
            }
            long old = table[i];
            long oldOff = BitmapTableEntry.offset(old);
            if (bits.isZero(at, cs)) {
                if (old != 0) {
                    setEntry(b, i, 0);
                    if (oldOff != 0) {
                        refcounts.free(oldOff, cs);
                    }
                }
            } else if (oldOff != 0) {
                writeData(bits, at, oldOff);
            } else {
                long off = refcounts.allocate(1, false);
                writeData(bits, at, off);
                setEntry(b, i, off);
            }
        }
    }

    private void setEntry(PersistentBitmap b, int i, long value) throws IOException {
        storage.writeLong(b.disk.tableOffset + 8L * i, value);
        b.table[i] = value;
    }

    /** A new table: unchanged clusters shared with the old one, changed ones in new clusters. */
    private BitmapDirectoryEntry writeCopy(PersistentBitmap b, BitmapBits bits, int expected) throws IOException {
        long[] old = null;
        if (b.disk != null) {
            old = b.table != null ? b.table : BitmapDirectory.readTable(storage, b.disk, cs);
            if (old.length != expected) {
                freeTableData(old);
                old = null;
            }
            freeAfterSwitch.add(new long[] {b.disk.tableOffset, 8L * b.disk.tableSize});
        }
        long[] table = new long[expected];
        for (int i = 0; i < expected; i++) {
            long at = (long) i * cs;
            if (old != null && !bits.changed(at, cs)) {
                table[i] = old[i];
                continue;
            }
            if (old != null && BitmapTableEntry.offset(old[i]) != 0) {
                freeAfterSwitch.add(new long[] {BitmapTableEntry.offset(old[i]), cs});
            }
            if (!bits.isZero(at, cs)) {
                long off = refcounts.allocate(1, false);
                writeData(bits, at, off);
                table[i] = off;
            }
        }
        long tableBytes = 8L * expected;
        long tableOff = refcounts.allocate((int) ((tableBytes + cs - 1) / cs), tableBytes);
        ByteBuffer t = ByteBuffer.allocate((int) tableBytes);
        t.asLongBuffer().put(table);
        storage.write(tableOff, t);
        BitmapDirectoryEntry e = new BitmapDirectoryEntry();
        e.tableOffset = tableOff;
        e.tableSize = expected;
        e.granularityBits = b.granularityBits;
        e.name = b.name;
        newTable = table;
        return e;
    }

    private void writeData(BitmapBits bits, long at, long hostOffset) throws IOException {
        cluster.clear();
        bits.read(at, cluster);
        cluster.flip();
        storage.write(hostOffset, cluster);
    }

    private void freeBitmapClusters(BitmapDirectoryEntry e) throws IOException {
        freeTableData(BitmapDirectory.readTable(storage, e, cs));
        freeAfterSwitch.add(new long[] {e.tableOffset, 8L * e.tableSize});
    }

    private void freeTableData(long[] table) {
        for (long t : table) {
            long off = BitmapTableEntry.offset(t);
            if (off != 0) {
                freeAfterSwitch.add(new long[] {off, cs});
            }
        }
    }
}
