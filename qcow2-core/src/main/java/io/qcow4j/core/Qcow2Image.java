package io.qcow4j.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.function.Consumer;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.core.api.CompressionType;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.bitmap.BitmapManager;
import io.qcow4j.core.cache.L2Cache;
import io.qcow4j.core.crypto.Luks;
import io.qcow4j.core.crypto.LuksHeader;
import io.qcow4j.core.engine.ClusterMapper;
import io.qcow4j.core.engine.DataRead;
import io.qcow4j.core.engine.Geometry;
import io.qcow4j.core.engine.GuestRanges;
import io.qcow4j.core.engine.ImageIo;
import io.qcow4j.core.format.CompressedDescriptor;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HeaderExtension;
import io.qcow4j.core.format.SnapshotEntry;
import io.qcow4j.core.storage.FileStorage;
import io.qcow4j.core.storage.HostFile;
import io.qcow4j.core.storage.ImageLock;
import io.qcow4j.core.storage.Storage;

/**
 * A qcow2 image: the public face of the engine.
 *
 * <p>Threads: every public method holds the image's lock, so one image may be shared
 * between threads, one request at a time: calls from several threads, to disjoint or
 * overlapping ranges, with flushes and bitmap stores between, behave as if made in the
 * order they took the lock. Objects handed out ({@link #bitmaps()} and its bitmaps,
 * {@link #engineParts()}) do not lock: while other threads use the image, call them inside
 * {@code synchronized (image)}. Two images open on one file are refused by the file lock
 * (one writer, or several readers).
 *
 * <p>Durability: what {@link #flush()} or {@link #close()} returned for survives a killed
 * process or a power failure. A write acknowledged since (its L2 update may still wait in
 * the cache) may be lost by a crash; the image is then still consistent, at worst with
 * leaked clusters. A failed write or flush is an {@link IOException}.
 *
 * <pre>{@code
 * try (Qcow2Image img = Qcow2Image.create(path, CreateOptions.size(1L << 30))) {
 *     img.write(0, ByteBuffer.wrap(data));
 * }
 * try (Qcow2Image img = Qcow2Image.open(path, OpenOptions.readOnly())) {
 *     img.read(0, buffer);
 * }
 * }</pre>
 */
public final class Qcow2Image implements BlockDevice {
    final Path path;
    final Storage storage;
    final Storage dataFile;
    final Header header;
    final Geometry geo;
    final RefcountManager refcounts;
    final ClusterMapper mapper;
    final ImageIo io;
    final boolean readOnly;
    final List<SnapshotEntry> snapshotEntries;
    BlockDevice backing;
    BitmapManager bitmaps;
    /** Where warnings go ({@link OpenOptions#warnings}): bitmaps lost at close, an extension ignored. */
    Consumer<String> warnings = w -> { };
    /** QEMU's image locks on the image and its data file (none with force-share); released last on close. */
    final List<ImageLock> locks = new ArrayList<>(2);
    boolean checkMode;
    /** Guest requests cut into per-cluster steps. */
    private final GuestRanges ranges;
    private final FirstWrite firstWrite = new FirstWrite();
    private boolean closed;
    /** QEMU's guess, made once at the first block status: clusters allocated but mostly holes in the file. */
    private Boolean metadataPreallocated;
    /** The data's host file for hole queries (metadata preallocation only), or null. */
    HostFile holes;
    /** LUKS encryption (crypt_method 2), null for a plain image. */
    Encryption encryption;

    Qcow2Image(Path path, Storage storage, Storage dataFile, Header header, Geometry geo,
               RefcountManager refcounts, ClusterMapper mapper, ImageIo io, boolean readOnly,
               List<SnapshotEntry> snapshots, BlockDevice backing) {
        this.path = path;
        this.storage = storage;
        this.dataFile = dataFile;
        this.header = header;
        this.geo = geo;
        this.refcounts = refcounts;
        this.mapper = mapper;
        this.io = io;
        this.readOnly = readOnly;
        this.snapshotEntries = snapshots;
        this.backing = backing;
        this.ranges = new GuestRanges(io, mapper, geo, refcounts);
    }

