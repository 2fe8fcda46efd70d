package io.qcow4j.core;

import io.qcow4j.core.api.CompressionType;
import io.qcow4j.core.engine.Qcow2Engine;
import io.qcow4j.core.format.Header;

/**
 * What an image's header says of its format, as {@code qemu-img info} shows it (the cluster
 * size and the qcow2-specific part), taken under the image's lock when asked: a later amend,
 * or the first write that sets the dirty bit, changes the image, not a value already taken.
 *
 * @param version         2 (compat 0.10) or 3 (compat 1.1)
 * @param clusterSize     bytes per cluster
 * @param refcountBits    width of a refcount entry
 * @param compressionType how compressed clusters are compressed
 * @param lazyRefcounts   the lazy refcounts compatible feature
 * @param extendedL2      subclusters (extended L2 entries)
 * @param encrypted       guest data is encrypted (LUKS, crypt_method 2); see {@link Qcow2Image#luks()}
 * @param dataFile        the external data file's name as recorded in the image, or null
 * @param dataFileRaw     the data file is a valid raw image (data_file_raw)
 * @param corrupt         the corrupt bit: the image opens read-only only
 * @param dirty           the dirty bit: refcounts may be stale (lazy refcounts after a crash)
 */
public record Qcow2Info(int version, int clusterSize, int refcountBits, CompressionType compressionType,
                        boolean lazyRefcounts, boolean extendedL2, boolean encrypted, String dataFile,
                        boolean dataFileRaw, boolean corrupt, boolean dirty) {

    /** The caller holds the image's lock. */
    static Qcow2Info of(Qcow2Engine e) {
        Header h = e.header();
        return new Qcow2Info(h.version(), e.clusterSize(), h.refcountBits(), CompressionType.fromCode(h.compressionType()),
                h.lazyRefcounts(), e.extendedL2(), e.isEncrypted(), h.dataFile(), h.dataFileRaw(),
                h.hasIncompatible(Header.INCOMPAT_CORRUPT), h.hasIncompatible(Header.INCOMPAT_DIRTY));
    }
}
