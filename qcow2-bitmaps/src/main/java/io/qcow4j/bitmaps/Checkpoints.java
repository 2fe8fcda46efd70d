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

    /** Creates checkpoint {@code name} in the top: the recording bitmap stops, a new one starts, atomically. */
    public void create(String name) throws IOException {
        chain.transaction().checkpoint(name).commit();
    }

    static void createIn(Bitmaps top, String name) throws IOException {
        for (DirtyBitmap b : top.list()) {
            if (b.isEnabled() && b.isPersistent()) {
                top.disable(b.name());
            }
        }
        top.add(name);
    }

    /**
     * Deletes checkpoint {@code name}: its bits go into its predecessor (so "since the
     * predecessor" stays right), which takes over recording if the deleted one recorded;
     * then its bitmap is removed. Layers are reopened read-write as needed and back.
     */
    public void delete(String name) throws IOException {
        List<Checkpoint> all = list();
        int i = indexOf(all, name);
        Checkpoint c = all.get(i);
        boolean reopenedC = reopenIfNeeded(c.depth());
        try {
            if (i > 0) {
                Checkpoint prev = all.get(i - 1);
                boolean reopenedP = prev.depth() != c.depth() && reopenIfNeeded(prev.depth());
                try {
                    Bitmaps pb = chain.bitmaps(prev.depth());
                    pb.merge(prev.name(), chain.bitmaps(c.depth()).get(name));
                    if (c.enabled() && prev.depth() == 0) {
                        pb.enable(prev.name());
                    }
                } finally {
                    if (reopenedP) {
                        chain.reopen(prev.depth(), false);
                    }
                }
            }
            chain.bitmaps(c.depth()).remove(name);
        } finally {
            if (reopenedC) {
                chain.reopen(c.depth(), false);
            }
        }
    }

    private boolean reopenIfNeeded(int depth) throws IOException {
        if (chain.qcow2(depth).isReadOnly()) {
            chain.reopen(depth, true);
            return true;
        }
        return false;
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
