package io.qcow4j.backup;

import static io.qcow4j.nbd.protocol.Nbd.CONTEXT_BASE_ALLOCATION;
import static io.qcow4j.nbd.protocol.Nbd.CONTEXT_DIRTY_BITMAP_PREFIX;
import static io.qcow4j.nbd.protocol.Nbd.STATE_DIRTY;
import static io.qcow4j.nbd.protocol.Nbd.STATE_HOLE;
import static io.qcow4j.nbd.protocol.Nbd.STATE_ZERO;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

import io.qcow4j.nbd.client.NbdClient;
import io.qcow4j.nbd.client.NbdException;
import io.qcow4j.nbd.client.NbdUri;

/**
 * An NBD export as a backup source: a running VM's disk as libvirt's pull-mode backup serves
 * it, or an image exported with {@code qemu-nbd -B NAME} (or {@code qcow4j nbd -B NAME}).
 * Allocation comes from {@code base:allocation} (zero runs are stored as zeros, holes are
 * not read; a server without it is read whole), the changes from the dirty-bitmap context
 * {@code qemu:dirty-bitmap:NAME}. Reads go through the client, which splits them and keeps
 * several requests in flight.
 *
 * <p>The bitmap and its checkpoints belong to whoever runs the VM: this source never changes
 * them ({@link #checkpoints()} is null). A backup set records the checkpoint name it is given
 * ({@link BackupOptions#checkpoint}) and never a backup that failed, so the caller must keep
 * the bits of the last completed backup's checkpoint until the next backup completes: with
 * libvirt, an incremental backup counts from the checkpoint of the set's latest point
 * ({@link BackupSet#since}), not from a newer one a failed backup created.
 *
 * <p>Limitation: a disk shrunk and grown again between two backups leaves QEMU's bitmap clean
 * over the regrown area, whose old data is gone. The backup stores zeros there only where
 * base:allocation reports them ({@link UnrecordedZeros}); the caller should take a full
 * backup after any shrink.
 */
public final class NbdSource implements BackupSource {
    private final NbdClient client;
    private final String bitmap;
    private final String diskName;

    private NbdSource(NbdClient client, String bitmap) {
        this.client = client;
        this.bitmap = bitmap;
        this.diskName = safeName(client.uri().export());
    }

    /**
     * Connects to {@code uri}, negotiating base:allocation and, when {@code bitmap} is not
     * null, {@code qemu:dirty-bitmap:BITMAP} (the meta contexts of {@code options} are replaced).
     */
    public static NbdSource open(NbdUri uri, NbdClient.Options options, String bitmap) throws IOException {
        NbdClient.Options o = bitmap == null ? options.withMetaContexts(CONTEXT_BASE_ALLOCATION)
                : options.withMetaContexts(CONTEXT_BASE_ALLOCATION, CONTEXT_DIRTY_BITMAP_PREFIX + bitmap);
        return new NbdSource(NbdClient.connect(uri, o), bitmap);
    }

    /** {@link #open(NbdUri, NbdClient.Options, String)} with the client's default options. */
    public static NbdSource open(String uri, String bitmap) throws IOException {
        return open(NbdUri.parse(uri), NbdClient.Options.defaults(), bitmap);
    }

    /**
     * A source over a client the caller connected (with base:allocation and, for inc and diff,
     * the bitmap's context among its meta contexts); closing the source closes the client.
     */
    public static NbdSource of(NbdClient client, String bitmap) {
        return new NbdSource(Objects.requireNonNull(client, "client"), bitmap);
    }

    /** The export name when it makes a plain file name ("vda"), else "disk" (qemu-nbd's default export is ""). */
    static String safeName(String export) {
        return export.matches("[A-Za-z0-9][A-Za-z0-9._-]{0,63}") ? export : "disk";
    }

    public NbdClient client() {
        return client;
    }

    /** The bitmap whose context was asked for, or null. */
    public String bitmap() {
        return bitmap;
    }

