package io.qcow4j.backup;

import java.io.IOException;
import java.nio.file.Path;
import java.time.OffsetDateTime;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;

/**
 * One backup into a set. The order keeps every dirty bit, whatever stops the process:
 * <ol>
 * <li>an unfinished earlier backup is undone first: its checkpoint merged back, its partial
 *     file deleted (the manifest's {@code pending} says which);</li>
 * <li>the checkpoint to count from is validated; {@code auto} falls back to full if it cannot
 *     be trusted;</li>
 * <li>{@code pending} (the new checkpoint, the ones it freezes, the partial file) is saved,
 *     then the new checkpoint started, durably;</li>
 * <li>the file is written as NAME.partial, flushed, renamed; then the manifest records the
 *     backup and drops {@code pending}: the backup counts from that write on.</li>
 * </ol>
 * A failure or cancel before that last write merges the new checkpoint back at once; a killed
 * process leaves {@code pending} for the next run to do the same. Meanwhile "changed since the
 * last completed backup" still includes the new checkpoint's bits, so nothing is missed.
 *
 * <p>With someone else's bitmap (an NBD export's dirty-bitmap context, or {@code --bitmap} on
 * an image) no checkpoint is started or merged back: the source is only read, the checkpoint
 * name given is recorded, and the bitmap's owner must keep every change since
 * {@link BackupSet#since} until a backup completes (a failed one is never recorded). The
 * bitmap is checked first ({@link BackupSource#bitmapProblem}): not there, in_use or left at
 * another size, the backup is refused, or with auto taken as a full backup instead.
 *
 * <p>An inc or diff also stores the zeros of ranges the bitmap missed (see
 * {@link UnrecordedZeros}: a disk shrunk and grown again within the interval). Other changes
 * no bitmap records (a reverted internal snapshot, {@code rebase -u} onto other data) are not
 * seen: after one, the caller takes a full backup.
 */
final class Backup {
    private final SetStore dir;
    private final BackupSource src;
    private final BackupOptions o;
    private final Checkpointing cps;
    private Manifest m;
    private Level level;
    private String since;
    private BackupRecord parent;
    private String checkpoint;
    private boolean startCheckpoint;
    private String note;
    private List<BackupSource.Range> changes;

    Backup(SetStore dir, BackupSource src, BackupOptions o) {
        this.dir = dir;
        this.src = src;
        this.o = o;
        this.cps = o.bitmap == null ? src.checkpoints() : null;
    }

    BackupResult run() throws IOException {
        try (java.io.Closeable lock = dir.lock()) {
            m = Manifest.load(dir);
            if (m == null) {
                m = new Manifest();
                m.disk = src.diskName();
            }
            Recovery.finish(m, dir, src.checkpoints());
            decide();
            return write();
        }
    }

    private void decide() throws IOException {
        BackupRecord full = m.latestFull();
        level = o.level == Level.AUTO ? (full == null ? Level.FULL : Level.INC) : o.level;
        if (o.checkpoint != null && (level == Level.DIFF || level == Level.COPY)) {
            throw new BackupException("a " + (level == Level.DIFF ? "differential" : "copy")
                    + " backup takes no checkpoint (--checkpoint is for full and inc backups)");
        }
        if (level == Level.INC || level == Level.DIFF) {
            if (full == null) {
                throw new BackupException("no full backup in '" + dir.name() + "' to build " + named(level) + " backup on");
            }
            List<BackupRecord> chain = chainFrom(full);
            String problem;
            if (o.bitmap != null) {
                // someone else's bitmap: it holds the changes since the base's checkpoint, as its owner promised
                problem = src.bitmapProblem(o.bitmap);
                if (problem == null) {
                    parent = base(chain, level);
                    since = parent.checkpoint;
                    changes = src.changedInBitmap(o.bitmap); // read before anything is written
                }
            } else {
                problem = changesProblem(full, chain);
            }
            if (problem != null) {
                if (o.level != Level.AUTO) {
                    throw new BackupException("cannot take " + named(level) + " backup: " + problem);
                }
                note = problem + "; falling back to a full backup";
                level = Level.FULL;
                parent = null;
                since = null;
            }
        }
        Format format = o.format;
        if (parent != null) {
            Format pf = Format.parse(parent.format);
            if (format != null && format != pf) {
                throw new BackupException("cannot add a " + format.label() + " backup to a chain of "
                        + pf.label() + " backups ('" + parent.file + "')");
            }
        }
        if (format == null) {
            format = parent != null ? Format.parse(parent.format) : defaultFormat();
        }
        if (o.compress && format == Format.QCOW2) {
            throw new BackupException("only stream backups are compressed (--format stream)");
        }
        if (format == Format.QCOW2 && dir.directory() == null) {
            throw new BackupException(Format.qcow2Refused(dir));
        }
        if (level == Level.FULL || level == Level.INC) {
            chooseCheckpoint();
        }
    }

