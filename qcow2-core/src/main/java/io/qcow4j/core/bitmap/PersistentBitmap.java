package io.qcow4j.core.bitmap;

import io.qcow4j.core.format.BitmapDirectoryEntry;

/**
 * One dirty bitmap of an image, as the engine tracks it: its bits (loaded on first use),
 * its state, and where it lives on disk. Permission rules are the manager's.
 */
public final class PersistentBitmap {
    final String name;
    final int granularityBits;
    boolean persistent;
    boolean enabled;
    /** Found in_use at open: its data is unknown; only removal is allowed. */
    final boolean inconsistent;
    /** Loaded as inconsistent because its table does not cover the image's virtual size. */
    boolean sizeMismatch;
    boolean busy;
    /** The image is open read-only: the bits may not change. */
    boolean readOnly;
    BitmapBits bits;
    /** The directory entry on disk, or null before the first store. */
    BitmapDirectoryEntry disk;
    long[] table;
    /** Our in_use flag is set in the on-disk entry. */
    boolean inUseOnDisk;
    /** State other than the bits changed since the last store (enabled, persistence). */
    boolean metaChanged;

    PersistentBitmap(String name, int granularityBits, boolean persistent, boolean enabled, boolean inconsistent) {
        this.name = name;
        this.granularityBits = granularityBits;
        this.persistent = persistent;
        this.enabled = enabled;
        this.inconsistent = inconsistent;
    }

    public String name() {
        return name;
    }

    public long granularity() {
        return 1L << granularityBits;
    }

    public int granularityBits() {
        return granularityBits;
    }

    public boolean isPersistent() {
        return persistent;
    }

    public boolean isEnabled() {
        return enabled;
    }

    public boolean isInconsistent() {
        return inconsistent;
    }

    /** Its table was sized for another virtual size than the image's (see {@link BitmapManager#loadSizeMismatchAsInconsistent}). */
    public boolean isSizeMismatch() {
        return sizeMismatch;
    }

    public boolean isReadOnly() {
        return readOnly;
    }

    public boolean isBusy() {
        return busy;
    }

    public void setBusy(boolean busy) {
        this.busy = busy;
    }

    /** Stored on disk already (not only in memory). */
    public boolean isStored() {
        return disk != null;
    }

    /** A store writes it: persistent, and its contents known. */
    boolean storable() {
        return persistent && !inconsistent;
    }
}
