package io.qcow4j.backup;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * A backup set: one directory of backup files and their manifest. The entry points of the
 * library:
 *
 * <pre>{@code
 * try (ImageSource disk = ImageSource.open(Path.of("vm.qcow2"), true, null)) {
 *     BackupResult r = BackupSet.backup(Path.of("/backup/vm"), disk,
 *             BackupOptions.defaults().level(Level.AUTO).format(Format.QCOW2));
 * }
 * BackupSet.restore(Path.of("/backup/vm"), "qcow4j.2", Path.of("vm-restored.qcow2"), false, Progress.none());
 * VerifyReport v = BackupSet.verify(Path.of("/backup/vm"), Progress.none());
 * BackupSet.prune(Path.of("/backup/vm"), 7, Progress.none());
 * }</pre>
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

    /** Checks every file, checksum and link of the set, without the source. */
    public static VerifyReport verify(Path dir, Progress progress) throws IOException {
        return Verify.run(dir, progress);
    }

    /** Keeps the newest {@code keep} points, folding older backups into a full at the oldest kept one. */
    public static List<String> prune(Path dir, int keep, Progress progress) throws IOException {
        return Prune.run(dir, keep, progress);
    }
}