    @Override
    public String diskName() {
        return diskName;
    }

    @Override
    public String diskFormat() {
        return "raw";
    }

    @Override
    public long size() {
        return client.size();
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        int n = dst.remaining();
        try {
            client.read(offset, dst);
        } catch (IOException e) {
            throw failed("a read of " + n + " bytes at offset " + offset, e);
        }
    }

    /** An error of the export, worded so the one line says what failed and how. */
    private static BackupException failed(String what, IOException e) {
        if (e instanceof BackupException b) {
            return b;
        }
        String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return new BackupException(e instanceof NbdException
                ? "the NBD server failed " + what + ": " + why
                : "the NBD connection failed during " + what + " (the server is gone?): " + why, e);
    }

    @Override
    public Allocation allocation(long offset, long length) throws IOException {
        long n = Math.min(length, size() - offset);
        if (!client.metaContexts().contains(CONTEXT_BASE_ALLOCATION)) {
            return new Allocation(offset, n, Kind.DATA);
        }
        NbdClient.Extent e;
        try {
            e = client.extents(CONTEXT_BASE_ALLOCATION, offset, n).get(0);
        } catch (IOException x) {
            throw failed("a block status request at offset " + offset, x);
        }
        // a hole without the zero flag may read as anything: it is read
        Kind kind = !e.has(STATE_ZERO) ? Kind.DATA : e.has(STATE_HOLE) ? Kind.HOLE : Kind.ZERO;
        return new Allocation(offset, e.length(), kind);
    }

    @Override
    public List<Range> changedSince(String checkpoint) throws BackupException {
        throw new BackupException("an NBD export keeps no checkpoints of its own: name its dirty bitmap (--bitmap)");
    }

    /**
     * Null when the server agreed to {@code qemu:dirty-bitmap:NAME}; else why not. QEMU exports
     * no bitmap that is in_use (qemu-nbd -B refuses to start), and a bitmap's context always
     * spans the export: what is left to check is that the context is there.
     */
    @Override
    public String bitmapProblem(String name) {
        if (bitmap != null && !name.equals(bitmap)) {
            return "the NBD source was opened for bitmap '" + bitmap + "', not '" + name + "'";
        }
        if (!client.metaContexts().contains(CONTEXT_DIRTY_BITMAP_PREFIX + name)) {
            return "the NBD export offers no dirty bitmap '" + name + "' (qemu-nbd exports one with -B " + name
                    + "; libvirt's pull-mode incremental backup as backup-DISK)";
        }
        return null;
    }

    /** The dirty runs of {@code qemu:dirty-bitmap:NAME}, which must be the bitmap this source was opened with. */
    @Override
    public List<Range> changedInBitmap(String name) throws IOException {
        String context = CONTEXT_DIRTY_BITMAP_PREFIX + name;
        String problem = bitmapProblem(name);
        if (problem != null) {
            throw new BackupException(problem);
        }
        List<Range> out = new ArrayList<>();
        long size = size();
        long pos = 0;
        while (pos < size) {
            List<NbdClient.Extent> list;
            try {
                list = client.extents(context, pos, size - pos);
            } catch (IOException x) {
                throw failed("a block status request of " + context + " at offset " + pos, x);
            }
            for (NbdClient.Extent e : list) {
                if (e.has(STATE_DIRTY)) {
                    Range last = out.isEmpty() ? null : out.get(out.size() - 1);
                    if (last != null && last.end() == e.offset()) {
                        out.set(out.size() - 1, new Range(last.start(), last.length() + e.length()));
                    } else {
                        out.add(new Range(e.offset(), e.length()));
                    }
                }
                pos = e.end();
            }
        }
        return out;
    }

    @Override
    public Checkpointing checkpoints() {
        return null;
    }

    @Override
    public void close() throws IOException {
        client.close();
    }

    @Override
    public String toString() {
        return client.uri().toString();
    }
}
