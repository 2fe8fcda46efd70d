package io.qcow4j.backup;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Finishes what an interrupted run left in the manifest's {@code pending}: a backup is undone
 * (its checkpoint merged back into the ones it froze, its partial file deleted); a prune is
 * completed (backing names rewritten, folded files deleted).
 */
final class Recovery {
    private Recovery() {
    }

    static void finish(Manifest m, SetStore store, Checkpointing cps) throws IOException {
        Manifest.Pending p = m.pending;
        if (p == null) {
            return;
        }
        if (p.checkpoint != null) {
            if (cps == null) {
                throw new BackupException("an interrupted backup left checkpoint '" + p.checkpoint
                        + "' to merge back into " + p.frozen + ": back up from the image opened read-write first");
            }
            cps.mergeBack(p.checkpoint, p.frozen);
        }
        if (p.file != null) {
            String file = p.file.endsWith(Files2.PARTIAL) ? p.file.substring(0, p.file.length() - Files2.PARTIAL.length()) : p.file;
            if (m.byFile(file) == null) {
                store.discard(file); // never completed: its partial file, its unfinished upload
            }
        }
        if (p.rebase != null && !p.rebase.isEmpty()) {
            Path dir = store.directory(); // only qcow2 backups are rebased, and they are local
            if (dir == null) {
                throw new BackupException(Format.qcow2Refused(store));
            }
            for (List<String> r : p.rebase) {
                Path f = dir.resolve(r.get(0));
                BackupRecord b = m.byFile(r.get(0));
                if (Files.exists(f) && b != null) {
                    Prune.setBacking(f, r.get(1));
                    // the header changed: so did the file's checksums
                    b.chunkCrc32c = Files2.chunkSums(f);
                    b.bytesWritten = Files.size(f);
                }
            }
        }
        if (p.delete != null) {
            for (String f : p.delete) {
                store.delete(f);
            }
        }
        m.pending = null;
        m.save(store);
    }
}
