package io.qcow4j.bitmaps;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.bitmap.BitmapState;

/**
 * Several actions over the images of a chain, applied all or none. Bitmap actions change
 * memory only and an external snapshot creates a new file, so on a failure the saved
 * bitmap states come back, the new overlay is deleted, and no byte of any existing image
 * has changed. Only after every action succeeded does the old top become read-only
 * (storing its bitmaps). Depths refer to the chain as the preceding actions left it
 * (after {@link #externalSnapshot} the new overlay is depth 0).
 *
 * <p>The one rollback of bitmap changes: the CLI's {@code bitmap} command runs its actions
 * through a transaction over its image ({@link #of}) too.
 */
public final class Transaction {
    /** A bitmap named by the layer it lives in. */
    public record BitmapRef(int depth, String name) {
    }

    private interface Action {
        void apply(Transaction tx) throws IOException;
    }

    /** An action of the caller's on the bitmaps of one layer (see {@link #step}). */
    public interface Step {
        void apply(Bitmaps bitmaps) throws IOException;
    }

    private final Chain chain;
    private final List<Action> actions = new ArrayList<>();
    private final Map<Qcow2Image, BitmapState> saved = new IdentityHashMap<>();
    private final List<Qcow2Image> overlays = new ArrayList<>();
    private String pendingWarning;

    Transaction(Chain chain) {
        this.chain = chain;
    }

    /**
     * A transaction over the bitmaps of one open image (depth 0; its backing files are the
     * deeper layers), which the caller keeps and closes: nothing is stored by the commit,
     * the image's close (or {@link Bitmaps#store}) stores what the actions changed.
     */
    public static Transaction of(Qcow2Image image) {
        return new Transaction(Chain.over(image));
    }

    /**
     * Runs {@code step} on the bitmaps of the layer at {@code depth}, in order with the
     * other actions; the layer's bitmaps are saved before and restored when any action
     * fails, like those of the actions below (which are steps themselves).
     */
    public Transaction step(int depth, Step step) {
        actions.add(tx -> step.apply(tx.bitmaps(depth)));
        return this;
    }

    public Transaction addBitmap(int depth, String name, Bitmaps.AddOptions options) {
        return step(depth, b -> b.add(name, options));
    }

    public Transaction removeBitmap(int depth, String name) {
        return step(depth, b -> b.remove(name));
    }

    public Transaction clearBitmap(int depth, String name) {
        return step(depth, b -> b.clear(name));
    }

    public Transaction enableBitmap(int depth, String name) {
        return step(depth, b -> b.enable(name));
    }

    public Transaction disableBitmap(int depth, String name) {
        return step(depth, b -> b.disable(name));
    }

    public Transaction mergeBitmaps(int depth, String target, BitmapRef... sources) {
        actions.add(tx -> {
            DirtyBitmap[] src = new DirtyBitmap[sources.length];
            for (int i = 0; i < sources.length; i++) {
                src[i] = tx.bitmaps(sources[i].depth()).get(sources[i].name());
            }
            tx.bitmaps(depth).merge(target, src);
        });
        return this;
    }

    public Transaction populateBitmap(int depth, String name) {
        return step(depth, b -> b.populate(name));
    }

    /**
     * Creates checkpoint {@code name}: an enabled persistent bitmap of that name in the top,
     * and every enabled persistent bitmap of the writable layers disabled (after an
     * {@link #externalSnapshot} in the same transaction that includes the former top, so
     * its recording checkpoint ends where the overlay begins). A backing layer open
     * read-only sees no writes; its bitmaps are left as they are. Refused when a
     * checkpoint of that name exists anywhere in the chain.
     */
    public Transaction checkpoint(String name) {
        actions.add(tx -> {
            // names are unique across the chain: "since NAME" must designate one bitmap
            if (tx.chain.checkpoints().list().stream().anyMatch(c -> c.name().equals(name))) {
                throw new IllegalArgumentException("Checkpoint '" + name + "' exists in the chain");
            }
            for (int depth = 0; depth < tx.chain.depth(); depth++) {
                if (tx.chain.layers().get(depth) instanceof Qcow2Image q && !q.isReadOnly()) {
                    Bitmaps layer = tx.bitmaps(depth);
                    for (DirtyBitmap b : layer.list()) {
                        if (b.isEnabled() && b.isPersistent()) {
                            layer.disable(b.name());
                        }
                    }
                }
            }
            tx.bitmaps(0).add(name);
        });
        return this;
    }

    /**
     * A new qcow2 overlay over the current top, recording the top as its backing file
     * (by the name given, relative to the overlay's directory, or absolute).
     */
    public Transaction externalSnapshot(Path overlay, String backingName) {
        actions.add(tx -> tx.createOverlay(overlay, backingName));
        return this;
    }

    /** An action that always fails, like QMP's "abort" (for testing rollbacks). */
    public Transaction abort() {
        actions.add(tx -> {
            throw new IllegalStateException("Transaction aborted using Abort action");
        });
        return this;
    }

    private Bitmaps bitmaps(int depth) {
        Qcow2Image img = chain.qcow2(depth);
        saved.computeIfAbsent(img, i -> i.bitmaps().saveState());
        return Bitmaps.of(img);
    }

    private void createOverlay(Path overlay, String backingName) throws IOException {
        Qcow2Image top = chain.top();
        if (Files.exists(overlay)) {
            throw new IllegalArgumentException("'" + overlay + "' already exists");
        }
        CreateOptions o = CreateOptions.size(top.size()).backingFile(backingName).backingFormat("qcow2");
        Qcow2Image img = Qcow2Image.create(overlay, o, chain.layerOptions(true));
        overlays.add(img);
        img.chain().attachBacking(top);
        chain.pushTop(img);
        boolean anyEnabled = Bitmaps.of(top).list().stream().anyMatch(DirtyBitmap::isEnabled);
        if (anyEnabled) {
            pendingWarning = "overlay '" + overlay + "' has no bitmap, while '" + top.path()
                    + "' has enabled ones that will see no more writes";
        }
    }


    /** Applies every action, or none. */
    public void commit() throws IOException {
        int done = 0;
        try {
            for (Action a : actions) {
                a.apply(this);
                done++;
            }
        } catch (IOException | RuntimeException e) {
            rollback();
            throw e;
        }
        // every action succeeded: the former tops become read-only backing layers now
        for (int i = overlays.size() - 1; i >= 0; i--) {
            Qcow2Image overlay = overlays.get(i);
            int depth = chain.layers().indexOf(overlay);
            if (depth >= 0 && depth + 1 < chain.depth()) {
                chain.reopen(depth + 1, false);
            }
            if (pendingWarning != null && Bitmaps.of(overlay).list().isEmpty()) {
                chain.warn(pendingWarning);
            }
        }
        assert done == actions.size();
    }

    private void rollback() {
        for (Map.Entry<Qcow2Image, BitmapState> e : saved.entrySet()) {
            e.getKey().bitmaps().restoreState(e.getValue());
        }
        for (int i = overlays.size() - 1; i >= 0; i--) {
            Qcow2Image overlay = overlays.get(i);
            if (chain.layers().indexOf(overlay) == 0) {
                chain.popTop();
            }
            Path p = overlay.path();
            try {
                overlay.chain().detachBacking();
                overlay.close();
            } catch (IOException | RuntimeException ignored) {
                // being deleted anyway
            }
            try {
                Files.deleteIfExists(p);
            } catch (IOException ignored) {
                // an orphan file, never referenced by the chain
            }
        }
    }
}
