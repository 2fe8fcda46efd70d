package io.qcow4j.core;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.SnapshotException;
import io.qcow4j.core.engine.Qcow2Engine;
import io.qcow4j.core.format.SnapshotEntry;

/**
 * An image's internal snapshots, as {@code qemu-img snapshot} handles them: each call holds
 * the image's lock, as the image's own methods do. Snapshots are found by id, else by name
 * (QEMU's order); one that is not there is an {@link IllegalArgumentException}.
 */
public final class Snapshots {
    private final Qcow2Image image;
    private final Qcow2Engine engine;

    Snapshots(Qcow2Image image, Qcow2Engine engine) {
        this.image = image;
        this.engine = engine;
    }

    /** The snapshot table, in its order ({@code qemu-img snapshot -l}). */
    public List<Snapshot> list() {
        synchronized (image) {
            List<Snapshot> out = new ArrayList<>();
            for (SnapshotEntry e : engine.snapshots().entries()) {
                out.add(toSnapshot(e));
            }
            return Collections.unmodifiableList(out);
        }
    }

    /** Read-only view of a snapshot's disk. It must not be read after the snapshot is deleted. */
    public BlockDevice view(String idOrName) throws IOException {
        synchronized (image) {
            return engine.snapshots().view(idOrName);
        }
    }

    /**
     * Takes a snapshot of the disk as it is now, as {@code qemu-img snapshot -c}: the next
     * free numeric id, the time of day, icount 0, no VM state. Names may repeat, as qemu-img
     * allows. Refused ({@link SnapshotException}) with an external data file, past 65536
     * snapshots, or when a refcount would overflow (refcount_bits=1 holds no shared
     * cluster), before anything changes.
     */
    public Snapshot create(String name) throws IOException {
        synchronized (image) {
            return toSnapshot(engine.snapshots().create(name));
        }
    }

    /**
     * Reverts the disk to a snapshot, its size included, as {@code qemu-img snapshot -a};
     * the snapshot stays. Refused while dirty bitmaps exist.
     */
    public Snapshot apply(String idOrName) throws IOException {
        synchronized (image) {
            return toSnapshot(engine.snapshots().apply(idOrName));
        }
    }

    /** Deletes a snapshot and frees what only it held ({@code qemu-img snapshot -d}). */
    public Snapshot delete(String idOrName) throws IOException {
        synchronized (image) {
            return toSnapshot(engine.snapshots().delete(idOrName));
        }
    }

    private static Snapshot toSnapshot(SnapshotEntry e) {
        return new Snapshot(e.id, e.name, e.vmStateSize, e.dateSec, e.dateNsec, e.vmClockNsec, e.diskSize, e.icount);
    }
}
