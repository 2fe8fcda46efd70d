package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import io.qcow4j.core.api.CompressionType;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.format.FeatureNameTable;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HeaderBuilder;
import io.qcow4j.core.format.HeaderExtension;
import io.qcow4j.core.format.RefcountBlock;
import io.qcow4j.core.storage.ImageLock;

/**
 * Writes a new empty image laid out as qemu-img lays it out: header in cluster 0, the
 * refcount table in cluster 1, its first block in cluster 2; then the image is opened and
 * grown to its size, which places the L1 table in cluster 3 onward.
 */
final class ImageCreator {
    private ImageCreator() {
    }

    @SuppressWarnings("try") // the locks are held for the block, not used in it
    static void create(Path path, CreateOptions o, java.util.function.Consumer<String> warnings) throws IOException {
        o.validate();
        if (o.size() < 0) {
            throw new IllegalArgumentException("Image size must be specified");
        }
        int cs = o.clusterSize();
        int clusterBits = Integer.numberOfTrailingZeros(cs);
        int refcountOrder = Integer.numberOfTrailingZeros(o.refcountBits());
        HeaderBuilder h = Header.builder();
        h.version(o.version());
        h.clusterBits(clusterBits);
        h.size(0);
        h.refcountTableOffset(cs);
        h.refcountTableClusters(1);
        h.refcountOrder(refcountOrder);
        if (o.version() >= 3) {
            long incompatible = 0;
            if (o.lazyRefcounts()) {
                h.compatibleFeatures(Header.COMPAT_LAZY_REFCOUNTS);
            }
            if (o.extendedL2()) {
                incompatible |= Header.INCOMPAT_EXTENDED_L2;
            }
            if (o.compressionType() != CompressionType.ZLIB) {
                incompatible |= Header.INCOMPAT_COMPRESSION;
                h.compressionType(o.compressionType().code());
            }
            if (o.dataFile() != null) {
                incompatible |= Header.INCOMPAT_DATA_FILE;
                h.extension(HeaderExtension.EXTERNAL_DATA_FILE, HeaderExtension.ofString(0, o.dataFile()).data());
                if (o.dataFileRaw()) {
                    h.autoclearFeatures(Header.AUTOCLEAR_DATA_FILE_RAW);
                }
            }
            h.incompatibleFeatures(incompatible);
            if (cs > 4096) {
                h.extension(HeaderExtension.FEATURE_NAME_TABLE, FeatureNameTable.serialize(FeatureNameTable.QEMU));
            }
        }
        if (o.backingFile() != null) {
            h.backingFile(o.backingFile());
            if (o.backingFormat() != null) {
                h.extension(HeaderExtension.BACKING_FORMAT, HeaderExtension.ofString(0, o.backingFormat()).data());
            }
        }
        byte[] headerBytes = h.build().serialize();
        ByteBuffer file = ByteBuffer.allocate(3 * cs);
        file.put(headerBytes);
        file.putLong(cs, 2L * cs);
        for (long c = 0; c < 3; c++) {
            int at = 2 * cs + RefcountBlock.wordOffset(c, refcountOrder);
            file.putLong(at, RefcountBlock.set(file.getLong(at), c, refcountOrder, 1));
        }
        file.clear();
        // as qemu-img create: an existing file is emptied only once QEMU's locks say nobody uses it
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
             ImageLock lock = ImageLock.create(path)) {
            if (o.dataFile() != null) {
                Path data = ImageOpener.resolve(path, o.dataFile());
                try (FileChannel dc = FileChannel.open(data, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                     ImageLock dataLock = ImageLock.create(ImageOpener.qemuName(path, o.dataFile()))) {
                    dc.truncate(0);
                    if (o.size() > 0) {
                        dc.write(ByteBuffer.allocate(1), o.size() - 1);
                        dc.truncate(o.size());
                    }
                }
            }
            ch.truncate(0);
            while (file.hasRemaining()) {
                ch.write(file);
            }
            ch.force(false);
        }
        // the caller's listener: the first read-write open in a JVM may warn (MappingSupport)
        try (Qcow2Engine img = ImageOpener.open(path, OpenOptions.readWrite().openBacking(false).warnings(warnings),
                new java.util.HashSet<>(), null, null)) {
            // QEMU keeps disk sizes in 512-byte sectors and rounds a new image's size up
            // (a raw data file is mapped whole by the grow: it must stay a complete raw image)
            ImageResizer.setInitialSize(img, (o.size() + 511) & ~511L);
            if (o.luksSecret() != null) {
                // after the L1 table, as qemu-img places it
                int slotIterations = io.qcow4j.core.crypto.Luks.iterationsFor(o.luksIterTimeMillis());
                Encryption.init(img, io.qcow4j.core.crypto.Luks.create(o.luksSecret(), slotIterations,
                        Math.max(1000, slotIterations / 4)));
            }
            if (o.preallocation() != CreateOptions.Preallocation.OFF && !img.header().dataFileRaw()) {
                // every L2 table and data cluster allocated: holes (metadata) or zero bytes
                ImageResizer.preallocate(img, 0, img.size(), o.preallocation());
            } else if (o.preallocation() != CreateOptions.Preallocation.OFF && o.preallocation()
                    != CreateOptions.Preallocation.METADATA) {
                ImageResizer.fillDataFile(img, 0, img.size());
            }
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(path);
            throw e;
        }
    }
}
