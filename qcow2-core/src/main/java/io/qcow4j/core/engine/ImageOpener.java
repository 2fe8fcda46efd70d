package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.CompressionType;
import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.api.UnsupportedImageException;
import io.qcow4j.core.cache.L2Cache;
import io.qcow4j.core.compress.ClusterCodec;
import io.qcow4j.core.format.FeatureNameTable;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HeaderExtension;
import io.qcow4j.core.format.SnapshotEntry;
import io.qcow4j.core.storage.FileStorage;
import io.qcow4j.core.storage.ImageLock;
import io.qcow4j.core.storage.MappingSupport;
import io.qcow4j.core.storage.Storage;
import io.qcow4j.core.storage.StorageHook;

/** Opens an image: header checks, feature bits, data file, backing chain. */
public final class ImageOpener {
    static final long L2_CACHE_BYTES = 4L << 20;

    private ImageOpener() {
    }

    /**
     * Opens an image; {@code inheritedLocks}: QEMU's locks an earlier open of the same image
     * holds, handed over (an amend reopens it), or null; {@code faces}: what wraps the engine
     * and its backing layers for callers (null: no face, the engine is its own lock).
     */
    static Qcow2Engine open(Path path, OpenOptions options, Set<Path> chain, List<ImageLock> inheritedLocks,
                            Faces faces) throws IOException {
        return open(path, path, options, chain, inheritedLocks, faces);
    }

    /**
     * {@code name}: the file as QEMU would name it in a lock failure (a backing file: relative to its image);
     * {@code inheritedLocks}: null, take them.
     */
    private static Qcow2Engine open(Path path, Path name, OpenOptions options, Set<Path> chain,
                                   List<ImageLock> inheritedLocks, Faces faces) throws IOException {
        Path real = realPath(path);
        if (!chain.add(real)) {
            throw new CorruptImageException("backing file name", Header.BACKING_FILE_OFFSET,
                    "Backing file chain contains a loop: '" + name + "' appears twice");
        }
        boolean readOnly = options.isReadOnly();
        if (options.forceShare() && !readOnly) {
            chain.remove(real);
            throw new IllegalArgumentException("force-share=on can only be used with read-only images");
        }
        List<ImageLock> locks = new ArrayList<>(2);
        Storage storage = null;
        Storage dataFile = null;
        BlockDevice backing = null;
        try {
            // QEMU's locks first: nothing of an image in use is read, mapped or written
            if (inheritedLocks != null) {
                locks.addAll(inheritedLocks);
            } else if (!options.forceShare()) {
                locks.add(ImageLock.qcow2(name, readOnly));
            }
            // read-write: mapped metadata where the JVM allows it (MappingSupport), else positional I/O
            storage = readOnly ? new FileStorage(path, true) : StorageHook.apply(path, MappingSupport.openReadWrite(path, options.warnings()));
            Header header = readHeader(storage);
            checkFeatures(header, options);
            Geometry geo = new Geometry(header.clusterBits(), header.hasIncompatible(Header.INCOMPAT_EXTENDED_L2), header.version());
            checkGeometry(header, geo, storage);
            if (!readOnly) {
                checkRewritable(header);
            }
            if (header.hasIncompatible(Header.INCOMPAT_DATA_FILE)) {
                String dataName = header.stringExtension(HeaderExtension.EXTERNAL_DATA_FILE);
                if (dataName == null) {
                    throw new UnsupportedImageException("Could not open data file: the image names none (data-file option required)");
                }
                Path data = resolveFromImage(path, dataName, "data file name (header extension)", header.headerLength());
                if (Files.exists(data) && Files.isSameFile(data, path)) {
                    // guest data at host offset = guest offset would overwrite this image's metadata
                    throw new CorruptImageException("data file name (header extension)", header.headerLength(),
                            "the data file '" + dataName + "' is the image itself");
                }
                if (!options.forceShare() && inheritedLocks == null) {
                    locks.add(ImageLock.dataFile(qemuName(name, dataName), readOnly));
                }
                dataFile = StorageHook.apply(data, new FileStorage(data, readOnly));
            }
            Encryption encryption = Encryption.open(storage, header, geo, options);
            HeaderCluster headerCluster = new HeaderCluster(storage, header);
            RefcountManager refcounts = new RefcountManager(storage, header.clusterBits(), header.refcountOrder(),
                    header.refcountTableOffset(), header.refcountTableClusters(), headerCluster::refcountTableMoved, options.checkMode());
            if (!readOnly && !options.checkMode()) {
                refcounts.validateBlocks();
            }
            long[] l1 = ClusterMapper.readL1(storage, geo, header.l1TableOffset(), header.l1Size(), "L1 table");
            L2Cache cache = new L2Cache(storage, geo.clusterSize() / 8, L2_CACHE_BYTES);
            ClusterMapper mapper = new ClusterMapper(storage, refcounts, cache, geo, header.l1TableOffset(), l1, dataFile != null);
            // no cluster holding metadata is handed out, whatever its refcount says
            refcounts.guardAllocations(mapper.ranges());
            List<SnapshotEntry> snapshots = SnapshotTable.read(storage, geo.clusterSize(), header.snapshotsOffset(), header.nbSnapshots(),
                    options.checkMode());
            if (options.openBacking() && header.backingFile() != null) {
                backing = openBacking(path, name, header, chain, options, faces);
            }
            CompressionType compression = compressionOf(header);
            ImageIo io = new ImageIo(storage, dataFile, (header.autoclearFeatures() & Header.AUTOCLEAR_DATA_FILE_RAW) != 0,
                    refcounts, mapper, geo, () -> ClusterCodec.of(compression), backing);
            if (encryption != null) {
                io.useDataView(encryption.dataStorage(dataFile != null ? dataFile : storage));
            }
            Qcow2Engine image = new Qcow2Engine(path, storage, dataFile, headerCluster, geo, refcounts, mapper, io,
                    new ArrayList<>(snapshots), encryption, locks, options, faces);
            image.openBitmaps(options);
            if (!readOnly && !options.checkMode()) {
                // references reach the disk only after what they need (see Qcow2Engine.syncMetadata)
                cache.setWriteBack(true);
                refcounts.deferFrees(true);
                mapper.setMetadataSync(image::syncMetadata);
            }
            if (faces != null) {
                faces.qcow2(image); // binds itself as the engine's lock
            }
            return image;
        } catch (IOException | RuntimeException | Error e) {
            // Errors too (a library failing to initialise): an image left locked would stay
            // unusable for this JVM and for QEMU
            closeQuietly(backing);
            closeQuietly(dataFile);
            closeQuietly(storage);
            locks.forEach(ImageOpener::closeQuietly);
            throw e;
        } finally {
            chain.remove(real);
        }
    }

