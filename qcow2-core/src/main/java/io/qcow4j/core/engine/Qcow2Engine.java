package io.qcow4j.core.engine;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.bitmap.ImageBitmaps;
import io.qcow4j.core.bitmap.WriteTracking;
import io.qcow4j.core.cache.L2Cache;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.SnapshotEntry;
import io.qcow4j.core.storage.ImageLock;
import io.qcow4j.core.storage.Storage;

/**
 * One open qcow2 image's engine: it owns the image's state (header, L1 through the cluster
 * mapper, L2 cache, refcounts and allocator, files, locks, backing device, bitmaps hook) and
 * the order of its writes (see {@link #syncMetadata}). The opener, closer, first-write
 * preparation, resize, snapshots ({@link InternalSnapshots}), the backing file
 * ({@link BackingLink}), block status and amend in this package are its parts.
 *
 * <p>Not thread-safe by itself: every call holds {@link #lock()}, the monitor of the public
 * face ({@code io.qcow4j.core.Qcow2Image}) that wraps it; the face's methods take it.
 */
public final class Qcow2Engine implements Closeable {
    final Path path;
    final Storage storage;
    final Storage dataFile;
    /** The image's header ({@link #header()}, {@link #updateHeader}) and its write back to cluster 0. */
    final HeaderCluster headerCluster;
    final Geometry geo;
    final RefcountManager refcounts;
    final ClusterMapper mapper;
    final ImageIo io;
    final boolean readOnly;
    final List<SnapshotEntry> snapshotEntries;
    /** The bitmaps' hook on guest writes and the lifecycle; the bitmap format stays behind it ({@link #openBitmaps}). */
    WriteTracking bitmaps;
    /** Where warnings go ({@link OpenOptions#warnings}): bitmaps lost at close, an extension ignored. */
    final Consumer<String> warnings;
    /** QEMU's image locks on the image and its data file (none with force-share); released last on close. */
    private final List<ImageLock> locks;
    /** Opened for qemu-img check: the checker judges what the engine would refuse or repair. */
    final boolean checkMode;
    /** Guest requests cut into per-cluster steps. */
    private final GuestRanges ranges;
    private final BackingLink backingLink = new BackingLink(this);
    private final FirstWrite firstWrite = new FirstWrite();
    private boolean closed;
    /** Holes under data clusters, asked only of a metadata-preallocated image (block status). */
    final HoleQueries holes;
    /** LUKS encryption (crypt_method 2), null for a plain image. */
    final Encryption encryption;
    /** The monitor every call holds: the public face's, once one wraps this engine. */
    private Object lock = this;
    /** How the layers this engine opens (backing files, a reopen) are wrapped for callers. */
    final Faces faces;

    /**
     * The engine of an image {@link ImageOpener} has read and checked, with its parts, and its
     * {@code locks} held; the backing device is {@code io}'s.
     */
    Qcow2Engine(Path path, Storage storage, Storage dataFile, HeaderCluster headerCluster, Geometry geo,
               RefcountManager refcounts, ClusterMapper mapper, ImageIo io, List<SnapshotEntry> snapshots,
               Encryption encryption, List<ImageLock> locks, OpenOptions options, Faces faces) {
        this.path = path;
        this.storage = storage;
        this.dataFile = dataFile;
        this.headerCluster = headerCluster;
        headerCluster.guardBy(this);
        this.geo = geo;
        this.refcounts = refcounts;
        this.mapper = mapper;
        this.io = io;
        this.readOnly = options.isReadOnly();
        this.snapshotEntries = snapshots;
        this.encryption = encryption;
        this.locks = new ArrayList<>(locks);
        this.warnings = options.warnings();
        this.checkMode = options.checkMode();
        this.faces = faces;
        this.holes = new HoleQueries(storage, dataFile, geo, refcounts, encryption != null);
        this.ranges = new GuestRanges(io, mapper, geo, refcounts);
    }

    /** Creates a new image (replacing any file at {@code path}) and opens it with {@code openOptions}. */
    public static Qcow2Engine create(Path path, CreateOptions options, OpenOptions openOptions, Faces faces) throws IOException {
        ImageCreator.create(path, options, openOptions.warnings());
        if (options.luksSecret() != null && openOptions.encryptionSecret() == null) {
            openOptions.encryptionSecret(options.luksSecret());
        }
        return open(path, openOptions, faces);
    }

    /** Opens an image and its backing chain ({@code faces} wraps the chain's layers for callers). */
    public static Qcow2Engine open(Path path, OpenOptions options, Faces faces) throws IOException {
        return ImageOpener.open(path, options, new HashSet<>(), null, faces);
    }

    // ------------------------------------------------------------ properties

    public long size() {
        return header().size();
    }

    public Path path() {
        return path;
    }

    public boolean isReadOnly() {
        return readOnly;
    }

    public int clusterSize() {
        return geo.clusterSize();
    }

    public boolean extendedL2() {
        return geo.extendedL2();
    }

    public boolean isEncrypted() {
        return encryption != null;
    }

    /** The LUKS header and keyslots of an encrypted image (see {@link Keyslots}). */
    public Keyslots keyslots() {
        return new Keyslots(this);
    }

