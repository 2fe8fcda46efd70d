package io.qcow4j.core.engine;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.storage.ImageLock;

/**
 * The close sequence of a {@link Qcow2Engine}: store the bitmaps, flush, then release the
 * files, the backing chain and the locks, each even when an earlier step failed.
 * The caller holds the image's lock and has marked it closed.
 */
final class ImageCloser {
    private ImageCloser() {
    }

    static void close(Qcow2Engine img) throws IOException {
        List<String> dropped = new ArrayList<>();
        if (img.bitmaps != null) {
            for (String name : img.bitmaps.transientNames()) {
                dropped.add("closing '" + img.path + "' drops transient bitmap '" + name + "'");
            }
        }
        IOException failure = null;
        try {
            if (!img.readOnly) {
                if (img.bitmaps.needsStore()) {
                    img.prepareForWrite();
                    img.bitmaps.store();
                }
                boolean lowered = img.syncMetadata();
                // the flush above made the stores' header switches durable: their frees may go now
                img.bitmaps.releaseDeferredFrees();
                if (img.refcounts.applyPendingFrees() | lowered) {
                    img.storage.flush();
                }
            }
        } catch (IOException e) {
            failure = e;
        }
        img.holes.close();
        for (CloseStep c : new CloseStep[] {img.storage::close,
                () -> { if (img.dataFile != null) { img.dataFile.close(); } },
                () -> { if (img.io.backing() != null) { img.io.backing().close(); } },
                () -> { for (ImageLock l : img.locks()) { l.close(); } }}) {
            try {
                c.close();
            } catch (IOException e) {
                if (failure == null) {
                    failure = e;
                }
            }
        }
        // after everything is released: a listener that throws leaves nothing open
        dropped.forEach(img.warnings);
        if (failure != null) {
            throw failure;
        }
    }

    private interface CloseStep {
        void close() throws IOException;
    }
}
