package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.format.L1Entry;
import io.qcow4j.core.format.L2Entry;
import io.qcow4j.core.format.SnapshotEntry;

/**
 * Before a downgrade to version 2, which has no zero flag: every zero cluster, in the
 * active L1 table and in every snapshot's, becomes what v2 can say (as QEMU does it).
 * Without a backing file an unallocated zero cluster simply becomes unallocated; otherwise
 * the cluster gets zero data: in place when its host cluster belongs to this L2 table
 * alone, else in a new cluster. A shared L2 table is changed in place (every image that
 * references it reads zeros there before and after), its new clusters counted once per
 * reference to the table.
 *
 * <p>Order for a crash: zeros written, refcount raised, then the L2 entry; an old host
 * cluster given up only after the entry no longer names it. Killed half-way, the image is a
 * valid version 3 image whose remaining zero clusters are still zero clusters.
 */
final class ZeroExpansion {
    private final Qcow2Engine img;
    private final int bits;
    private final int cs;
    private final boolean backed;

    private ZeroExpansion(Qcow2Engine img) {
        this.img = img;
        this.bits = img.geo.clusterBits();
        this.cs = img.geo.clusterSize();
        this.backed = img.header().backingFile() != null;
    }

    static void run(Qcow2Engine img, RefcountWidthChange.Status status) throws IOException {
        new ZeroExpansion(img).run(status);
    }

    private void run(RefcountWidthChange.Status status) throws IOException {
        List<long[]> tables = new ArrayList<>();
        tables.add(img.mapper.l1().clone());
        long total = tables.get(0).length;
        for (SnapshotEntry e : img.snapshotEntries) {
            long[] l1 = ClusterMapper.readL1(img.storage, img.geo, e.l1TableOffset, e.l1Size, "snapshot L1 table");
            tables.add(l1);
            total += l1.length;
        }
        long visited = 0;
        try {
            for (long[] l1 : tables) {
                for (long entry : l1) {
                    long l2 = L1Entry.l2Offset(entry);
                    if (l2 != 0) {
                        expand(l2);
                    }
                    status.status(++visited, total);
                }
            }
        } finally {
            img.mapper.cache().clear();
        }
        img.storage.flush();
    }

    private boolean validHost(long host) {
        return HostOffsets.clusterInFile(host, cs, img.storage.length());
    }

    private void expand(long l2) throws IOException {
        HostOffsets.requireClusterInFile(l2, cs, img.storage.length(), "L1 table", l2,
                o -> "L2 table offset 0x" + Long.toHexString(o) + " invalid");
        long tableRefs = img.refcounts.get(l2 >>> bits);
        if (tableRefs == 0) {
            throw new CorruptImageException("refcount block", l2, "L2 table at 0x" + Long.toHexString(l2) + " has refcount 0");
        }
        long[] table = new long[cs / 8];
        img.storage.readLongs(l2, table, 0, table.length);
        for (int j = 0; j < table.length; j++) {
            long entry = table[j];
            if (!L2Entry.isZero(entry)) {
                continue;
            }
            long host = L2Entry.hostOffset(entry);
            long copied = tableRefs == 1 ? L2Entry.COPIED : 0;
            if (host == 0 && !backed) {
                img.storage.writeLong(l2 + 8L * j, 0);
                continue;
            }
            if (validHost(host) && img.refcounts.get(host >>> bits) == tableRefs) {
                img.storage.write(host, ByteBuffer.allocate(cs));
                img.storage.writeLong(l2 + 8L * j, host | copied);
                continue;
            }
            // no cluster of its own: a new one, counted once per reference to this table
            long fresh = img.refcounts.allocate(1, true);
            if (tableRefs > 1) {
                img.refcounts.update(fresh, cs, tableRefs - 1);
            }
            img.storage.writeLong(l2 + 8L * j, fresh | copied);
            if (validHost(host) && img.refcounts.get(host >>> bits) > tableRefs) {
                img.refcounts.update(host, cs, -tableRefs);
            }
        }
    }
}
