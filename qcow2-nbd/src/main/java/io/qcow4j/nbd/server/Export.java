package io.qcow4j.nbd.server;

import static io.qcow4j.nbd.protocol.Nbd.STATE_DIRTY;
import static io.qcow4j.nbd.protocol.Nbd.STATE_HOLE;
import static io.qcow4j.nbd.protocol.Nbd.STATE_ZERO;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.util.List;

import io.qcow4j.bitmaps.DirtyBitmap;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.core.api.FileImage;

/**
 * The exported disk: its I/O as NBD commands need it, and the extents of its metadata
 * contexts. Writes are serialised here on the device (a qcow2 image serialises its own
 * operations on that same lock; a raw file is positional I/O); reads are not. An image in
 * a file of its own ({@link FileImage}) may be served writable; one with clusters (qcow2)
 * also tells holes from data in reads, records fast zeros and sends plain data clusters
 * straight from its file.
 */
final class Export implements AutoCloseable {
    private static final int SECTOR = 512;
    private static final int ZERO_CHUNK = 1 << 20;

    final String name;
    final String description;
    final boolean readOnly;
    final boolean multiConn;
    final boolean discard;
    final long size;
    final List<MetaContext> contexts;
    private final BlockDevice device;
    /** The device as an image in a file of its own, or null (a view, a remote export). */
    private final FileImage image;
    /** The image allocates in clusters (qcow2): its block status tells holes from data. */
    private final boolean clusters;
    /** A raw file, which qemu sees in whole sectors. */
    private final boolean rawFile;
    private final Layers layers;
    /** The top image's file for {@link #directFile}; opened on first use. */
    private FileChannel direct;
    private boolean directTried;

    Export(NbdServer.Options o, List<MetaContext> contexts) {
        this.name = o.exportName();
        this.description = o.description();
        this.device = o.device();
        this.image = device instanceof FileImage f ? f : null;
        this.clusters = image != null && image.clusterSize() > 0;
        this.rawFile = image != null && image.clusterSize() == 0;
        // a view or a remote export is served read-only; an image open read-only too
        this.readOnly = o.readOnly() || image == null || device.isReadOnly();
        this.multiConn = o.shared() != 1;
        this.discard = o.discard();
        // qemu sees a raw file in whole sectors: a 1000-byte file is a 1024-byte disk
        long s = device.size();
        this.size = rawFile && s % SECTOR != 0 ? s + SECTOR - s % SECTOR : s;
        this.contexts = contexts;
        this.layers = new Layers(device);
    }

    MetaContext context(int id) {
        for (MetaContext c : contexts) {
            if (c.id() == id) {
                return c;
            }
        }
        return null;
    }

    // ------------------------------------------------------------ I/O

    void read(long offset, ByteBuffer dst) throws IOException {
        // connections read a read-only qcow2 image in parallel: only the lookup holds its lock
        device.readShared(offset, dst);
    }

    void write(long offset, ByteBuffer src) throws IOException {
        synchronized (device) {
            device.write(offset, src);
        }
    }

    void flush() throws IOException {
        if (readOnly) {
            return;
        }
        device.flush();
    }

    /** TRIM: frees whole clusters when the export discards (qemu-nbd's --discard=unmap); else nothing, as qemu-nbd. */
    void trim(long offset, long length) throws IOException {
        if (discard && device.canDiscard()) {
            device.discard(offset, length);
        }
    }

    /**
     * WRITE_ZEROES. With {@code fastOnly} (NBD_CMD_FLAG_FAST_ZERO) it does nothing and
     * returns false unless the zeros can be recorded without writing zero data: a v3 image
     * whose ragged cluster ends already read as zeros.
     */
    boolean writeZeroes(long offset, long length, boolean fastOnly) throws IOException {
        synchronized (device) {
            if (fastOnly && !fastZero(offset, length)) {
                return false;
            }
            if (device.hasNativeZeroes()) {
                device.writeZeroes(offset, length);
                return true;
            }
            ByteBuffer zeros = ByteBuffer.allocateDirect((int) Math.min(length, ZERO_CHUNK));
            for (long done = 0; done < length; ) {
                int n = (int) Math.min(length - done, zeros.capacity());
                zeros.clear().limit(n);
                device.write(offset + done, zeros);
                done += n;
            }
        }
        return true;
    }

    private boolean fastZero(long offset, long length) throws IOException {
        if (!clusters || image.version() < 3) {
            return false;
        }
        int cs = image.clusterSize();
        long end = offset + length;
        long head = offset - offset % cs;
        if (head != offset && !readsZero(head, Math.min(cs, size - head))) {
            return false;
        }
        long tail = end - end % cs;
        return tail == end || end == size || tail < offset || readsZero(tail, Math.min(cs, size - tail));
    }

