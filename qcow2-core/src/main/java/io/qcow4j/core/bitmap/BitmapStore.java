package io.qcow4j.core.bitmap;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.format.BitmapDirectoryEntry;
import io.qcow4j.core.format.BitmapTableEntry;
import io.qcow4j.core.format.BitmapsExtension;
import io.qcow4j.core.format.HeaderExtension;
import io.qcow4j.core.storage.Storage;

/**
 * One store of the bitmaps: writes only the data that changed (in place, 4 KiB at a time,
 * while the bitmap is in_use on disk; else into new clusters), then a new directory,
 * flushes once, and switches the header to the new directory in one write. A crash before
 * the switch leaves the old, consistent state (and leaked clusters).
 *
 * <p>What the old state referenced is freed only once the switch is durable: the frees
 * go to a list the caller releases after its next flush (see
 * {@link BitmapManager#releaseDeferredFrees()}), so a store costs one flush, not three.
 * Uniform clusters take no data cluster: all zeros is table entry 0, all ones entry 1
 * (offset 0 with bit 0 set), which QEMU reads as set bits.
 *
 * <p>The in_use switch before the first guest write ({@link #markInUse}) goes through the
 * same directory switch.
 */
final class BitmapStore {
    private final Storage storage;
    private final RefcountManager refcounts;
    private final WriteTracking.HeaderWriter headerWriter;
    private final int cs;
    private final long virtualSize;
    /** [offset, length] pairs to free once the header switch is durable. */
    private final List<long[]> freeAfterSwitch = new ArrayList<>();
    private ByteBuffer cluster;
    private long[] newTable;

    BitmapStore(Storage storage, RefcountManager refcounts, WriteTracking.HeaderWriter headerWriter,
                int cs, long virtualSize) {
        this.storage = storage;
        this.refcounts = refcounts;
        this.headerWriter = headerWriter;
        this.cs = cs;
        this.virtualSize = virtualSize;
    }

