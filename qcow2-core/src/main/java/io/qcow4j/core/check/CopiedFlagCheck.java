package io.qcow4j.core.check;

import java.nio.ByteBuffer;

import io.qcow4j.core.engine.MetadataRanges;
import io.qcow4j.core.engine.TreeWalk;
import io.qcow4j.core.format.L1Entry;
import io.qcow4j.core.format.L2Entry;

/**
 * The COPIED flag of every active L1 entry and of every allocated entry of the active L2
 * tables must say "refcount is exactly 1" (qemu's check_oflag_copied). It runs after the
 * refcounts were repaired, so a repair sets the flags from the refcounts as they now are:
 * always with {@link Repair#ALL}; with {@link Repair#LEAKS} only when nothing else is wrong.
 */
final class CopiedFlagCheck {
    /** qemu writes an L1 entry within an aligned 4 KiB chunk of the table. */
    private static final int L1_WRITE_ENTRIES = 512;

    private CopiedFlagCheck() {
    }

    static void run(CheckRun run, ReferenceScan scan, CheckTally res, Repair fix) throws CheckFailure {
        boolean repair = fix == Repair.ALL
                || (fix == Repair.LEAKS && res.checkErrors == 0 && res.corruptions == 0 && res.leaks == 0);
        DiskRefcounts disk = new DiskRefcounts(run);
        long[] l1 = run.p.mapper().l1();
        int entries = run.p.geometry().l2Entries();
        // one table read at a time, into the scan's arrays (a big disk has thousands)
        ByteBuffer scratch = scan.l2Bytes;
        run.progress(CheckRun.COPIED_START, CheckRun.COPIED_SPAN, 0, l1.length);
        scan.walk.walk(l1, run.p.mapper().l1Offset(), new TreeWalk.Visitor<CheckFailure>() {
            private int dirty;

            @Override
            protected boolean l1Entry(TreeWalk w, int i, long e) throws CheckFailure {
                long l2 = w.l2();
                if (l2 == 0) {
                    return false;
                }
                run.progress(CheckRun.COPIED_START, CheckRun.COPIED_SPAN, i, l1.length);
                long refcount;
                try {
                    refcount = disk.get(l2 >>> run.bits);
                } catch (DiskRefcounts.Unreadable u) {
                    return false;
                }
                if ((refcount == 1) != L1Entry.isCopied(e)) {
                    res.corruptions++;
                    run.err((repair ? "Repairing" : "ERROR") + " OFLAG_COPIED L2 cluster: l1_index=" + i + " l1_entry="
                            + CheckRun.hex(e) + " refcount=" + Long.toUnsignedString(refcount));
                    if (repair) {
                        writeL1Entry(run, res, l1, i, refcount == 1 ? e | L1Entry.COPIED : e & ~L1Entry.COPIED);
                        res.corruptions--;
                        res.corruptionsFixed++;
                    }
                }
                if (run.readsAsZeros(l2, run.cs)) {
                    return false; // reads as zeros: no entry has a COPIED flag to check, no work to charge
                }
                if (scan.ownsNothing.get(i)) {
                    run.charge(entries); // (the work budget counts as before)
                    return false; // no entry with a host cluster: no flag to check (the count saw them all)
                }
                dirty = 0;
                return true;
            }

            @Override
            protected void readTable(long l2, long[] table) throws CheckFailure {
                try {
                    run.readLongs(l2, table, scratch);
                } catch (CheckFailure f) {
                    run.err("ERROR: Could not read L2 table: " + f.strerror());
                    res.checkErrors++;
                    throw f;
                }
                run.charge(entries);
            }

            @Override
            protected boolean plainZeroEntries() {
                return false; // no host cluster, no COPIED flag to judge
            }

            @Override
            protected void l2Entry(TreeWalk w) {
                long e2 = w.entry();
                // the first test is the quick one: no host offset, no cluster (outside a data file)
                if ((e2 & L2Entry.OFFSET_MASK) == 0 && !run.dataFile || !w.kind().hasHostCluster()) {
                    return;
                }
                long rc;
                if (run.dataFile) {
                    rc = 1;
                } else {
                    try {
                        rc = disk.get(w.host() >>> run.bits);
                    } catch (DiskRefcounts.Unreadable u) {
                        return;
                    }
                }
                if ((rc == 1) != L2Entry.isCopied(e2)) {
                    res.corruptions++;
                    run.err((repair ? "Repairing" : "ERROR") + " OFLAG_COPIED data cluster: l2_entry=" + CheckRun.hex(e2)
                            + " refcount=" + Long.toUnsignedString(rc));
                    if (repair) {
                        w.table()[w.index() * run.p.geometry().l2EntryWords()] = rc == 1 ? e2 | L2Entry.COPIED : e2 & ~L2Entry.COPIED;
                        dirty++;
                    }
                }
            }

            @Override
            protected void l2Done(TreeWalk w, int i) throws CheckFailure {
                if (dirty > 0) {
                    writeL2(run, res, w.l2(), w.table());
                    res.corruptions -= dirty;
                    res.corruptionsFixed += dirty;
                }
            }
        });
    }

    private static void writeL1Entry(CheckRun run, CheckTally res, long[] l1, int i, long value) throws CheckFailure {
        int start = i & ~(L1_WRITE_ENTRIES - 1);
        int n = Math.min(L1_WRITE_ENTRIES, l1.length - start);
        long at = run.p.mapper().l1Offset();
        if (!run.preWriteOverlapCheck(MetadataRanges.ACTIVE_L1, at + 8L * start, 8L * n)) {
            res.checkErrors++;
            throw new CheckFailure(CheckFailure.EIO);
        }
        ByteBuffer b = ByteBuffer.allocate(8).putLong(value);
        b.flip();
        try {
            run.write(at + 8L * i, b);
        } catch (CheckFailure f) {
            res.checkErrors++;
            throw f;
        }
        l1[i] = value;
    }

    private static void writeL2(CheckRun run, CheckTally res, long l2, long[] table) throws CheckFailure {
        if (!run.preWriteOverlapCheck(MetadataRanges.ACTIVE_L2, l2, run.cs)) {
            run.err("ERROR: Could not write L2 table; metadata overlap check failed: " + CheckFailure.EIO);
            res.checkErrors++;
            throw new CheckFailure(CheckFailure.EIO);
        }
        ByteBuffer b = ByteBuffer.allocate(run.cs);
        b.asLongBuffer().put(table);
        try {
            run.write(l2, b);
        } catch (CheckFailure f) {
            run.err("ERROR: Could not write L2 table: " + f.strerror());
            res.checkErrors++;
            throw f;
        }
        run.p.mapper().cache().clear();
    }
}
