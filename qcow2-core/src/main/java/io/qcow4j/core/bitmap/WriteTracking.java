package io.qcow4j.core.bitmap;

import java.io.IOException;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.storage.Storage;

/**
 * What the engine sees of an image's dirty bitmaps: a hook on its guest write path and its
 * lifecycle. Before the first guest write the persistent bitmaps are marked in_use on
 * disk; every guest write, zero write and discard reports the range it touched; before a
 * close (or when asked) what changed is stored. How the bitmaps live on disk (directory,
 * tables, the in_use switch, deferred frees) stays package-private behind it, so the
 * engine's write ordering and the bitmap format can change apart.
 */
public interface WriteTracking {
    /** The engine's header as the bitmaps read and change it (the extension, autoclear bit 0). */
    interface HeaderWriter {
        /** The header as it stands. */
        Header header();

        /** Replaces the in-memory header by {@code change} of it; nothing is written. Returns the new header. */
        Header updateHeader(UnaryOperator<Header> change);

        /** Rewrites cluster 0 from the in-memory header (the directory switch is one header write). */
        void writeHeader() throws IOException;
    }

    /**
     * The hook of an opened image: parses the bitmaps extension and directory (bitmap data
     * loads on first use). {@code sizeMismatchInconsistent}: a bitmap whose table does not
     * cover the image's size loads as inconsistent instead of failing the open. In check
     * mode a directory that does not parse is left to the checker (as qemu-img check): the
     * image opens with no bitmaps.
     */
    static WriteTracking open(Storage storage, RefcountManager refcounts, HeaderWriter headerWriter,
                              boolean readOnly, Consumer<String> warnings, boolean sizeMismatchInconsistent,
                              boolean checkMode) throws IOException {
        BitmapManager m = new BitmapManager(storage, refcounts, headerWriter, readOnly, warnings);
        m.loadSizeMismatchAsInconsistent(sizeMismatchInconsistent);
        try {
            m.load();
        } catch (CorruptImageException e) {
            if (!checkMode) {
                throw e;
            }
            return new BitmapManager(storage, refcounts, headerWriter, readOnly, warnings);
        }
        return m;
    }

    /**
     * Before every guest write (and a resize): the first time after an open or a store,
     * marks the persistent bitmaps in_use on disk and loads every enabled one.
     */
    void beforeGuestWrite() throws IOException;

    /** A guest write, zero write or discard touched {@code [offset, offset+length)}: every enabled bitmap records it. */
    void track(long offset, long length);

    /** Whether {@link #store} would write anything. */
    boolean needsStore();

    /** Stores every changed persistent bitmap and clears in_use (before a close, or when asked). */
    void store() throws IOException;

    /**
     * Frees what earlier stores replaced. Call only right after a flush, which made those
     * stores' header switches durable. Returns whether anything was freed.
     */
    boolean releaseDeferredFrees() throws IOException;

    /** Refuses a resize while a bitmap cannot follow it (an inconsistent one: QEMU's rule). */
    void checkResizable() throws IOException;

    /** Follows a change of the disk size: every bitmap is loaded and resized. */
    void resize(long newSize) throws IOException;

    /** No bitmap at all (an internal snapshot may be reverted to). */
    boolean isEmpty();

    /** Names of the bitmaps a close drops (the transient ones). */
    List<String> transientNames();

    /** Removes every bitmap (a downgrade to version 2); their names, in order. Stored at the next {@link #store}. */
    List<String> removeAll();

    /** The bitmaps themselves, for the bitmaps module (the engine only hands them out). */
    ImageBitmaps bitmaps();
}
