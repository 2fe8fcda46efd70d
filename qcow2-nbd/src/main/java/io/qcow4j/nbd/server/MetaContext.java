package io.qcow4j.nbd.server;

import io.qcow4j.bitmaps.DirtyBitmap;
import io.qcow4j.core.Qcow2Image;

/**
 * One metadata context an export offers. Ids follow qemu-nbd's numbering:
 * {@code base:allocation} 0, {@code qemu:allocation-depth} 1, the i-th bitmap 2 + i.
 *
 * @param bitmap the bitmap of a {@code qemu:dirty-bitmap:} context, else null
 * @param owner  the image holding {@code bitmap}: its lock guards the bits
 */
record MetaContext(int id, String name, Kind kind, DirtyBitmap bitmap, Qcow2Image owner) {
    enum Kind { BASE_ALLOCATION, ALLOCATION_DEPTH, DIRTY_BITMAP }
}
