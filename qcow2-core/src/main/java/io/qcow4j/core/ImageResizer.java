package io.qcow4j.core;

import java.io.IOException;

/** Checks that a shrink loses nothing (no cluster past the new end maps data), or frees those clusters. */
final class ImageResizer {
    private ImageResizer() {
    }

    static void checkShrinkable(Qcow2Image img, long newSize) throws IOException {
        int cs = img.geo.clusterSize();
        long first = (newSize + cs - 1) / cs * cs;
        for (long off = first; off < img.header.size; ) {
            long l2 = img.mapper.l2Table(off);
            if (l2 == 0) {
                off = (off / img.geo.l2Coverage() + 1) * img.geo.l2Coverage();
                continue;
            }
            long entry = img.io.entryAt(off);
            if (img.io.isAllocated(entry)) {
                throw new IOException("Cannot shrink the image: data is allocated at offset " + off
                        + ", past the new size " + newSize);
            }
            off += cs;
        }
    }

    /**
     * Frees every cluster wholly past {@code newSize} (qemu's discard before a shrink); a
     * cluster the new end cuts through keeps its data. No bitmap records it.
     */
    static void freePast(Qcow2Image img, long newSize) throws IOException {
        int cs = img.geo.clusterSize();
        long first = (newSize + cs - 1) / cs * cs;
        for (long off = first; off < img.header.size; ) {
            if (img.mapper.l2Table(off) == 0) {
                off = (off / img.geo.l2Coverage() + 1) * img.geo.l2Coverage();
                continue;
            }
            img.io.unmapCluster(off);
            off += cs;
        }
    }
}