    /** A new chain's format: qcow2 in a local directory, stream in a store without random access. */
    private Format defaultFormat() {
        return dir.directory() != null ? Format.QCOW2 : Format.STREAM;
    }

    private static String named(Level l) {
        return l == Level.INC ? "an incremental" : "a differential";
    }

    /**
     * The backup an inc or diff with someone else's bitmap builds on: the full for diff, else
     * the chain's latest full or inc (the bitmap counts from its checkpoint).
     */
    static BackupRecord base(List<BackupRecord> chain, Level level) {
        BackupRecord base = chain.get(0);
        if (level == Level.INC) {
            for (BackupRecord b : chain) {
                if (!b.level.equals(Level.DIFF.label())) {
                    base = b;
                }
            }
        }
        return base;
    }

    /** Why the changes since the chain's checkpoint cannot be read, or null (and since, parent set). */
    private String changesProblem(BackupRecord full, List<BackupRecord> chain) throws IOException {
        BackupRecord base = full;
        if (level == Level.INC) {
            for (BackupRecord b : chain) {
                if (b.checkpoint != null) {
                    base = b;
                }
            }
        }
        if (cps == null) {
            String from = base.checkpoint != null ? "checkpoint '" + base.checkpoint + "'" : "backup '" + base.file + "'";
            return src instanceof NbdSource
                    ? "an NBD export keeps no checkpoints of its own: name the dirty bitmap that holds the changes since "
                    + from + " with --bitmap (qemu-nbd -B NAME; libvirt's pull-mode backup exports backup-DISK)"
                    : "the source keeps no checkpoints of its own (a raw image): name a dirty bitmap with --bitmap";
        }
        if (base.checkpoint == null) {
            return "the chain's " + base.level + " backup '" + base.file + "' has no checkpoint to count changes from";
        }
        List<String> later = new ArrayList<>();
        for (BackupRecord b : chain.subList(chain.indexOf(base) + 1, chain.size())) {
            if (b.checkpoint != null) {
                later.add(b.checkpoint);
            }
        }
        String problem = cps.problem(base.checkpoint, later);
        if (problem == null) {
            since = base.checkpoint;
            parent = base;
        }
        return problem;
    }

    /** The chain that starts at {@code full}: it and every later backup building on it, oldest first. */
    private List<BackupRecord> chainFrom(BackupRecord full) throws BackupException {
        List<BackupRecord> out = new ArrayList<>();
        for (BackupRecord b : m.backups) {
            if (m.chainOf(b).get(0) == full) {
                out.add(b);
            }
        }
        return out;
    }

    private void chooseCheckpoint() throws IOException {
        List<String> taken = new ArrayList<>(cps == null ? List.of() : cps.names());
        for (BackupRecord b : m.backups) {
            if (b.checkpoint != null) {
                taken.add(b.checkpoint);
            }
        }
        if (o.checkpoint != null) {
            if (o.checkpoint.isEmpty()) {
                throw new BackupException("the checkpoint name is empty");
            }
            if (taken.contains(o.checkpoint)) {
                throw new BackupException("checkpoint '" + o.checkpoint + "' exists already ("
                        + (cps == null ? "a point of the set" : "in the image or the set") + ")");
            }
            checkpoint = o.checkpoint;
        }
        if (cps == null) {
            return; // the bitmap's owner made the checkpoint (or none): its name is only recorded
        }
        if (o.checkpoint == null) {
            int n = 0;
            while (taken.contains("qcow4j." + n)) {
                n++;
            }
            checkpoint = "qcow4j." + n;
        }
        startCheckpoint = true;
    }

