package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.api.SnapshotException;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.L1Entry;
import io.qcow4j.core.format.SnapshotEntry;
import io.qcow4j.core.storage.Storage;

/**
 * Creates, applies and deletes internal snapshots ({@code == Snapshots ==}), as qemu-img
 * snapshot does, and lists them and opens their views. The caller holds the image's lock;
 * the public calls make the image writable first (the first write's preparation).
 *
 * <p>A snapshot is an L1 tree: its L1 table, the L2 tables it names, the data clusters
 * those name (a compressed cluster: each host cluster its sectors touch). Every cluster's
 * refcount counts the trees that reach it, so a snapshot adds one to everything in its tree.
 *
 * <p>Order, so that a crash loses nothing: refcounts are raised (and flushed) before the
 * header names a table or tree that needs them; the snapshot table and the active L1 are
 * switched by one header write to copies written and flushed before; refcounts are
 * lowered only after that write. Everything is checked (offsets, refcount overflow)
 * before the first change. What a crash can leave: leaked clusters, and during create or
 * delete a few COPIED flags clear on clusters whose refcount is 1 (QEMU has the same
 * windows). Such a cluster is copied on its next write instead of written in place, and
 * {@code qemu-img check -r all} resets the flag; no data is at risk.
 */
public final class InternalSnapshots {
    /** What qemu-img writes: vm_state_size, disk_size, icount. */
    private static final int EXTRA_DATA_SIZE = 24;

    private final Qcow2Engine img;
    private final Storage storage;
    private final Geometry geo;
    private final RefcountManager refcounts;
    private final ClusterMapper mapper;
    private final int bits;
    private final int cs;
    private final SnapshotTree tree;

    InternalSnapshots(Qcow2Engine img) {
        this.img = img;
        this.storage = img.storage;
        this.geo = img.geo;
        this.refcounts = img.refcounts;
        this.mapper = img.mapper;
        this.bits = geo.clusterBits();
        this.cs = geo.clusterSize();
        this.tree = new SnapshotTree(img);
    }

    /** The snapshot table as read or last written. */
    public List<SnapshotEntry> entries() {
        return Collections.unmodifiableList(img.snapshotEntries);
    }

    /** A read-only view of a snapshot's disk (by id, else by name); not to be read once it is deleted. */
    public BlockDevice view(String idOrName) throws IOException {
        SnapshotEntry e = img.snapshotEntries.get(existing(idOrName));
        long[] l1 = ClusterMapper.readL1(storage, geo, e.l1TableOffset, e.l1Size, "snapshot L1 table");
        long size = e.diskSize >= 0 ? e.diskSize : img.header().size();
        return new SnapshotView(img, l1, e.l1TableOffset, size);
    }

    /** Takes a snapshot of the disk as it is now, dated now (see {@link #create(String, Instant)}). */
    public SnapshotEntry create(String name) throws IOException {
        img.ensureWritable();
        return create(name, Instant.now());
    }

    /**
     * Writes the table anew, every entry with its extra data complete (a v3 entry needs it
     * up to the disk size): {@code check -r all} of an incomplete entry, as qemu's.
     */
    public void repairTable() throws IOException {
        img.ensureWritable();
        rewriteTable();
    }

    /** Index of the snapshot with id {@code idOrName}, else of the first named so (QEMU's goto lookup); -1 if none. */
    static int find(List<SnapshotEntry> entries, String idOrName) {
        for (int i = 0; i < entries.size(); i++) {
            if (entries.get(i).id.equals(idOrName)) {
                return i;
            }
        }
        for (int i = 0; i < entries.size(); i++) {
            if (entries.get(i).name.equals(idOrName)) {
                return i;
            }
        }
        return -1;
    }

    // ------------------------------------------------------------ create