    /** The backing file this image names and reads through (see {@link BackingLink}). */
    public BackingLink backingLink() {
        return backingLink;
    }

    /** The internal snapshots: list, view, create, apply, delete (see {@link InternalSnapshots}). */
    public InternalSnapshots snapshots() {
        return new InternalSnapshots(this);
    }

    /** The parts check, repair and dump read (see {@link EngineParts}). */
    public EngineParts engineParts() {
        return new EngineParts(this, storage, dataFile, geo, refcounts, mapper, snapshotEntries);
    }

    public void rewriteHeader() throws IOException {
        ensureWritable();
        writeHeader();
        storage.flush();
    }

    // ------------------------------------------------------------ I/O

    public void read(long offset, ByteBuffer dst) throws IOException {
        ensureOpen();
        if (offset < 0) {
            throw new IllegalArgumentException("negative offset " + offset);
        }
        ranges.read(offset, dst, header().size());
    }

    /**
     * A read for a server with several connections: on a read-only image the clusters are
     * looked up under the image's lock and the data clusters read after it is released, so
     * that connections read in parallel (clusters of a read-only image never move; QEMU
     * likewise drops its lock around the data read). A writable image reads as {@link #read}.
     */
    public void readShared(long offset, ByteBuffer dst) throws IOException {
        if (!readOnly) {
            synchronized (lock) {
                read(offset, dst);
            }
            return;
        }
        List<DataRead> data;
        synchronized (lock) {
            ensureOpen();
            if (offset < 0) {
                throw new IllegalArgumentException("negative offset " + offset);
            }
            data = ranges.readPlanned(offset, dst, header().size());
        }
        for (DataRead d : data) {
            d.run();
        }
    }

    /**
     * Where guest {@code [offset, offset + length)} lies in the image file as one run of data
     * clusters, or -1 (see {@link GuestRanges#hostRun}). Only for a read-only image, whose
     * clusters never move: the caller reads the run from the file itself.
     */
    public long hostRun(long offset, long length) throws IOException {
        if (!readOnly) {
            return -1;
        }
        synchronized (lock) {
            ensureOpen();
            return ranges.hostRun(offset, length, header().size());
        }
    }

    public void write(long offset, ByteBuffer src) throws IOException {
        ensureWritable();
        long length = src.remaining();
        checkRange(offset, length);
        beforeGuestWrite(offset, length);
        try {
            writeUntracked(offset, src);
        } finally {
            // a failed write may have changed part of the range: the bitmaps record it all
            bitmaps.track(offset, length);
        }
    }

    public void writeUntracked(long offset, ByteBuffer src) throws IOException {
        ensureWritable();
        checkRange(offset, src.remaining());
        ranges.write(offset, src);
    }

    public void writeZeroes(long offset, long length) throws IOException {
        ensureWritable();
        checkRange(offset, length);
        beforeGuestWrite(offset, length);
        try {
            ranges.writeZeroes(offset, length, header().size(), zeroesWithoutData(), (o, n) -> BlockStatusWalker.readsZero(this, o, n));
        } finally {
            bitmaps.track(offset, length);
        }
    }

    public void writeZeroesUntracked(long offset, long length) throws IOException {
        ensureWritable();
        checkRange(offset, length);
        mapper.checkWritable(offset, length);
        ranges.writeZeroes(offset, length, header().size(), zeroesWithoutData(), (o, n) -> BlockStatusWalker.readsZero(this, o, n));
    }

    /** Whole clusters can read as zeros without data: zero flags (v3), or unmapped on a v2 image without a backing file (as QEMU). */
    private boolean zeroesWithoutData() {
        return header().version() >= 3 || header().backingFile() == null;
    }

    public void discard(long offset, long length) throws IOException {
        ensureWritable();
        checkRange(offset, length);
        if (header().version() < 3 && header().backingFile() != null) {
            // v2 has no zero flag: freeing would expose backing data, so like QEMU do nothing
            return;
        }
        beforeGuestWrite(offset, length);
        try {
            ranges.discard(offset, length, header().size());
        } finally {
            // QEMU dirties the whole requested range, discarded or not (failed or not)
            bitmaps.track(offset, length);
        }
    }

    public void writeCompressed(long offset, ByteBuffer src) throws IOException {
        ensureWritable();
        int n = src.remaining();
        checkRange(offset, n);
        if (!geo.aligned(offset) || n == 0 || (n % geo.clusterSize() != 0 && offset + n != header().size())) {
            throw new IllegalArgumentException("Compressed writes must cover whole clusters");
        }
        beforeGuestWrite(offset, n);
        try {
            io.writeCompressed(offset, src);
        } finally {
            bitmaps.track(offset, n);
        }
    }

    public BlockStatus blockStatus(long offset, long length) throws IOException {
        ensureOpen();
        return BlockStatusWalker.status(this, offset, length);
    }

    public BlockStatus ownStatus(long offset, long length) throws IOException {
        ensureOpen();
        return BlockStatusWalker.own(this, offset, length);
    }

