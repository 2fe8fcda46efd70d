package io.qcow4j.core.format;

import java.nio.ByteBuffer;

import io.qcow4j.core.api.CorruptImageException;

/**
 * Bitmaps header extension 0x23852875 ({@code == Bitmaps extension ==}), exactly 24 bytes:
 * 0-3 nb_bitmaps, 4-7 reserved (zero), 8-15 bitmap_directory_size, 16-23 bitmap_directory_offset.
 */
public record BitmapsExtension(int nbBitmaps, long directorySize, long directoryOffset) {
    public static final int SIZE = 24;
    /** QEMU's limits: QCOW2_MAX_BITMAPS and QCOW2_MAX_BITMAP_DIRECTORY_SIZE. */
    public static final int MAX_BITMAPS = 65535;
    public static final long MAX_DIRECTORY_SIZE = 1024L * MAX_BITMAPS;

    public static BitmapsExtension parse(byte[] data, int clusterSize) throws CorruptImageException {
        if (data.length != SIZE) {
            throw new CorruptImageException("bitmaps extension", 0, "Invalid extension length " + data.length);
        }
        ByteBuffer b = ByteBuffer.wrap(data);
        int nb = b.getInt(0);
        int reserved = b.getInt(4);
        long size = b.getLong(8);
        long offset = b.getLong(16);
        if (reserved != 0) {
            throw new CorruptImageException("bitmaps extension", 0, "Reserved field is not zero");
        }
        if (nb == 0) {
            throw new CorruptImageException("bitmaps extension", 0, "found bitmaps extension with zero bitmaps");
        }
        if (nb < 0 || nb > MAX_BITMAPS) {
            throw new CorruptImageException("bitmaps extension", 0, "File has " + Integer.toUnsignedString(nb) + " bitmaps, exceeding the QEMU supported maximum of " + MAX_BITMAPS);
        }
        if (size < 0 || size > MAX_DIRECTORY_SIZE) {
            throw new CorruptImageException("bitmaps extension", 8, "Bitmap directory size " + size + " exceeds the QEMU supported maximum of " + MAX_DIRECTORY_SIZE);
        }
        if (!HostOffsets.isCluster(offset, clusterSize)) {
            throw new CorruptImageException("bitmaps extension", 16, "Invalid bitmap directory offset 0x" + Long.toHexString(offset));
        }
        return new BitmapsExtension(nb, size, offset);
    }

    public byte[] serialize() {
        return ByteBuffer.allocate(SIZE).putInt(nbBitmaps).putInt(0).putLong(directorySize).putLong(directoryOffset).array();
    }
}
