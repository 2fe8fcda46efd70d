package io.qcow4j.backup;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Writes one file of a set from a source, visible under its name only once complete: a
 * stream goes to the store front to back ({@link SetStore#create}), its chunk checksums taken
 * on the way; a qcow2 file (a local set only) is written as NAME.partial, flushed, summed and
 * renamed. On any failure nothing is left behind.
 */
final class BackupFile {
    private BackupFile() {
    }

    /**
     * Writes {@code ranges} of {@code src} into {@code file} of the set; returns a record with
     * the extents, byte counts and checksums filled in (the caller adds the rest).
     */
    static BackupRecord write(SetStore store, String file, Format format, boolean compress, BackupSource src, long size,
                              List<BackupSource.Range> ranges, boolean holesAsZero, String parentFile,
                              Map<String, Object> streamMeta, Progress progress) throws IOException {
        BackupRecord rec = format == Format.QCOW2
                ? qcow2(store, file, src, size, ranges, holesAsZero, parentFile, progress)
                : stream(store, file, compress, src, size, ranges, holesAsZero, streamMeta, progress);
        rec.chunkSize = Files2.CHUNK;
        rec.file = file;
        rec.format = format.label();
        rec.compressed = compress;
        rec.virtualSize = size;
        return rec;
    }

    private static BackupRecord stream(SetStore store, String file, boolean compress, BackupSource src, long size,
                                       List<BackupSource.Range> ranges, boolean holesAsZero,
                                       Map<String, Object> streamMeta, Progress progress) throws IOException {
        BackupRecord rec = new BackupRecord();
        long hint = 0;
        for (BackupSource.Range r : ranges) {
            hint += r.length();
        }
        try (SummingOutput out = new SummingOutput(store.create(file, hint));
             TargetWriter w = new StreamWriter(out, streamMeta, compress)) {
            copy(src, w, ranges, holesAsZero, rec, progress);
            progress.check();
            rec.chunkCrc32c = out.sums();
            rec.bytesWritten = out.size();
            out.publish();
        }
        return rec;
    }

    private static BackupRecord qcow2(SetStore store, String file, BackupSource src, long size,
                                      List<BackupSource.Range> ranges, boolean holesAsZero, String parentFile,
                                      Progress progress) throws IOException {
        Path dir = store.directory();
        if (dir == null) {
            throw new BackupException(Format.qcow2Refused(store));
        }
        Path partial = dir.resolve(file + Files2.PARTIAL);
        BackupRecord rec = new BackupRecord();
        try {
            try (TargetWriter w = new Qcow2Writer(partial, size, parentFile)) {
                copy(src, w, ranges, holesAsZero, rec, progress);
            }
            progress.check();
            rec.chunkCrc32c = Files2.chunkSums(partial);
            rec.bytesWritten = Files.size(partial);
            Files2.publish(partial, dir.resolve(file));
        } catch (IOException | RuntimeException | Error e) {
            try {
                Files.deleteIfExists(partial);
            } catch (IOException x) {
                e.addSuppressed(x);
            }
            throw e;
        }
        return rec;
    }

    private static void copy(BackupSource src, TargetWriter w, List<BackupSource.Range> ranges, boolean holesAsZero,
                             BackupRecord rec, Progress progress) throws IOException {
        ExtentCopier copier = new ExtentCopier(src, w, rec.extents, progress);
        copier.copy(ranges, holesAsZero);
        w.finish(copier.dataBytes);
        rec.dataBytes = copier.dataBytes;
        rec.zeroBytes = copier.zeroBytes;
    }
}
