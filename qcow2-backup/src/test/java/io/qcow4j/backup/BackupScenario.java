package io.qcow4j.backup;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.bitmap.BitmapBits;
import io.qcow4j.core.bitmap.PersistentBitmap;
import io.qcow4j.testing.CheckVerdict;
import io.qcow4j.testing.DiskScenario;
import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.Scenario;

/**
 * An incremental backup of {@value #SOURCE} into the set in {@value #SET} (which holds its
 * full), for the power-loss, kill and fault harnesses. Whatever the crash point:
 * <ul>
 * <li>the source checks clean (leaks allowed), reads as before, and no dirty bit is lost:
 * every granule changed since the full is set in a checkpoint bitmap, unless one is in_use
 * (then the next backup must refuse it, and auto falls back to full);</li>
 * <li>the set (when the harness kept it, see below) is complete or shows its incomplete
 * backup as such: the incremental is listed only once it verifies good and restores to the
 * disk, and is listed once the backup returned; the full still verifies and restores;</li>
 * <li>the next backup (auto) succeeds and restores to the disk as it is; when the crashed one
 * was not listed it is an incremental since the full (its checkpoint was merged back: only
 * the full's and the new checkpoint remain on the source, issue 9's rule).</li>
 * </ul>
 * Power-loss replay rebuilds only the files written through the engine's storage and
 * copies the others of the run's top directory: the set (a subdirectory, its manifest and
 * renames plain file operations) is not rebuilt, so there only the source is judged.
 */
final class BackupScenario extends Scenario {
    static final String SOURCE = "source.qcow2";
    static final String SET = "set";
    static final long SIZE = 8L << 20;
    private final Format format;
    private final byte[] atFull;
    private final byte[] now;
    private final long[][] changes;

    BackupScenario(long seed, Format format) {
        super(seed);
        this.format = format;
        Random r = new Random(seed);
        atFull = new byte[(int) SIZE];
        for (int i = 0; i < 6; i++) {
            int len = (1 + r.nextInt(64)) * 4096;
            int at = r.nextInt((int) SIZE - len) / 4096 * 4096;
            Arrays.fill(atFull, at, at + len, (byte) (1 + r.nextInt(255)));
        }
        now = atFull.clone();
        changes = new long[5][];
        for (int i = 0; i < changes.length; i++) {
            int len = (1 + r.nextInt(48)) * 512;
            int at = r.nextInt((int) SIZE - len) / 512 * 512;
            int value = 1 + r.nextInt(255);
            Arrays.fill(now, at, at + len, (byte) value);
            changes[i] = new long[] {at, len, value};
        }
    }

    @Override
    public String name() {
        return "backup-" + format.name().toLowerCase(java.util.Locale.ROOT);
    }

    @Override
    public void prepare(Path dir) throws IOException {
        Path img = dir.resolve(SOURCE);
        Path raw = dir.resolve("prepare.raw");
        Files.write(raw, atFull);
        Qemu.run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096", raw.toString(), img.toString())
                .assertOk();
        Files.delete(raw);
        Sets.backup(img, dir.resolve(SET), Level.FULL, format, false);
        String[] cmds = new String[changes.length];
        for (int i = 0; i < changes.length; i++) {
            cmds[i] = "write -P " + changes[i][2] + " " + changes[i][0] + " " + changes[i][1];
        }
        Sets.io(img, cmds); // QEMU's writes dirty the full's checkpoint
    }

    @Override
    public void run(Path dir, Steps steps) throws Exception {
        steps.begin(0);
        Sets.backup(dir.resolve(SOURCE), dir.resolve(SET), Level.AUTO, null, false);
        steps.ack(0);
    }

    @Override
    public int operations() {
        return 1;
    }

    @Override
    public boolean isBarrier(int op) {
        return true; // the backup's files are flushed and renamed, the source closed, once it returned
    }

    @Override
    public void verify(Path dir, int durable, int inflight) throws Exception {
        Path img = dir.resolve(SOURCE);
        CheckVerdict v = CheckVerdict.of(img, 4096, false);
        if (!v.clean()) {
            throw new AssertionError("source: qemu-img check finds corruption: " + v.corruptions() + "\n" + v.output());
        }
        if (!Arrays.equals(now, DiskScenario.readDisk(img))) {
            throw new AssertionError("the source does not read as before the backup");
        }
        verifyCheckpoints(img);
        Path set = dir.resolve(SET);
        if (Files.isDirectory(set)) {
            verifySet(dir, set, durable);
        }
    }

    /** No dirty bit lost: every changed granule is set in a checkpoint bitmap, or one is in_use. */
    private void verifyCheckpoints(Path img) throws IOException {
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            List<PersistentBitmap> all = image.bitmaps().list();
            if (all.isEmpty()) {
                throw new AssertionError("the source has no checkpoint left");
            }
            if (all.stream().anyMatch(PersistentBitmap::isInconsistent)) {
                return;
            }
            for (int c = 0; c < changes.length; c++) {
                for (long off = changes[c][0]; off < changes[c][0] + changes[c][1]; off += 512) {
                    boolean covered = false;
                    for (PersistentBitmap b : all) {
                        BitmapBits bits = image.bitmaps().bits(b);
                        covered |= bits.get(off / b.granularity());
                    }
                    if (!covered) {
                        throw new AssertionError("no checkpoint bitmap covers the change at 0x" + Long.toHexString(off)
                                + " (bitmaps " + all.stream().map(PersistentBitmap::name).toList() + ")");
                    }
                }
            }
        }
    }

    private void verifySet(Path dir, Path set, int durable) throws IOException {
        Manifest m = Manifest.load(set);
        if (m == null || m.backups.isEmpty()) {
            throw new AssertionError("the set lost its full backup");
        }
        String full = m.backups.get(0).checkpoint;
        boolean listed = m.backups.size() == 2;
        if (durable > 0 && !listed) {
            throw new AssertionError("the backup returned but the set does not list it");
        }
        VerifyReport report = BackupSet.verify(set, Progress.none());
        if (listed && !report.good()) {
            throw new AssertionError("the set lists the incremental but verify finds " + report);
        }
        if (!report.files().get(0).ok() && report.files().get(0).file().equals(m.backups.get(0).file)) {
            throw new AssertionError("the full no longer verifies: " + report);
        }
        Path raw = dir.resolve("expected.raw");
        Files.write(raw, listed ? now : atFull);
        Sets.assertRestores(set, listed ? m.backups.get(1).checkpoint : full, raw, dir.resolve("restored.qcow2"), false);
        // the next backup captures every change since the last one that completed
        BackupResult next = Sets.backup(dir.resolve(SOURCE), set, Level.AUTO, null, false);
        Files.write(raw, now);
        Sets.assertRestores(set, next.checkpoint(), raw, dir.resolve("restored.qcow2"), false);
        if (!listed && next.level() == Level.INC) {
            if (!full.equals(next.since())) {
                throw new AssertionError("the next incremental is since " + next.since() + ", not the full's " + full);
            }
            List<String> names;
            try (ImageSource s = ImageSource.open(dir.resolve(SOURCE), false, w -> { })) {
                names = s.checkpoints().names();
            }
            if (!names.equals(List.of(full, next.checkpoint()))) {
                throw new AssertionError("the crashed backup's checkpoint was not merged back: " + names);
            }
        }
        Files.delete(raw);
    }
}