    private static Path realPath(Path path) throws IOException {
        try {
            return path.toRealPath();
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(path.toString(), null, "No such file or directory");
        }
    }

    private static Header readHeader(Storage storage) throws IOException {
        // only cluster 0 holds the header area: read just that (not 2 MiB of a small-cluster
        // image; fresh memory costs start-up time), when the header's cluster_bits is sane
        int limit = 1 << Header.MAX_CLUSTER_BITS;
        if (storage.length() >= Header.CLUSTER_BITS + 4) {
            int bits = storage.readInt(Header.CLUSTER_BITS);
            if (bits >= Header.MIN_CLUSTER_BITS && bits <= Header.MAX_CLUSTER_BITS) {
                limit = 1 << bits;
            }
        }
        int want = (int) Math.min(storage.length(), limit);
        ByteBuffer first = ByteBuffer.allocate(Math.max(want, 0));
        storage.read(0, first);
        return Header.parse(first.array());
    }

    private static void checkFeatures(Header h, OpenOptions options) throws IOException {
        long unknown = h.incompatibleFeatures() & ~Header.INCOMPAT_KNOWN;
        if (unknown != 0) {
            HeaderExtension ext = h.extension(HeaderExtension.FEATURE_NAME_TABLE);
            throw new UnsupportedImageException("Unsupported qcow2 feature(s): "
                    + FeatureNameTable.describeIncompatible(ext == null ? null : ext.data(), unknown));
        }
        if (h.hasIncompatible(Header.INCOMPAT_CORRUPT) && !options.isReadOnly() && !options.checkMode()) {
            throw new CorruptImageException("header", Header.INCOMPATIBLE_FEATURES, "Image is corrupt; cannot be opened read/write");
        }
        CompressionType ct = CompressionType.fromCode(h.compressionType());
        if (ct == null) {
            throw new UnsupportedImageException("Unknown compression type " + h.compressionType());
        }
        if (h.hasIncompatible(Header.INCOMPAT_COMPRESSION) != (ct != CompressionType.ZLIB)) {
            throw new io.qcow4j.core.api.CorruptImageException("header", Header.INCOMPATIBLE_FEATURES,
                    "compression type incompatible bit does not match compression_type " + h.compressionType());
        }
        if (h.hasIncompatible(Header.INCOMPAT_EXTENDED_L2) && h.clusterBits() < 14) {
            throw new io.qcow4j.core.api.CorruptImageException("header", Header.CLUSTER_BITS, "Extended L2 entries need clusters of at least 16 KiB");
        }
        if (h.backingFile() != null && (h.autoclearFeatures() & Header.AUTOCLEAR_DATA_FILE_RAW) != 0) {
            throw new io.qcow4j.core.api.CorruptImageException("header", Header.AUTOCLEAR_FEATURES, "data-file-raw and a backing file cannot be combined");
        }
    }

