package io.qcow4j.bitmaps;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.bitmap.BitmapBits;
import io.qcow4j.core.bitmap.ImageBitmaps;
import io.qcow4j.core.bitmap.PersistentBitmap;

/**
 * A dirty bitmap: which {@code granularity}-sized blocks of a disk changed. Either one of
 * an image's bitmaps (see {@link Bitmaps}) or a free-standing one ({@link #standalone}).
 *
 * <p>Memory follows the dirty data: an empty bitmap of a 16 TiB disk at 64 KiB costs a few
 * kilobytes; a full one shares a single all-ones chunk. Offsets and lengths are in bytes
 * of the disk.
 */
public final class DirtyBitmap {
    /** A run of the disk: dirty or clean. */
    public record Extent(long start, long length, boolean dirty) {
    }

    private final String name;
    private final long granularity;
    private final int granularityBits;
    private final long diskSize;
    private final ImageBitmaps manager;
    private final PersistentBitmap entry;
    private BitmapBits own;

    private DirtyBitmap(String name, long granularity, long diskSize, ImageBitmaps manager, PersistentBitmap entry) {
        if (granularity < 512 || Long.bitCount(granularity) != 1) {
            throw new IllegalArgumentException("Granularity must be power of 2 and at least 512");
        }
        this.name = name;
        this.granularity = granularity;
        this.granularityBits = Long.numberOfTrailingZeros(granularity);
        this.diskSize = diskSize;
        this.manager = manager;
        this.entry = entry;
    }

    /** A bitmap belonging to no image (for computing dirty sets). */
    public static DirtyBitmap standalone(String name, long diskSize, long granularity) {
        DirtyBitmap b = new DirtyBitmap(name, granularity, diskSize, null, null);
        b.own = new BitmapBits((diskSize + granularity - 1) >>> b.granularityBits);
        return b;
    }

    static DirtyBitmap of(ImageBitmaps manager, PersistentBitmap entry) {
        return new DirtyBitmap(entry.name(), entry.granularity(), manager.virtualSize(), manager, entry);
    }

    PersistentBitmap entry() {
        return entry;
    }