    /** Creates a new image (replacing any file at {@code path}) and opens it read-write. */
    public static Qcow2Image create(Path path, CreateOptions options) throws IOException {
        return create(path, options, OpenOptions.readWrite());
    }

    /** Creates a new image and opens it with {@code openOptions} (e.g. without its backing chain). */
    public static Qcow2Image create(Path path, CreateOptions options, OpenOptions openOptions) throws IOException {
        ImageCreator.create(path, options);
        if (options.luksSecret() != null && openOptions.encryptionSecret() == null) {
            openOptions.encryptionSecret(options.luksSecret());
        }
        return open(path, openOptions);
    }

    public static Qcow2Image open(Path path, OpenOptions options) throws IOException {
        return ImageOpener.open(path, options, new HashSet<>());
    }

    // ------------------------------------------------------------ properties

    @Override
    public synchronized long size() {
        return header.size;
    }

    @Override
    public String formatName() {
        return "qcow2";
    }

    @Override
    public Path path() {
        return path;
    }

    public boolean isReadOnly() {
        return readOnly;
    }

    public int version() {
        return header.version;
    }

    public int clusterSize() {
        return geo.clusterSize();
    }

    public int refcountBits() {
        return header.refcountBits();
    }

    public CompressionType compressionType() {
        return CompressionType.fromCode(header.compressionType);
    }

    public boolean lazyRefcounts() {
        return (header.compatibleFeatures & Header.COMPAT_LAZY_REFCOUNTS) != 0;
    }

    public boolean isCorrupt() {
        return header.hasIncompatible(Header.INCOMPAT_CORRUPT);
    }

    public boolean isDirty() {
        return header.hasIncompatible(Header.INCOMPAT_DIRTY);
    }

    public boolean extendedL2() {
        return geo.extendedL2();
    }

    /** Whether guest data is encrypted (LUKS, crypt_method 2). */
    public boolean isEncrypted() {
        return encryption != null;
    }

    /**
     * qemu-img amend -o encrypt.state=active,encrypt.new-secret=...: puts the master key in
     * keyslot {@code slot} (-1: the first free one) under {@code passphrase}, its PBKDF2
     * iterations what qcow4j runs in {@code iterTimeMillis}. Refusals are AmendExceptions
     * in QEMU's words, before anything is written.
     */
    public synchronized void addLuksKeyslot(byte[] passphrase, int slot, int iterTimeMillis) throws IOException {
        ensureOpen();
        Keyslots.add(this, passphrase, slot, iterTimeMillis);
    }

    /**
     * qemu-img amend -o encrypt.state=inactive: erases keyslot {@code slot}, or (slot -1)
     * every active one {@code oldPassphrase} opens; the last active one only with {@code force}.
     */
    public synchronized void eraseLuksKeyslots(int slot, byte[] oldPassphrase, boolean force) throws IOException {
        ensureOpen();
        Keyslots.erase(this, slot, oldPassphrase, force);
    }

    /** The LUKS header of an encrypted image (as read at open), or null. */
    public LuksHeader luksHeader() {
        return encryption == null ? null : encryption.luks;
    }

    /** Data file name as recorded in the image, or null. */
    public String dataFile() {
        return header.stringExtension(HeaderExtension.EXTERNAL_DATA_FILE);
    }

    public boolean dataFileRaw() {
        return (header.autoclearFeatures & Header.AUTOCLEAR_DATA_FILE_RAW) != 0;
    }

    /** Backing file name as recorded in the image, or null. */
    public String backingFile() {
        return header.backingFile;
    }

    /** Backing format from the header extension, or null. */
    public String backingFormat() {
        return header.stringExtension(HeaderExtension.BACKING_FORMAT);
    }

    /** The opened backing device, or null. */
    public BlockDevice backing() {
        return backing;
    }

    /** A copy of the parsed header, for inspection. */
    public synchronized Header header() throws IOException {
        return ImageOpener.readHeader(storage);
    }