    private static void checkGeometry(Header h, Geometry geo, Storage storage) throws IOException {
        if (h.size() < 0) {
            throw new io.qcow4j.core.api.CorruptImageException("header", Header.SIZE, "negative virtual size");
        }
        long needed = geo.l1EntriesFor(h.size());
        if (needed > Limits.MAX_L1_ENTRIES) {
            throw new io.qcow4j.core.api.CorruptImageException("header", Header.SIZE, "Image is too big");
        }
        if (Integer.toUnsignedLong(h.l1Size()) < needed) {
            throw new io.qcow4j.core.api.CorruptImageException("header", Header.L1_SIZE, "L1 table is too small");
        }
    }

    /**
     * A writer rewrites the header (autoclear bits, dirty bit, table moves): refuse read-write
     * now if it cannot, rather than fail half-way through a write.
     */
    private static void checkRewritable(Header h) throws UnsupportedImageException {
        try {
            h.serialize();
        } catch (RuntimeException e) {
            throw new UnsupportedImageException("Cannot open read-write: the header cannot be rewritten in cluster 0 (" + e + ")");
        }
    }

    private static CompressionType compressionOf(Header h) {
        return CompressionType.fromCode(h.compressionType());
    }

    /** {@code name} as recorded in {@code image}: absolute, or relative to the image's directory. */
    public static Path resolve(Path image, String name) {
        Path p = Path.of(name);
        if (p.isAbsolute()) {
            return p;
        }
        Path dir = image.toAbsolutePath().getParent();
        return dir == null ? p : dir.resolve(p);
    }

    /** {@link #resolve} for a name read from the image: a name no path can have is corruption. */
    private static Path resolveFromImage(Path image, String name, String structure, long offset) throws CorruptImageException {
        try {
            return resolve(image, name);
        } catch (InvalidPathException e) {
            throw new CorruptImageException(structure, offset, "invalid file name '" + name.replace("\0", "\\0") + "': " + e.getReason());
        }
    }

    /** A file named by an image, as QEMU names it in messages: relative to the image's directory as given. */
    static Path qemuName(Path image, String name) throws CorruptImageException {
        resolveFromImage(image, name, "file name", 0);
        Path p = Path.of(name);
        Path dir = image.getParent();
        return p.isAbsolute() || dir == null ? p : dir.resolve(p);
    }

    private static BlockDevice openBacking(Path path, Path name, Header h, Set<Path> chain, OpenOptions options, Faces faces)
            throws IOException {
        boolean forceShare = options.forceShare();
        Path file = resolveFromImage(path, h.backingFile(), "backing file name", Header.BACKING_FILE_OFFSET);
        Path shown = qemuName(name, h.backingFile());
        String fmt = h.stringExtension(HeaderExtension.BACKING_FORMAT);
        if (!Files.exists(file)) {
            throw new NoSuchFileException(file.toString(), null,
                    BACKING_FAILED + "Could not open '" + shown + "': No such file or directory");
        }
        if (Files.isDirectory(file)) {
            throw new FileSystemException(file.toString(), null,
                    BACKING_FAILED + "'file' driver requires '" + shown + "' to be a regular file");
        }
        if (fmt == null) {
            fmt = probe(file);
        }
        try {
            switch (fmt) {
                case "qcow2":
                    return open(file, shown, OpenOptions.readOnly().forceShare(forceShare).warnings(options.warnings()), chain, null,
                            faces).face();
                case "raw":
                    return faces.raw(file, true, forceShare, shown);
                default:
                    throw new UnsupportedImageException("Unsupported backing file format '" + fmt + "'");
            }
        } catch (ImageLock.LockedException e) {
            throw new ImageLock.LockedException(BACKING_FAILED, e);
        } catch (NoSuchFileException e) {
            // a file further down the chain: qemu says "Could not open backing file: " once per level
            String why = e.getReason() != null && e.getReason().startsWith(BACKING_FAILED) ? e.getReason()
                    : "Could not open '" + shown + "': No such file or directory";
            throw new NoSuchFileException(e.getFile(), null, BACKING_FAILED + why);
        }
    }

    /** qemu's prefix for whatever failed while opening a backing file, once per level of the chain. */
    static final String BACKING_FAILED = "Could not open backing file: ";

    /** qcow2 when the magic says so, raw otherwise (as qemu's probe decides for these two). */
    public static String probe(Path file) throws IOException {
        try (var ch = java.nio.channels.FileChannel.open(file)) {
            ByteBuffer b = ByteBuffer.allocate(4);
            ch.read(b, 0);
            return b.position() == 4 && b.getInt(0) == Header.MAGIC ? "qcow2" : "raw";
        }
    }

    private static void closeQuietly(java.io.Closeable c) {
        if (c != null) {
            try {
                c.close();
            } catch (IOException | RuntimeException ignored) {
                // already failing
            }
        }
    }
}
