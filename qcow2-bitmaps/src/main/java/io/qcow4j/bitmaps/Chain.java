package io.qcow4j.bitmaps;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.RawImage;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.OpenOptions;

/**
 * A backing chain: the top image and the layers below it, depth 0 being the top. The top
 * is open read-write (unless asked otherwise), backing layers read-only; any layer can be
 * reopened read-write and back, with QEMU's in_use rules: read-write to read-only stores
 * its bitmaps and clears in_use; read-only to read-write makes its bitmaps writable (in_use
 * is set before the first write). Jobs (commit, stream, rebase), transactions and
 * checkpoints work on the chain.
 */
public final class Chain implements Closeable {
    private final List<BlockDevice> layers = new ArrayList<>();
    private final Warnings warnings;

    /**
     * The chain's one warnings sink: every layer is opened with it (so what the engine says,
     * such as transient bitmaps dropped at close, arrives where the chain's own warnings do)
     * and {@link #onWarning} redirects it at any time.
     */
    private static final class Warnings implements Consumer<String> {
        private volatile Consumer<String> target = OpenOptions.readOnly().warnings();

        @Override
        public void accept(String message) {
            target.accept(message);
        }
    }

    private Chain(Qcow2Image top, Warnings warnings) {
        this.warnings = warnings;
        BlockDevice d = top;
        while (d != null) {
            layers.add(d);
            d = d instanceof Qcow2Image q ? q.chain().backing() : null;
        }
    }

    /**
     * The chain of an image already open, which the caller keeps owning (it closes the
     * image, not this chain): for a {@link Transaction#of one-image transaction}.
     */
    static Chain over(Qcow2Image top) {
        return new Chain(top, new Warnings());
    }

    /** Opens {@code top} (read-write when {@code writable}) with its whole backing chain. */
    public static Chain open(Path top, boolean writable) throws IOException {
        return open(top, writable, null);
    }

    /**
     * As {@link #open(Path, boolean)}, with {@code listener} (null: System.Logger
     * "io.qcow4j") receiving the warnings from the start, those of opening included.
     */
    public static Chain open(Path top, boolean writable, Consumer<String> listener) throws IOException {
        Warnings w = new Warnings();
        if (listener != null) {
            w.target = listener;
        }
        return new Chain(Qcow2Image.open(top, options(writable, w)), w);
    }

    private static OpenOptions options(boolean writable, Consumer<String> warnings) {
        return (writable ? OpenOptions.readWrite() : OpenOptions.readOnly()).warnings(warnings);
    }

    /** Options for a layer this chain opens (read-write or not, without its backing chain). */
    OpenOptions layerOptions(boolean writable) {
        return options(writable, warnings).openBacking(false);
    }

    /**
     * Opens {@code top} with {@code options} (its backing files read-only), e.g.
     * {@code OpenOptions.readOnly().forceShare(true)} to look at the chain of an image in use;
     * {@code listener} (null: System.Logger "io.qcow4j") receives the warnings from the start.
     */
    public static Chain open(Path top, OpenOptions options, Consumer<String> listener) throws IOException {
        Warnings w = new Warnings();
        if (listener != null) {
            w.target = listener;
        }
        return new Chain(Qcow2Image.open(top, options.warnings(w)), w);
    }

    /**
     * Receives the warnings about bitmaps that an operation would lose or leave behind (an
     * overlay over recording bitmaps without one of its own, a commit nothing records,
     * transient bitmaps dropped at close), and those of the engine about the chain's images.
     */
    public Chain onWarning(Consumer<String> listener) {
        warnings.target = java.util.Objects.requireNonNull(listener);
        return this;
    }

    void warn(String message) {
        warnings.accept(message);
    }

    Consumer<String> warnings() {
        return warnings;
    }

    public List<BlockDevice> layers() {
        return Collections.unmodifiableList(layers);
    }

    public int depth() {
        return layers.size();
    }

    public Qcow2Image top() {
        return qcow2(0);
    }

    /** The qcow2 layer at {@code depth} (0 = top). */
    public Qcow2Image qcow2(int depth) {
        if (depth < 0 || depth >= layers.size()) {
            throw new IllegalArgumentException("no layer at depth " + depth + " (chain of " + layers.size() + ")");
        }
        if (!(layers.get(depth) instanceof Qcow2Image q)) {
            throw new IllegalArgumentException("layer " + depth + " is " + layers.get(depth).formatName() + ", not qcow2");
        }
        return q;
    }

