package io.qcow4j.core.check;

import java.io.IOException;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.DoubleConsumer;

import io.qcow4j.core.engine.EngineParts;
import io.qcow4j.core.engine.Qcow2Engine;
import io.qcow4j.core.format.BitmapTableEntry;
import io.qcow4j.core.format.BitmapsExtension;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HostOffsets;

/**
 * {@code qemu-img check} and {@code qemu-img check -r leaks|all} on an open image: the same
 * findings, counts, messages, exit codes and repairs.
 *
 * <p>Open the image with {@code OpenOptions.checkMode(true)} (read-only to check,
 * {@code writable(true)} to repair): a dirty or corrupt image then opens and nothing is
 * repaired behind the checker's back.
 *
 * <pre>{@code
 * try (Qcow2Image img = Qcow2Image.open(path, OpenOptions.readOnly().checkMode(true))) {
 *     CheckResult r = ImageChecker.check(img.engine());
 *     r.stderrLines("qemu-img").forEach(System.err::println);
 *     r.humanLines().forEach(System.out::println);
 *     System.exit(r.exitCode());
 * }
 * }</pre>
 *
 * <p>A repair runs one pass that fixes, and when it fixed anything a second pass that only
 * checks, whose findings are reported (with the fixed counts of the first), as qemu-img
 * does. When no corruption is left it clears the dirty and corrupt bits.
 */
public final class ImageChecker {
    private static final int CHUNK = 1 << 16;
    private ImageChecker() {
    }

    /** Checks without changing anything. */
    public static CheckResult check(Qcow2Engine img) throws IOException {
        return execute(img, null, null, null);
    }

    /**
     * Checks, handing every stderr line to {@code stderr} as it is found (as qemu-img prints
     * them) instead of keeping them in the result: a wrecked image can have millions.
     */
    public static CheckResult check(Qcow2Engine img, Consumer<CheckResult.Line> stderr) throws IOException {
        return execute(img, null, java.util.Objects.requireNonNull(stderr), null);
    }

    /**
     * {@link #check(Qcow2Engine, Consumer)}, telling {@code progress} how far it is (0 to 1,
     * rising, often: a listener draws what it likes of it).
     */
    public static CheckResult check(Qcow2Engine img, Consumer<CheckResult.Line> stderr, DoubleConsumer progress)
            throws IOException {
        return execute(img, null, java.util.Objects.requireNonNull(stderr), progress);
    }

    /** Checks and repairs what {@code mode} allows; the image must be open writable. */
    public static CheckResult repair(Qcow2Engine img, Repair mode) throws IOException {
        return repair(img, mode, null);
    }

    /** {@link #repair(Qcow2Engine, Repair)}, streaming the stderr lines like {@link #check(Qcow2Engine, Consumer)}. */
    public static CheckResult repair(Qcow2Engine img, Repair mode, Consumer<CheckResult.Line> stderr) throws IOException {
        return repair(img, mode, stderr, null);
    }

    /** {@link #repair(Qcow2Engine, Repair, Consumer)} with progress as {@link #check(Qcow2Engine, Consumer, DoubleConsumer)}. */
    public static CheckResult repair(Qcow2Engine img, Repair mode, Consumer<CheckResult.Line> stderr,
                                     DoubleConsumer progress) throws IOException {
        if (mode == null) {
            throw new IllegalArgumentException("repair mode required");
        }
        if (img.isReadOnly()) {
            throw new IllegalArgumentException("Cannot repair an image opened read-only");
        }
        return execute(img, mode, stderr, progress);
    }

    private static CheckResult execute(Qcow2Engine img, Repair mode, Consumer<CheckResult.Line> stderr,
                                       DoubleConsumer progress) throws IOException {
        synchronized (img.lock()) {
            if (!img.isReadOnly()) {
                // the check reads the tables below the L2 cache: nothing may wait in it
                img.flush();
            }
            EngineParts p = img.engineParts();
            CheckRun run = new CheckRun(p, mode != null, stderr, progress);
            String openError;
            try {
                openError = BitmapScan.openError(run);
            } catch (CheckRun.TooMuchWork e) {
                openError = "Bitmap directory cannot be walked: " + CheckFailure.EFBIG;
            }
            if (openError != null) {
                String failure = "Could not open '" + img.path() + "': " + openError;
                run.report(failure);
                return new CheckResult(new CheckTally(), failure, false, run);
            }
            if (mode != null) {
                clearUnknownAutoclear(run);
            }
            CheckTally first = new CheckTally();
            // a repair may need a second pass, which checks what the first fixed
            run.beginPass(0, mode == null ? 1 : 0.5);
            String failed = pass(run, first, mode);
            if (failed != null) {
                return failed(run, first, failed, false);
            }
            CheckTally shown = first;
            boolean fixedAny = first.corruptionsFixed != 0 || first.leaksFixed != 0;
            if (fixedAny) {
                CheckTally second = new CheckTally();
                run.beginPass(0.5, 0.5);
                failed = pass(run, second, null);
                second.corruptionsFixed = first.corruptionsFixed;
                second.leaksFixed = first.leaksFixed;
                if (failed != null) {
                    return failed(run, second, failed, true);
                }
                shown = second;
            }
            if (shown.checkErrors > 0) {
                run.report("Check failed");
            }
            if (mode == Repair.ALL) {
                replaceLostBitmapClusters(run);
            }
            if (mode != null) {
                // what the repair wrote survives a power failure once it returned (a failed
                // flush is the caller's IOException)
                run.storage.flush();
            }
            return new CheckResult(shown, null, fixedAny, run);
        }
    }