    public synchronized List<Snapshot> snapshots() {
        List<Snapshot> out = new ArrayList<>();
        for (SnapshotEntry e : snapshotEntries) {
            out.add(new Snapshot(e.id, e.name, e.vmStateSize, e.dateSec, e.dateNsec, e.vmClockNsec,
                    e.diskSize, e.icount));
        }
        return Collections.unmodifiableList(out);
    }

    /**
     * Read-only view of an internal snapshot's disk, by id, else by name (QEMU's order).
     * It must not be read after the snapshot is deleted.
     */
    public synchronized BlockDevice snapshot(String idOrName) throws IOException {
        int i = InternalSnapshots.find(snapshotEntries, idOrName);
        if (i < 0) {
            throw new IllegalArgumentException("Can't find snapshot '" + idOrName + "'");
        }
        SnapshotEntry e = snapshotEntries.get(i);
        long[] l1 = ClusterMapper.readL1(storage, geo, e.l1TableOffset, e.l1Size, "snapshot L1 table");
        long size = e.diskSize >= 0 ? e.diskSize : header.size;
        return new SnapshotView(this, l1, e.l1TableOffset, size);
    }

    /**
     * Takes an internal snapshot of the disk as it is now, as {@code qemu-img snapshot -c}:
     * the next free numeric id, the time of day, icount 0, no VM state. Names may repeat,
     * as qemu-img allows. Refused ({@link SnapshotException}) with an external data file,
     * past 65536 snapshots, or when a refcount would overflow (refcount_bits=1 holds no
     * shared cluster), before anything changes.
     */
    public synchronized Snapshot createSnapshot(String name) throws IOException {
        ensureWritable();
        return new InternalSnapshots(this).create(name, java.time.Instant.now());
    }

    /**
     * Reverts the disk to an internal snapshot (by id, else by name), its size included,
     * as {@code qemu-img snapshot -a}; the snapshot stays. Refused while dirty bitmaps exist.
     */
    public synchronized Snapshot applySnapshot(String idOrName) throws IOException {
        ensureWritable();
        return new InternalSnapshots(this).apply(idOrName);
    }

    /** Deletes an internal snapshot (by id, else by name) and frees what only it held. */
    public synchronized Snapshot deleteSnapshot(String idOrName) throws IOException {
        ensureWritable();
        return new InternalSnapshots(this).delete(idOrName);
    }

    /** Internal parts for check, repair and dump (see {@link EngineParts}). */
    public EngineParts engineParts() {
        return new EngineParts(this, storage, dataFile, header, geo, refcounts, mapper, snapshotEntries);
    }

    /** Rewrites the header from its in-memory state (after a repair changed it). */
    public synchronized void rewriteHeader() throws IOException {
        ensureWritable();
        writeHeader();
        storage.flush();
    }

    // ------------------------------------------------------------ I/O

    @Override
    public synchronized void read(long offset, ByteBuffer dst) throws IOException {
        ensureOpen();
        if (offset < 0) {
            throw new IllegalArgumentException("negative offset " + offset);
        }
        ranges.read(offset, dst, header.size);
    }

    /**
     * A read for a server with several connections: on a read-only image the clusters are
     * looked up under the image's lock and the data clusters read after it is released, so
     * that connections read in parallel (clusters of a read-only image never move; QEMU
     * likewise drops its lock around the data read). A writable image reads as {@link #read}.
     */
    public void readShared(long offset, ByteBuffer dst) throws IOException {
        if (!readOnly) {
            read(offset, dst);
            return;
        }
        List<DataRead> data;
        synchronized (this) {
            ensureOpen();
            if (offset < 0) {
                throw new IllegalArgumentException("negative offset " + offset);
            }
            data = ranges.readPlanned(offset, dst, header.size);
        }
        for (DataRead d : data) {
            d.run();
        }
    }

