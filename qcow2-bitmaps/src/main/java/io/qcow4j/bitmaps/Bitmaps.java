package io.qcow4j.bitmaps;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.core.bitmap.ImageBitmaps;
import io.qcow4j.core.bitmap.PersistentBitmap;
import io.qcow4j.core.format.BitmapDirectoryEntry;

/**
 * The dirty bitmaps of one image and what can be done with them, refused where QEMU
 * refuses: a busy bitmap for everything, a read-only one for changes to its bits, an
 * inconsistent one (found in_use at open) for everything but removal.
 *
 * <p>Operations change memory; persistent bitmaps reach the disk at {@link #store()} or when
 * the image is closed. Guest writes through the image dirty every enabled bitmap.
 */
public final class Bitmaps {
    /** Options of a new bitmap: persistent (stored in the image) and enabled by default. */
    public record AddOptions(long granularity, boolean persistent, boolean disabled) {
        public static AddOptions defaults() {
            return new AddOptions(0, true, false);
        }

        public AddOptions withGranularity(long g) {
            return new AddOptions(g, persistent, disabled);
        }

        public AddOptions transientBitmap() {
            return new AddOptions(granularity, false, disabled);
        }

        public AddOptions disabledBitmap() {
            return new AddOptions(granularity, persistent, true);
        }
    }

    /**
     * A bitmap as the image's bitmap directory holds it on disk (what {@code qemu-img info}
     * shows): its flags as stored, which may differ from memory (in_use while the image is
     * written, auto of a bitmap enabled since the last store).
     */
    public record Stored(String name, long granularity, boolean inUse, boolean auto) {
    }

    private final Qcow2Image image;
    private final ImageBitmaps manager;

    private Bitmaps(Qcow2Image image) {
        this.image = image;
        this.manager = image.bitmaps();
    }

    public static Bitmaps of(Qcow2Image image) {
        return new Bitmaps(image);
    }

    public Qcow2Image image() {
        return image;
    }

    public List<DirtyBitmap> list() {
        List<DirtyBitmap> out = new ArrayList<>();
        for (PersistentBitmap b : manager.list()) {
            out.add(DirtyBitmap.of(manager, b));
        }
        return out;
    }

    /** The bitmap directory on disk, in its order. */
    public List<Stored> stored() {
        List<Stored> out = new ArrayList<>();
        for (BitmapDirectoryEntry e : manager.diskEntries()) {
            out.add(new Stored(e.name(), 1L << e.granularityBits(), e.inUse(), e.auto()));
        }
        return out;
    }

    public boolean contains(String name) {
        return manager.get(name) != null;
    }

    public DirtyBitmap get(String name) {
        PersistentBitmap b = manager.get(name);
        if (b == null) {
            throw new IllegalArgumentException("Dirty bitmap '" + name + "' not found");
        }
        return DirtyBitmap.of(manager, b);
    }

    /** QEMU's default: the cluster size clamped to 4 KiB .. 64 KiB. */
    public long defaultGranularity() {
        return Math.max(4096, Math.min(65536, image.info().clusterSize()));
    }

    public DirtyBitmap add(String name, AddOptions options) throws IOException {
        long g = options.granularity() == 0 ? defaultGranularity() : options.granularity();
        PersistentBitmap b = manager.add(name, g, options.persistent(), !options.disabled());
        return DirtyBitmap.of(manager, b);
    }

    public DirtyBitmap add(String name) throws IOException {
        return add(name, AddOptions.defaults());
    }

    /** Removes a bitmap (an inconsistent one too: that is how it is repaired). */
    public void remove(String name) {
        PersistentBitmap b = entry(name);
        check(b, true, true, false);
        manager.remove(b);
    }

    public void clear(String name) {
        DirtyBitmap b = get(name);
        check(b.entry(), true, true, true);
        b.clear();
    }

    public void enable(String name) {
        PersistentBitmap b = entry(name);
        check(b, true, false, true);
        manager.setEnabled(b, true);
    }

    public void disable(String name) {
        PersistentBitmap b = entry(name);
        check(b, true, false, true);
        manager.setEnabled(b, false);
    }

    /**
     * ORs the sources (from this image or another, such as its backing file) into
     * {@code target}; all or nothing: on a refusal the target is untouched.
     */
    public void merge(String target, DirtyBitmap... sources) {
        DirtyBitmap dst = get(target);
        check(dst.entry(), true, true, true);
        DirtyBitmap sum = dst.copy(target);
        for (DirtyBitmap src : sources) {
            if (src.entry() != null) {
                check(src.entry(), true, false, true);
            }
            sum.mergeFrom(src);
        }
        dst.mergeFrom(sum);
    }

    /** Sets the bits of every range allocated in this image's own layer (not its backing files). */
    public void populate(String name) throws IOException {
        DirtyBitmap b = get(name);
        check(b.entry(), true, true, true);
        long size = image.size();
        long off = 0;
        while (off < size) {
            BlockStatus st = image.blockStatus(off, size - off);
            if (st.allocated() && st.depth() == 0) {
                b.set(st.offset(), st.length());
            }
            off += st.length();
        }
    }

    /** Makes a bitmap persistent (stored in the image) or transient (dropped from it at the next store). */
    public void setPersistent(String name, boolean persistent) throws IOException {
        PersistentBitmap b = entry(name);
        check(b, true, true, true);
        // load the bits first: a bitmap made transient forgets its place on disk
        manager.bits(b);
        manager.setPersistent(b, persistent);
    }

    /** Stores every changed persistent bitmap now (also done at close). */
    public void store() throws IOException {
        image.storeBitmaps();
    }

    private PersistentBitmap entry(String name) {
        return get(name).entry();
    }

    /** QEMU's bdrv_dirty_bitmap_check: which states refuse the operation. */
    static void check(PersistentBitmap b, boolean busy, boolean readOnly, boolean inconsistent) {
        // the messages are built out of line: this check runs in DirtyBitmap.set, per write
        if (busy && b.isBusy() || inconsistent && b.isInconsistent() || readOnly && b.isReadOnly()) {
            throw refusal(b, busy, readOnly, inconsistent);
        }
    }

    private static IllegalStateException refusal(PersistentBitmap b, boolean busy, boolean readOnly, boolean inconsistent) {
        if (busy && b.isBusy()) {
            return new IllegalStateException("Bitmap '" + b.name() + "' is currently in use by another operation and cannot be used");
        }
        if (inconsistent && b.isInconsistent()) {
            return new IllegalStateException("Bitmap '" + b.name() + "' is inconsistent and cannot be used;"
                    + " remove it (qcow4j bitmap --remove) to delete it from the image");
        }
        return new IllegalStateException("Bitmap '" + b.name() + "' is readonly and cannot be modified");
    }
}
