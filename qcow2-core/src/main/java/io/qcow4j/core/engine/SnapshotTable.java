package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.format.SnapshotEntry;
import io.qcow4j.core.storage.Storage;

/** Reads the snapshot table, bounded by the file and QEMU's limits before anything is allocated. */
public final class SnapshotTable {
    private SnapshotTable() {
    }

    public static List<SnapshotEntry> read(Storage storage, int clusterSize, long offset, int count) throws IOException {
        return read(storage, clusterSize, offset, count, false);
    }

    /**
     * @param checkMode keep entries whose L1 size is out of range (the checker reports them,
     *                  as qemu-img check does; every reader of a snapshot L1 validates it)
     */
    public static List<SnapshotEntry> read(Storage storage, int clusterSize, long offset, int count, boolean checkMode)
            throws IOException {
        List<SnapshotEntry> out = new ArrayList<>();
        if (count == 0) {
            return out;
        }
        if (count < 0 || count > SnapshotEntry.MAX_SNAPSHOTS) {
            throw new CorruptImageException("header", 60, "nb_snapshots " + Integer.toUnsignedString(count) + " out of range");
        }
        HostOffsets.requireClusterStartsInFile(offset, clusterSize, storage.length(), "snapshot table", offset,
                o -> "Snapshot table offset invalid");
        long avail = Math.min(storage.length() - offset, SnapshotEntry.MAX_TABLE_BYTES);
        if ((long) count * SnapshotEntry.FIXED_SIZE > avail) {
            throw new CorruptImageException("snapshot table", offset, count + " snapshots do not fit in the file");
        }
        // entries are variable-sized: read what the file holds, at most QEMU's 64 MiB cap;
        // the last entry's padding may lie past the end of the file (qemu-img leaves it so)
        ByteBuffer buf = ByteBuffer.allocate((int) avail + 8);
        storage.read(offset, buf);
        buf.flip();
        for (int i = 0; i < count; i++) {
            long at = offset + buf.position();
            SnapshotEntry e = SnapshotEntry.parse(buf, at);
            if (!checkMode && (e.l1Size < 0 || e.l1Size > Limits.MAX_L1_ENTRIES)) {
                throw new CorruptImageException("snapshot table", at, "snapshot L1 size " + Integer.toUnsignedString(e.l1Size) + " too big");
            }
            out.add(e);
        }
        return out;
    }
}
