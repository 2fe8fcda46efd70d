package io.qcow4j.bitmaps;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Consumer;

import io.qcow4j.core.BlockDevice;
import io.qcow4j.core.OpenOptions;
import io.qcow4j.core.Qcow2Image;

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
    private Consumer<String> warnings = w -> System.getLogger("io.qcow4j").log(System.Logger.Level.WARNING, w);

    private Chain(Qcow2Image top) {
        BlockDevice d = top;
        while (d != null) {
            layers.add(d);
            d = d instanceof Qcow2Image q ? q.backing() : null;
        }
    }

    /** Opens {@code top} (read-write when {@code writable}) with its whole backing chain. */
    public static Chain open(Path top, boolean writable) throws IOException {
        return new Chain(Qcow2Image.open(top, writable ? OpenOptions.readWrite() : OpenOptions.readOnly()));
    }

    /**
     * Opens {@code top} with {@code options} (its backing files read-only), e.g.
     * {@code OpenOptions.readOnly().forceShare(true)} to look at the chain of an image in use.
     */
    public static Chain open(Path top, OpenOptions options) throws IOException {
        return new Chain(Qcow2Image.open(top, options));
    }

    /** Receives the warnings about bitmaps that an operation would leave behind. */
    public Chain onWarning(Consumer<String> listener) {
        this.warnings = listener;
        return this;
    }

    void warn(String message) {
        warnings.accept(message);
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
     * its bitmaps (clearing in_use); the layer above reads through the new instance.
     */
    public Qcow2Image reopen(int depth, boolean writable) throws IOException {
        Qcow2Image old = qcow2(depth);
        if (old.isReadOnly() != writable) {
            return old;
        }
        BlockDevice below = old.detachBacking();
        Path path = old.path();
        old.close();
        Qcow2Image fresh = Qcow2Image.open(path, (writable ? OpenOptions.readWrite() : OpenOptions.readOnly()).openBacking(false));
        fresh.attachBacking(below);
        replace(depth, fresh);
        return fresh;
    }

    /** Puts {@code device} at {@code depth}; the layer above reads through it. */
    void replace(int depth, BlockDevice device) {
        layers.set(depth, device);
        if (depth > 0) {
            qcow2(depth - 1).attachBacking(device);
        }
    }

    /** Inserts a new top above the current one (an external snapshot). */
    void pushTop(Qcow2Image overlay) {
        layers.add(0, overlay);
    }

    /** Undoes {@link #pushTop} without closing the old top. */
    Qcow2Image popTop() {
        Qcow2Image top = qcow2(0);
        top.detachBacking();
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

    /** Closes every layer (top first, which closes the layers below it). */
    @Override
    public void close() throws IOException {
        for (int i = 0; i < layers.size(); i++) {
            if (layers.get(i) instanceof Qcow2Image q) {
                for (var b : Bitmaps.of(q).list()) {
                    if (!b.isPersistent()) {
                        warn("closing '" + q.path() + "' drops transient bitmap '" + b.name() + "'");
                    }
                }
            }
        }
        layers.get(0).close();
    }
}
