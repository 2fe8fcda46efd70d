package io.qcow4j.core.bitmap;

import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.format.BitmapDirectoryEntry;

/**
 * The in-memory state of an image's bitmaps at one moment, for a transaction to return to
 * ({@link ImageBitmaps#saveState}). Opaque outside this package.
 */
public final class BitmapState {
    /** One bitmap's changeable fields as they were; its bits copied. */
    record Saved(PersistentBitmap bitmap, boolean enabled, boolean persistent, boolean metaChanged, boolean busy,
                 BitmapDirectoryEntry disk, long[] table, boolean inUseOnDisk, BitmapBits bits) {
        static Saved of(PersistentBitmap b) {
            return new Saved(b, b.enabled, b.persistent, b.metaChanged, b.busy, b.disk, b.table, b.inUseOnDisk,
                    b.bits == null ? null : b.bits.copy());
        }

        /** Puts the fields back (a copy of the bits: the state may be restored again). */
        PersistentBitmap restore() {
            PersistentBitmap b = bitmap;
            b.enabled = enabled;
            b.persistent = persistent;
            b.metaChanged = metaChanged;
            b.busy = busy;
            b.disk = disk;
            b.table = table;
            b.inUseOnDisk = inUseOnDisk;
            b.bits = bits == null ? null : bits.copy();
            return b;
        }
    }

    /** The bitmaps in their order. */
    final List<Saved> bitmaps = new ArrayList<>();
    /** Directory entries whose bitmaps were removed, to drop at the next store. */
    final List<BitmapDirectoryEntry> removedFromDisk;

    BitmapState(List<PersistentBitmap> bitmaps, List<BitmapDirectoryEntry> removedFromDisk) {
        for (PersistentBitmap b : bitmaps) {
            this.bitmaps.add(Saved.of(b));
        }
        this.removedFromDisk = new ArrayList<>(removedFromDisk);
    }
}
