package io.qcow4j.core.bitmap;

import java.io.IOException;
import java.util.List;

import io.qcow4j.core.format.BitmapDirectoryEntry;

/**
 * The dirty bitmaps of one open image, as the bitmaps module ({@code io.qcow4j.bitmaps})
 * builds its public API on them ({@code Bitmaps}, {@code DirtyBitmap}, {@code Transaction}):
 * applications and the CLI use that API, not this. Operations change memory only; the
 * engine stores persistent bitmaps through its {@link WriteTracking} hook. Permission rules
 * (busy, read-only, inconsistent) are the caller's.
 */
public interface ImageBitmaps {
    /** The image is open read-only: no bitmap may change. */
    boolean isReadOnly();

    /** The disk size the bitmaps cover. */
    long virtualSize();

    /** Every bitmap, persistent ones in directory order first, then those added since. */
    List<PersistentBitmap> list();

    /** The bitmap named {@code name}, or null. */
    PersistentBitmap get(String name);

    /** The bitmap's bits, loaded from disk on first use. */
    BitmapBits bits(PersistentBitmap b) throws IOException;

    /** Adds a bitmap (refused with QEMU's messages where QEMU refuses); stored at the next store when persistent. */
    PersistentBitmap add(String name, long granularity, boolean persistent, boolean enabled) throws IOException;

    /** Removes a bitmap; its on-disk entry goes away at the next store. */
    void remove(PersistentBitmap b);

    void setEnabled(PersistentBitmap b, boolean enabled);

    /** Makes a bitmap persistent (stored in the image) or transient (dropped from it at the next store). */
    void setPersistent(PersistentBitmap b, boolean persistent) throws IOException;

    /** Refuses a resize while a bitmap cannot follow it (an inconsistent one: QEMU's rule). */
    void checkResizable() throws IOException;

    /** The entries of the bitmap directory as they are on disk (what qemu-img info shows). */
    List<BitmapDirectoryEntry> diskEntries();

    /** Remembers every bitmap's in-memory state (bits are copied; sparse ones cheaply). */
    BitmapState saveState();

    /**
     * Returns to a saved state. Valid while nothing was stored in between: operations only
     * change memory, so nothing on disk needs undoing.
     */
    void restoreState(BitmapState s);
}
