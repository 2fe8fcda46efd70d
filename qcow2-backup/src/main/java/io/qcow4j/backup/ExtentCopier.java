package io.qcow4j.backup;

import io.qcow4j.core.storage.ZeroBytes;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * Copies ranges of a source into a target writer, as extents: data read and stored with its
 * CRC-32C, in pieces of at most 4 MiB; 64 KiB blocks that read as zeros, ranges the source
 * says are zero, and (when {@code holesAsZero}) never-allocated ranges stored as zeros;
 * never-allocated ranges otherwise skipped, and never read. Adjacent zero ranges are merged.
 */
final class ExtentCopier {
    static final int PIECE = SparseStream.MAX_DATA_FRAME;
    static final int ZERO_BLOCK = 64 * 1024;

    private final BackupSource src;
    private final TargetWriter out;
    private final List<ExtentRecord> records;
    private final Progress progress;
    private final ByteBuffer buf = ByteBuffer.allocateDirect(PIECE);
    private long zeroStart = -1;
    private long zeroEnd = -1;
    long dataBytes;
    long zeroBytes;
    private long done;
    private long total;

    ExtentCopier(BackupSource src, TargetWriter out, List<ExtentRecord> records, Progress progress) {
        this.src = src;
        this.out = out;
        this.records = records;
        this.progress = progress;
    }

    /** Copies {@code ranges} (sorted, within the source), reporting progress over their total. */
    void copy(List<BackupSource.Range> ranges, boolean holesAsZero) throws IOException {
        total = 0;
        for (BackupSource.Range r : ranges) {
            total += r.length();
        }
        progress.report(0, total);
        for (BackupSource.Range r : ranges) {
            long off = r.start();
            while (off < r.end()) {
                BackupSource.Allocation a = src.allocation(off, r.end() - off);
                long len = Math.min(a.length(), r.end() - off);
                if (len <= 0) {
                    throw new IOException("the source reported an empty extent at " + off);
                }
                switch (a.kind()) {
                    case DATA -> data(off, len);
                    case ZERO -> {
                        zero(off, len);
                        advance(len);
                    }
                    case HOLE -> {
                        if (holesAsZero) {
                            zero(off, len);
                        }
                        advance(len);
                    }
                    default -> throw new IllegalStateException();
                }
                off += len;
            }
        }
        flushZero();
        progress.report(total, total);
    }

    private void data(long off, long len) throws IOException {
        long end = off + len;
        while (off < end) {
            // pieces end on PIECE boundaries of the disk, so repeated backups cut alike
            int n = (int) Math.min(end - off, PIECE - (off % PIECE));
            buf.clear().limit(n);
            src.read(off, buf);
            buf.flip();
            store(off, buf);
            off += n;
            advance(n);
        }
    }

    /** Stores a piece: its all-zero 64 KiB blocks as zeros, the rest as data extents. */
    private void store(long off, ByteBuffer piece) throws IOException {
        int n = piece.limit();
        int i = 0;
        while (i < n) {
            int blockEnd = (int) Math.min(n, i + ZERO_BLOCK - ((off + i) % ZERO_BLOCK));
            boolean zero = isZero(piece, i, blockEnd);
            int j = blockEnd;
            while (j < n) {
                int next = Math.min(n, j + ZERO_BLOCK);
                if (isZero(piece, j, next) != zero) {
                    break;
                }
                j = next;
            }
            if (zero) {
                zero(off + i, j - i);
            } else {
                flushZero();
                ByteBuffer slice = piece.duplicate().position(i).limit(j).slice();
                ExtentRecord rec = ExtentRecord.data(off + i, j - i, Files2.crc(slice));
                out.data(off + i, slice, rec);
                records.add(rec);
                dataBytes += j - i;
            }
            i = j;
        }
    }

    static boolean isZero(ByteBuffer b, int from, int to) {
        return ZeroBytes.isZero(b, from, to);
    }

    private void zero(long off, long len) throws IOException {
        if (zeroEnd == off) {
            zeroEnd += len;
        } else {
            flushZero();
            zeroStart = off;
            zeroEnd = off + len;
        }
    }

    private void flushZero() throws IOException {
        if (zeroStart >= 0) {
            out.zero(zeroStart, zeroEnd - zeroStart);
            records.add(ExtentRecord.zero(zeroStart, zeroEnd - zeroStart));
            zeroBytes += zeroEnd - zeroStart;
            zeroStart = -1;
            zeroEnd = -1;
        }
    }

    private void advance(long n) throws BackupException {
        done += n;
        progress.report(done, total);
    }
}