    private boolean readsZero(long offset, long length) throws IOException {
        long end = offset + length;
        while (offset < end) {
            BlockStatus st = device.blockStatus(offset, end - offset);
            if (!st.zero()) {
                return false;
            }
            offset += st.length();
        }
        return true;
    }

    /**
     * The top image's own file, when a plain data cluster of it holds the guest bytes as
     * they are and nothing can move them while we serve: a read-only, unencrypted qcow2
     * without an external data file. The server then sends such clusters straight from the
     * file (sendfile), one copy fewer than a read into a buffer. Null otherwise.
     */
    synchronized FileChannel directFile() {
        if (!directTried) {
            directTried = true;
            if (readOnly && clusters && !image.isEncrypted() && image.dataFile() == null && image.path() != null) {
                try {
                    direct = FileChannel.open(image.path(), StandardOpenOption.READ);
                } catch (IOException | RuntimeException e) {
                    direct = null; // buffered reads still work
                }
            }
        }
        return direct;
    }

    /** Whether {@code [offset, offset+length)} can be told apart into holes (read as zeros) and data. */
    boolean sparse() {
        return clusters;
    }

    /** The status of the run at {@code offset} for a structured read: zero or not, and how long. */
    BlockStatus readStatus(long offset, long length) throws IOException {
        return device.blockStatus(offset, length);
    }

    // ------------------------------------------------------------ contexts

    /** Fills {@code out} with the extents of context {@code c} from {@code offset}, at most {@code length} bytes. */
    void extents(MetaContext c, long offset, long length, ExtentList out) throws IOException {
        switch (c.kind()) {
            case BASE_ALLOCATION -> allocation(offset, length, out, false);
            case ALLOCATION_DEPTH -> allocation(offset, length, out, true);
            case DIRTY_BITMAP -> dirty(c, offset, length, out);
            default -> throw new IllegalStateException(c.kind().toString());
        }
    }

    private void allocation(long offset, long length, ExtentList out, boolean depth) throws IOException {
        long end = offset + length;
        while (offset < end) {
            long n;
            int flags;
            long fileEnd = rawFile ? device.size() : size;
            if (offset >= fileEnd) {
                // the sector tail of a raw file: qemu reads zeros there
                n = end - offset;
                flags = depth ? 1 : STATE_HOLE | STATE_ZERO;
            } else {
                BlockStatus st = device.blockStatus(offset, Math.min(end, fileEnd) - offset);
                n = st.length();
                if (n <= 0) {
                    throw new IOException("no block status at offset " + offset);
                }
                if (depth) {
                    // past the end of a shorter backing file qemu counts the zeros as that file's
                    flags = st.allocated() ? st.depth() + 1 : layers.hasBacking(st.depth()) ? st.depth() + 2 : 0;
                } else {
                    flags = (st.data() ? 0 : STATE_HOLE) | (st.zero() ? STATE_ZERO : 0);
                    if (st.data() && !st.zero() && !st.compressed() && st.hostOffset() >= 0) {
                        HostFile file = layers.holes(st.depth());
                        if (file != null) {
                            HostFile.Piece p = file.probe(st.hostOffset(), n);
                            n = p.length();
                            if (p.hole()) {
                                flags = layers.isRaw(st.depth()) ? STATE_HOLE | STATE_ZERO : STATE_ZERO;
                            }
                        }
                    }
                }
            }
            if (!out.add(n, flags)) {
                return;
            }
            offset += n;
        }
    }

    private static void dirty(MetaContext c, long offset, long length, ExtentList out) {
        DirtyBitmap b = c.bitmap();
        long end = offset + length;
        synchronized (c.owner()) {
            while (offset < end) {
                if (offset >= b.diskSize()) {
                    out.add(end - offset, 0);
                    return;
                }
                boolean isDirty = b.get(offset);
                long next = isDirty ? b.nextClean(offset) : b.nextDirty(offset);
                next = Math.min(next < 0 ? end : next, Math.min(end, Math.max(b.diskSize(), offset + 1)));
                if (!out.add(next - offset, isDirty ? STATE_DIRTY : 0)) {
                    return;
                }
                offset = next;
            }
        }
    }

    @Override
    public void close() {
        layers.close();
        synchronized (this) {
            try {
                if (direct != null) {
                    direct.close();
                }
            } catch (IOException e) {
                // read-only: nothing to lose
            }
        }
    }
}
