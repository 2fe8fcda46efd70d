package io.qcow4j.backup;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Writes one file of a set from a source: as NAME.partial, flushed, its chunk checksums
 * taken, then renamed to NAME. On any failure the partial file is deleted.
 */
final class BackupFile {
    private BackupFile() {
    }

    /**
     * Writes {@code ranges} of {@code src} into {@code dir/file}; returns a record with the
     * extents, byte counts and checksums filled in (the caller adds the rest).
     */
    static BackupRecord write(Path dir, String file, Format format, boolean compress, BackupSource src, long size,
                              List<BackupSource.Range> ranges, boolean holesAsZero, String parentFile,
                              Map<String, Object> streamMeta, Progress progress) throws IOException {
        Path partial = dir.resolve(file + Files2.PARTIAL);
        BackupRecord rec = new BackupRecord();
        try {
            try (TargetWriter w = format == Format.QCOW2
                    ? new Qcow2Writer(partial, size, parentFile)
                    : new StreamWriter(partial, streamMeta, compress)) {
                ExtentCopier copier = new ExtentCopier(src, w, rec.extents, progress);
                copier.copy(ranges, holesAsZero);
                w.finish(copier.dataBytes);
                rec.dataBytes = copier.dataBytes;
                rec.zeroBytes = copier.zeroBytes;
            }
            progress.check();
            rec.chunkSize = Files2.CHUNK;
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
        rec.file = file;
        rec.format = format.label();
        rec.compressed = compress;
        rec.virtualSize = size;
        return rec;
    }
}