    SnapshotEntry create(String name, Instant now) throws IOException {
        if (name == null) {
            throw new IllegalArgumentException("Snapshot name must not be null");
        }
        if (name.getBytes(StandardCharsets.UTF_8).length > 0xffff) {
            throw new IllegalArgumentException("Snapshot name longer than 65535 bytes");
        }
        if (img.dataFile != null) {
            throw new SnapshotException(SnapshotException.Reason.NOT_SUPPORTED,
                    "Internal snapshots are not supported with an external data file");
        }
        List<SnapshotEntry> current = img.snapshotEntries;
        if (current.size() >= Limits.MAX_SNAPSHOTS) {
            throw new SnapshotException(SnapshotException.Reason.TOO_MANY,
                    "Too many snapshots: the image holds " + current.size() + ", the most QEMU allows");
        }
        SnapshotEntry e = new SnapshotEntry();
        e.id = newId(current);
        for (SnapshotEntry other : current) {
            if (other.id.equals(e.id)) {
                throw new SnapshotException(SnapshotException.Reason.ID_EXISTS, "Snapshot id " + e.id + " already exists");
            }
        }
        e.name = name;
        // qemu-img takes the time of day in microseconds; icount 0, no VM state, no guest clock
        e.dateSec = now.getEpochSecond() & 0xffffffffL;
        e.dateNsec = now.getNano() / 1000 * 1000L;
        e.diskSize = img.header().size();
        e.icount = 0;
        e.extraData = new byte[EXTRA_DATA_SIZE];
        List<SnapshotEntry> table = new ArrayList<>(current);
        table.add(e);
        checkTableSize(table);
        // the trees are read and written below the L2 cache: nothing may wait in it
        img.syncMetadata();

        long[] l1 = mapper.l1().clone();
        long l1Offset = mapper.l1Offset();
        tree.checkRefs(l1, l1Offset, +1);
        tree.raise(l1, l1Offset);
        long copy = writeNewL1(l1, l1, l1Offset);
        e.l1TableOffset = copy;
        e.l1Size = l1.length;
        try {
            // everything the active tree reaches is shared now: no COPIED flag may stay set
            tree.clearCopied(l1, true);
            switchTable(table);
        } finally {
            forgetCaches();
        }
        return e;
    }

    /** QEMU's rule: one more than the largest id read as a C unsigned long (strtoul). */
    static String newId(List<SnapshotEntry> entries) {
        long max = 0;
        for (SnapshotEntry e : entries) {
            long v = strtoul(e.id);
            if (Long.compareUnsigned(v, max) > 0) {
                max = v;
            }
        }
        return Long.toUnsignedString(max + 1);
    }

    /** C's strtoul(s, NULL, 10) on a 64-bit host: leading blanks, a sign, digits; overflow gives ULONG_MAX. */
    static long strtoul(String s) {
        int i = 0;
        while (i < s.length() && " \t\n\u000b\f\r".indexOf(s.charAt(i)) >= 0) {
            i++;
        }
        boolean negative = false;
        if (i < s.length() && (s.charAt(i) == '+' || s.charAt(i) == '-')) {
            negative = s.charAt(i) == '-';
            i++;
        }
        long v = 0;
        boolean overflow = false;
        for (; i < s.length() && s.charAt(i) >= '0' && s.charAt(i) <= '9'; i++) {
            int d = s.charAt(i) - '0';
            if (Long.compareUnsigned(v, Long.divideUnsigned(-1L - d, 10)) > 0) {
                overflow = true;
            } else {
                v = v * 10 + d;
            }
        }
        if (overflow) {
            return -1L;
        }
        return negative ? -v : v;
    }

    /** The index of the snapshot with that id or name, or the refusal qemu-img words. */
    private int existing(String idOrName) {
        int index = find(img.snapshotEntries, idOrName);
        if (index < 0) {
            throw new IllegalArgumentException("Can't find snapshot '" + idOrName + "'");
        }
        return index;
    }

    // ------------------------------------------------------------ apply