    /**
     * Makes every write acknowledged so far durable (the data, then the L2 updates waiting
     * in the cache, each step flushed): they survive a crash from now on.
     */
    public void flush() throws IOException {
        ensureOpen();
        if (!readOnly) {
            syncMetadata();
            // the flush made the stores' header switches durable: the old bitmap clusters
            // go now (their lowered refcounts reach the disk with the next flush)
            bitmaps.releaseDeferredFrees();
            refcounts.applyPendingFrees();
        }
    }

    /**
     * Makes everything written so far durable, in the order a power failure needs: a flush
     * (guest data, new refcounts and new metadata clusters reach the disk), then the L2
     * entries that waited in the cache are written and flushed (so no entry on disk ever
     * names a cluster whose refcount or data is not there yet), then the refcounts of what
     * those entries stopped referencing are lowered (so no refcount on disk drops while a
     * reference on disk still needs it; they reach the disk with the next flush). Two
     * flushes at most, however much was written; one when no L2 entry waited. Returns
     * whether refcounts were lowered (not flushed yet).
     */
    boolean syncMetadata() throws IOException {
        synchronized (lock) {
            storage.flush();
            if (dataFile != null) {
                dataFile.flush();
            }
            L2Cache cache = mapper.cache();
            if (cache.hasDirty()) {
                cache.writeBack();
                storage.flush();
            }
            return refcounts.applyPendingFrees();
        }
    }

    public void resize(long newSize) throws IOException {
        ImageResizer.resize(this, newSize, false);
    }

    public void resizeDiscarding(long newSize) throws IOException {
        ImageResizer.resize(this, newSize, true);
    }

    public void growPreallocated(long newSize, CreateOptions.Preallocation mode) throws IOException {
        ImageResizer.resizePreallocated(this, newSize, mode);
    }

    /** The image's bitmaps, for the bitmaps module (the engine itself sees only its hook). */
    public ImageBitmaps bitmaps() {
        return bitmaps == null ? null : bitmaps.bitmaps();
    }

    public void storeBitmaps() throws IOException {
        ensureWritable();
        bitmaps.store();
    }

    /**
     * Opens the bitmaps' hook on this image's bitmap directory (the opener, once, before any
     * write; in check mode the checker judges the directory itself, as qemu-img check does).
     */
    void openBitmaps(OpenOptions options) throws IOException {
        bitmaps = WriteTracking.open(storage, refcounts, headerCluster, readOnly, options.warnings(),
                options.sizeMismatchBitmapsInconsistent(), options.checkMode());
    }

    /** QEMU's image locks, in the order taken. */
    List<ImageLock> locks() {
        return List.copyOf(locks);
    }

    /**
     * The locks, handed over to the engine an amend reopens in this one's place: this engine's
     * close no longer releases them.
     */
    List<ImageLock> handOverLocks() {
        List<ImageLock> held = new ArrayList<>(locks);
        locks.clear();
        return held;
    }

    /** Closes under the lock: an amend closes the engine it reopened, with no face call around it. */
    public void close() throws IOException {
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
            ImageCloser.close(this);
        }
    }

    /** The image's header as it stands (immutable: a later change makes a new one). */
    public Header header() {
        return headerCluster.header();
    }

    /**
     * The one place the header changes: replaces it by {@code change} applied to it, in
     * memory only; the caller writes it ({@link #rewriteHeader}, or one field in place) when
     * its write ordering allows. Returns the new header.
     */
    public Header updateHeader(UnaryOperator<Header> change) {
        return headerCluster.updateHeader(change);
    }

    // ------------------------------------------------------------ internals

    void writeHeader() throws IOException {
        headerCluster.writeHeader();
    }

    /** The monitor every call must hold (the face's); see the class comment. */
    public Object lock() {
        return lock;
    }

    /** Called once by the face that wraps this engine: its monitor guards the engine from now on. */
    public void bind(Object face) {
        if (lock != this) {
            throw new IllegalStateException("engine already has a face");
        }
        lock = face;
        headerCluster.guardBy(face);
    }

    /** The face wrapping this engine, as the layers above see it. */
    public BlockDevice face() {
        return lock instanceof BlockDevice d ? d : null;
    }

    GuestRanges ranges() {
        return ranges;
    }

    void ensureOpen() throws IOException {
        if (closed) {
            throw new IOException("Image is closed");
        }
    }

    void ensureWritable() throws IOException {
        ensureOpen();
        if (readOnly) {
            throw new IOException("Image is read-only");
        }
        prepareForWrite();
    }

    /** Before the first write of anything (see {@link FirstWrite}). */
    void prepareForWrite() throws IOException {
        firstWrite.prepare(this);
    }

    /** A broken L2 table refuses the write before in_use is set (the file stays unchanged). */
    private void beforeGuestWrite(long offset, long length) throws IOException {
        mapper.checkWritable(offset, length);
        bitmaps.beforeGuestWrite();
    }

    private void checkRange(long offset, long length) {
        if (offset < 0 || length < 0 || offset > header().size() || length > header().size() - offset) {
            throw new IllegalArgumentException("Request out of range: offset " + offset + ", length " + length
                    + " (image size " + header().size() + ")");
        }
    }
}
