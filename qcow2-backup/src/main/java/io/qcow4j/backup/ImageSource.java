package io.qcow4j.backup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.bitmaps.Chain;
import io.qcow4j.bitmaps.DirtyBitmap;
import io.qcow4j.core.RawImage;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.core.api.OpenOptions;

/**
 * An image file at rest as a backup source: a qcow2 chain, whose checkpoints are persistent
 * bitmaps of the top image (as {@code qcow4j checkpoint} keeps them), or a raw file (no
 * checkpoints). Opened read-write when checkpoints are to be started or merged back.
 */
public final class ImageSource implements BackupSource {
    private final Path path;
    private final Chain chain;
    private final BlockDevice device;
    private final ImageCheckpoints checkpoints;

    private ImageSource(Path path, Chain chain, BlockDevice device) {
        this.path = path;
        this.chain = chain;
        this.device = device;
        this.checkpoints = chain != null ? new ImageCheckpoints(chain) : null;
    }

    /**
     * Opens {@code path} (qcow2 with its backing chain, or raw). {@code writable}: checkpoints
     * can be started and merged back (the image is locked as QEMU locks a writer). A bitmap
     * left at another size than the disk opens as inconsistent, so the backup can say which.
     */
    public static ImageSource open(Path path, boolean writable, Consumer<String> warnings) throws IOException {
        if (!isQcow2(path)) {
            return new ImageSource(path, null, RawImage.open(path, true));
        }
        OpenOptions o = (writable ? OpenOptions.readWrite() : OpenOptions.readOnly()).sizeMismatchBitmapsInconsistent(true);
        Chain chain = Chain.open(path, o, warnings);
        return new ImageSource(path, chain, chain.top());
    }

    static boolean isQcow2(Path path) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            ByteBuffer magic = ByteBuffer.allocate(4);
            ch.read(magic, 0);
            return magic.position() == 4 && magic.getInt(0) == 0x514649fb;
        }
    }

    /** The chain (null for a raw file). */
    public Chain chain() {
        return chain;
    }

    public Path path() {
        return path;
    }

    @Override
    public String diskName() {
        String n = path.getFileName().toString();
        for (String ext : new String[] {".qcow2", ".img", ".raw"}) {
            if (n.endsWith(ext) && n.length() > ext.length()) {
                return n.substring(0, n.length() - ext.length());
            }
        }
        return n;
    }

    @Override
    public String diskFormat() {
        return device.formatName();
    }

    @Override
    public long size() {
        return device.size();
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        device.read(offset, dst);
    }

    @Override
    public Allocation allocation(long offset, long length) throws IOException {
        BlockStatus st = device.blockStatus(offset, length);
        Kind kind = !st.allocated() ? Kind.HOLE : st.zero() ? Kind.ZERO : Kind.DATA;
        return new Allocation(st.offset(), st.length(), kind);
    }

    @Override
    public List<Range> changedSince(String name) {
        requireChain();
        return ranges(chain.checkpoints().dirtySince(name));
    }

    @Override
    public List<Range> changedInBitmap(String name) throws IOException {
        String problem = bitmapProblem(name);
        if (problem != null) {
            throw new BackupException(problem);
        }
        for (int depth = 0; depth < chain.depth(); depth++) {
            if (chain.layers().get(depth) instanceof io.qcow4j.core.Qcow2Image) {
                Bitmaps b = chain.bitmaps(depth);
                if (b.contains(name)) {
                    return ranges(b.get(name));
                }
            }
        }
        throw new BackupException("bitmap '" + name + "' not found in '" + path + "'");
    }

    @Override
    public String bitmapProblem(String name) {
        if (chain == null) {
            return "'" + path + "' is a raw image: it keeps no bitmaps";
        }
        for (int depth = 0; depth < chain.depth(); depth++) {
            if (chain.layers().get(depth) instanceof io.qcow4j.core.Qcow2Image) {
                Bitmaps b = chain.bitmaps(depth);
                if (b.contains(name)) {
                    DirtyBitmap bm = b.get(name);
                    if (bm.isSizeMismatch()) {
                        return "bitmap '" + name + "' was left at another size than the disk's " + size() + " bytes";
                    }
                    if (bm.isInconsistent()) {
                        return "bitmap '" + name + "' is in_use (the image was not closed cleanly), so what changed is unknown";
                    }
                    return null;
                }
            }
        }
        return "bitmap '" + name + "' is not in '" + path + "'";
    }

    private void requireChain() {
        if (chain == null) {
            throw new IllegalStateException("a raw image has no checkpoints or bitmaps");
        }
    }

    static List<Range> ranges(DirtyBitmap bitmap) {
        List<Range> out = new ArrayList<>();
        for (DirtyBitmap.Extent e : bitmap.dirtyExtents()) {
            out.add(new Range(e.start(), e.length()));
        }
        return out;
    }

    @Override
    public Checkpointing checkpoints() {
        return checkpoints;
    }

    @Override
    public void close() throws IOException {
        if (chain != null) {
            chain.close();
        } else {
            device.close();
        }
    }
}
