package io.qcow4j.backup;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.OpenOptions;

/**
 * Keeps the newest N points of a set. In each chain whose oldest kept point is not its full,
 * that point's disk is written as a new full file; the chain's older backups and the point's
 * own file go, and the kept backups that built on them build on the new full (valid: each
 * holds every block changed since its parent's time, which is no later than the new full's).
 * Crash safety: the new full is complete before the manifest switches to it in one write;
 * what is left after (rewriting backing names, deleting files) is recorded there as pending
 * and finished by the next backup or prune.
 */
final class Prune {
    private Prune() {
    }

    static List<String> run(SetStore dir, int keep, Progress progress) throws IOException {
        if (keep < 1) {
            throw new BackupException("--keep must be at least 1");
        }
        try (java.io.Closeable lock = dir.lock()) {
            Manifest m = Manifest.load(dir);
            if (m == null) {
                throw new BackupException("no manifest in '" + dir.name() + "': prune works on sets qcow4j wrote");
            }
            if (m.pending != null && m.pending.checkpoint == null) {
                Recovery.finish(m, dir, null);
            }
            if (m.backups.size() <= keep) {
                return List.of();
            }
            Set<BackupRecord> kept = new HashSet<>(m.backups.subList(m.backups.size() - keep, m.backups.size()));
            List<BackupRecord> removed = new ArrayList<>();
            List<List<String>> rebase = new ArrayList<>();
            for (BackupRecord b : m.backups) {
                if (!kept.contains(b)) {
                    removed.add(b);
                }
            }
            // the oldest kept point of each chain whose full goes: fold it into a new full
            java.util.Map<BackupRecord, BackupRecord> start = new java.util.IdentityHashMap<>();
            for (BackupRecord b : m.backups) {
                start.put(b, m.chainOf(b).get(0));
            }
            List<BackupRecord> replacements = new ArrayList<>();
            Set<BackupRecord> folded = new HashSet<>();
            for (BackupRecord k : m.backups) {
                BackupRecord full = start.get(k);
                if (!kept.contains(k) || kept.contains(full) || folded.contains(full)) {
                    continue; // k is the oldest kept point of its chain: backups are in time order
                }
                folded.add(full);
                BackupRecord f = fold(dir, m, k, progress);
                replacements.add(f);
                removed.add(k);
                for (BackupRecord x : m.backups) {
                    if (x != k && kept.contains(x) && start.get(x) == full
                            && (x.parent.equals(k.file) || !kept.contains(m.byFile(x.parent)))) {
                        x.parent = f.file;
                    }
                }
            }
            for (BackupRecord x : m.backups) {
                if (kept.contains(x) && !removed.contains(x) && x.parent != null && x.format.equals("qcow2")
                        && replacements.stream().anyMatch(r -> r.file.equals(x.parent))) {
                    rebase.add(List.of(x.file, x.parent));
                }
            }
            List<BackupRecord> next = new ArrayList<>();
            for (BackupRecord b : m.backups) {
                if (!removed.contains(b)) {
                    next.add(b);
                }
            }
            next.addAll(replacements);
            next.sort((a, b) -> Integer.compare(a.seq, b.seq));
            m.backups = next;
            Manifest.Pending p = new Manifest.Pending();
            p.rebase = rebase;
            p.delete = removed.stream().map(b -> b.file).toList();
            m.pending = p;
            m.save(dir); // the pruned set counts from here on
            Recovery.finish(m, dir, null);
            return p.delete;
        }
    }

    private static BackupRecord chainStart(Manifest m, BackupRecord b) {
        try {
            return m.chainOf(b).get(0);
        } catch (BackupException e) {
            return null;
        }
    }

    /** Writes the disk at point {@code k} as a new full file and returns its record. */
    private static BackupRecord fold(SetStore dir, Manifest m, BackupRecord k, Progress progress) throws IOException {
        Format format = Format.parse(k.format);
        String file = String.format("%s.%03d.full%s", m.disk, k.seq, format.extension());
        dir.delete(file); // a leftover of an interrupted prune: never in the manifest
        List<String> folded = new ArrayList<>();
        for (BackupRecord b : m.chainOf(k)) {
            folded.add(b.file);
        }
        BackupRecord f;
        try (BlockDevice view = PointView.open(dir, m, k); DeviceSource src = new DeviceSource(view, m.disk)) {
            long size = view.size();
            f = BackupFile.write(dir, file, format, k.compressed, src, size,
                    size == 0 ? List.of() : List.of(new BackupSource.Range(0, size)), false, null,
                    StreamWriter.meta(size, m.disk, "qcow2", k.checkpoint, null, false, k.time), progress);
        }
        f.seq = k.seq;
        f.level = Level.FULL.label();
        f.checkpoint = k.checkpoint;
        f.time = k.time;
        f.folded = folded;
        return f;
    }

    /** Rewrites the backing file name of a qcow2 backup (header only; the data stays). */
    static void setBacking(Path file, String parent) throws IOException {
        try (Qcow2Image img = Qcow2Image.open(file, OpenOptions.readWrite().openBacking(false))) {
            if (!parent.equals(img.chain().backingFile())) {
                img.chain().setBackingFile(parent, "qcow2", null);
            }
        }
    }
}
