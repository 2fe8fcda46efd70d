package io.qcow4j.nbd.server;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.engine.EngineParts;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.RawImage;
import io.qcow4j.core.api.BlockDevice;

/**
 * The layers of the exported chain, and for each whether its host file's holes show in
 * {@code base:allocation}. qemu looks at the host file under a raw layer always (a hole there
 * is a hole that reads as zeros), and under a qcow2 layer only when the image looks
 * metadata-preallocated (a hole under allocated data then reads as zeros): that is, when
 * the clusters with a reference reach 10/9 of what the file really occupies (at least two
 * more), decided once, at the first block status query.
 */
final class Layers implements AutoCloseable {
    private final List<BlockDevice> layers = new ArrayList<>();
    private final HostFile[] files;
    private final boolean[] decided;

    Layers(BlockDevice top) {
        for (BlockDevice d = top; d != null; d = d instanceof Qcow2Image q ? q.chain().backing() : null) {
            layers.add(d);
        }
        files = new HostFile[layers.size()];
        decided = new boolean[layers.size()];
    }

    boolean hasBacking(int depth) {
        return depth + 1 < layers.size();
    }

    boolean isRaw(int depth) {
        return depth < layers.size() && layers.get(depth) instanceof RawImage;
    }

    /** The host file whose holes matter at {@code depth}, or null (none, or qemu would not look). */
    synchronized HostFile holes(int depth) throws IOException {
        if (depth < 0 || depth >= layers.size()) {
            return null;
        }
        if (!decided[depth]) {
            decided[depth] = true;
            BlockDevice d = layers.get(depth);
            if (d instanceof RawImage raw) {
                files[depth] = HostFile.open(raw.path());
            } else if (d instanceof Qcow2Image q && looksPreallocated(q)) {
                files[depth] = HostFile.open(dataPath(q));
            }
        }
        return files[depth];
    }

    private static Path dataPath(Qcow2Image q) {
        String dataFile = q.info().dataFile();
        if (dataFile == null) {
            return q.path();
        }
        Path dir = q.path().toAbsolutePath().getParent();
        return dir == null ? Path.of(dataFile) : dir.resolve(dataFile);
    }

    private static boolean looksPreallocated(Qcow2Image q) throws IOException {
        Path path = q.path();
        if (path == null) {
            return false;
        }
        long real = HostFile.allocatedBytes(path);
        if (real < 0) {
            return false;
        }
        int cs = q.info().clusterSize();
        long realClusters = real / cs;
        long threshold = Math.max(realClusters * 10 / 9, realClusters + 2);
        synchronized (q) {
            EngineParts parts = q.engine().engineParts();
            long length = Math.min(parts.storage().length(), Files.size(path));
            long end = (length + cs - 1) / cs;
            long referenced = 0;
            for (long c = 0; c < end && referenced < threshold; c++) {
                if (parts.refcounts().get(c) > 0) {
                    referenced++;
                }
            }
            return referenced >= threshold;
        }
    }

    @Override
    public synchronized void close() {
        for (int i = 0; i < files.length; i++) {
            if (files[i] != null) {
                files[i].close();
                files[i] = null;
            }
        }
    }
}