    /**
     * Returns the directory now on disk. {@code deferred} holds the previous store's frees
     * (released here, after this store's flush made the previous switch durable) and
     * receives this store's.
     */
    List<BitmapDirectoryEntry> store(List<PersistentBitmap> bitmaps, List<BitmapDirectoryEntry> onDisk,
                                     List<BitmapDirectoryEntry> removed, List<long[]> deferred) throws IOException {
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
            if (b == null || !b.storable()) {
                dir.add(e);
            } else {
                dir.add(write(b, commit));
            }
        }
        for (PersistentBitmap b : bitmaps) {
            if (b.disk == null && b.storable()) {
                dir.add(write(b, commit));
            }
        }
        switchDirectory(storage, refcounts, headerWriter, cs, dir, freeAfterSwitch, false);
        for (Runnable r : commit) {
            r.run();
        }
        // the flush inside the switch made the previous store's header durable
        free(refcounts, deferred);
        deferred.addAll(freeAfterSwitch);
        return dir;
    }

    /**
     * Writes {@code dir} to new clusters, flushes (everything written before, bitmap data
     * and tables included, reaches the disk ahead of the header), points the header at it
     * in one write (autoclear bit 0 set; no extension at all when empty), flushes again
     * when {@code durable}, and adds the old directory to {@code freeAfter}. A crash leaves
     * either the old directory or the new.
     */
    static void switchDirectory(Storage storage, RefcountManager refcounts,
                                WriteTracking.HeaderWriter headerWriter, int cs, List<BitmapDirectoryEntry> dir,
                                List<long[]> freeAfter, boolean durable) throws IOException {
        HeaderExtension oldExt = headerWriter.header().extension(HeaderExtension.BITMAPS);
        if (oldExt != null) {
            BitmapsExtension old = BitmapsExtension.parse(oldExt.data(), cs);
            freeAfter.add(new long[] {old.directoryOffset(), old.directorySize()});
        }
        if (dir.isEmpty()) {
            storage.flush();
            headerWriter.updateHeader(h -> h.withBitmapsExtension(null));
        } else {
            ByteBuffer bytes = serializeDirectory(dir);
            int size = bytes.remaining();
            long off = refcounts.allocate((size + cs - 1) / cs, size);
            storage.write(off, bytes);
            storage.flush();
            byte[] ext = new BitmapsExtension(dir.size(), size, off).serialize();
            headerWriter.updateHeader(h -> h.withBitmapsExtension(ext));
        }
        headerWriter.writeHeader();
        if (durable) {
            storage.flush();
        }
    }

    /**
     * Sets in_use on every consistent persistent bitmap stored on disk without it, enabled
     * or not, as QEMU does at a read-write open: while the image is open, any of them may
     * change (a guest write, or a merge or clear). {@code onDisk} and the bitmaps' entries
     * follow the new directory.
     */
    static void markInUse(Storage storage, RefcountManager refcounts,
                          WriteTracking.HeaderWriter headerWriter, int cs, List<PersistentBitmap> bitmaps,
                          List<BitmapDirectoryEntry> onDisk) throws IOException {
        boolean any = false;
        for (PersistentBitmap b : bitmaps) {
            if (b.persistent && !b.inconsistent && b.disk != null && !b.disk.inUse()) {
                any = true;
            }
        }
        if (!any) {
            return;
        }
        // a new directory with the flags set, then one header write switches to it: a crash
        // leaves the old directory (no guest write yet) or the new one, never neither
        List<BitmapDirectoryEntry> dir = new ArrayList<>();
        for (BitmapDirectoryEntry e : onDisk) {
            PersistentBitmap b = owner(bitmaps, e);
            if (b != null && b.persistent && !b.inconsistent) {
                dir.add(e.withFlags(e.flags() | BitmapDirectoryEntry.FLAG_IN_USE));
            } else {
                // the same object: a removed bitmap's entry must still be recognised at the store
                dir.add(e);
            }
        }
        List<long[]> free = new ArrayList<>();
        switchDirectory(storage, refcounts, headerWriter, cs, dir, free, true);
        for (int i = 0; i < onDisk.size(); i++) {
            PersistentBitmap b = owner(bitmaps, onDisk.get(i));
            if (b != null) {
                b.disk = dir.get(i);
                b.inUseOnDisk = b.disk.inUse();
            }
        }
        onDisk.clear();
        onDisk.addAll(dir);
        for (long[] r : free) {
            refcounts.free(r[0], r[1]);
        }
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
            BitmapDirectoryEntry e = b.disk.withFlags(flags);
            commit.add(() -> {
                b.disk = e;
                b.inUseOnDisk = false;
                b.metaChanged = false;
            });
            return e;
        }
        long expected = BitmapDirectory.tableSizeFor(virtualSize, b.granularityBits, cs);
        BitmapDirectoryEntry e;
        if (b.disk != null && b.inUseOnDisk && b.table != null && b.disk.tableSize() == expected) {
            writeInPlace(b, bits);
            e = b.disk.withFlags(flags);
        } else {
            e = writeCopy(b, bits, (int) expected, flags);
        }
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

    /**
     * Under in_use: changed clusters are rewritten where they are (only their changed
     * chunks), table entries in place; uniform clusters give their data cluster up.
     */
    private void writeInPlace(PersistentBitmap b, BitmapBits bits) throws IOException {
        long[] table = b.table;
        // entries naming new data clusters: written once those clusters and their refcounts are durable
        List<long[]> fresh = new ArrayList<>();
        for (int i = 0; i < table.length; i++) {
            long at = (long) i * cs;
            if (!bits.changed(at, cs)) {
                continue;
            }
            long old = table[i];
            long oldOff = BitmapTableEntry.offset(old);
            long uniform = uniformEntry(bits, at);
            if (uniform >= 0) {
                if (old != uniform) {
                    setEntry(b, i, uniform);
                    if (oldOff != 0) {
                        freeAfterSwitch.add(new long[] {oldOff, cs});
                    }
                }
            } else if (oldOff != 0) {
                writeChangedChunks(bits, at, oldOff);
            } else {
                long off = refcounts.allocate(1, false);
                writeCluster(bits, at, off);
                fresh.add(new long[] {i, off});
            }
        }
        if (!fresh.isEmpty()) {
            // a power failure must not leave a table entry on disk naming a cluster whose
            // refcount did not get there (qemu-img check: refcount=0 reference=1)
            storage.flush();
            for (long[] f : fresh) {
                setEntry(b, (int) f[0], f[1]);
            }
        }
    }

    /** The table entry standing for the cluster at {@code at} when it is uniform (0 or all ones), else -1. */
    private long uniformEntry(BitmapBits bits, long at) {
        if (bits.isZero(at, cs)) {
            return 0;
        }
        return bits.isOnes(at, cs) ? BitmapTableEntry.ALL_ONES : -1;
    }

    private void setEntry(PersistentBitmap b, int i, long value) throws IOException {
        storage.writeLong(b.disk.tableOffset() + 8L * i, value);
        b.table[i] = value;
    }

    /** A new table: unchanged clusters shared with the old one, changed ones in new clusters. */
    private BitmapDirectoryEntry writeCopy(PersistentBitmap b, BitmapBits bits, int expected, int flags) throws IOException {
        long[] old = null;
        if (b.disk != null) {
            old = b.table != null ? b.table : BitmapDirectory.readTable(storage, b.disk, cs);
            if (old.length != expected) {
                freeTableData(old);
                old = null;
            }
            freeAfterSwitch.add(new long[] {b.disk.tableOffset(), 8L * b.disk.tableSize()});
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
            long uniform = uniformEntry(bits, at);
            if (uniform >= 0) {
                table[i] = uniform;
            } else {
                long off = refcounts.allocate(1, false);
                writeCluster(bits, at, off);
                table[i] = off;
            }
        }
        long tableBytes = 8L * expected;
        long tableOff = refcounts.allocate((int) ((tableBytes + cs - 1) / cs), tableBytes);
        ByteBuffer t = ByteBuffer.allocate((int) tableBytes);
        t.asLongBuffer().put(table);
        storage.write(tableOff, t);
        newTable = table;
        return BitmapDirectoryEntry.dirtyTracking(b.name, b.granularityBits, tableOff, expected, flags);
    }

    private void writeCluster(BitmapBits bits, long at, long hostOffset) throws IOException {
        if (cluster == null) {
            cluster = ByteBuffer.allocateDirect(cs);
        }
        cluster.clear();
        bits.read(at, cluster);
        cluster.flip();
        storage.write(hostOffset, cluster);
    }

    /**
     * Rewrites, in the data cluster at {@code hostOffset}, the chunks that changed: one
     * write per run of adjacent changed chunks.
     */
    private void writeChangedChunks(BitmapBits bits, long at, long hostOffset) throws IOException {
        long[] changed = cs <= BitmapBits.CHUNK_BYTES ? new long[] {at} : bits.changedChunkOffsets(at, cs);
        long runLength = Math.min(cs, BitmapBits.CHUNK_BYTES);
        for (int i = 0; i < changed.length; ) {
            int j = i + 1;
            while (j < changed.length && changed[j] == changed[j - 1] + runLength) {
                j++;
            }
            long start = changed[i];
            int len = (int) Math.min((j - i) * runLength, at + cs - start);
            if (cluster == null) {
                cluster = ByteBuffer.allocateDirect(cs);
            }
            cluster.clear().limit(len);
            bits.read(start, cluster);
            cluster.flip();
            storage.write(hostOffset + (start - at), cluster);
            i = j;
        }
    }

    private void freeBitmapClusters(BitmapDirectoryEntry e) throws IOException {
        freeTableData(BitmapDirectory.readTable(storage, e, cs));
        freeAfterSwitch.add(new long[] {e.tableOffset(), 8L * e.tableSize()});
    }

    private void freeTableData(long[] table) {
        for (long t : table) {
            long off = BitmapTableEntry.offset(t);
            if (off != 0) {
                freeAfterSwitch.add(new long[] {off, cs});
            }
        }
    }

    private static ByteBuffer serializeDirectory(List<BitmapDirectoryEntry> entries) {
        int size = 0;
        for (BitmapDirectoryEntry e : entries) {
            size += e.size();
        }
        ByteBuffer b = ByteBuffer.allocate(size);
        for (BitmapDirectoryEntry e : entries) {
            e.serialize(b);
        }
        b.flip();
        return b;
    }

    /** Frees {@code [offset, length]} pairs and empties the list. */
    static void free(RefcountManager refcounts, List<long[]> ranges) throws IOException {
        while (!ranges.isEmpty()) {
            long[] r = ranges.remove(ranges.size() - 1);
            refcounts.free(r[0], r[1]);
        }
    }
}