    private static CheckResult failed(CheckRun run, CheckTally t, String strerror, boolean repaired) {
        String failure = "Check failed: " + strerror;
        run.report(failure);
        return new CheckResult(t, failure, repaired, run);
    }

    /** One qemu check pass; returns why it could not complete, or null. */
    private static String pass(CheckRun run, CheckTally res, Repair fix) throws IOException {
        run.resetWork();
        boolean fixErrors = fix != null && fix.errors();
        // qemu reads the snapshot table first, and writes it anew only after the refcounts
        long incomplete = SnapshotTableCheck.report(run, fixErrors);
        try {
            RefcountCheck.run(run, res, fix);
        } catch (CheckFailure e) {
            res.corruptions += incomplete;
            return e.strerror();
        } catch (CheckRun.TooMuchWork e) {
            // beyond qemu: it would grind on for hours; we count it as a check error and stop
            run.finalErr("ERROR " + e.getMessage() + "; the check cannot walk it");
            res.checkErrors++;
            res.corruptions += incomplete;
            return CheckFailure.EFBIG;
        }
        if (incomplete > 0 && fixErrors) {
            String failed = SnapshotTableCheck.fix(run, res, incomplete);
            if (failed != null) {
                return failed;
            }
        } else {
            res.corruptions += incomplete;
        }
        if (fix != null && res.checkErrors == 0 && res.corruptions == 0) {
            clearFeature(run, Header.INCOMPAT_DIRTY);
            clearFeature(run, Header.INCOMPAT_CORRUPT);
        }
        return null;
    }

    /**
     * A repair opens the image read-write, and qemu's read-write open drops the autoclear
     * bits it does not know (what they vouch for may not hold once we write), whatever the
     * check finds next.
     */
    private static void clearUnknownAutoclear(CheckRun run) throws IOException {
        Header h = run.p.header();
        if (h.version() < 3 || (h.autoclearFeatures() & ~Header.AUTOCLEAR_KNOWN) == 0) {
            return;
        }
        h = run.p.engine().updateHeader(old -> old.withAutoclearFeatures(old.autoclearFeatures() & Header.AUTOCLEAR_KNOWN));
        run.storage.writeLong(Header.AUTOCLEAR_FEATURES, h.autoclearFeatures());
        run.storage.flush();
    }

    /** Clears the dirty or corrupt bit once the refcounts are sound (and durable). */
    private static void clearFeature(CheckRun run, long bit) throws IOException {
        Header h = run.p.header();
        if ((h.incompatibleFeatures() & bit) == 0) {
            return;
        }
        run.storage.flush();
        h = run.p.engine().updateHeader(old -> old.withIncompatibleFeatures(old.incompatibleFeatures() & ~bit));
        run.storage.writeLong(Header.INCOMPATIBLE_FEATURES, h.incompatibleFeatures());
        run.storage.flush();
    }

    /**
     * The lost cluster's reference is dropped; qemu's attempt, at close, fails for a
     * cluster with refcount 0 and says so on stderr.
     */
    private static void releaseLostCluster(CheckRun run, long cluster) {
        DiskRefcounts disk = new DiskRefcounts(run);
        try {
            long rc = disk.get(cluster);
            if (rc == 0 || !disk.set(cluster, rc - 1)) {
                run.err("qcow2_free_clusters failed: " + CheckFailure.EINVAL);
            }
        } catch (DiskRefcounts.Unreadable e) {
            run.err("qcow2_free_clusters failed: " + e.getMessage());
        }
    }

    /**
     * Data clusters of a consistent bitmap that lie past the end of the file are lost.
     * qemu's read-write open stores such a bitmap again at close, reading them as zeros;
     * we mark their range all dirty instead (a bit wrongly clear would make an incremental
     * backup miss data). The check already reported them; afterwards the image checks clean.
     */
    private static void replaceLostBitmapClusters(CheckRun run) throws IOException {
        BitmapsExtension be = run.bitmapsExtension();
        if (be == null) {
            return;
        }
        List<BitmapScan.Entry> list;
        try {
            list = BitmapScan.parse(run, be);
        } catch (BitmapScan.Broken | CheckFailure e) {
            return;
        }
        boolean changed = false;
        for (BitmapScan.Entry bm : list) {
            if (bm.inUse() || BitmapScan.validateTable(run, bm.table()) != null
                    || !HostOffsets.fits(bm.tableOffset(), 8 * bm.tableSize(), run.fileLength())) {
                continue;
            }
            try {
                run.charge(bm.tableSize());
                for (long base = 0; base < bm.tableSize(); base += CHUNK) {
                    int n = (int) Math.min(CHUNK, bm.tableSize() - base);
                    long[] table = run.readLongs(bm.tableOffset() + 8 * base, n);
                    for (int i = 0; i < n; i++) {
                        long off = BitmapTableEntry.offset(table[i]);
                        if (off != 0 && off >= run.fileLength()) {
                            run.storage.writeLong(bm.tableOffset() + 8 * (base + i), BitmapTableEntry.ALL_ONES);
                            changed = true;
                            releaseLostCluster(run, off >>> run.bits);
                        }
                    }
                }
            } catch (CheckFailure | CheckRun.TooMuchWork e) {
                break;
            }
        }
        if (changed) {
            run.storage.flush();
        }
    }
}
