package io.qcow4j.core.check;

import java.io.IOException;
import java.util.List;

import io.qcow4j.core.format.SnapshotEntry;

/**
 * qemu's look at the snapshot table before the refcounts are counted: a version 3 entry
 * must carry extra data at least up to the disk size (16 bytes); a shorter one is
 * "incomplete", a corruption. {@code -r all} writes the table anew after the refcount
 * pass (new clusters, the old ones freed), each entry then with all 24 bytes.
 */
final class SnapshotTableCheck {
    /** Extra data a version 3 entry must have: vm_state_size_large and disk_size. */
    static final int MIN_V3_EXTRA = 16;

    private SnapshotTableCheck() {
    }

    /** Reports each incomplete entry ("Repairing" when errors are fixed); returns how many. */
    static long report(CheckRun run, boolean fixErrors) {
        if (run.p.header().version() < 3) {
            return 0;
        }
        List<SnapshotEntry> table = run.p.snapshots();
        long incomplete = 0;
        for (int i = 0; i < table.size(); i++) {
            if (table.get(i).extraData.length < MIN_V3_EXTRA) {
                run.err((fixErrors ? "Repairing" : "ERROR") + " snapshot table entry " + i + " is incomplete");
                incomplete++;
            }
        }
        return incomplete;
    }

    /** Writes the table with complete entries; null, or why it failed (reported, a check error). */
    static String fix(CheckRun run, CheckTally res, long incomplete) {
        try {
            run.p.engine().snapshots().repairTable();
        } catch (IOException | RuntimeException e) {
            run.err("ERROR failed to update snapshot table: " + CheckFailure.EIO);
            res.checkErrors++;
            res.corruptions += incomplete;
            return CheckFailure.EIO;
        }
        res.corruptionsFixed += incomplete;
        return null;
    }
}
