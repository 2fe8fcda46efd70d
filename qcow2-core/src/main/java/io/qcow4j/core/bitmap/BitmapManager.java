package io.qcow4j.core.bitmap;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Consumer;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.format.BitmapDirectoryEntry;
import io.qcow4j.core.format.BitmapTableEntry;
import io.qcow4j.core.format.BitmapsExtension;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HeaderExtension;
import io.qcow4j.core.storage.Storage;

/**
 * The dirty bitmaps of one image: loads the bitmap directory, tracks guest writes in every
 * enabled bitmap, keeps the in_use flags, and stores what changed.
 *
 * <p>in_use: before the first guest write, every enabled persistent bitmap on disk gets
 * in_use, in a new directory that one header write switches to (never in place, so no
 * crash can lose the other bitmaps, which an in-place flip under a cleared autoclear bit
 * would). While we hold in_use, a store updates data clusters and table entries in
 * place; otherwise it writes changed clusters, the table and the directory anew and
 * switches the header in one write.
 *
 * <p>The engine sees it as its {@link WriteTracking} hook, the bitmaps module as
 * {@link ImageBitmaps}; nothing outside this package sees the directory it keeps.
 */
final class BitmapManager implements WriteTracking, ImageBitmaps {
    private final Storage storage;
    private final RefcountManager refcounts;
    private final HeaderWriter headerWriter;
    private final boolean readOnly;
    private final int cs;
    private final Consumer<String> warnings;
    private final List<PersistentBitmap> bitmaps = new ArrayList<>();
    /** Index by name, kept with the list. */
    private final java.util.Map<String, PersistentBitmap> byName = new java.util.HashMap<>();
    /** Running totals for the limits, so adding many bitmaps stays linear. */
    private long persistentCount;
    private long persistentDirBytes;
    /** The directory as it is on disk, in its order (flags updated when we rewrite it). */
    private final List<BitmapDirectoryEntry> onDisk = new ArrayList<>();
    private final List<BitmapDirectoryEntry> removedFromDisk = new ArrayList<>();
    /** The bitmaps {@link #track} sets bits in (enabled, loaded), or null to recompute. */
    private PersistentBitmap[] tracking;
    /** Clusters replaced by a store, freed after the next flush: [offset, length] pairs. */
    private final List<long[]> deferredFrees = new ArrayList<>();
    private long virtualSize;
    /** The extension is present but autoclear bit 0 is clear: drop it before the first write. */
    private boolean dropStaleExtension;
    private boolean inUseDone;
    private boolean sizeMismatchInconsistent;

    BitmapManager(Storage storage, RefcountManager refcounts, HeaderWriter headerWriter,
                  boolean readOnly, Consumer<String> warnings) {
        this.storage = storage;
        this.refcounts = refcounts;
        this.headerWriter = headerWriter;
        this.readOnly = readOnly;
        this.cs = headerWriter.header().clusterSize();
        this.warnings = warnings;
        this.virtualSize = headerWriter.header().size();
    }

    /** Parses the extension and the directory; bitmap data is loaded on first use. */
    void load() throws IOException {
        Header header = headerWriter.header();
        HeaderExtension ext = header.extension(HeaderExtension.BITMAPS);
        if (ext == null) {
            if (header.version() >= 3 && (header.autoclearFeatures() & Header.AUTOCLEAR_BITMAPS) != 0 && !readOnly) {
                // bit 0 without an extension says nothing: clear it with the first write
                dropStaleExtension = true;
            }
            return;
        }
        if (header.version() < 3) {
            warnings.accept("a program lacking bitmap support may have modified this file, so all bitmaps are now considered inconsistent");
            dropStaleExtension = !readOnly;
            return;
        }
        if ((header.autoclearFeatures() & Header.AUTOCLEAR_BITMAPS) == 0) {
            warnings.accept("a program lacking bitmap support modified this file, so all bitmaps are now considered inconsistent");
            warnings.accept("Some clusters may be leaked, run 'qemu-img check -r' on the image file to fix.");
            dropStaleExtension = !readOnly;
            return;
        }
        BitmapsExtension be = BitmapsExtension.parse(ext.data(), cs);
        for (BitmapDirectoryEntry e : BitmapDirectory.read(storage, be, cs, virtualSize)) {
            boolean mismatch = !e.inUse()
                    && BitmapDirectory.tableSizeFor(virtualSize, e.granularityBits(), cs) != Integer.toUnsignedLong(e.tableSize());
            if (mismatch && !sizeMismatchInconsistent) {
                throw new CorruptImageException("bitmap directory", be.directoryOffset(),
                        "Bitmap '" + e.name() + "' table size does not match the image size");
            }
            PersistentBitmap b = new PersistentBitmap(e.name(), e.granularityBits(), true,
                    e.auto() && !e.inUse() && !mismatch, e.inUse() || mismatch);
            b.sizeMismatch = mismatch;
            b.disk = e;
            b.readOnly = readOnly;
            onDisk.add(e);
            bitmaps.add(b);
        }
        reindex();
    }

