package io.qcow4j.bitmaps;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.Qcow2Image;

/**
 * Checkpoints as libvirt keeps them, in the images themselves: each checkpoint is a
 * persistent bitmap named after it; the newest one is enabled and records every write,
 * the older ones are disabled and hold what changed between their creation and the next
 * checkpoint. Oldest first means the base layer's bitmaps first, each image's bitmaps in
 * directory order (new bitmaps are appended). Every persistent bitmap of the chain
 * counts as a checkpoint.
 */
public final class Checkpoints {
    /** A checkpoint: its name, whether it is the one recording, and its layer. */
    public record Checkpoint(String name, boolean enabled, int depth) {
    }

    private final Chain chain;

    Checkpoints(Chain chain) {
        this.chain = chain;
    }

    /** Oldest first, across the chain. */
    public List<Checkpoint> list() {
        List<Checkpoint> out = new ArrayList<>();
        for (int depth = chain.depth() - 1; depth >= 0; depth--) {
            if (!(chain.layers().get(depth) instanceof Qcow2Image)) {
                continue;
            }
            for (DirtyBitmap b : chain.bitmaps(depth).list()) {
                if (b.isPersistent()) {
                    out.add(new Checkpoint(b.name(), b.isEnabled(), depth));
                }
            }
        }
        return out;
    }

    /**
     * Creates checkpoint {@code name} in the top: the recording bitmap stops, a new one
     * starts, atomically. See {@link Transaction#checkpoint}.
     */
    public void create(String name) throws IOException {
        chain.transaction().checkpoint(name).commit();
    }

    /**
     * Deletes checkpoint {@code name}: its bits go into its predecessor (so "since the
     * predecessor" stays right), which takes over recording if the deleted one recorded in
     * the same layer; then its bitmap is removed. Merge and removal are one transaction:
     * if either is refused (an inconsistent bitmap, a busy one), no image changes. Layers
     * are reopened read-write as needed and back, the predecessor's first, so its merge is
     * stored before the removal: a crash in between leaves both, and every "dirty since"
     * answer the same. When the recording checkpoint of the top goes and its predecessor
     * lives in a backing layer, nothing records the top's writes any more: a warning says so.
     */
    public void delete(String name) throws IOException {
        List<Checkpoint> all = list();
        int i = indexOf(all, name);
        Checkpoint c = all.get(i);
        Checkpoint prev = i > 0 ? all.get(i - 1) : null;
        List<Integer> reopened = new ArrayList<>();
        Exception failure = null;
        try {
            if (prev != null) {
                reopenIfNeeded(prev.depth(), reopened);
            }
            reopenIfNeeded(c.depth(), reopened);
            Transaction tx = chain.transaction();
            if (prev != null) {
                tx.mergeBitmaps(prev.depth(), prev.name(), new Transaction.BitmapRef(c.depth(), name));
                if (c.enabled() && prev.depth() == c.depth()) {
                    tx.enableBitmap(prev.depth(), prev.name());
                }
            }
            tx.removeBitmap(c.depth(), name).commit();
            if (prev != null && c.enabled() && c.depth() == 0
                    && chain.bitmaps(0).list().stream().noneMatch(b -> b.isEnabled() && b.isPersistent())) {
                chain.warn("deleting checkpoint '" + name + "' leaves no checkpoint recording the writes to '"
                        + chain.top().path() + "' (its predecessor '" + prev.name() + "' is in a backing layer)");
            }
        } catch (IOException | RuntimeException e) {
            failure = e;
        }
        // back to read-only, deepest first: the predecessor's merge is stored before the removal
        reopened.sort(java.util.Comparator.reverseOrder());
        for (int depth : reopened) {
            try {
                chain.reopen(depth, false);
            } catch (IOException | RuntimeException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure instanceof IOException e) {
            throw e;
        }
        if (failure != null) {
            throw (RuntimeException) failure;
        }
    }

    private void reopenIfNeeded(int depth, List<Integer> reopened) throws IOException {
        if (!reopened.contains(depth) && chain.qcow2(depth).isReadOnly()) {
            chain.reopen(depth, true);
            reopened.add(depth);
        }
    }

    /**
     * What changed since checkpoint {@code name}: the union of its bitmap and every later
     * one, across the layers, at the finest granularity among them.
     */
    public DirtyBitmap dirtySince(String name) {
        List<Checkpoint> all = list();
        int i = indexOf(all, name);
        List<DirtyBitmap> parts = new ArrayList<>();
        long g = Long.MAX_VALUE;
        for (Checkpoint c : all.subList(i, all.size())) {
            DirtyBitmap b = chain.bitmaps(c.depth()).get(c.name());
            parts.add(b);
            g = Math.min(g, b.granularity());
        }
        DirtyBitmap sum = DirtyBitmap.standalone("since-" + name, chain.top().size(), g);
        for (DirtyBitmap b : parts) {
            sum.mergeFrom(b);
        }
        return sum;
    }

    private static int indexOf(List<Checkpoint> all, String name) {
        for (int i = 0; i < all.size(); i++) {
            if (all.get(i).name().equals(name)) {
                return i;
            }
        }
        throw new IllegalArgumentException("Checkpoint '" + name + "' not found");
    }
}
