package io.qcow4j.backup;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.OpenOptions;

/**
 * Opens one point of a set as a read-only disk, following the manifest's parents (the source
 * of truth), not the backing names in the files' headers.
 */
final class PointView {
    private PointView() {
    }

    static BlockDevice open(SetStore store, Manifest m, BackupRecord point) throws IOException {
        List<BackupRecord> chain = m.chainOf(point);
        for (BackupRecord b : chain) {
            if (!b.format.equals(point.format)) {
                throw new BackupException("'" + point.file + "' builds on '" + b.file + "' of another format");
            }
        }
        if (point.format.equals(Format.QCOW2.label())) {
            if (store.directory() == null) {
                throw new BackupException(Format.qcow2Refused(store));
            }
            return qcow2(store.directory(), chain);
        }
        List<SetStore.ReadFile> files = new ArrayList<>();
        List<List<ExtentRecord>> extents = new ArrayList<>();
        List<Boolean> lz4 = new ArrayList<>();
        List<Long> sizes = new ArrayList<>();
        try {
            for (BackupRecord b : chain) {
                files.add(store.open(b.file));
                extents.add(b.extents);
                lz4.add(b.compressed);
                sizes.add(b.virtualSize);
            }
        } catch (IOException | RuntimeException e) {
            for (SetStore.ReadFile f : files) {
                try {
                    f.close();
                } catch (IOException x) {
                    e.addSuppressed(x);
                }
            }
            throw e;
        }
        return new StreamView(files, extents, lz4, sizes);
    }

    private static BlockDevice qcow2(Path dir, List<BackupRecord> chain) throws IOException {
        Qcow2Image below = null;
        try {
            for (BackupRecord b : chain) {
                Qcow2Image img = Qcow2Image.open(dir.resolve(b.file), OpenOptions.readOnly().openBacking(false));
                if (below != null) {
                    img.chain().attachBacking(below);
                }
                below = img;
            }
            return below;
        } catch (IOException | RuntimeException e) {
            if (below != null) {
                try {
                    below.close();
                } catch (IOException | RuntimeException ignored) {
                    // the open failure is what the caller needs to see
                }
            }
            throw e;
        }
    }
}
