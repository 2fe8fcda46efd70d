package io.qcow4j.backup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

import java.util.List;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.RawImage;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.nbd.client.NbdClient;
import io.qcow4j.nbd.protocol.Nbd;

/**
 * Restores a point of a set into a new qcow2 or raw file at the point's virtual size, thin:
 * data is written, zero ranges become zero clusters (qcow2) or stay holes (raw), unallocated
 * ranges stay unallocated. Written as TARGET.partial, flushed, then renamed.
 *
 * <p>Or into an NBD export at least as large as the point: its data is written, and every
 * other byte of the export (zero and unallocated ranges, and the export's tail past the
 * point's size) is zeroed unless the export's base:allocation already says it reads zeros,
 * since an export is not known to be blank. Then flushed. A failure leaves the export
 * partly written.
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

    static void toNbd(SetStore store, String until, NbdClient target, Progress progress) throws IOException {
        if (target.isReadOnly()) {
            throw new BackupException("the NBD export '" + target.uri() + "' is read-only");
        }
        Manifest m = BackupSet.manifest(store);
        BackupRecord point = BackupSet.point(m, until);
        try (BlockDevice src = PointView.open(store, m, point)) {
            long size = src.size();
            long exportSize = target.size();
            if (exportSize < size) {
                throw new BackupException("the NBD export '" + target.uri() + "' holds " + exportSize + " bytes, less than the "
                        + size + " bytes of point '" + point.pointName() + "': make it at least that large");
            }
            ZeroSink zeros = (off, len) -> zeroUnlessZero(target, off, len);
            walk(src, ByteBuffer.allocateDirect(PIECE), progress, target::write, zeros, true);
            if (exportSize > size) {
                zeros.zero(size, exportSize - size);
            }
            target.flush();
        }
    }

    /** Zeros [off, off + len) of the export where its base:allocation does not say it reads zeros already. */
    private static void zeroUnlessZero(NbdClient nbd, long off, long len) throws IOException {
        if (!nbd.metaContexts().contains(Nbd.CONTEXT_BASE_ALLOCATION)) {
            nbd.writeZeroes(off, len);
            return;
        }
        long end = off + len;
        long p = off;
        while (p < end) {
            List<NbdClient.Extent> list = nbd.extents(Nbd.CONTEXT_BASE_ALLOCATION, p, end - p);
            for (NbdClient.Extent e : list) {
                if (!e.has(Nbd.STATE_ZERO)) {
                    nbd.writeZeroes(e.offset(), e.length());
                }
                p = e.end();
            }
        }
    }

    /** Copies {@code src} into a new image file {@code out}, thin, and flushes it. */
    static void copy(BlockDevice src, Path out, boolean raw, Progress progress) throws IOException {
        long size = src.size();
        ByteBuffer buf = ByteBuffer.allocateDirect(PIECE);
        if (raw) {
            try (RawImage img = RawImage.create(out, size)) {
                walk(src, buf, progress, (off, data) -> img.write(off, data), null, false);
                img.flush();
            }
        } else {
            try (Qcow2Image img = Qcow2Image.create(out, CreateOptions.size(size))) {
                walk(src, buf, progress, img.chain()::writeUntracked, img::writeZeroes, false);
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

    /** Writes the data runs of {@code src}; its zero runs (and its holes, with {@code holesToo}) go to {@code zeros}. */
    private static void walk(BlockDevice src, ByteBuffer buf, Progress progress, DataSink data, ZeroSink zeros,
                             boolean holesToo) throws IOException {
        long size = src.size();
        long off = 0;
        progress.report(0, size);
        while (off < size) {
            BlockStatus st = src.blockStatus(off, size - off);
            long len = st.length();
            if (st.allocated() ? st.zero() : holesToo) {
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
