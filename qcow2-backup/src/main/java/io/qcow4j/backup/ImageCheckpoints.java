package io.qcow4j.backup;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.bitmaps.Chain;
import io.qcow4j.bitmaps.Checkpoints;
import io.qcow4j.bitmaps.DirtyBitmap;
import io.qcow4j.bitmaps.Transaction;

/**
 * Checkpoints kept as persistent bitmaps of a chain's top image, as {@link Checkpoints} keeps
 * them: the newest records, the older ones hold what changed until the next. Every change is
 * stored in the image and flushed before the call returns, so a backup killed at any point
 * finds the bitmaps as the last call left them.
 */
final class ImageCheckpoints implements Checkpointing {
    private final Chain chain;

    ImageCheckpoints(Chain chain) {
        this.chain = chain;
    }

    @Override
    public List<String> names() {
        return chain.checkpoints().list().stream().map(Checkpoints.Checkpoint::name).toList();
    }

    @Override
    public List<String> recording() {
        List<String> out = new ArrayList<>();
        for (DirtyBitmap b : top().list()) {
            if (b.isPersistent() && b.isEnabled()) {
                out.add(b.name());
            }
        }
        return out;
    }

    private Bitmaps top() {
        return chain.bitmaps(0);
    }

    @Override
    public String problem(String name, List<String> laterInSet) {
        String q = "checkpoint '" + name + "'";
        Bitmaps top = top();
        if (!top.contains(name)) {
            for (int depth = 1; depth < chain.depth(); depth++) {
                if (chain.layers().get(depth) instanceof io.qcow4j.core.Qcow2Image && chain.bitmaps(depth).contains(name)) {
                    return q + " is in the backing file '" + chain.layers().get(depth).path() + "', not in the top image";
                }
            }
            return q + " is not in the image (its bitmap was removed)";
        }
        DirtyBitmap b = top.get(name);
        if (b.isSizeMismatch()) {
            return q + ": its bitmap was left at another size than the disk's " + chain.top().size()
                    + " bytes (the disk was resized without it)";
        }
        if (b.isInconsistent()) {
            return q + ": its bitmap is in_use (the image was not closed cleanly), so what changed since is unknown";
        }
        List<DirtyBitmap> all = top.list().stream().filter(DirtyBitmap::isPersistent).toList();
        int at = 0;
        while (at < all.size() && !all.get(at).name().equals(name)) {
            at++;
        }
        if (at == all.size()) {
            return q + " is a transient bitmap, not a checkpoint stored in the image";
        }
        List<DirtyBitmap> after = all.subList(at, all.size());
        for (String later : laterInSet) {
            if (after.stream().noneMatch(x -> x.name().equals(later))) {
                return "gap in the chain: checkpoint '" + later + "', taken after '" + name + "', is missing from the image";
            }
        }
        for (DirtyBitmap x : after) {
            if (x.isInconsistent()) {
                return "gap in the chain: checkpoint '" + x.name() + "', after '" + name
                        + "', is in_use or broken, so what it recorded is unknown";
            }
        }
        if (after.stream().noneMatch(DirtyBitmap::isEnabled)) {
            return "gap in the chain: no checkpoint from '" + name + "' on records writes (all are disabled)";
        }
        return null;
    }

    @Override
    public void start(String name) throws IOException {
        writable();
        chain.transaction().checkpoint(name).commit();
        durable();
    }

    @Override
    public void mergeBack(String name, List<String> frozen) throws IOException {
        Bitmaps top = top();
        if (!top.contains(name)) {
            return;
        }
        List<String> into = new ArrayList<>();
        for (String f : frozen) {
            if (top.contains(f) && !top.get(f).isInconsistent()) {
                into.add(f);
            }
        }
        writable();
        if (into.isEmpty()) {
            // nothing to take its bits: it stays, recording, and "since" any older one still includes it
            return;
        }
        Transaction tx = chain.transaction();
        for (String f : into) {
            tx.mergeBitmaps(0, f, new Transaction.BitmapRef(0, name));
            if (top.get(name).isEnabled()) {
                tx.enableBitmap(0, f);
            }
        }
        tx.removeBitmap(0, name).commit();
        durable();
    }

    private void writable() throws BackupException {
        if (chain.top().isReadOnly()) {
            throw new BackupException("'" + chain.top().path() + "' is open read-only: checkpoints cannot change");
        }
    }

    private void durable() throws IOException {
        chain.top().storeBitmaps();
        chain.top().flush();
    }
}