    /**
     * Load a bitmap whose table does not cover the image's size as inconsistent (its contents
     * unknown, only removal allowed) instead of failing the open: for tools that must read the
     * image anyway and say which bitmap is wrong (a backup falling back to a full one).
     */
    void loadSizeMismatchAsInconsistent(boolean on) {
        this.sizeMismatchInconsistent = on;
    }

    @Override
    public boolean isReadOnly() {
        return readOnly;
    }

    @Override
    public List<PersistentBitmap> list() {
        return Collections.unmodifiableList(bitmaps);
    }

    @Override
    public PersistentBitmap get(String name) {
        return byName.get(name);
    }

    /** Persistent bitmaps and the directory bytes they need (QEMU's count and size limits). */
    long[] persistentUsage() {
        return new long[] {persistentCount, persistentDirBytes};
    }

    private void reindex() {
        byName.clear();
        persistentCount = 0;
        persistentDirBytes = 0;
        for (PersistentBitmap b : bitmaps) {
            byName.put(b.name, b);
            account(b, 1);
        }
    }

    private void account(PersistentBitmap b, int sign) {
        if (b.persistent) {
            persistentCount += sign;
            persistentDirBytes += sign * (long) BitmapDirectoryEntry.sizeFor(BitmapLimits.nameBytes(b.name), 0);
        }
    }

    @Override
    public List<BitmapDirectoryEntry> diskEntries() {
        return List.copyOf(onDisk);
    }

    @Override
    public long virtualSize() {
        return virtualSize;
    }

    @Override
    public BitmapBits bits(PersistentBitmap b) throws IOException {
        // a loaded bitmap in a method small enough for the JIT to inline into DirtyBitmap.set
        BitmapBits loaded = b.bits;
        return loaded != null && !b.inconsistent ? loaded : load(b);
    }

    private BitmapBits load(PersistentBitmap b) throws IOException {
        if (b.inconsistent) {
            throw new IllegalStateException("Bitmap '" + b.name + "' is inconsistent and cannot be used");
        }
        if (b.bits == null) {
            BitmapBits bits = new BitmapBits((virtualSize + b.granularity() - 1) >>> b.granularityBits);
            if (b.disk != null) {
                long[] table = BitmapDirectory.readTable(storage, b.disk, cs);
                ByteBuffer buf = ByteBuffer.allocate(cs);
                for (int i = 0; i < table.length; i++) {
                    long t = table[i];
                    if (BitmapTableEntry.allOnes(t)) {
                        bits.fillBytes((long) i * cs, cs, true);
                    } else if (BitmapTableEntry.offset(t) != 0) {
                        buf.clear();
                        storage.read(BitmapTableEntry.offset(t), buf);
                        buf.flip();
                        bits.write((long) i * cs, buf);
                    }
                }
                b.table = table;
            }
            bits.clearChanged();
            b.bits = bits;
            trackingChanged();
        }
        return b.bits;
    }

    // ------------------------------------------------------------ lifecycle

    /**
     * Called before every guest write: the first time, marks enabled persistent bitmaps
     * in_use on disk and loads every enabled bitmap.
     */
    @Override
    public void beforeGuestWrite() throws IOException {
        if (inUseDone) {
            return;
        }
        if (dropStaleExtension) {
            headerWriter.updateHeader(h -> h.withBitmapsExtension(null));
            headerWriter.writeHeader();
            storage.flush();
            dropStaleExtension = false;
        }
        for (PersistentBitmap b : bitmaps) {
            if (b.enabled && !b.inconsistent) {
                bits(b);
            }
        }
        BitmapStore.markInUse(storage, refcounts, headerWriter, cs, bitmaps, onDisk);
        inUseDone = true;
    }

    @Override
    public void track(long offset, long length) {
        if (length <= 0) {
            return;
        }
        PersistentBitmap[] t = tracking != null ? tracking : tracking();
        long last = offset + length - 1;
        if (t.length == 1) {
            // the usual case, without a loop: measured 45 against 62 ns per write on a clean
            // bitmap of 32 MiB (jmh BitmapFlushBenchmark.trackClean, when it called this
            // method directly), as the CPU then overlaps the cache misses of successive writes
            PersistentBitmap b = t[0];
            int g = b.granularityBits;
            b.bits.set(offset >>> g, (last >>> g) + 1);
            return;
        }
        for (PersistentBitmap b : t) {
            b.bits.set(offset >>> b.granularityBits, (last >>> b.granularityBits) + 1);
        }
    }

    /** Kept out of {@link #track} so that the JIT inlines that small method into every write. */
    private PersistentBitmap[] tracking() {
        tracking = bitmaps.stream().filter(b -> b.enabled && b.bits != null).toArray(PersistentBitmap[]::new);
        return tracking;
    }

    /** Called wherever a bitmap is added, removed, enabled, disabled or loaded. */
    private void trackingChanged() {
        tracking = null;
    }

    // ------------------------------------------------------------ operations