    private BackupResult write() throws IOException {
        Format format = o.format != null ? o.format : parent != null ? Format.parse(parent.format) : defaultFormat();
        int seq = m.nextSeq();
        String file = String.format("%s.%03d.%s%s", m.disk, seq, level.label(), format.extension());
        String partialName = file + Files2.PARTIAL;
        Path target = dir.directory() != null ? dir.directory().resolve(file) : Path.of(file);
        if (dir.exists(file)) {
            throw new BackupException("'" + dir.name() + "/" + file + "' exists but the manifest does not list it: move it away");
        }
        String time = OffsetDateTime.now().truncatedTo(ChronoUnit.SECONDS).toString();

        Manifest.Pending pending = new Manifest.Pending();
        pending.file = partialName;
        if (startCheckpoint) {
            pending.checkpoint = checkpoint;
            pending.frozen = cps.recording();
        }
        m.pending = pending;
        m.save(dir);

        BackupRecord rec = null;
        boolean started = false;
        try {
            if (startCheckpoint) {
                // a start that failed part-way (its store or flush) may have taken effect in the
                // open image, whose close then stores it: merge back either way (a no-op when the
                // checkpoint is not there)
                started = true;
                cps.start(checkpoint);
            }
            long size = src.size();
            List<BackupSource.Range> ranges;
            if (level == Level.FULL || level == Level.COPY) {
                ranges = size == 0 ? List.of() : List.of(new BackupSource.Range(0, size));
            } else {
                ranges = o.bitmap != null ? changes : src.changedSince(since);
                List<BackupSource.Range> zeroed = UnrecordedZeros.find(dir, m, parent, src, ranges);
                if (!zeroed.isEmpty()) {
                    ranges = UnrecordedZeros.union(ranges, zeroed);
                    long n = zeroed.stream().mapToLong(BackupSource.Range::length).sum();
                    note = n + " bytes that " + (o.bitmap != null ? "bitmap '" + o.bitmap + "'" : "checkpoint '" + since + "'")
                            + " does not show as changed read as zeros now, though '" + parent.file
                            + "' holds data there (the disk was shrunk and grown again?): stored as zeros";
                }
            }
            boolean incremental = level == Level.INC || level == Level.DIFF;
            rec = BackupFile.write(dir, file, format, o.compress, src, size, ranges, incremental,
                    parent == null ? null : parent.file,
                    StreamWriter.meta(size, m.disk, src.diskFormat(), checkpoint, since, incremental, time), o.progress);
            rec.seq = seq;
            rec.level = level.label();
            rec.checkpoint = checkpoint;
            rec.since = since;
            rec.bitmap = incremental ? o.bitmap : null;
            rec.parent = parent == null ? null : parent.file;
            rec.time = time;
            m.backups.add(rec);
            m.pending = null;
            m.save(dir); // the backup counts from here on
        } catch (IOException | RuntimeException | Error e) {
            if (rec != null) {
                m.backups.remove(rec);
            }
            undo(e, file, rec != null, started);
            throw e;
        }
        return new BackupResult(level, target, checkpoint, since, rec.dataBytes, rec.zeroBytes, rec.bytesWritten, note);
    }

    /** Undoes a backup that did not complete: files first (freeing space), then the checkpoint. */
    private void undo(Throwable failure, String file, boolean published, boolean started) {
        try {
            dir.discard(file);
            if (published) {
                dir.delete(file);
            }
            if (started) {
                cps.mergeBack(checkpoint, m.pending.frozen);
            }
            m.pending = null;
            m.save(dir);
        } catch (IOException | RuntimeException e) {
            // pending stays in the manifest: the next run merges back and cleans up
            failure.addSuppressed(e);
        }
    }
}
