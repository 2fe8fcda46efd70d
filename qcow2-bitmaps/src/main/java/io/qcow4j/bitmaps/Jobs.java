package io.qcow4j.bitmaps;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;

import io.qcow4j.core.BlockDevice;
import io.qcow4j.core.BlockStatus;
import io.qcow4j.core.ImageFiles;
import io.qcow4j.core.Qcow2Image;

/**
 * Block jobs on a chain: commit (data down into a lower layer, whose enabled bitmaps
 * record every write), stream (backing data up into the top, dirtying nothing, since the
 * guest's view does not change) and rebase.
 */
public final class Jobs {
    /** Copies in chunks of this size at most. */
    private static final int CHUNK = 1 << 20;

    private final Chain chain;

    Jobs(Chain chain) {
        this.chain = chain;
    }

    /** What to commit where. */
    public record CommitOptions(int baseDepth, boolean emptyTop, boolean mergeBitmaps) {
        /** Top into its backing file, emptying the top afterwards (qemu-img commit's default). */
        public static CommitOptions defaults() {
            return new CommitOptions(1, true, false);
        }
    }

    /**
     * Writes everything the layers above {@code baseDepth} hold into that layer, through
     * its normal write path: its enabled bitmaps record the ranges written (whole clusters
     * of the top, as QEMU's commit copies them); its disabled ones stay untouched.
     * With {@code mergeBitmaps}, the top's bitmaps are merged into same-named bitmaps of
     * the base (created when missing). The top keeps its own bitmaps.
     */
    public void commit(CommitOptions options) throws IOException {
        int baseDepth = options.baseDepth();
        if (baseDepth < 1 || baseDepth >= chain.depth()) {
            throw new IllegalArgumentException("no layer at depth " + baseDepth + " below the top");
        }
        Qcow2Image top = chain.top();
        Qcow2Image base = chain.reopen(baseDepth, true);
        if (Bitmaps.of(base).list().stream().noneMatch(DirtyBitmap::isEnabled)
                && !Bitmaps.of(top).list().isEmpty()) {
            chain.warn("commit into '" + base.path() + "': no enabled bitmap there records what it writes");
        }
        long size = Math.min(top.size(), base.size());
        long off = 0;
        ByteBuffer buf = ByteBuffer.allocate(CHUNK);
        while (off < size) {
            BlockStatus st = top.blockStatus(off, Math.min(size - off, CHUNK));
            if (st.allocated() && st.depth() < baseDepth) {
                if (st.zero() && !st.data()) {
                    base.writeZeroes(st.offset(), st.length());
                } else {
                    buf.clear().limit((int) st.length());
                    top.read(st.offset(), buf);
                    buf.flip();
                    base.write(st.offset(), buf);
                }
            }
            off += st.length();
        }
        if (options.mergeBitmaps()) {
            mergeBitmapsDown(top, base);
        }
        base.flush();
        if (baseDepth > 1) {
            // the layers in between are committed too: the top now reads straight from the
            // base, whose data equals theirs (QEMU drops the intermediate images likewise)
            Path topDir = top.path().toAbsolutePath().getParent();
            String name = topDir.relativize(base.path().toAbsolutePath()).toString();
            BlockDevice mid = top.detachBacking();
            base = (Qcow2Image) chain.layers().get(baseDepth);
            ((Qcow2Image) chain.layers().get(baseDepth - 1)).detachBacking();
            top.setBackingFile(name, "qcow2", base);
            chain.removeLayers(1, baseDepth - 1);
            mid.close();
        }
        if (options.emptyTop()) {
            top.makeEmpty();
        }
    }

    private static void mergeBitmapsDown(Qcow2Image top, Qcow2Image base) throws IOException {
        Bitmaps from = Bitmaps.of(top);
        Bitmaps to = Bitmaps.of(base);
        for (DirtyBitmap b : from.list()) {
            if (b.isInconsistent()) {
                continue;
            }
            if (!to.contains(b.name())) {
                Bitmaps.AddOptions o = Bitmaps.AddOptions.defaults().withGranularity(b.granularity());
                to.add(b.name(), b.isEnabled() ? o : o.disabledBitmap());
            }
            to.merge(b.name(), b);
        }
    }

