package io.qcow4j.backup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;

/**
 * Checks a set without its source: each file is there with the manifest's size, every 1 MiB
 * of it matches its CRC-32C, each data extent reads back with its CRC-32C, and each link holds
 * (a qcow2 incremental's backing file is its parent; a stream's meta data names the manifest's
 * checkpoints and size). The first problem of a file is reported with its offset.
 */
final class Verify {
    private final SetStore store;
    private final Progress progress;
    private long done;
    private long total;

    private Verify(SetStore store, Progress progress) {
        this.store = store;
        this.progress = progress;
    }

    /** A damaged file: the offset and the reason. */
    private static final class Damage extends Exception {
        private static final long serialVersionUID = 1L;
        final long offset;

        Damage(long offset, String reason) {
            super(reason);
            this.offset = offset;
        }
    }

    static VerifyReport run(SetStore store, Progress progress) throws IOException {
        return new Verify(store, progress).run();
    }

    private VerifyReport run() throws IOException {
        Manifest m = Manifest.load(store);
        boolean foreign = m == null;
        if (foreign) {
            m = ForeignSet.scan(store);
        }
        for (BackupRecord b : m.backups) {
            total += b.bytesWritten;
        }
        List<VerifyReport.FileReport> out = new ArrayList<>();
        for (BackupRecord b : m.backups) {
            try {
                check(m, b, foreign);
                out.add(new VerifyReport.FileReport(b.file, "ok", -1, null));
            } catch (Damage d) {
                out.add(new VerifyReport.FileReport(b.file, "damaged", d.offset, d.getMessage()));
            } catch (java.nio.file.NoSuchFileException e) {
                out.add(new VerifyReport.FileReport(b.file, "missing", -1, "the file is missing"));
            }
        }
        String note = null;
        if (foreign) {
            note = "no manifest: a virtnbdbackup set, checked for structure only (it records no checksums)";
        } else if (m.pending != null) {
            note = "an interrupted backup or prune is pending; the next backup or prune finishes it";
        }
        progress.report(total, total);
        return new VerifyReport(out, note);
    }

    private void check(Manifest m, BackupRecord b, boolean foreign) throws IOException, Damage {
        long size;
        try (SetStore.ReadFile file = store.open(b.file)) {
            size = file.size();
            if (!foreign) {
                if (size != b.bytesWritten) {
                    throw new Damage(Math.min(size, b.bytesWritten), "the file has " + size + " bytes, the manifest says " + b.bytesWritten);
                }
                chunks(file, b);
            }
            try {
                m.chainOf(b);
            } catch (BackupException e) {
                throw new Damage(-1, e.getMessage());
            }
            if (b.format.equals(Format.QCOW2.label())) {
                if (store.directory() == null) {
                    throw new BackupException(Format.qcow2Refused(store));
                }
                qcow2(store.directory().resolve(b.file), b);
            } else {
                stream(file, b, foreign);
            }
        }
        done += size;
        progress.report(done, total);
    }

    private void chunks(SetStore.ReadFile file, BackupRecord b) throws IOException, Damage {
        if (b.chunkSize != Files2.CHUNK) {
            throw new Damage(-1, "the manifest's chunk size " + b.chunkSize + " is not " + Files2.CHUNK);
        }
        List<Long> sums = Files2.chunkSums(file);
        for (int i = 0; i < Math.max(sums.size(), b.chunkCrc32c.size()); i++) {
            if (i >= sums.size() || i >= b.chunkCrc32c.size() || !sums.get(i).equals(b.chunkCrc32c.get(i))) {
                long at = (long) i * Files2.CHUNK;
                throw new Damage(at, "bytes " + at + " to " + (at + Files2.CHUNK) + " do not match their checksum");
            }
        }
    }

    private void qcow2(Path file, BackupRecord b) throws IOException, Damage {
        Qcow2Image img;
        try {
            img = Qcow2Image.open(file, OpenOptions.readOnly().openBacking(false));
        } catch (io.qcow4j.core.api.CorruptImageException e) {
            throw new Damage(e.fileOffset(), e.getMessage());
        }
        try (img) {
            if (!Objects.equals(img.chain().backingFile(), b.parent)) {
                throw new Damage(-1, "its backing file is '" + img.chain().backingFile() + "', the manifest's parent '" + b.parent + "'");
            }
            if (img.size() != b.virtualSize) {
                throw new Damage(-1, "virtual size " + img.size() + ", the manifest says " + b.virtualSize);
            }
            ByteBuffer buf = ByteBuffer.allocateDirect(ExtentCopier.PIECE);
            for (ExtentRecord e : b.extents) {
                if (e.isZero()) {
                    continue;
                }
                buf.clear().limit(Math.toIntExact(e.length));
                img.read(e.start, buf);
                buf.flip();
                if (Files2.crc(buf) != e.crc32c) {
                    long host = img.blockStatus(e.start, e.length).hostOffset();
                    throw new Damage(host, "the data of guest bytes " + e.start + " to " + e.end()
                            + " does not match its checksum");
                }
            }
        } catch (io.qcow4j.core.api.CorruptImageException e) {
            throw new Damage(e.fileOffset(), e.getMessage());
        }
    }

    private void stream(SetStore.ReadFile file, BackupRecord b, boolean foreign) throws IOException, Damage {
        StreamIndex ix;
        try {
            ix = StreamIndex.scan(file);
        } catch (BackupException e) {
            throw new Damage(-1, e.getMessage());
        }
        Object vs = ix.meta.get("virtualSize");
        if (!(vs instanceof Number n) || n.longValue() != b.virtualSize) {
            throw new Damage(0, "its meta data says virtual size " + vs + ", the manifest " + b.virtualSize);
        }
        if (foreign) {
            return;
        }
        if (!Objects.equals(ix.meta.get("checkpointName"), b.checkpoint == null ? "" : b.checkpoint)) {
            throw new Damage(0, "its meta data names checkpoint '" + ix.meta.get("checkpointName") + "', the manifest '"
                    + b.checkpoint + "'");
        }
        if (ix.extents.size() != b.extents.size()) {
            throw new Damage(-1, "it holds " + ix.extents.size() + " extents, the manifest lists " + b.extents.size());
        }
        for (int i = 0; i < ix.extents.size(); i++) {
            ExtentRecord got = ix.extents.get(i);
            ExtentRecord want = b.extents.get(i);
            if (got.start != want.start || got.length != want.length || got.isZero() != want.isZero()
                    || !Objects.equals(got.pos, want.pos)) {
                throw new Damage(got.pos == null ? -1 : got.pos - SparseStream.FRAME_LEN,
                        "frame " + i + " is not the manifest's extent " + want.start + "+" + want.length);
            }
            if (want.isZero()) {
                continue;
            }
            byte[] stored = StreamIndex.bytes(b.file, file, got.pos, Math.toIntExact(got.stored));
            byte[] plain;
            try {
                plain = b.compressed ? Lz4Frames.decompress(stored, Math.toIntExact(got.length), b.file) : stored;
            } catch (IOException e) {
                throw new Damage(got.pos, e.getMessage());
            }
            if (Files2.crc(ByteBuffer.wrap(plain)) != want.crc32c) {
                throw new Damage(got.pos, "the data of guest bytes " + want.start + " to " + want.end()
                        + " does not match its checksum");
            }
        }
    }
}