    public SnapshotEntry apply(String idOrName) throws IOException {
        img.ensureWritable();
        int index = existing(idOrName);
        SnapshotEntry s = img.snapshotEntries.get(index);
        if (img.dataFile != null) {
            throw new SnapshotException(SnapshotException.Reason.NOT_SUPPORTED,
                    "Internal snapshots are not supported with an external data file");
        }
        if (!img.bitmaps.isEmpty()) {
            throw new SnapshotException(SnapshotException.Reason.BITMAPS, "Device has active dirty bitmaps");
        }
        long newSize = s.diskSize >= 0 ? s.diskSize : img.header().size();
        if (newSize != img.header().size() && img.header().version() < 3) {
            throw new SnapshotException(SnapshotException.Reason.NOT_SUPPORTED, "Can't resize a v2 image which has snapshots");
        }
        long needed = geo.l1EntriesFor(newSize);
        if (newSize < 0 || needed > Limits.MAX_L1_ENTRIES) {
            throw new CorruptImageException("snapshot table", img.header().snapshotsOffset(),
                    "snapshot '" + s.name + "' has an invalid disk size " + newSize);
        }
        img.syncMetadata();
        long[] snapL1 = ClusterMapper.readL1(storage, geo, s.l1TableOffset, s.l1Size, "snapshot L1 table");
        long[] oldL1 = mapper.l1().clone();
        long oldOffset = mapper.l1Offset();
        tree.checkRefs(snapL1, s.l1TableOffset, +1);
        tree.checkRefs(oldL1, oldOffset, -1);
        int entries = (int) Math.max(Math.max(oldL1.length, snapL1.length), needed);
        long[] l1 = new long[entries];
        for (int i = 0; i < snapL1.length; i++) {
            // shared with the snapshot from now on: never COPIED
            l1[i] = snapL1[i] & ~L1Entry.COPIED;
        }
        try {
            tree.raise(snapL1, s.l1TableOffset);
            try {
                tree.clearCopied(snapL1, false);
            } catch (IOException | RuntimeException ex) {
                tree.lowerQuietly(snapL1, s.l1TableOffset);
                throw ex;
            }
            long fresh = writeNewL1(l1, snapL1, s.l1TableOffset);
            Header before = img.header();
            long l1Offset = fresh;
            img.updateHeader(h -> h.toBuilder().size(newSize).l1Size(entries).l1TableOffset(l1Offset).build());
            try {
                img.writeHeader();
                storage.flush();
            } catch (IOException | RuntimeException ex) {
                // the header on disk may name either table: both stay, nothing is freed
                img.updateHeader(h -> before);
                throw ex;
            }
            mapper.replaceL1(fresh, l1);
            // the old active tree is unreferenced now
            tree.lower(oldL1, oldOffset);
            if (oldL1.length > 0 && oldOffset != 0) {
                refcounts.free(oldOffset, 8L * oldL1.length);
            }
            storage.flush();
        } finally {
            forgetCaches();
        }
        return s;
    }

    /**
     * A new L1 table holding {@code l1} (none, offset 0, for an empty one), flushed. On a
     * failure it is freed and the references just raised for the tree {@code raised} (at
     * {@code raisedOffset}) are lowered again: the image is as before.
     */
    private long writeNewL1(long[] l1, long[] raised, long raisedOffset) throws IOException {
        long bytes = 8L * l1.length;
        long at = 0;
        try {
            if (l1.length > 0) {
                at = refcounts.allocate(clustersFor(bytes), bytes);
                writeL1(at, l1);
            }
            storage.flush();
            return at;
        } catch (IOException | RuntimeException ex) {
            if (at != 0) {
                freeQuietly(at, bytes);
            }
            tree.lowerQuietly(raised, raisedOffset);
            throw ex;
        }
    }

    // ------------------------------------------------------------ delete

    public SnapshotEntry delete(String idOrName) throws IOException {
        img.ensureWritable();
        int index = existing(idOrName);
        SnapshotEntry s = img.snapshotEntries.get(index);
        img.syncMetadata();
        long[] snapL1 = ClusterMapper.readL1(storage, geo, s.l1TableOffset, s.l1Size, "snapshot L1 table");
        tree.checkRefs(snapL1, s.l1TableOffset, -1);
        if (snapL1.length > 0 && refcounts.get(s.l1TableOffset >>> bits) < 1) {
            throw new CorruptImageException("snapshot table", img.header().snapshotsOffset(),
                    "the L1 table of snapshot '" + s.name + "' is not refcounted");
        }
        List<SnapshotEntry> table = new ArrayList<>(img.snapshotEntries);
        table.remove(index);
        try {
            switchTable(table);
            // the snapshot is gone: lower what it held, then the active tree may own clusters alone
            tree.lower(snapL1, s.l1TableOffset);
            if (snapL1.length > 0) {
                refcounts.free(s.l1TableOffset, 8L * snapL1.length);
            }
            // the lowered refcounts in place before the COPIED flags are set from them
            img.syncMetadata();
            tree.recomputeActiveCopied();
            storage.flush();
        } finally {
            forgetCaches();
        }
        return s;
    }

    // ------------------------------------------------------------ the snapshot table