    public synchronized void write(long offset, ByteBuffer src) throws IOException {
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

    /** A write that no bitmap records (stream copies data that does not change the guest's view). */
    public synchronized void writeUntracked(long offset, ByteBuffer src) throws IOException {
        ensureWritable();
        checkRange(offset, src.remaining());
        ranges.write(offset, src);
    }

    /**
     * Makes a range read as zeros: zero flags for whole clusters (v3; a v2 image without a
     * backing file unmaps them, as QEMU does), zero data elsewhere; as in QEMU, a partly
     * covered cluster that maps no data and otherwise reads as zeros becomes a zero cluster too.
     */
    public synchronized void writeZeroes(long offset, long length) throws IOException {
        ensureWritable();
        checkRange(offset, length);
        beforeGuestWrite(offset, length);
        try {
            ranges.writeZeroes(offset, length, header.size, zeroesWithoutData(), (o, n) -> BlockStatusWalker.readsZero(this, o, n));
        } finally {
            bitmaps.track(offset, length);
        }
    }

    /**
     * {@link #writeZeroes} that no bitmap records: for the new range of a grown disk, which
     * must read as zeros rather than as the longer backing file's data.
     */
    public synchronized void writeZeroesUntracked(long offset, long length) throws IOException {
        ensureWritable();
        checkRange(offset, length);
        mapper.checkWritable(offset, length);
        ranges.writeZeroes(offset, length, header.size, zeroesWithoutData(), (o, n) -> BlockStatusWalker.readsZero(this, o, n));
    }

    /** Whole clusters can read as zeros without data: zero flags (v3), or unmapped on a v2 image without a backing file (as QEMU). */
    private boolean zeroesWithoutData() {
        return version() >= 3 || header.backingFile == null;
    }

    /**
     * Frees whole clusters inside the range; a partly covered cluster is left as it is.
     * On an overlay the freed clusters read as zeros rather than backing data; on a v2
     * overlay, which cannot say so, discard does nothing (as in QEMU).
     */
    public synchronized void discard(long offset, long length) throws IOException {
        ensureWritable();
        checkRange(offset, length);
        if (header.version < 3 && header.backingFile != null) {
            // v2 has no zero flag: freeing would expose backing data, so like QEMU do nothing
            return;
        }
        beforeGuestWrite(offset, length);
        try {
            ranges.discard(offset, length, header.size);
        } finally {
            // QEMU dirties the whole requested range, discarded or not (failed or not)
            bitmaps.track(offset, length);
        }
    }

    /**
     * Writes whole clusters compressed: {@code offset} cluster-aligned, {@code src} whole
     * clusters or ending at the disk's end. The clusters are compressed on every core; one
     * that does not shrink is written plain, as QEMU writes it.
     */
    public synchronized void writeCompressed(long offset, ByteBuffer src) throws IOException {
        ensureWritable();
        int n = src.remaining();
        checkRange(offset, n);
        if (!geo.aligned(offset) || n == 0 || (n % geo.clusterSize() != 0 && offset + n != header.size)) {
            throw new IllegalArgumentException("Compressed writes must cover whole clusters");
        }
        beforeGuestWrite(offset, n);
        try {
            io.writeCompressed(offset, src);
        } finally {
            bitmaps.track(offset, n);
        }
    }

    @Override
    public synchronized BlockStatus blockStatus(long offset, long length) throws IOException {
        ensureOpen();
        return BlockStatusWalker.status(this, offset, length);
    }

    /**
     * What this layer alone maps at {@code offset} (QEMU's bdrv_is_allocated): allocated
     * for data, zero or compressed clusters, for a run of clusters of one kind within one
     * L2 table; depth 0, no host offset. The backing file is not consulted.
     */
    public synchronized BlockStatus ownStatus(long offset, long length) throws IOException {
        ensureOpen();
        return BlockStatusWalker.own(this, offset, length);
    }

    /**
     * Makes every write acknowledged so far durable (the data, then the L2 updates waiting
     * in the cache, each step flushed): they survive a crash from now on.
     */
    public synchronized void flush() throws IOException {
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
    synchronized boolean syncMetadata() throws IOException {
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

    /**
     * Grows the disk, or shrinks it when no whole cluster past the new end maps data.
     * Whatever the new range held before (the tail of the cluster an earlier shrink cut
     * through, a longer backing file's data) reads as zeros after a grow; see
     * {@link ImageResizer} for the order of the writes.
     */
    public synchronized void resize(long newSize) throws IOException {
        resize(newSize, false);
    }

    /**
     * Resizes as {@code qemu-img resize --shrink} does: when shrinking, the clusters past
     * the new end are freed (their data is lost) and the file is cut after the last
     * cluster still in use.
     */
    public synchronized void resizeDiscarding(long newSize) throws IOException {
        resize(newSize, true);
    }

    private void resize(long newSize, boolean discard) throws IOException {
        ensureWritable();
        if (newSize < 0) {
            throw new IllegalArgumentException("Image size must be non-negative");
        }
        ImageResizer.checkResizable(this, newSize);
        if (newSize < header.size) {
            if (!discard) {
                ImageResizer.checkShrinkable(this, newSize);
            }
            ImageResizer.shrink(this, newSize);
        } else if (newSize > header.size) {
            ImageResizer.grow(this, newSize, false);
        }
    }

    /**
     * Grows the disk as {@code qemu-img resize --preallocation=MODE}: the new whole clusters
     * mapped (metadata), and given real zero bytes (falloc, full).
     */
    public synchronized void growPreallocated(long newSize, CreateOptions.Preallocation mode) throws IOException {
        ensureWritable();
        if (newSize < header.size) {
            throw new IOException("Preallocation can only be used for growing images");
        }
        ImageResizer.checkResizable(this, newSize);
        if (mode == CreateOptions.Preallocation.OFF) {
            resize(newSize);
        } else if (newSize > header.size) {
            ImageResizer.growPreallocated(this, newSize, mode);
        }
    }

    /** Gives a new, empty image its size: nothing is zeroed, the backing file shows through. */
    synchronized void setInitialSize(long size) throws IOException {
        ensureWritable();
        if (size > header.size) {
            ImageResizer.grow(this, size, true);
        }
    }

    /**
     * Empties the image's own layer, as qemu-img commit does after committing: every
     * cluster becomes unallocated, so the backing file shows through. The guest's view
     * through the chain is unchanged by that, so no bitmap records it.
     */
    public synchronized void makeEmpty() throws IOException {
        ensureWritable();
        ranges.unmapAll(header.size);
        syncMetadata();
    }

    /**
     * Records a new backing file (null: none) in the header and reads through
     * {@code device} from now on; the caller made sure the guest's view stays right
     * (rebase, stream) or wants it changed (rebase -u).
     */
    public synchronized void setBackingFile(String name, String format, BlockDevice device) throws IOException {
        ensureWritable();
        if (name != null && dataFileRaw()) {
            throw new IllegalArgumentException("Backing file and data-file-raw cannot be used at the same time");
        }
        // what the top now holds itself (stream, rebase) is durable before the header relies on it
        syncMetadata();
        header.backingFile = name;
        header.setExtension(HeaderExtension.BACKING_FORMAT,
                name == null || format == null ? null : HeaderExtension.ofString(HeaderExtension.BACKING_FORMAT, format).data());
        writeHeader();
        storage.flush();
        attachBacking(device);
    }

    /** Reads through {@code device} as the backing file (no header change): for reopening layers. */
    public synchronized void attachBacking(BlockDevice device) {
        this.backing = device;
        io.setBacking(device);
    }

    /** Stops using the backing device without closing it, and returns it (the caller owns it now). */
    public synchronized BlockDevice detachBacking() {
        BlockDevice b = backing;
        attachBacking(null);
        return b;
    }

    /** The image's dirty bitmaps (persistent ones from the bitmap directory, and transient ones). */
    public BitmapManager bitmaps() {
        return bitmaps;
    }

    /**
     * Stores every changed persistent bitmap now and clears their in_use flags (set again
     * before the next guest write): a checkpoint, or a hand-over to another process.
     * The bitmap data reaches the disk before the header switch that clears in_use; the
     * switch itself is durable at the next {@link #flush()} or {@link #close()} (lost to a
     * power failure before that, the bitmaps read as in_use again: inconsistent, never wrong).
     */
    public synchronized void storeBitmaps() throws IOException {
        ensureWritable();
        bitmaps.store();
    }

    /** The warnings sink this image was opened with. */
    public Consumer<String> warnings() {
        return warnings;
    }

    /**
     * Stores the persistent bitmaps (see {@link #storeBitmaps}) and closes the image and its
     * backing chain. Transient bitmaps are dropped, each with a warning.
     */
    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        ImageCloser.close(this);
    }

    /** A channel over the virtual disk, positioned at 0; closing it leaves the image open. */
    public SeekableByteChannel channel() {
        return new Qcow2Channel(this);
    }

    // ------------------------------------------------------------ internals

    /**
     * Makes a new, empty image LUKS-encrypted: the header area in new clusters, then the
     * header names it (crypt_method 2 and the header pointer extension) in one write.
     */
    synchronized void initEncryption(Luks.Created luks) throws IOException {
        ensureWritable();
        byte[] area = luks.area();
        int clusters = (int) ((area.length + (long) geo.clusterSize() - 1) / geo.clusterSize());
        long offset = refcounts.allocate(clusters, false);
        storage.write(offset, ByteBuffer.wrap(area));
        storage.flush();
        ByteBuffer ext = ByteBuffer.allocate(16).putLong(0, offset).putLong(8, area.length);
        header.cryptMethod = Encryption.CRYPT_LUKS;
        header.setExtension(HeaderExtension.FULL_DISK_ENCRYPTION, ext.array());
        writeHeader();
        storage.flush();
    }

    synchronized void writeHeader() throws IOException {
        byte[] bytes = header.serialize();
        storage.write(0, ByteBuffer.wrap(bytes));
    }

    void l1Moved(long offset, int entries) throws IOException {
        header.l1TableOffset = offset;
        header.l1Size = entries;
        writeHeader();
        storage.flush();
    }

    void refcountTableMoved(long offset, int clusters) throws IOException {
        header.refcountTableOffset = offset;
        header.refcountTableClusters = clusters;
        writeHeader();
        storage.flush();
    }

    /**
     * As QEMU decides whether an image is metadata-preallocated: more clusters with a
     * refcount than the file occupies on disk (by a ninth, and at least two). Only then
     * does block status ask the file system about holes under data clusters.
     */
    boolean metadataPreallocated() throws IOException {
        if (metadataPreallocated == null) {
            metadataPreallocated = false;
            if (encryption != null) {
                // a hole under an encrypted cluster is not zeros once decrypted: never report it as zero
                return false;
            }
            long blocks = storage instanceof FileStorage f ? HostFile.blocks(f.path()) : -1;
            if (blocks >= 0) {
                long realClusters = blocks * 512 / geo.clusterSize();
                long threshold = Math.max(realClusters * 10 / 9, realClusters + 2);
                long end = (storage.length() + geo.clusterSize() - 1) / geo.clusterSize();
                long count = 0;
                for (long c = 0; c < end && count <= threshold; c++) {
                    if (refcounts.get(c) != 0) {
                        count++;
                    }
                }
                Storage data = dataFile != null ? dataFile : storage;
                if (count > threshold && data instanceof FileStorage f) {
                    holes = HostFile.open(f.path());
                    metadataPreallocated = holes != null;
                }
            }
        }
        return metadataPreallocated;
    }

    boolean isClosed() {
        return closed;
    }

    private void ensureOpen() throws IOException {
        if (closed) {
            throw new IOException("Image is closed");
        }
    }

    private void ensureWritable() throws IOException {
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
        if (offset < 0 || length < 0 || offset > header.size || length > header.size - offset) {
            throw new IllegalArgumentException("Request out of range: offset " + offset + ", length " + length
                    + " (image size " + header.size + ")");
        }
    }

    static void zeroFill(ByteBuffer b) {
        while (b.hasRemaining()) {
            b.put((byte) 0);
        }
    }

    /** Host byte range a compressed entry occupies (for inspection tools). */
    public static long compressedHostOffset(long entry, int clusterBits) {
        return CompressedDescriptor.hostOffset(entry, clusterBits);
    }
}
