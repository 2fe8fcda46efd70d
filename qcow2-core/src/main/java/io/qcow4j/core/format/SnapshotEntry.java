package io.qcow4j.core.format;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import io.qcow4j.core.api.CorruptImageException;

/**
 * One snapshot table entry ({@code == Snapshots ==}):
 * <pre>
 *  0- 7 l1_table_offset   8-11 l1_size        12-13 id_str_size   14-15 name_size
 * 16-19 date_sec         20-23 date_nsec      24-31 vm_clock_nsec
 * 32-35 vm_state_size    36-39 extra_data_size
 * extra_data (0-7 vm_state_size_large, 8-15 disk_size, 16-23 icount), id_str, name, padding to 8
 * </pre>
 */
public final class SnapshotEntry {
    public static final int FIXED_SIZE = 40;
    /** QEMU keeps at most this much extra data per entry. */
    public static final int MAX_EXTRA_DATA = 1024;
    public static final int MAX_TABLE_BYTES = 64 << 20;
    public static final int MAX_SNAPSHOTS = 65536;

    public long l1TableOffset;
    public int l1Size;
    public String id;
    public String name;
    public long dateSec;
    public long dateNsec;
    public long vmClockNsec;
    public long vmStateSize;
    public long diskSize = -1;
    public long icount = -1;
    /** Extra data as found (kept verbatim past the fields we know). */
    public byte[] extraData = new byte[0];

    /** Parses the entry at {@code b.position()}, advancing past its padding. */
    public static SnapshotEntry parse(ByteBuffer b, long fileOffset) throws CorruptImageException {
        if (b.remaining() < FIXED_SIZE) {
            throw new CorruptImageException("snapshot table", fileOffset, "entry overruns the snapshot table");
        }
        int start = b.position();
        SnapshotEntry e = new SnapshotEntry();
        e.l1TableOffset = b.getLong(start);
        e.l1Size = b.getInt(start + 8);
        int idSize = b.getShort(start + 12) & 0xffff;
        int nameSize = b.getShort(start + 14) & 0xffff;
        e.dateSec = b.getInt(start + 16) & 0xffffffffL;
        e.dateNsec = b.getInt(start + 20) & 0xffffffffL;
        e.vmClockNsec = b.getLong(start + 24);
        e.vmStateSize = b.getInt(start + 32) & 0xffffffffL;
        long extraSize = b.getInt(start + 36) & 0xffffffffL;
        if (extraSize > MAX_EXTRA_DATA) {
            throw new CorruptImageException("snapshot table", fileOffset, "Too much extra metadata in snapshot table entry (" + extraSize + " bytes)");
        }
        long total = FIXED_SIZE + extraSize + idSize + nameSize;
        long padded = (total + 7) & ~7L;
        if (padded > b.remaining()) {
            throw new CorruptImageException("snapshot table", fileOffset, "entry overruns the snapshot table");
        }
        int p = start + FIXED_SIZE;
        e.extraData = new byte[(int) extraSize];
        b.get(p, e.extraData);
        ByteBuffer extra = ByteBuffer.wrap(e.extraData);
        if (extraSize >= 8) {
            e.vmStateSize = extra.getLong(0);
        }
        if (extraSize >= 16) {
            e.diskSize = extra.getLong(8);
        }
        if (extraSize >= 24) {
            e.icount = extra.getLong(16);
        }
        p += (int) extraSize;
        byte[] idBytes = new byte[idSize];
        b.get(p, idBytes);
        p += idSize;
        byte[] nameBytes = new byte[nameSize];
        b.get(p, nameBytes);
        e.id = new String(idBytes, StandardCharsets.UTF_8);
        e.name = new String(nameBytes, StandardCharsets.UTF_8);
        b.position(start + (int) padded);
        return e;
    }

    /** Size of the serialized entry, padding included. */
    public int serializedSize() {
        int extra = Math.max(extraData.length, 24);
        int total = FIXED_SIZE + extra + id.getBytes(StandardCharsets.UTF_8).length + name.getBytes(StandardCharsets.UTF_8).length;
        return (total + 7) & ~7;
    }

    public void serialize(ByteBuffer b) {
        int start = b.position();
        byte[] idBytes = id.getBytes(StandardCharsets.UTF_8);
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        byte[] extra = Arrays.copyOf(extraData, Math.max(extraData.length, 24));
        ByteBuffer x = ByteBuffer.wrap(extra);
        x.putLong(0, vmStateSize).putLong(8, diskSize).putLong(16, icount);
        b.putLong(l1TableOffset).putInt(l1Size).putShort((short) idBytes.length).putShort((short) nameBytes.length);
        b.putInt((int) dateSec).putInt((int) dateNsec).putLong(vmClockNsec);
        b.putInt(vmStateSize > 0xffffffffL ? 0 : (int) vmStateSize).putInt(extra.length);
        b.put(extra).put(idBytes).put(nameBytes);
        b.position(start + serializedSize());
    }
}
