package io.qcow4j.core.check;

/**
 * One pass of qemu-img check over the refcounts (qemu's qcow2_check_refcounts): count the
 * references, compare them with the stored refcounts, repair what the mode allows, then
 * check the COPIED flags.
 *
 * <p>Repairs: a refcount that is merely too high (a leak) or too low is set in place, all
 * raises before any lowering, so a crash in between leaves at worst leaks. A refcount of 0
 * on a cluster in use, or a broken refcount block, means the structure itself cannot be
 * trusted: with {@link Repair#ALL} it is rebuilt elsewhere and switched to in one header
 * write ({@link StructureRebuild}); the old one is then freed as leaks.
 */
final class RefcountCheck {
    private RefcountCheck() {
    }

    static void run(CheckRun run, CheckTally res, Repair fix) throws CheckFailure {
        long nb = run.fileClusters();
        if (nb > Integer.MAX_VALUE) {
            res.checkErrors++;
            throw new CheckFailure(CheckFailure.EFBIG);
        }
        // qemu keeps the disk size in whole sectors
        long size = run.virtualSize();
        res.totalClusters = (size + run.cs - 1) >>> run.bits;
        boolean fixErrors = fix != null && fix.errors();
        ReferenceScan scan = new ReferenceScan(run, nb);
        scan.calculate(res, fixErrors);
        CheckTally beforeCompare = res.copy();
        long[] highest = new long[1];
        compare(run, scan, res, null, highest);

        if (scan.rebuild && fixErrors) {
            CheckTally old = res.copy();
            run.err("Rebuilding refcount structure");
            StructureRebuild.rebuild(run, scan, res);
            res.corruptions = 0;
            res.leaks = 0;
            // the table moved: count again, the old structure now being unreferenced
            scan.rebuild = false;
            scan.counts.clear();
            scan.calculate(res, false);
            CheckTally saved = res.copy();
            res.setFrom(new CheckTally());
            compare(run, scan, res, Repair.LEAKS, highest);
            if (scan.rebuild) {
                run.err("ERROR rebuilt refcount structure is still broken");
            }
            long freshLeaks = res.leaks;
            res.setFrom(saved);
            if (res.corruptions < old.corruptions) {
                res.corruptionsFixed += old.corruptions - res.corruptions;
            }
            if (res.leaks < old.leaks) {
                res.leaksFixed += old.leaks - res.leaks;
            }
            res.leaks += freshLeaks;
        } else if (fix != null) {
            if (scan.rebuild) {
                run.err("ERROR need to rebuild refcount structures");
                res.checkErrors++;
                throw new CheckFailure(CheckFailure.EIO);
            }
            if (res.leaks != 0 || res.corruptions != 0) {
                res.setFrom(beforeCompare);
                compare(run, scan, res, fix, highest);
            }
        }
        if (fix != null) {
            // the refcounts COPIED is set from must be durable first
            run.flush();
        }
        CopiedFlagCheck.run(run, scan, res, fix);
        res.imageEndOffset = (highest[0] + 1) << run.bits;
    }

    /**
     * Stored against counted refcount for every cluster of the in-memory array (qemu's
     * compare_refcounts); with {@code fix}, mismatches the mode allows are set in place.
     */
    static void compare(CheckRun run, ReferenceScan scan, CheckTally res, Repair fix, long[] highest) {
        DiskRefcounts disk = new DiskRefcounts(run);
        Fixes fixes = new Fixes();
        highest[0] = 0;
        for (long i = 0; i < scan.nb; i++) {
            if ((i & 0xffff) == 0) {
                run.progress(CheckRun.COMPARE_START, CheckRun.COMPARE_SPAN, i, scan.nb);
            }
            long stored;
            try {
                stored = disk.get(i);
            } catch (DiskRefcounts.Unreadable e) {
                run.err("Can't get refcount for cluster " + i + ": " + e.getMessage());
                res.checkErrors++;
                continue;
            }
            long counted = scan.counts.get(i);
            if (stored != 0 || counted != 0) {
                highest[0] = i;
            }
            if (stored == counted) {
                continue;
            }
            boolean repair = false;
            if (stored == 0) {
                scan.rebuild = true;
            }
            boolean tooLow = Long.compareUnsigned(stored, counted) < 0;
            if (stored != 0 && fix != null && (tooLow ? fix.errors() : fix.leaks())) {
                repair = true;
            }
            run.err((repair ? "Repairing" : tooLow ? "ERROR" : "Leaked") + " cluster " + i
                    + " refcount=" + Long.toUnsignedString(stored) + " reference=" + Long.toUnsignedString(counted));
            if (repair) {
                fixes.add(i, stored, counted);
            } else if (tooLow) {
                res.corruptions++;
            } else {
                res.leaks++;
            }
        }
        fixes.apply(disk, res);
    }

    /** Pending in-place fixes: applied raises first, so no crash can free a cluster in use. */
    private static final class Fixes {
        private long[] cluster = new long[16];
        private long[] from = new long[16];
        private long[] to = new long[16];
        private int n;

        void add(long c, long stored, long counted) {
            if (n == cluster.length) {
                cluster = java.util.Arrays.copyOf(cluster, n * 2);
                from = java.util.Arrays.copyOf(from, n * 2);
                to = java.util.Arrays.copyOf(to, n * 2);
            }
            cluster[n] = c;
            from[n] = stored;
            to[n] = counted;
            n++;
        }

        void apply(DiskRefcounts disk, CheckTally res) {
            boolean raisesDurable = true;
            for (int pass = 0; pass < 2; pass++) {
                boolean raising = pass == 0;
                for (int k = 0; k < n; k++) {
                    boolean raise = Long.compareUnsigned(to[k], from[k]) > 0;
                    if (raise != raising) {
                        continue;
                    }
                    // a lowering must not reach the disk before the raises (a power failure
                    // between would free what is in use): after a failed flush, leaks stay
                    if ((raise || raisesDurable) && disk.set(cluster[k], to[k])) {
                        if (raise) {
                            res.corruptionsFixed++;
                        } else {
                            res.leaksFixed++;
                        }
                    } else if (raise) {
                        res.corruptions++;
                    } else {
                        res.leaks++;
                    }
                }
                if (raising && n > 0) {
                    raisesDurable = disk.flushQuietly();
                }
            }
        }
    }
}
