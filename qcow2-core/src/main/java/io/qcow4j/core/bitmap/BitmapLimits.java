package io.qcow4j.core.bitmap;

import java.io.IOException;

import io.qcow4j.core.format.BitmapDirectoryEntry;
import io.qcow4j.core.format.BitmapsExtension;
import io.qcow4j.core.format.Header;

/** QEMU's limits on bitmaps, refused with QEMU's messages before anything changes. */
final class BitmapLimits {
    private BitmapLimits() {
    }

    static void checkAdd(BitmapManager m, Header h, String name, long granularity, boolean persistent, int cs,
                         long virtualSize) throws IOException {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("Bitmap name cannot be empty");
        }
        if (nameBytes(name) > BitmapDirectoryEntry.MAX_NAME_SIZE) {
            throw new IllegalArgumentException("Bitmap name too long");
        }
        if (m.get(name) != null) {
            throw new IllegalArgumentException("Bitmap already exists: " + name);
        }
        if (granularity < 512 || Long.bitCount(granularity) != 1) {
            throw new IllegalArgumentException("Granularity must be power of 2 and at least 512");
        }
        if (persistent) {
            checkPersistent(m, h, name, granularity, cs, virtualSize);
        }
    }

    static void checkPersistent(BitmapManager m, Header h, String name, long granularity, int cs, long virtualSize) {
        String prefix = "Can't make bitmap '" + name + "' persistent: ";
        if (m.isReadOnly()) {
            throw new IllegalStateException(prefix + "the image is open read-only");
        }
        if (h.version() < 3) {
            throw new IllegalArgumentException(prefix + "Cannot store dirty bitmaps in qcow2 v2 files");
        }
        int bits = Long.numberOfTrailingZeros(granularity);
        if (bits > BitmapDirectoryEntry.MAX_GRANULARITY_BITS) {
            throw new IllegalArgumentException(prefix + "Granularity exceeds maximum (" + (1L << BitmapDirectoryEntry.MAX_GRANULARITY_BITS) + " bytes)");
        }
        if (bits < BitmapDirectoryEntry.MIN_GRANULARITY_BITS) {
            throw new IllegalArgumentException(prefix + "Granularity is under minimum (" + (1L << BitmapDirectoryEntry.MIN_GRANULARITY_BITS) + " bytes)");
        }
        long tableSize = BitmapDirectory.tableSizeFor(virtualSize, bits, cs);
        long bytes = ((virtualSize + granularity - 1) / granularity + 7) / 8;
        if (bytes > BitmapDirectoryEntry.MAX_PHYS_SIZE || tableSize > BitmapDirectoryEntry.MAX_TABLE_SIZE) {
            throw new IllegalArgumentException(prefix + "Too much space will be occupied by the bitmap. Use larger granularity");
        }
        long[] usage = m.persistentUsage();
        long count = usage[0];
        long dirSize = usage[1];
        if (count + 1 > BitmapsExtension.MAX_BITMAPS) {
            throw new IllegalArgumentException(prefix + "Maximum number of persistent bitmaps is already reached");
        }
        if (dirSize + BitmapDirectoryEntry.sizeFor(nameBytes(name), 0) > BitmapsExtension.MAX_DIRECTORY_SIZE) {
            throw new IllegalArgumentException(prefix + "Not enough space in the bitmap directory");
        }
    }

    static int nameBytes(String name) {
        return name.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
    }
}
