package io.qcow4j.core.engine;

import java.io.Closeable;
import java.io.IOException;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.storage.FileStorage;
import io.qcow4j.core.storage.HostFile;
import io.qcow4j.core.storage.Storage;

/**
 * Holes in the host file under data clusters, as block status reports them: QEMU asks the
 * file system only when it guesses the image is metadata-preallocated (more clusters with a
 * refcount than the file occupies on disk, by a ninth and at least two), once, at the first
 * block status. A part of the engine: the guess and the file it opens for the queries are
 * this class's state.
 */
final class HoleQueries implements Closeable {
    private final Storage storage;
    private final Storage dataFile;
    private final Geometry geo;
    private final RefcountManager refcounts;
    private final boolean encrypted;
    /** The guess, once made (null before). */
    private Boolean preallocated;
    /** The data's host file for the queries, or null. */
    private HostFile file;

    HoleQueries(Storage storage, Storage dataFile, Geometry geo, RefcountManager refcounts, boolean encrypted) {
        this.storage = storage;
        this.dataFile = dataFile;
        this.geo = geo;
        this.refcounts = refcounts;
        this.encrypted = encrypted;
    }

    /** QEMU's guess that the image is metadata-preallocated (then holes are asked for). */
    boolean metadataPreallocated() throws IOException {
        if (preallocated == null) {
            preallocated = false;
            if (encrypted) {
                // a hole under an encrypted cluster is not zeros once decrypted: never report it as zero
                return false;
            }
            long blocks = storage instanceof FileStorage f ? HostFile.blocks(f.path()) : -1;
            if (blocks >= 0) {
                long realClusters = blocks * 512 / geo.clusterSize();
                long threshold = Math.max(realClusters * 10 / 9, realClusters + 2);
                long end = (storage.length() + geo.clusterSize() - 1) / geo.clusterSize();
                long count = refcounts.countInUse(end, threshold);
                Storage data = dataFile != null ? dataFile : storage;
                if (count > threshold && data instanceof FileStorage f) {
                    file = HostFile.open(f.path());
                    preallocated = file != null;
                }
            }
        }
        return preallocated;
    }

    /**
     * From host {@code offset}, the length of the data run (positive) or of the hole
     * (negative) within {@code max} bytes; 0 when unknown ({@link HostFile#run}). Only after
     * {@link #metadataPreallocated} said yes.
     */
    long run(long offset, long max) {
        return file.run(offset, max);
    }

    @Override
    public void close() {
        if (file != null) {
            file.close();
        }
    }
}