    @Override
    public PersistentBitmap add(String name, long granularity, boolean persistent, boolean enabled) throws IOException {
        BitmapLimits.checkAdd(this, headerWriter.header(), name, granularity, persistent, cs, virtualSize);
        int bits = Long.numberOfTrailingZeros(granularity);
        PersistentBitmap b = new PersistentBitmap(name, bits, persistent, enabled, false);
        b.bits = new BitmapBits((virtualSize + granularity - 1) >>> bits);
        b.bits.markAllChanged();
        b.metaChanged = true;
        bitmaps.add(b);
        byName.put(name, b);
        trackingChanged();
        account(b, 1);
        return b;
    }

    @Override
    public void remove(PersistentBitmap b) {
        if (byName.get(b.name) != b) {
            return;
        }
        // the newest bitmaps are removed most often: search from the end
        bitmaps.remove(bitmaps.lastIndexOf(b));
        byName.remove(b.name);
        trackingChanged();
        account(b, -1);
        if (b.disk != null) {
            removedFromDisk.add(b.disk);
        }
    }

    @Override
    public void setEnabled(PersistentBitmap b, boolean enabled) {
        if (b.enabled != enabled) {
            b.enabled = enabled;
            b.metaChanged = true;
            trackingChanged();
        }
    }

    @Override
    public void setPersistent(PersistentBitmap b, boolean persistent) throws IOException {
        if (b.persistent == persistent) {
            return;
        }
        if (persistent) {
            BitmapLimits.checkPersistent(this, headerWriter.header(), b.name, b.granularity(), cs, virtualSize);
        } else if (b.disk != null && !b.inconsistent) {
            bits(b);   // its on-disk entry goes away below: keep its bits in memory
        }
        account(b, -1);
        b.persistent = persistent;
        account(b, 1);
        b.metaChanged = true;
        if (b.bits != null) {
            b.bits.markAllChanged();
        }
        if (!persistent && b.disk != null) {
            removedFromDisk.add(b.disk);
            b.disk = null;
            b.table = null;
            b.inUseOnDisk = false;
        }
    }

    @Override
    public void resize(long newSize) throws IOException {
        checkResizable();
        for (PersistentBitmap b : bitmaps) {
            bits(b).resize((newSize + b.granularity() - 1) >>> b.granularityBits);
        }
        virtualSize = newSize;
    }

    @Override
    public void checkResizable() throws IOException {
        for (PersistentBitmap b : bitmaps) {
            if (b.inconsistent) {
                throw new IOException("Cannot resize qcow2 with persistent bitmaps that were not loaded into memory (bitmap '"
                        + b.name + "' is inconsistent; remove it first)");
            }
        }
    }

    @Override
    public BitmapState saveState() {
        return new BitmapState(bitmaps, removedFromDisk);
    }

    @Override
    public void restoreState(BitmapState s) {
        bitmaps.clear();
        for (BitmapState.Saved saved : s.bitmaps) {
            bitmaps.add(saved.restore());
        }
        trackingChanged();
        removedFromDisk.clear();
        removedFromDisk.addAll(s.removedFromDisk);
        reindex();
    }

    @Override
    public boolean isEmpty() {
        return bitmaps.isEmpty();
    }

    @Override
    public List<String> transientNames() {
        return bitmaps.stream().filter(b -> !b.persistent).map(PersistentBitmap::name).toList();
    }

    @Override
    public List<String> removeAll() {
        List<PersistentBitmap> all = new ArrayList<>(bitmaps);
        all.forEach(this::remove);
        return all.stream().map(PersistentBitmap::name).toList();
    }

    @Override
    public ImageBitmaps bitmaps() {
        return this;
    }

    @Override
    public boolean needsStore() {
        if (!removedFromDisk.isEmpty() || dropStaleExtension) {
            return true;
        }
        for (PersistentBitmap b : bitmaps) {
            if (b.storable() && (b.disk == null || b.metaChanged || b.inUseOnDisk || (b.bits != null && b.bits.anyChanged()))) {
                return true;
            }
        }
        return false;
    }

    /** Stores every changed persistent bitmap and clears in_use (see {@link BitmapStore}). */
    @Override
    public void store() throws IOException {
        if (readOnly || !needsStore()) {
            return;
        }
        if (dropStaleExtension) {
            headerWriter.updateHeader(h -> h.withBitmapsExtension(null));
            dropStaleExtension = false;
        }
        List<BitmapDirectoryEntry> stored = new BitmapStore(storage, refcounts, headerWriter, cs, virtualSize)
                .store(bitmaps, onDisk, removedFromDisk, deferredFrees);
        onDisk.clear();
        onDisk.addAll(stored);
        removedFromDisk.clear();
        // the next guest write must set in_use again
        inUseDone = false;
    }

    @Override
    public boolean releaseDeferredFrees() throws IOException {
        if (deferredFrees.isEmpty()) {
            return false;
        }
        BitmapStore.free(refcounts, deferredFrees);
        return true;
    }
}
