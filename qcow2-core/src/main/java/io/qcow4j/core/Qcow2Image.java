package io.qcow4j.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Consumer;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.core.api.CompressionType;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.FileImage;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.api.SnapshotException;
import io.qcow4j.core.bitmap.ImageBitmaps;
import io.qcow4j.core.crypto.LuksHeader;
import io.qcow4j.core.engine.EngineParts;
import io.qcow4j.core.engine.Faces;
import io.qcow4j.core.engine.Qcow2Engine;
import io.qcow4j.core.format.CompressedDescriptor;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.SnapshotEntry;

/**
 * A qcow2 image: the public face of its {@link Qcow2Engine}, which owns the image's state
 * and the order of its writes.
 *
 * <p>Threads: every public method holds the image's lock, so one image may be shared
 * between threads, one request at a time: calls from several threads, to disjoint or
 * overlapping ranges, with flushes and bitmap stores between, behave as if made in the
 * order they took the lock. Objects handed out ({@link #bitmaps()} and its bitmaps,
 * {@link #engineParts()}, {@link #engine()}) do not lock: while other threads use the image,
 * call them inside {@code synchronized (image)}. Two images open on one file are refused by
 * the file lock (one writer, or several readers).
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
public final class Qcow2Image implements FileImage {
    /** The engine opens backing files: a qcow2 layer gets this face, a raw one a RawImage. */
    private static final Faces FACES = new Faces() {
        @Override
        public BlockDevice qcow2(Qcow2Engine engine) {
            return new Qcow2Image(engine);
        }

        @Override
        public BlockDevice raw(Path file, boolean readOnly, boolean forceShare, Path name) throws IOException {
            return RawImage.open(file, readOnly, forceShare, name);
        }
    };

    private final Qcow2Engine engine;

    private Qcow2Image(Qcow2Engine engine) {
        this.engine = engine;
        engine.bind(this);
    }

    /** Creates a new image (replacing any file at {@code path}) and opens it read-write. */
    public static Qcow2Image create(Path path, CreateOptions options) throws IOException {
        return create(path, options, OpenOptions.readWrite());
    }

    /** Creates a new image and opens it with {@code openOptions} (e.g. without its backing chain). */
    public static Qcow2Image create(Path path, CreateOptions options, OpenOptions openOptions) throws IOException {
        return (Qcow2Image) Qcow2Engine.create(path, options, openOptions, FACES).face();
    }

    public static Qcow2Image open(Path path, OpenOptions options) throws IOException {
        return (Qcow2Image) Qcow2Engine.open(path, options, FACES).face();
    }

    // ------------------------------------------------------------ properties

    @Override
    public synchronized long size() {
        return engine.size();
    }

    @Override
    public String formatName() {
        return "qcow2";
    }

    @Override
    public Path path() {
        return engine.path();
    }

    @Override
    public boolean isReadOnly() {
        return engine.isReadOnly();
    }

    public int version() {
        return engine.version();
    }

    public int clusterSize() {
        return engine.clusterSize();
    }

    public int refcountBits() {
        return engine.refcountBits();
    }

    public CompressionType compressionType() {
        return engine.compressionType();
    }

    public boolean lazyRefcounts() {
        return engine.lazyRefcounts();
    }

    public boolean isCorrupt() {
        return engine.isCorrupt();
    }

    public boolean isDirty() {
        return engine.isDirty();
    }

    public boolean extendedL2() {
        return engine.extendedL2();
    }

    /** Whether guest data is encrypted (LUKS, crypt_method 2). */
    public boolean isEncrypted() {
        return engine.isEncrypted();
    }

    /**
     * qemu-img amend -o encrypt.state=active,encrypt.new-secret=...: puts the master key in
     * keyslot {@code slot} (-1: the first free one) under {@code passphrase}, its PBKDF2
     * iterations what qcow4j runs in {@code iterTimeMillis}. Refusals are AmendExceptions
     * in QEMU's words, before anything is written.
     */
    public synchronized void addLuksKeyslot(byte[] passphrase, int slot, int iterTimeMillis) throws IOException {
        engine.addLuksKeyslot(passphrase, slot, iterTimeMillis);
    }

    /**
     * qemu-img amend -o encrypt.state=inactive: erases keyslot {@code slot}, or (slot -1)
     * every active one {@code oldPassphrase} opens; the last active one only with {@code force}.
     */
    public synchronized void eraseLuksKeyslots(int slot, byte[] oldPassphrase, boolean force) throws IOException {
        engine.eraseLuksKeyslots(slot, oldPassphrase, force);
    }

    /** The LUKS header of an encrypted image (as read at open), or null. */
    public LuksHeader luksHeader() {
        return engine.luksHeader();
    }

    /** Data file name as recorded in the image, or null. */
    public String dataFile() {
        return engine.dataFile();
    }

    public boolean dataFileRaw() {
        return engine.dataFileRaw();
    }

    /** Backing file name as recorded in the image, or null. */
    public String backingFile() {
        return engine.backingFile();
    }

    /** Backing format from the header extension, or null. */
    public String backingFormat() {
        return engine.backingFormat();
    }

    /** The opened backing device, or null. */
    public BlockDevice backing() {
        return engine.backing();
    }

    /** A copy of the parsed header, for inspection. */
    public synchronized Header header() throws IOException {
        return engine.headerCopy();
    }

    public synchronized List<Snapshot> snapshots() {
        List<Snapshot> out = new ArrayList<>();
        for (SnapshotEntry e : engine.snapshotEntries()) {
            out.add(toSnapshot(e));
        }
        return Collections.unmodifiableList(out);
    }

    /**
     * Read-only view of an internal snapshot's disk, by id, else by name (QEMU's order).
     * It must not be read after the snapshot is deleted.
     */
    public synchronized BlockDevice snapshot(String idOrName) throws IOException {
        return engine.snapshot(idOrName);
    }

    /**
     * Takes an internal snapshot of the disk as it is now, as {@code qemu-img snapshot -c}:
     * the next free numeric id, the time of day, icount 0, no VM state. Names may repeat,
     * as qemu-img allows. Refused ({@link SnapshotException}) with an external data file,
     * past 65536 snapshots, or when a refcount would overflow (refcount_bits=1 holds no
     * shared cluster), before anything changes.
     */
    public synchronized Snapshot createSnapshot(String name) throws IOException {
        return toSnapshot(engine.createSnapshot(name));
    }

    /**
     * Reverts the disk to an internal snapshot (by id, else by name), its size included,
     * as {@code qemu-img snapshot -a}; the snapshot stays. Refused while dirty bitmaps exist.
     */
    public synchronized Snapshot applySnapshot(String idOrName) throws IOException {
        return toSnapshot(engine.applySnapshot(idOrName));
    }

    /** Deletes an internal snapshot (by id, else by name) and frees what only it held. */
    public synchronized Snapshot deleteSnapshot(String idOrName) throws IOException {
        return toSnapshot(engine.deleteSnapshot(idOrName));
    }

    private static Snapshot toSnapshot(SnapshotEntry e) {
        return new Snapshot(e.id, e.name, e.vmStateSize, e.dateSec, e.dateNsec, e.vmClockNsec, e.diskSize, e.icount);
    }

    /** The engine under this face, for check, repair and dump (not a stable API; see the class comment). */
    public Qcow2Engine engine() {
        return engine;
    }

    /** Internal parts for check, repair and dump (see {@link EngineParts}). */
    public EngineParts engineParts() {
        return engine.engineParts();
    }

    /** Rewrites the header from its in-memory state (after a repair changed it). */
    public synchronized void rewriteHeader() throws IOException {
        engine.rewriteHeader();
    }

    // ------------------------------------------------------------ I/O: see Qcow2Engine for how

    @Override
    public synchronized void read(long offset, ByteBuffer dst) throws IOException {
        engine.read(offset, dst);
    }

    /**
     * A read for a server with several connections: on a read-only image the clusters are
     * looked up under the image's lock and the data clusters read after it is released, so
     * that connections read in parallel (clusters of a read-only image never move; QEMU
     * likewise drops its lock around the data read). A writable image reads as {@link #read}.
     */
    public void readShared(long offset, ByteBuffer dst) throws IOException {
        engine.readShared(offset, dst);
    }

    /**
     * Where guest {@code [offset, offset + length)} lies in the image file ({@link #path()}) as
     * one run of this image's data clusters, for a caller that reads it from the file itself
     * (convert maps it); -1 when it does not (another kind of cluster, not one run, an
     * external data file, encryption, an image open for writing).
     */
    public long hostRun(long offset, long length) throws IOException {
        return engine.hostRun(offset, length);
    }

    /** Writes {@code src} at {@code offset}; every enabled bitmap records the range. */
    @Override
    public synchronized void write(long offset, ByteBuffer src) throws IOException {
        engine.write(offset, src);
    }

    /** A write that no bitmap records (stream copies data that does not change the guest's view). */
    public synchronized void writeUntracked(long offset, ByteBuffer src) throws IOException {
        engine.writeUntracked(offset, src);
    }

    /**
     * Makes a range read as zeros: zero flags for whole clusters (v3; a v2 image without a
     * backing file unmaps them, as QEMU does), zero data elsewhere; as in QEMU, a partly
     * covered cluster that maps no data and otherwise reads as zeros becomes a zero cluster too.
     */
    @Override
    public synchronized void writeZeroes(long offset, long length) throws IOException {
        engine.writeZeroes(offset, length);
    }

    /** Zero clusters (v3; unmapped on a v2 image without a backing file), not zero bytes. */
    @Override
    public boolean hasNativeZeroes() {
        return true;
    }

    @Override
    public boolean canDiscard() {
        return true;
    }

    /**
     * {@link #writeZeroes} that no bitmap records: for the new range of a grown disk, which
     * must read as zeros rather than as the longer backing file's data.
     */
    public synchronized void writeZeroesUntracked(long offset, long length) throws IOException {
        engine.writeZeroesUntracked(offset, length);
    }

    /**
     * Frees whole clusters inside the range; a partly covered cluster is left as it is.
     * On an overlay the freed clusters read as zeros rather than backing data; on a v2
     * overlay, which cannot say so, discard does nothing (as in QEMU).
     */
    @Override
    public synchronized void discard(long offset, long length) throws IOException {
        engine.discard(offset, length);
    }

    /**
     * Writes whole clusters compressed: {@code offset} cluster-aligned, {@code src} whole
     * clusters or ending at the disk's end. The clusters are compressed on every core; one
     * that does not shrink is written plain, as QEMU writes it.
     */
    public synchronized void writeCompressed(long offset, ByteBuffer src) throws IOException {
        engine.writeCompressed(offset, src);
    }

    @Override
    public synchronized BlockStatus blockStatus(long offset, long length) throws IOException {
        return engine.blockStatus(offset, length);
    }

    /**
     * What this layer alone maps at {@code offset} (QEMU's bdrv_is_allocated): allocated
     * for data, zero or compressed clusters, for a run of clusters of one kind within one
     * L2 table; depth 0, no host offset. The backing file is not consulted.
     */
    public synchronized BlockStatus ownStatus(long offset, long length) throws IOException {
        return engine.ownStatus(offset, length);
    }

    /**
     * Makes every write acknowledged so far durable (the data, then the L2 updates waiting
     * in the cache, each step flushed): they survive a crash from now on.
     */
    @Override
    public synchronized void flush() throws IOException {
        engine.flush();
    }

    /**
     * Grows the disk, or shrinks it when no whole cluster past the new end maps data.
     * Whatever the new range held before (the tail of the cluster an earlier shrink cut
     * through, a longer backing file's data) reads as zeros after a grow; see
     * the engine's ImageResizer for the order of the writes.
     */
    public synchronized void resize(long newSize) throws IOException {
        engine.resize(newSize);
    }

    /**
     * Resizes as {@code qemu-img resize --shrink} does: when shrinking, the clusters past
     * the new end are freed (their data is lost) and the file is cut after the last
     * cluster still in use.
     */
    public synchronized void resizeDiscarding(long newSize) throws IOException {
        engine.resizeDiscarding(newSize);
    }

    /**
     * Grows the disk as {@code qemu-img resize --preallocation=MODE}: the new whole clusters
     * mapped (metadata), and given real zero bytes (falloc, full).
     */
    public synchronized void growPreallocated(long newSize, CreateOptions.Preallocation mode) throws IOException {
        engine.growPreallocated(newSize, mode);
    }

    /**
     * Empties the image's own layer, as qemu-img commit does after committing: every
     * cluster becomes unallocated, so the backing file shows through. The guest's view
     * through the chain is unchanged by that, so no bitmap records it.
     */
    public synchronized void makeEmpty() throws IOException {
        engine.makeEmpty();
    }

    /**
     * Records a new backing file (null: none) in the header and reads through
     * {@code device} from now on; the caller made sure the guest's view stays right
     * (rebase, stream) or wants it changed (rebase -u).
     */
    public synchronized void setBackingFile(String name, String format, BlockDevice device) throws IOException {
        engine.setBackingFile(name, format, device);
    }

    /** Reads through {@code device} as the backing file (no header change): for reopening layers. */
    public synchronized void attachBacking(BlockDevice device) {
        engine.attachBacking(device);
    }

    /** Stops using the backing device without closing it, and returns it (the caller owns it now). */
    public synchronized BlockDevice detachBacking() {
        return engine.detachBacking();
    }

    /**
     * The image's dirty bitmaps (persistent ones from the bitmap directory, and transient
     * ones), for the bitmaps module: applications use {@code io.qcow4j.bitmaps.Bitmaps.of(image)}.
     */
    public ImageBitmaps bitmaps() {
        return engine.bitmaps();
    }

    /**
     * Stores every changed persistent bitmap now and clears their in_use flags (set again
     * before the next guest write): a checkpoint, or a hand-over to another process.
     * The bitmap data reaches the disk before the header switch that clears in_use; the
     * switch itself is durable at the next {@link #flush()} or {@link #close()} (lost to a
     * power failure before that, the bitmaps read as in_use again: inconsistent, never wrong).
     */
    public synchronized void storeBitmaps() throws IOException {
        engine.storeBitmaps();
    }

    /** The warnings sink this image was opened with. */
    public Consumer<String> warnings() {
        return engine.warnings();
    }

    /**
     * Stores the persistent bitmaps (see {@link #storeBitmaps}) and closes the image and its
     * backing chain. Transient bitmaps are dropped, each with a warning.
     */
    @Override
    public synchronized void close() throws IOException {
        engine.close();
    }

    /** A channel over the virtual disk, positioned at 0; closing it leaves the image open. */
    public SeekableByteChannel channel() {
        return new Qcow2Channel(this);
    }

    /** Host byte range a compressed entry occupies (for inspection tools). */
    public static long compressedHostOffset(long entry, int clusterBits) {
        return CompressedDescriptor.hostOffset(entry, clusterBits);
    }
}
