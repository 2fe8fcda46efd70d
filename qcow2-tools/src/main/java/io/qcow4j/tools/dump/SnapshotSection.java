package io.qcow4j.tools.dump;

import static io.qcow4j.tools.dump.DumpValues.omitted;
import static io.qcow4j.tools.dump.DumpValues.u64;
import static io.qcow4j.tools.dump.Qcow2Dump.MAX_LISTED;
import static io.qcow4j.tools.dump.Qcow2Dump.MAX_SNAPSHOT_EXTRA;
import static io.qcow4j.tools.dump.Qcow2Dump.MAX_SNAPSHOT_TABLE_BYTES;

import io.qcow4j.core.format.SnapshotEntry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The {@code snapshots} section: the internal snapshot table. */
final class SnapshotSection {
    private final Qcow2Dump d;

    SnapshotSection(Qcow2Dump d) {
        this.d = d;
    }

    Map<String, Object> snapshots() throws DumpException, IOException {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("nb_snapshots", d.nbSnapshots);
        m.put("snapshots_offset", u64(d.snapshotsOffset));
        if (d.nbSnapshots > SnapshotEntry.MAX_SNAPSHOTS) {
            throw new DumpException("snapshot table: nb_snapshots " + d.nbSnapshots + " exceeds QEMU's maximum of "
                    + SnapshotEntry.MAX_SNAPSHOTS);
        }
        List<Object> table = new ArrayList<>();
        long pos = d.snapshotsOffset;
        for (long i = 0; i < d.nbSnapshots; i++) {
            if (pos - d.snapshotsOffset > MAX_SNAPSHOT_TABLE_BYTES) {
                throw new DumpException("snapshot table at 0x" + Long.toHexString(d.snapshotsOffset)
                        + " exceeds QEMU's maximum of " + MAX_SNAPSHOT_TABLE_BYTES + " bytes");
            }
            String what = "snapshot table entry " + i;
            ByteBuffer f = d.file.read(what, pos, SnapshotEntry.FIXED_SIZE);
            int idSize = f.getShort(12) & 0xffff;
            int nameSize = f.getShort(14) & 0xffff;
            long extraSize = f.getInt(36) & 0xffffffffL;
            if (extraSize > MAX_SNAPSHOT_EXTRA) {
                throw new DumpException(what + " at 0x" + Long.toHexString(pos) + ": extra_data_size " + extraSize
                        + " is implausible (QEMU accepts " + SnapshotEntry.MAX_EXTRA_DATA + ")");
            }
            int rest = (int) extraSize + idSize + nameSize;
            ByteBuffer v = d.file.read(what, pos + SnapshotEntry.FIXED_SIZE, rest);
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("offset", pos);
            byte[] id = new byte[idSize];
            v.get((int) extraSize, id);
            byte[] name = new byte[nameSize];
            v.get((int) extraSize + idSize, name);
            e.put("id", new String(id, StandardCharsets.UTF_8));
            e.put("name", new String(name, StandardCharsets.UTF_8));
            e.put("l1_table_offset", u64(f.getLong(0)));
            e.put("l1_size", f.getInt(8) & 0xffffffffL);
            long sec = f.getInt(16) & 0xffffffffL;
            long nsec = f.getInt(20) & 0xffffffffL;
            e.put("date_sec", sec);
            e.put("date_nsec", nsec);
            e.put("date", Instant.ofEpochSecond(sec, Math.min(nsec, 999_999_999L)).toString());
            e.put("vm_clock_nsec", u64(f.getLong(24)));
            long vmState = f.getInt(32) & 0xffffffffL;
            if (extraSize >= 8) {
                vmState = v.getLong(0);
            }
            e.put("vm_state_size", u64(vmState));
            if (extraSize >= 16) {
                e.put("disk_size", u64(v.getLong(8)));
            }
            if (extraSize >= 24) {
                e.put("icount", v.getLong(16));
            }
            e.put("extra_data_size", extraSize);
            if (table.size() < MAX_LISTED) {
                table.add(e);
            }
            pos += (SnapshotEntry.FIXED_SIZE + rest + 7) & ~7L;
        }
        m.put("table", table);
        omitted(m, "table", d.nbSnapshots - table.size());
        return m;
    }
}
