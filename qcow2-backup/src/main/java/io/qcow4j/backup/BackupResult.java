package io.qcow4j.backup;

import java.nio.file.Path;

/**
 * What a backup did: the level done (after any fallback), the file written, its checkpoint,
 * the checkpoint its changes count from, bytes of data and of zeros stored, the file's size,
 * and a note (null when there is nothing to say): why {@code auto} fell back to a full backup,
 * or that zeros the bitmap did not show as changed were stored (the disk was shrunk and grown
 * again, see {@link BackupSet}).
 */
public record BackupResult(Level level, Path file, String checkpoint, String since, long dataBytes,
                           long zeroBytes, long bytesWritten, String note) {
}
