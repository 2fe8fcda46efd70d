package io.qcow4j.backup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;

/**
 * The disk at one point of a chain of stream backups, as a read-only {@link BlockDevice}:
 * each backup, oldest first, is laid over the ones before it (after cutting them to its
 * virtual size, since a shrunk disk reads zeros past its end once grown again). Ranges no
 * backup holds are unallocated; zero frames read as allocated zeros. A data extent with a
 * checksum in the manifest is read whole and checked before any of it is used.
 */
final class StreamView implements BlockDevice {
    /** A run of the disk served by one extent of one file ({@code skip} bytes into the extent). */
    private record Piece(long start, long end, int file, ExtentRecord extent, long skip) {
        Piece cut(long from, long to) {
            return new Piece(from, to, file, extent, skip + (from - start));
        }
    }

    private final TreeMap<Long, Piece> pieces = new TreeMap<>();
    /** Extents larger than this are read piecewise, unchecked (virtnbdbackup's, which carry no checksum, may be). */
    private static final long WHOLE = 4 << 20;
    private final List<SetStore.ReadFile> files;
    private final List<Boolean> compressed = new ArrayList<>();
    private final long size;
    private ExtentRecord cachedExtent;
    private byte[] cached;

    /** The chain's files (oldest first, open: closed with the view) with their extents, compression and virtual sizes. */
    StreamView(List<SetStore.ReadFile> chain, List<List<ExtentRecord>> extents, List<Boolean> lz4, List<Long> sizes)
            throws IOException {
        this.files = chain;
        try {
            for (int i = 0; i < chain.size(); i++) {
                compressed.add(lz4.get(i));
                cutAt(sizes.get(i));
                for (ExtentRecord e : extents.get(i)) {
                    lay(new Piece(e.start, Math.min(e.end(), sizes.get(i)), i, e, 0));
                }
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
        this.size = sizes.get(sizes.size() - 1);
    }

    private void cutAt(long end) {
        Map.Entry<Long, Piece> across = pieces.lowerEntry(end);
        if (across != null && across.getValue().end() > end) {
            pieces.put(across.getKey(), across.getValue().cut(across.getValue().start(), end));
        }
        pieces.tailMap(end, true).clear();
    }

    private void lay(Piece p) {
        if (p.end() <= p.start()) {
            return;
        }
        Map.Entry<Long, Piece> before = pieces.lowerEntry(p.start());
        if (before != null && before.getValue().end() > p.start()) {
            Piece b = before.getValue();
            pieces.put(b.start(), b.cut(b.start(), p.start()));
            if (b.end() > p.end()) {
                pieces.put(p.end(), b.cut(p.end(), b.end()));
            }
        }
        Map.Entry<Long, Piece> last = pieces.lowerEntry(p.end());
        if (last != null && last.getKey() >= p.start() && last.getValue().end() > p.end()) {
            pieces.put(p.end(), last.getValue().cut(p.end(), last.getValue().end()));
        }
        pieces.subMap(p.start(), true, p.end(), false).clear();
        pieces.put(p.start(), p);
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public String formatName() {
        return "stream";
    }

    @Override
    public Path path() {
        return null;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        while (dst.hasRemaining()) {
            int n = dst.remaining();
            Map.Entry<Long, Piece> e = pieces.floorEntry(offset);
            Piece p = e != null && e.getValue().end() > offset ? e.getValue() : null;
            if (p == null || p.extent().isZero()) {
                long to;
                if (p == null) {
                    Long next = pieces.higherKey(offset);
                    to = next == null ? Long.MAX_VALUE : next;
                } else {
                    to = p.end();
                }
                int z = (int) Math.min(n, to - offset);
                for (int i = 0; i < z; i++) {
                    dst.put((byte) 0);
                }
                offset += z;
                continue;
            }
            int len = (int) Math.min(n, p.end() - offset);
            long into = p.skip() + (offset - p.start());
            if (compressed.get(p.file()) || (p.extent().crc32c != null && p.extent().length <= WHOLE)) {
                byte[] plain = decoded(p);
                dst.put(plain, (int) into, len);
            } else {
                ByteBuffer part = dst.duplicate();
                part.limit(part.position() + len);
                if (files.get(p.file()).read(p.extent().pos + into, part) != len) {
                    throw StreamIndex.bad(files.get(p.file()).name(), p.extent().pos + into, "data frame cut short");
                }
                dst.position(dst.position() + len);
            }
            offset += len;
        }
    }

    /** The whole payload of the piece's extent, decompressed and checked against its checksum. */
    private byte[] decoded(Piece p) throws IOException {
        if (cachedExtent != p.extent()) {
            ExtentRecord x = p.extent();
            String name = files.get(p.file()).name();
            byte[] stored = StreamIndex.bytes(name, files.get(p.file()), x.pos, Math.toIntExact(x.stored));
            byte[] plain = !compressed.get(p.file()) ? stored : Lz4Frames.decompress(stored, Math.toIntExact(x.length),
                    "'" + name + "' data frame at offset " + (x.pos - SparseStream.FRAME_LEN));
            if (x.crc32c != null && Files2.crc(ByteBuffer.wrap(plain)) != x.crc32c) {
                throw StreamIndex.bad(name, x.pos, "the data of guest bytes " + x.start + " to " + x.end()
                        + " does not match its checksum");
            }
            cached = plain;
            cachedExtent = x;
        }
        return cached;
    }

    @Override
    public BlockStatus blockStatus(long offset, long length) {
        Map.Entry<Long, Piece> e = pieces.floorEntry(offset);
        if (e != null && e.getValue().end() > offset) {
            Piece p = e.getValue();
            long n = Math.min(length, p.end() - offset);
            boolean zero = p.extent().isZero();
            return new BlockStatus(offset, n, true, zero, !zero, 0, -1, false);
        }
        Long next = pieces.higherKey(offset);
        long n = next == null ? length : Math.min(length, next - offset);
        return new BlockStatus(offset, n, false, true, false, 0, -1, false);
    }

    @Override
    public void close() throws IOException {
        IOException first = null;
        for (SetStore.ReadFile f : files) {
            try {
                f.close();
            } catch (IOException e) {
                first = first == null ? e : first;
            }
        }
        if (first != null) {
            throw first;
        }
    }
}
