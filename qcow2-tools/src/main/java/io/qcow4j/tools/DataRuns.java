package io.qcow4j.tools;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.RawImage;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * A source disk's runs of data, as qemu-img sees them when it asks for block status down
 * the whole backing chain: zero clusters and unallocated runs hold no data, compressed and
 * allocated clusters do. Holes of the host file count as no data where QEMU asks the file:
 * always under a raw layer, and under a qcow2 layer only when that image looks
 * metadata-preallocated (more clusters in use than the file has blocks on disk, by QEMU's
 * threshold: a ninth more, at least two).
 */
final class DataRuns implements Closeable {
    /** A run at an offset: its length and whether it holds data. */
    record Run(long length, boolean data) {
    }

    private final BlockDevice top;
    private final BlockDevice chain;
    private final Map<Path, HostExtents> hosts = new HashMap<>();
    private final Map<Qcow2Image, Boolean> preallocated = new HashMap<>();

    /** The runs of {@code disk}, an image or a view of {@code chain} (an internal snapshot's). */
    DataRuns(BlockDevice disk, BlockDevice chain) {
        this.top = disk;
        this.chain = chain;
    }

    /** The run at {@code offset}, at most {@code max} bytes (at least 1). */
    Run at(long offset, long max) throws IOException {
        BlockStatus st = top.blockStatus(offset, max);
        long len = Math.max(1, st.length());
        if (!st.allocated() || st.zero() || !st.data()) {
            return new Run(len, false);
        }
        if (st.hostOffset() < 0) {
            return new Run(len, true); // compressed: no host range to ask about
        }
        BlockDevice layer = layer(st.depth());
        Path host = hostFile(layer);
        if (host == null || layer instanceof Qcow2Image q && !preallocated.computeIfAbsent(q, DataRuns::looksPreallocated)) {
            return new Run(len, true);
        }
        HostExtents.Run r = hosts.computeIfAbsent(host, HostExtents::of).at(st.hostOffset(), len);
        return new Run(Math.max(1, r.length()), r.data());
    }

    /**
     * Bytes of the clusters of {@code clusterSize} (in a new image of the same disk) that
     * hold some data of the first {@code size} bytes: each such cluster counted once.
     */
    long clustersWithData(long size, long clusterSize) throws IOException {
        long total = 0;
        long countedUpTo = 0;
        long pos = 0;
        while (pos < size) {
            Run r = at(pos, size - pos);
            long end = Math.min(size, pos + r.length());
            if (r.data()) {
                long from = Math.max(pos - pos % clusterSize, countedUpTo);
                long to = Qcow2Measure.roundUp(end, clusterSize);
                if (to > from) {
                    total += to - from;
                    countedUpTo = to;
                }
            }
            pos = end;
        }
        return total;
    }

    private BlockDevice layer(int depth) {
        BlockDevice layer = chain;
        for (int i = 0; i < depth && layer instanceof Qcow2Image q; i++) {
            layer = q.chain().backing();
        }
        return layer;
    }

    /** The file that the host offsets of {@code layer} point into. */
    private static Path hostFile(BlockDevice layer) {
        if (layer instanceof RawImage r) {
            return r.path();
        }
        if (layer instanceof Qcow2Image q) {
            String dataFile = q.info().dataFile();
            if (dataFile != null) {
                return q.path() == null ? null : q.path().resolveSibling(dataFile);
            }
            return q.path();
        }
        return null;
    }

    /**
     * QEMU's test for a metadata-preallocated image: the clusters of the image file with a
     * non-zero refcount reach max(allocated clusters * 10 / 9, allocated clusters + 2), where
     * allocated clusters are the file's blocks on disk in whole clusters.
     */
    static boolean looksPreallocated(Qcow2Image image) {
        try {
            Path file = image.path();
            long length = java.nio.file.Files.size(file);
            long cs = image.info().clusterSize();
            long realClusters = DiskUsage.allocatedBytes(file) / cs;
            long threshold = Math.max(realClusters * 10 / 9, realClusters + 2);
            long clusters = (length + cs - 1) / cs;
            long inUse = 0;
            synchronized (image) {
                var refcounts = image.engine().engineParts().refcounts();
                for (long i = 0; i < clusters && inUse < threshold; i++) {
                    if (refcounts.get(i) != 0) {
                        inUse++;
                    }
                }
            }
            return inUse >= threshold;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    @Override
    public void close() {
        hosts.values().forEach(HostExtents::close);
    }
}
