package io.qcow4j.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Path;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.FileImage;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.bitmap.ImageBitmaps;
import io.qcow4j.core.engine.Qcow2Engine;

/**
 * A qcow2 image: the public face of its {@link Qcow2Engine}, which owns the image's state
 * and the order of its writes.
 *
 * <p>Threads: every public method holds the image's lock, so one image may be shared
 * between threads, one request at a time: calls from several threads, to disjoint or
 * overlapping ranges, with flushes and bitmap stores between, behave as if made in the
 * order they took the lock. The faces it hands out for less central work
 * ({@link #snapshots()}, {@link #luks()}, {@link #chain()}) lock on the image too; the
 * rest ({@link #bitmaps()} and its bitmaps, {@link #engine()}) does not: while other
 * threads use the image, call it inside {@code synchronized (image)}. Two images open on
 * one file are refused by the file lock (one writer, or several readers).
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
    private final Qcow2Engine engine;
    private final Snapshots snapshots;
    private final Luks luks;
    private final ChainLayer chain;

    /** The face over a freshly opened engine (see {@link LayerFaces}); it binds itself as the engine's lock. */
    Qcow2Image(Qcow2Engine engine) {
        this.engine = engine;
        this.snapshots = new Snapshots(this, engine);
        this.luks = new Luks(this, engine);
        this.chain = new ChainLayer(this, engine);
        engine.bind(this);
    }

    /** Creates a new image (replacing any file at {@code path}) and opens it read-write. */
    public static Qcow2Image create(Path path, CreateOptions options) throws IOException {
        return create(path, options, OpenOptions.readWrite());
    }

    /** Creates a new image and opens it with {@code openOptions} (e.g. without its backing chain). */
    public static Qcow2Image create(Path path, CreateOptions options, OpenOptions openOptions) throws IOException {
        return (Qcow2Image) Qcow2Engine.create(path, options, openOptions, LayerFaces.INSTANCE).face();
    }

    /** Opens an image and, unless {@code options} say not to, its backing chain. */
    public static Qcow2Image open(Path path, OpenOptions options) throws IOException {
        return (Qcow2Image) Qcow2Engine.open(path, options, LayerFaces.INSTANCE).face();
    }

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

    /** The image's format as its header says now (version, cluster size, features...). */
    public synchronized Qcow2Info info() {
        return Qcow2Info.of(engine);
    }

    @Override
    public int clusterSize() {
        return info().clusterSize();
    }

    @Override
    public int version() {
        return info().version();
    }

    @Override
    public boolean isEncrypted() {
        return info().encrypted();
    }

    @Override
    public String dataFile() {
        return info().dataFile();
    }

    /** The image's internal snapshots: list, view, create, apply, delete. */
    public Snapshots snapshots() {
        return snapshots;
    }

    /** The LUKS keyslots of an encrypted image ({@link Qcow2Info#encrypted()}). */
    public Luks luks() {
        return luks;
    }

    /** The image as a layer of its backing chain: its backing file, what it maps itself, untracked writes. */
    public ChainLayer chain() {
        return chain;
    }

    /** The engine under this face, for check, repair and dump: not a stable API (see the class comment). */
    public Qcow2Engine engine() {
        return engine;
    }

    @Override
    public synchronized void read(long offset, ByteBuffer dst) throws IOException {
        engine.read(offset, dst);
    }

    @Override
    public void readShared(long offset, ByteBuffer dst) throws IOException {
        engine.readShared(offset, dst);
    }

    @Override
    public long hostRun(long offset, long length) throws IOException {
        return engine.hostRun(offset, length);
    }

    /** Writes {@code src} at {@code offset}; every enabled bitmap records the range. */
    @Override
    public synchronized void write(long offset, ByteBuffer src) throws IOException {
        engine.write(offset, src);
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

    @Override
    public boolean hasNativeZeroes() {
        return true;
    }

    @Override
    public boolean canDiscard() {
        return true;
    }

    /**
     * Frees whole clusters inside the range (a partly covered one is left as it is). On an
     * overlay they read as zeros, not backing data; on a v2 overlay, which cannot say so,
     * discard does nothing (as in QEMU).
     */
    @Override
    public synchronized void discard(long offset, long length) throws IOException {
        engine.discard(offset, length);
    }

    @Override
    public synchronized void writeCompressed(long offset, ByteBuffer src) throws IOException {
        engine.writeCompressed(offset, src);
    }

    @Override
    public synchronized BlockStatus blockStatus(long offset, long length) throws IOException {
        return engine.blockStatus(offset, length);
    }

    /** Makes every write acknowledged so far durable: see the class comment's Durability. */
    @Override
    public synchronized void flush() throws IOException {
        engine.flush();
    }

    /**
     * Grows the disk, or shrinks it when no whole cluster past the new end maps data. After
     * a grow the new range reads as zeros, whatever it held before (the tail of a cluster an
     * earlier shrink cut through, a longer backing file's data); ImageResizer orders the writes.
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

    /** The image's dirty bitmaps, persistent and transient, for {@code io.qcow4j.bitmaps.Bitmaps.of(image)}. */
    public ImageBitmaps bitmaps() {
        return engine.bitmaps();
    }

    /**
     * Stores every changed persistent bitmap now and clears their in_use flags (set again
     * before the next guest write): a checkpoint, or a hand-over to another process. The
     * data reaches the disk before the header switch that clears in_use; the switch is durable
     * at the next {@link #flush()} or {@link #close()} (lost to a power failure before, the
     * bitmaps read as in_use: inconsistent, never wrong).
     */
    public synchronized void storeBitmaps() throws IOException {
        engine.storeBitmaps();
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
}
