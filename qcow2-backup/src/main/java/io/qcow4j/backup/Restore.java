package io.qcow4j.backup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

import io.qcow4j.core.BlockDevice;
import io.qcow4j.core.BlockStatus;
import io.qcow4j.core.CreateOptions;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.RawImage;

/**
 * Restores a point of a set into a new qcow2 or raw file at the point's virtual size, thin:
 * data is written, zero ranges become zero clusters (qcow2) or stay holes (raw), unallocated
 * ranges stay unallocated. Written as TARGET.partial, flushed, then renamed.
 */
final class Restore {
    private static final int PIECE = 4 << 20;

    private Restore() {
    }

    static void run(SetStore store, String until, Path target, boolean raw, Progress progress) throws IOException {
        if (Files.exists(target)) {
            throw new BackupException("'" + target + "' exists: restore writes a new file");
        }
        Manifest m = BackupSet.manifest(store);
        BackupRecord point = BackupSet.point(m, until);
        Path partial = target.resolveSibling(target.getFileName() + Files2.PARTIAL);
        try (BlockDevice src = PointView.open(store, m, point)) {
            copy(src, partial, raw, progress);
            Files2.publish(partial, target);
        } catch (IOException | RuntimeException | Error e) {
            Files.deleteIfExists(partial);
            throw e;
        }
    }

    /** Copies {@code src} into a new image file {@code out}, thin, and flushes it. */
    static void copy(BlockDevice src, Path out, boolean raw, Progress progress) throws IOException {
        long size = src.size();
        ByteBuffer buf = ByteBuffer.allocateDirect(PIECE);
        if (raw) {
            try (RawImage img = RawImage.create(out, size)) {
                walk(src, buf, progress, (off, data) -> img.write(off, data), null);
                img.flush();
            }
        } else {
            try (Qcow2Image img = Qcow2Image.create(out, CreateOptions.size(size))) {
                walk(src, buf, progress, img::writeUntracked, img::writeZeroes);
                img.flush();
            }
        }
    }

    private interface DataSink {
        void write(long offset, ByteBuffer data) throws IOException;
    }

    private interface ZeroSink {
        void zero(long offset, long length) throws IOException;
    }

    private static void walk(BlockDevice src, ByteBuffer buf, Progress progress, DataSink data, ZeroSink zeros)
            throws IOException {
        long size = src.size();
        long off = 0;
        progress.report(0, size);
        while (off < size) {
            BlockStatus st = src.blockStatus(off, size - off);
            long len = st.length();
            if (st.allocated() && st.zero()) {
                if (zeros != null) {
                    zeros.zero(off, len);
                }
            } else if (st.allocated()) {
                for (long p = off; p < off + len; ) {
                    int n = (int) Math.min(PIECE, off + len - p);
                    buf.clear().limit(n);
                    src.read(p, buf);
                    buf.flip();
                    data.write(p, buf);
                    p += n;
                    progress.report(p, size);
                }
            }
            off += len;
            progress.report(off, size);
        }
    }
}
