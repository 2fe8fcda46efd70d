package io.qcow4j.backup;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import io.qcow4j.nbd.client.NbdClient;

/**
 * A backup set: one directory of backup files and their manifest. The entry points of the
 * library:
 *
 * <pre>{@code
 * try (ImageSource disk = ImageSource.open(Path.of("vm.qcow2"), true, null)) {
 *     BackupResult r = BackupSet.backup(Path.of("/backup/vm"), disk,
 *             BackupOptions.defaults().level(Level.AUTO).format(Format.QCOW2));
 * }
 * // a running VM: libvirt's pull-mode backup (or qemu-nbd -B NAME) serves the disk and its dirty bitmap
 * try (NbdSource vda = NbdSource.open("nbd+unix:///vda?socket=/run/backup.sock", "backup-vda")) {
 *     BackupSet.backup(Path.of("/backup/vm"), vda,
 *             BackupOptions.defaults().level(Level.INC).bitmap("backup-vda").checkpoint("cp-tuesday"));
 * }
 * BackupSet.restore(Path.of("/backup/vm"), "qcow4j.2", Path.of("vm-restored.qcow2"), false, Progress.none());
 * VerifyReport v = BackupSet.verify(Path.of("/backup/vm"), Progress.none());
 * BackupSet.prune(Path.of("/backup/vm"), 7, Progress.none());
 * }</pre>
 *
 * <p>With an NBD source the checkpoints and their bitmaps belong to whoever runs the VM: an
 * inc or diff backup needs {@link BackupOptions#bitmap} (the dirty-bitmap context holding the
 * changes since {@link #since}), and {@link BackupOptions#checkpoint} only records the name of
 * the checkpoint the VM's owner made for this backup. A backup that fails is never recorded,
 * so the owner must keep the bits since the set's latest checkpoint until the next backup
 * succeeds (libvirt: count the next incremental from {@link #since}, not from a checkpoint a
 * failed backup created).
 *
 * <p>Limitation: changes no bitmap records are not backed up. A disk shrunk and grown again
 * within one interval is one: QEMU cuts and regrows the bitmap with the disk, clean, while the
 * regrown area reads zeros, so the bitmap misses that the data there is gone. <b>After a
 * shrink, take a full backup.</b> As a safety net an inc or diff stores zeros where the parent
 * point holds data that the source reports as zeros now (the result's note says so), but only
 * a source that reports those zeros (qcow2 metadata; an NBD server's base:allocation) shows
 * them. Anything else that rewrites the disk behind its bitmaps (a reverted internal snapshot,
 * {@code rebase -u} onto other data, a writer that keeps no bitmaps): take a full backup after it.
 */
public final class BackupSet {
    private BackupSet() {
    }

    /** Backs {@code source} up into the set in {@code dir} (created if missing). */
    public static BackupResult backup(Path dir, BackupSource source, BackupOptions options) throws IOException {
        return new Backup(dir, source, options).run();
    }

    /**
     * Whether a backup with {@code options} into {@code dir} starts or merges back checkpoints
     * of the source (so an image must be opened read-write).
     */
    public static boolean changesCheckpoints(Path dir, BackupOptions options) throws IOException {
        Manifest m = Manifest.load(dir);
        if (m != null && m.pending != null && m.pending.checkpoint != null) {
            return true;
        }
        return options.bitmap == null && (options.level == Level.FULL || options.level == Level.INC
                || options.level == Level.AUTO);
    }

    /**
     * The set's manifest; for a directory virtnbdbackup wrote (stream files, no manifest), one
     * made from the files' meta data, without checksums.
     */
    public static Manifest manifest(Path dir) throws IOException {
        Manifest m = Manifest.load(dir);
        if (m == null) {
            m = ForeignSet.scan(dir);
        }
        return m;
    }

    /** The point {@code until} names (a checkpoint or a file), or the newest point when null. */
    public static BackupRecord point(Manifest m, String until) throws BackupException {
        if (m.backups.isEmpty()) {
            throw new BackupException("the set has no backups");
        }
        if (until == null) {
            return m.backups.get(m.backups.size() - 1);
        }
        BackupRecord b = m.find(until);
        if (b == null) {
            throw new BackupException("no backup of checkpoint or file '" + until + "' in the set");
        }
        return b;
    }

    /** Restores the point {@code until} (null: the newest) into a new file, qcow2 or raw. */
    public static void restore(Path dir, String until, Path target, boolean raw, Progress progress) throws IOException {
        Restore.run(dir, until, target, raw, progress);
    }

    /**
     * Restores the point {@code until} (null: the newest) into the NBD export {@code target},
     * which must be writable and at least the point's virtual size; bytes the point does not
     * hold as data (and the export's tail past the point's size) are zeroed where the export
     * does not read zeros already. A failure leaves the export partly written.
     */
    public static void restore(Path dir, String until, NbdClient target, Progress progress) throws IOException {
        Restore.toNbd(dir, until, target, progress);
    }

    /**
     * The checkpoint the next backup of {@code level} (inc or diff) into the set counts from:
     * the chain's latest full or inc for inc, its full for diff; null when that backup has no
     * checkpoint or the set has no full. For an NBD source, the bitmap given to the backup
     * must hold every change since this checkpoint.
     */
    public static String since(Path dir, Level level) throws IOException {
        if (level != Level.INC && level != Level.DIFF) {
            throw new IllegalArgumentException("only inc and diff backups count from a checkpoint: " + level.label());
        }
        Manifest m = Manifest.load(dir);
        BackupRecord full = m == null ? null : m.latestFull();
        if (full == null) {
            return null;
        }
        List<BackupRecord> chain = new java.util.ArrayList<>();
        for (BackupRecord b : m.backups) {
            if (m.chainOf(b).get(0) == full) {
                chain.add(b);
            }
        }
        return Backup.base(chain, level).checkpoint;
    }

    /** Checks every file, checksum and link of the set, without the source. */
    public static VerifyReport verify(Path dir, Progress progress) throws IOException {
        return Verify.run(dir, progress);
    }

    /** Keeps the newest {@code keep} points, folding older backups into a full at the oldest kept one. */
    public static List<String> prune(Path dir, int keep, Progress progress) throws IOException {
        return Prune.run(dir, keep, progress);
    }
}