    BitmapBits bits() {
        if (own != null) {
            return own;
        }
        try {
            return manager.bits(entry);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public String name() {
        return name;
    }

    public long granularity() {
        return granularity;
    }

    public long diskSize() {
        return diskSize;
    }

    public boolean isEnabled() {
        return entry != null && entry.isEnabled();
    }

    public boolean isPersistent() {
        return entry != null && entry.isPersistent();
    }

    /** Found in_use when the image was opened: its content is unknown. */
    public boolean isInconsistent() {
        return entry != null && entry.isInconsistent();
    }

    /** Its table on disk was sized for another virtual size (loaded as inconsistent; see OpenOptions). */
    public boolean isSizeMismatch() {
        return entry != null && entry.isSizeMismatch();
    }

    public boolean isReadOnly() {
        return entry != null && entry.isReadOnly();
    }

    public boolean isBusy() {
        return entry != null && entry.isBusy();
    }

    // ------------------------------------------------------------ bits

    /** Marks {@code [offset, offset+length)} dirty. */
    public void set(long offset, long length) {
        checkRange(offset, length);
        checkWritable();
        if (length > 0) {
            bits().set(offset >>> granularityBits, ((offset + length - 1) >>> granularityBits) + 1);
        }
    }

    /** Marks the blocks wholly or partly inside {@code [offset, offset+length)} clean. */
    public void reset(long offset, long length) {
        checkRange(offset, length);
        checkWritable();
        if (length > 0) {
            bits().reset(offset >>> granularityBits, ((offset + length - 1) >>> granularityBits) + 1);
        }
    }

    public void clear() {
        checkWritable();
        bits().clear();
    }

    /** Whether the block holding {@code offset} is dirty. */
    public boolean get(long offset) {
        checkRange(offset, 1);
        return bits().get(offset >>> granularityBits);
    }

    /** Dirty bytes, as QEMU counts them: dirty blocks times the granularity, the last one clipped. */
    public long count() {
        BitmapBits b = bits();
        long n = b.count() * granularity;
        long lastBit = b.sizeBits() - 1;
        if (lastBit >= 0 && b.get(lastBit)) {
            n -= b.sizeBits() * granularity - diskSize;
        }
        return n;
    }

    /** Start of the first dirty block at or after {@code offset}, or -1. */
    public long nextDirty(long offset) {
        long bit = bits().nextSet(Math.max(0, offset) >>> granularityBits);
        return bit < 0 ? -1 : Math.max(offset, bit << granularityBits);
    }

    /** Start of the first clean block at or after {@code offset}, or -1. */
    public long nextClean(long offset) {
        long bit = bits().nextClear(Math.max(0, offset) >>> granularityBits);
        return bit < 0 ? -1 : Math.max(offset, bit << granularityBits);
    }

    /** Dirty and clean runs covering the whole disk, adjacent runs merged. */
    public List<Extent> extents() {
        List<Extent> out = new ArrayList<>();
        BitmapBits b = bits();
        long bit = 0;
        while (bit < b.sizeBits()) {
            boolean dirty = b.get(bit);
            long next = dirty ? b.nextClear(bit) : b.nextSet(bit);
            if (next < 0) {
                next = b.sizeBits();
            }
            long start = bit << granularityBits;
            out.add(new Extent(start, Math.min(next << granularityBits, diskSize) - start, dirty));
            bit = next;
        }
        return out;
    }

    /** Dirty runs only. */
    public List<Extent> dirtyExtents() {
        return extents().stream().filter(Extent::dirty).toList();
    }

    /** ORs {@code source} into this bitmap; the disk sizes must be equal, granularities may differ. */
    public void mergeFrom(DirtyBitmap source) {
        if (source.diskSize != diskSize) {
            throw new IllegalArgumentException("Bitmaps are of different sizes (destination " + diskSize
                    + ", source " + source.diskSize + ") and can't be merged");
        }
        checkWritable();
        BitmapBits dst = bits();
        BitmapBits src = source.bits();
        if (source.granularity == granularity) {
            dst.or(src);
            return;
        }
        long bit = src.nextSet(0);
        while (bit >= 0) {
            long end = src.nextClear(bit);
            long endByte = end < 0 ? diskSize : Math.min(diskSize, end << source.granularityBits);
            long startByte = bit << source.granularityBits;
            dst.set(startByte >>> granularityBits, ((endByte - 1) >>> granularityBits) + 1);
            if (end < 0) {
                break;
            }
            bit = src.nextSet(end);
        }
    }

    /**
     * Approximate heap its bits hold, in bytes (see the class comment: a few kilobytes
     * empty, one shared chunk full; what a bitmap of scattered dirty blocks costs).
     */
    public long heapBytes() {
        return bits().heapBytes();
    }

    /** Same disk size, granularity and dirty blocks. */
    public boolean contentEquals(DirtyBitmap other) {
        return other.granularity == granularity && other.diskSize == diskSize && bits().contentEquals(other.bits());
    }

    public int contentHash() {
        return Long.hashCode(granularity) * 31 + bits().contentHash();
    }

    /** A free-standing copy of the current bits. */
    public DirtyBitmap copy(String newName) {
        DirtyBitmap c = new DirtyBitmap(newName, granularity, diskSize, null, null);
        c.own = bits().copy();
        return c;
    }

    private void checkWritable() {
        if (entry != null) {
            Bitmaps.check(entry, true, true, true);
        }
    }

    private void checkRange(long offset, long length) {
        if (offset < 0 || length < 0 || offset > diskSize || length > diskSize - offset) {
            throw outside(offset, length);
        }
    }

    private IllegalArgumentException outside(long offset, long length) {
        return new IllegalArgumentException("range [" + offset + ", +" + length + ") outside the disk of " + diskSize + " bytes");
    }

    @Override
    public String toString() {
        return "DirtyBitmap[" + name + ", granularity " + granularity + ", " + (isEnabled() ? "enabled" : "disabled") + "]";
    }
}