    /**
     * Writes the table anew in version 3's form (every entry with its disk size), for an
     * upgrade: the header the switch writes carries whatever the caller changed in it.
     */
    void rewriteTable() throws IOException {
        List<SnapshotEntry> copy = new ArrayList<>();
        for (SnapshotEntry e : img.snapshotEntries) {
            copy.add(e);
        }
        switchTable(copy);
    }

    /** QEMU's limit: the table without the last entry's padding is at most 64 MiB. */
    private static long checkTableSize(List<SnapshotEntry> table) throws SnapshotException {
        long bytes = tableBytes(table);
        if (bytes > SnapshotEntry.MAX_TABLE_BYTES) {
            throw new SnapshotException(SnapshotException.Reason.TOO_MANY, "The snapshot table would exceed 64 MiB");
        }
        return bytes;
    }

    /**
     * Bytes of a table as we write it (extra data at least 24 bytes), each entry padded to 8
     * except the last (as QEMU allocates it); as read from disk: {@link MetadataRanges#snapshotTableSize}.
     */
    private static long tableBytes(List<SnapshotEntry> table) {
        long offset = 0;
        for (SnapshotEntry e : table) {
            offset = (offset + 7) & ~7L;
            int extra = Math.max(e.extraData.length, EXTRA_DATA_SIZE);
            offset += SnapshotEntry.FIXED_SIZE + extra + e.id.getBytes(StandardCharsets.UTF_8).length
                    + e.name.getBytes(StandardCharsets.UTF_8).length;
        }
        return offset;
    }

    /**
     * Writes {@code table} to new clusters, flushes, points the header at it in one write,
     * flushes, then frees the old table. An empty table is offset 0, count 0.
     */
    private void switchTable(List<SnapshotEntry> table) throws IOException {
        long oldOffset = img.header().snapshotsOffset();
        int oldCount = img.header().nbSnapshots();
        long oldBytes = MetadataRanges.snapshotTableSize(img.snapshotEntries);
        for (SnapshotEntry e : table) {
            if (e.diskSize < 0) {
                // an entry without the field: QEMU takes it as the current size, and writes it so
                e.diskSize = img.header().size();
            }
        }
        long bytes = checkTableSize(table);
        long offset = 0;
        if (!table.isEmpty()) {
            ByteBuffer buf = ByteBuffer.allocate((int) ((bytes + 7) & ~7L));
            for (SnapshotEntry e : table) {
                e.serialize(buf);
            }
            buf.flip();
            buf.limit((int) bytes);
            offset = refcounts.allocate(clustersFor(bytes), bytes);
            try {
                storage.write(offset, buf);
            } catch (IOException | RuntimeException ex) {
                freeQuietly(offset, bytes);
                throw ex;
            }
        }
        storage.flush();
        Header before = img.header();
        long tableOffset = offset;
        img.updateHeader(h -> h.withSnapshots(table.size(), tableOffset));
        try {
            img.writeHeader();
            storage.flush();
        } catch (IOException | RuntimeException ex) {
            // the header on disk may name either table: both stay
            img.updateHeader(h -> before);
            throw ex;
        }
        for (SnapshotEntry e : table) {
            if (e.extraData.length < EXTRA_DATA_SIZE) {
                e.extraData = Arrays.copyOf(e.extraData, EXTRA_DATA_SIZE);
            }
        }
        img.snapshotEntries.clear();
        img.snapshotEntries.addAll(table);
        if (oldCount > 0 && oldOffset != 0 && oldBytes > 0) {
            refcounts.free(oldOffset, oldBytes);
        }
    }

    // ------------------------------------------------------------ helpers

    private void freeQuietly(long offset, long bytes) {
        try {
            refcounts.free(offset, bytes);
        } catch (IOException | RuntimeException ignored) {
            // leaked at worst
        }
    }

    private void writeL1(long offset, long[] l1) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(8 * l1.length);
        for (long entry : l1) {
            buf.putLong(entry & ~L1Entry.COPIED);
        }
        buf.flip();
        storage.write(offset, buf);
    }

    private int clustersFor(long bytes) {
        return (int) ((bytes + cs - 1) >>> bits);
    }

    /** L2 tables and a decompressed cluster may have changed or been freed behind the caches. */
    private void forgetCaches() {
        mapper.cache().clear();
        img.io.forgetDecompressed();
    }
}