    /**
     * Copies into the top everything it reads from its backing chain, then drops the
     * backing link. Nothing the guest sees changes, so no bitmap is dirtied.
     */
    public void stream() throws IOException {
        Qcow2Image top = chain.top();
        if (chain.depth() < 2) {
            return;
        }
        long size = top.size();
        long off = 0;
        ByteBuffer buf = ByteBuffer.allocate(CHUNK);
        while (off < size) {
            BlockStatus st = top.blockStatus(off, Math.min(size - off, CHUNK));
            if (st.depth() > 0 && st.allocated() && st.data()) {
                buf.clear().limit((int) st.length());
                top.read(st.offset(), buf);
                buf.flip();
                top.writeUntracked(st.offset(), buf);
            }
            off += st.length();
        }
        top.flush();
        BlockDevice old = top.detachBacking();
        top.setBackingFile(null, null, null);
        chain.removeLayers(1, chain.depth() - 1);
        old.close();
    }

    /**
     * Points the top at a new backing file. Safe mode first copies into the top every
     * range where the old and new backing contents differ (so the guest's view stays);
     * {@code unsafe} only rewrites the name (qemu-img rebase -u).
     */
    public void rebase(String backingName, String format, boolean unsafe) throws IOException {
        rebase(backingName, format, unsafe, false);
    }

    /**
     * {@link #rebase(String, String, boolean)}; {@code forceShare} opens the new backing file
     * without QEMU's image locks (qemu-img rebase -U), so an image in use can become the base.
     */
    public void rebase(String backingName, String format, boolean unsafe, boolean forceShare) throws IOException {
        Qcow2Image top = chain.top();
        BlockDevice next = null;
        if (backingName != null) {
            next = ImageFiles.openReadOnly(ImageFiles.resolve(top.path(), backingName), format, forceShare);
        }
        try {
            if (!unsafe) {
                copyDifferences(top, next);
            }
            BlockDevice old = top.detachBacking();
            top.setBackingFile(backingName, next == null ? null : format != null ? format : next.formatName(), next);
            chain.removeLayers(1, chain.depth() - 1);
            if (next != null) {
                BlockDevice d = next;
                int depth = 1;
                while (d != null) {
                    chain.replaceAppend(depth++, d);
                    d = d instanceof Qcow2Image q ? q.backing() : null;
                }
            }
            if (old != null) {
                old.close();
            }
        } catch (IOException | RuntimeException e) {
            if (next != null && top.backing() != next) {
                next.close();
            }
            throw e;
        }
    }

    private static void copyDifferences(Qcow2Image top, BlockDevice next) throws IOException {
        long size = top.size();
        int cs = top.clusterSize();
        ByteBuffer a = ByteBuffer.allocate(cs);
        ByteBuffer b = ByteBuffer.allocate(cs);
        long off = 0;
        while (off < size) {
            BlockStatus st = top.blockStatus(off, size - off);
            if (st.depth() == 0 && st.allocated()) {
                off += st.length();
                continue;
            }
            long end = st.offset() + st.length();
            for (long c = st.offset(); c < end; ) {
                int n = (int) Math.min(cs - (c % cs), end - c);
                a.clear().limit(n);
                b.clear().limit(n);
                top.read(c, a);
                if (next != null) {
                    next.read(c, b);
                } else {
                    Arrays.fill(b.array(), 0, n, (byte) 0);
                    b.position(n);
                }
                if (!Arrays.equals(a.array(), 0, n, b.array(), 0, n)) {
                    a.flip();
                    top.writeUntracked(c, a);
                }
                c += n;
            }
            off = end;
        }
    }
}