    /** Depth of the layer whose file is {@code file}, or -1. */
    public int depthOf(Path file) throws IOException {
        Path real = file.toRealPath();
        for (int i = 0; i < layers.size(); i++) {
            Path p = layers.get(i).path();
            if (p != null && p.toRealPath().equals(real)) {
                return i;
            }
        }
        return -1;
    }

    public Bitmaps bitmaps(int depth) {
        return Bitmaps.of(qcow2(depth));
    }

    /**
     * Reopens the layer at {@code depth} read-write or read-only. Going read-only stores
     * its bitmaps (clearing in_use); the layer above reads through the new instance. As in
     * QEMU, the bitmaps in memory live on: transient ones move to the new instance, and
     * enabling or disabling done while read-only (which only memory holds) is kept.
     */
    public Qcow2Image reopen(int depth, boolean writable) throws IOException {
        Qcow2Image old = qcow2(depth);
        if (old.isReadOnly() != writable) {
            return old;
        }
        List<DirtyBitmap> transients = new ArrayList<>();
        Map<String, Boolean> enabled = new HashMap<>();
        for (DirtyBitmap b : Bitmaps.of(old).list()) {
            if (!b.isPersistent()) {
                transients.add(b);
            } else {
                enabled.put(b.name(), b.isEnabled());
            }
        }
        List<DirtyBitmap> copies = new ArrayList<>();
        for (DirtyBitmap b : transients) {
            copies.add(b.copy(b.name()));
            old.bitmaps().remove(b.entry()); // moved, not dropped: no warning at close
        }
        BlockDevice below = old.chain().detachBacking();
        Path path = old.path();
        old.close();
        Qcow2Image fresh = Qcow2Image.open(path, layerOptions(writable));
        fresh.chain().attachBacking(below);
        replace(depth, fresh);
        Bitmaps now = Bitmaps.of(fresh);
        for (DirtyBitmap b : now.list()) {
            Boolean was = enabled.get(b.name());
            if (was != null && was != b.isEnabled() && !b.isInconsistent()) {
                fresh.bitmaps().setEnabled(b.entry(), was);
            }
        }
        for (int i = 0; i < transients.size(); i++) {
            DirtyBitmap t = transients.get(i);
            Bitmaps.AddOptions o = Bitmaps.AddOptions.defaults().transientBitmap().withGranularity(t.granularity());
            now.add(t.name(), t.isEnabled() ? o : o.disabledBitmap()).mergeFrom(copies.get(i));
        }
        return fresh;
    }

    /** Reopens the raw layer at {@code depth} read-write (a commit's base); it has no bitmaps to carry over. */
    public RawImage reopenRaw(int depth) throws IOException {
        if (depth < 1 || depth >= layers.size() || !(layers.get(depth) instanceof RawImage old)) {
            throw new IllegalArgumentException("no raw layer at depth " + depth);
        }
        if (!old.isReadOnly()) {
            return old;
        }
        Path path = old.path();
        old.close();
        RawImage fresh = RawImage.open(path, false);
        replace(depth, fresh);
        return fresh;
    }

    /** Puts {@code device} at {@code depth}; the layer above reads through it. */
    void replace(int depth, BlockDevice device) {
        layers.set(depth, device);
        if (depth > 0) {
            qcow2(depth - 1).chain().attachBacking(device);
        }
    }

    /** Inserts a new top above the current one (an external snapshot). */
    void pushTop(Qcow2Image overlay) {
        layers.add(0, overlay);
    }

    /** Undoes {@link #pushTop} without closing the old top. */
    Qcow2Image popTop() {
        Qcow2Image top = qcow2(0);
        top.chain().detachBacking();
        layers.remove(0);
        return top;
    }

    /** Sets or appends the layer list entry at {@code depth} without relinking (rebuilding after a rebase). */
    void replaceAppend(int depth, BlockDevice device) {
        if (depth < layers.size()) {
            layers.set(depth, device);
        } else {
            layers.add(device);
        }
    }

    /** Drops the layers from {@code from} to {@code to} (inclusive) out of the list, closing none. */
    void removeLayers(int from, int to) {
        for (int i = to; i >= from; i--) {
            layers.remove(i);
        }
    }

    public Transaction transaction() {
        return new Transaction(this);
    }

    public Jobs jobs() {
        return new Jobs(this);
    }

    public Checkpoints checkpoints() {
        return new Checkpoints(this);
    }

    /**
     * Closes every layer (top first, which closes the layers below it); each warns of the
     * transient bitmaps it drops.
     */
    @Override
    public void close() throws IOException {
        layers.get(0).close();
    }
}
