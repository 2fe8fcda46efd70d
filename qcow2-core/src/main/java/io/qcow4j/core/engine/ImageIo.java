package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.function.Supplier;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.compress.ClusterCodec;
import io.qcow4j.core.format.CompressedDescriptor;
import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.format.L2Entry;
import io.qcow4j.core.storage.Storage;

/**
 * Guest reads and writes through the cluster mapping: zero clusters, compressed clusters,
 * subclusters, copy-on-write from the backing file or a snapshot-shared cluster; zero flags
 * and unmapping are {@link ZeroClusters}'.
 *
 * <p>Write ordering for a newly allocated cluster: refcount (in {@link RefcountManager}),
 * then the data, then the L2 entry, then the old cluster's refcount is lowered.
 */
public final class ImageIo {
    private final Storage storage;
    private final Storage dataFile;
    private final RefcountManager refcounts;
    private final ClusterMapper mapper;
    private final Geometry geo;
    /** One codec per thread: {@link Parallel} workers decompress and compress beside the caller. */
    private final ThreadLocal<ClusterCodec> codecs;
    private final CompressedWrite compressedWrite;
    private final ZeroClusters zeroes;
    private final boolean dataFileRaw;
    private BlockDevice backing;
    /** Guest data seen through a cipher (LUKS), null for plain images. */
    private Storage dataView;
    private long cachedCompressedEntry = -1;
    private byte[] cachedCompressed;

    public ImageIo(Storage storage, Storage dataFile, boolean dataFileRaw, RefcountManager refcounts,
                   ClusterMapper mapper, Geometry geo, Supplier<ClusterCodec> codec, BlockDevice backing) {
        this.storage = storage;
        this.dataFile = dataFile;
        this.dataFileRaw = dataFileRaw;
        this.refcounts = refcounts;
        this.mapper = mapper;
        this.geo = geo;
        this.codecs = ThreadLocal.withInitial(codec);
        this.compressedWrite = new CompressedWrite(this, mapper, geo, refcounts);
        this.zeroes = new ZeroClusters(this, mapper, geo);
        this.backing = backing;
    }

    public void setBacking(BlockDevice backing) {
        this.backing = backing;
    }

    /** Encrypted images: guest data goes through {@code view} (which wraps the data file or the image). */
    public void useDataView(Storage view) {
        this.dataView = view;
    }

    public boolean encrypted() {
        return dataView != null;
    }

    /** Where guest data lives: the external data file, else the image; through the cipher when encrypted. */
    Storage data() {
        if (dataView != null) {
            return dataView;
        }
        return dataFile != null ? dataFile : storage;
    }

    Storage storage() {
        return storage;
    }

    boolean hasDataFile() {
        return dataFile != null;
    }

    /** The data file must stay a valid raw image (data_file_raw): zeros are written as data. */
    boolean dataFileRaw() {
        return dataFileRaw;
    }

    BlockDevice backing() {
        return backing;
    }

    /** Zero flags, subcluster zero bits and unmapping (see {@link ZeroClusters}). */
    ZeroClusters zeroes() {
        return zeroes;
    }

    /** A standard entry maps data: a host offset, or offset 0 with COPIED in a data file. */
    public boolean isAllocated(long entry) {
        if (L2Entry.isCompressed(entry)) {
            return true;
        }
        return L2Entry.hostOffset(entry) != 0 || (dataFile != null && L2Entry.isCopied(entry));
    }

    // ---------------------------------------------------------------- reads

    /** Reads {@code dst.remaining()} bytes of one cluster at guest {@code offset}. */
    public void readInCluster(long offset, ByteBuffer dst) throws IOException {
        long l2 = mapper.l2Table(offset);
        if (l2 == 0) {
            readBacking(offset, dst);
            return;
        }
        int idx = mapper.l2Index(offset);
        long entry = mapper.entry(l2, idx);
        readWithEntry(offset, dst, entry, mapper.bitmap(l2, idx), l2, idx);
    }

    /** Reads with a known entry (also used for snapshot views). */
    public void readWithEntry(long offset, ByteBuffer dst, long entry, long bitmap, long l2, int idx) throws IOException {
        int inCluster = geo.offsetInCluster(offset);
        if (L2Entry.isCompressed(entry)) {
            byte[] cluster = decompress(entry, l2, idx);
            dst.put(cluster, inCluster, dst.remaining());
            return;
        }
        if (!geo.extendedL2()) {
            if (L2Entry.isZero(entry) && geo.version() >= 3) {
                zeroFill(dst);
            } else if (isAllocated(entry)) {
                long host = mapper.checkedHost(entry, l2, idx);
                data().read(host + inCluster, dst);
            } else {
                readBacking(offset, dst);
            }
            return;
        }
        long host = isAllocated(entry) ? mapper.checkedHost(entry, l2, idx) : 0;
        int sc = geo.subclusterSize();
        while (dst.hasRemaining()) {
            int pos = geo.offsetInCluster(offset);
            int sub = pos / sc;
            // run of subclusters of the same kind
            int kind = subKind(bitmap, sub);
            int end = sub + 1;
            while (end < 32 && subKind(bitmap, end) == kind) {
                end++;
            }
            int n = (int) Math.min(dst.remaining(), (long) end * sc - pos);
            ByteBuffer part = slice(dst, n);
            if (kind == 1) {
                if (host == 0 && dataFile == null) {
                    throw new CorruptImageException("L2 table", l2 + 16L * idx, "allocated subcluster without a host offset");
                }
                data().read(host + pos, part);
            } else if (kind == 2) {
                zeroFill(part);
            } else {
                readBacking(offset, part);
            }
            dst.position(dst.position() + n);
            offset += n;
        }
    }

    /** 1 allocated, 2 zero, 0 unallocated (a subcluster with both bits set is corrupt). */
    private static int subKind(long bitmap, int sub) {
        if (L2Entry.subAllocated(bitmap, sub)) {
            return 1;
        }
        return L2Entry.subZero(bitmap, sub) ? 2 : 0;
    }

    void readBacking(long offset, ByteBuffer dst) throws IOException {
        if (backing == null) {
            zeroFill(dst);
        } else {
            backing.read(offset, dst);
        }
    }

    private byte[] decompress(long entry, long l2, int idx) throws IOException {
        long plain = entry & ~L2Entry.COPIED;
        if (plain == cachedCompressedEntry) {
            return cachedCompressed;
        }
        long off = compressedOffset(entry, l2, idx);
        int span = compressedSpan(entry);
        ByteBuffer in = ByteBuffer.allocate(span);
        storage.read(off, in);
        byte[] out = new byte[geo.clusterSize()];
        decompress(in.array(), 0, span, off, out);
        cachedCompressedEntry = plain;
        cachedCompressed = out;
        return out;
    }

    /** Host offset of a compressed cluster's data, checked to lie inside the image. */
    long compressedOffset(long entry, long l2, int idx) throws IOException {
        long off = CompressedDescriptor.hostOffset(entry, geo.clusterBits());
        return HostOffsets.requireStartsInFile(off, geo.clusterSize(), storage.length(), "L2 table",
                l2 + 8L * idx * geo.l2EntryWords(), TreeWalk.COMPRESSED_OUTSIDE);
    }

    /** Bytes to read for a compressed cluster: never more than a cluster plus a sector. */
    int compressedSpan(long entry) {
        long span = CompressedDescriptor.spanBytes(entry, geo.clusterBits());
        return (int) Math.min(span, geo.clusterSize() + CompressedDescriptor.SECTOR);
    }

    /** Decompresses one cluster read from host offset {@code off} into {@code out}, with this thread's codec. */
    void decompress(byte[] in, int inOff, int inLen, long off, byte[] out) throws IOException {
        try {
            codecs.get().decompress(in, inOff, inLen, out, out.length);
        } catch (IOException e) {
            throw new CorruptImageException("compressed cluster", off, e.getMessage());
        }
    }

    /** {@link #decompress(byte[], int, int, long, byte[])} between buffers, by absolute index: one cluster into {@code out} at {@code outOff}. */
    void decompress(ByteBuffer in, int inOff, int inLen, long off, ByteBuffer out, int outOff) throws IOException {
        try {
            codecs.get().decompress(in, inOff, inLen, out, outOff, geo.clusterSize());
        } catch (IOException e) {
            throw new CorruptImageException("compressed cluster", off, e.getMessage());
        }
    }

    /** Forgets the last decompressed cluster (its host bytes were freed behind our back). */
    public void forgetDecompressed() {
        cachedCompressedEntry = -1;
        cachedCompressed = null;
    }

    // ---------------------------------------------------------------- writes

    /** Writes {@code src.remaining()} bytes inside one cluster at guest {@code offset}. */
    public void writeInCluster(long offset, ByteBuffer src) throws IOException {
        long l2 = mapper.writableL2Table(offset);
        int idx = mapper.l2Index(offset);
        long entry = mapper.entry(l2, idx);
        if (geo.extendedL2() && !L2Entry.isCompressed(entry)) {
            writeSubclusters(offset, src, l2, idx, entry);
            return;
        }
        int inCluster = geo.offsetInCluster(offset);
        int n = src.remaining();
        boolean inPlace = !L2Entry.isCompressed(entry) && isAllocated(entry)
                && (L2Entry.isCopied(entry) || dataFile != null);
        if (inPlace && !L2Entry.isZero(entry)) {
            long host = mapper.checkedHostForWrite(entry, l2, idx);
            data().write(host + inCluster, src);
            return;
        }
        ByteBuffer full = fullCluster(offset, src, inCluster, n, L2Entry.isZero(entry) && geo.version() >= 3);
        if (inPlace) {
            // a preallocated zero cluster: fill it, then drop the zero flag
            long host = mapper.checkedHostForWrite(entry, l2, idx);
            data().write(host, full);
            mapper.setEntry(l2, idx, entry & ~L2Entry.ZERO, 0);
            return;
        }
        requireReleasable(entry, l2, idx);
        long host = allocateDataCluster(offset);
        try {
            data().write(host, full);
        } catch (IOException e) {
            releaseNew(host);
            throw e;
        }
        mapper.setEntry(l2, idx, L2Entry.standard(host, true), geo.extendedL2() ? L2Entry.ALL_ALLOCATED : 0);
        release(entry, l2, idx);
        if (L2Entry.isCompressed(entry)) {
            cachedCompressedEntry = -1;
        }
    }

    /** The whole cluster: the current content with {@code src} laid over it. */
    private ByteBuffer fullCluster(long offset, ByteBuffer src, int inCluster, int n, boolean zeros) throws IOException {
        int cs = geo.clusterSize();
        if (n == cs) {
            return src;
        }
        ByteBuffer full = ByteBuffer.allocate(cs);
        long start = geo.clusterStart(offset);
        if (!zeros) {
            readInCluster(start, full);
        }
        full.clear();
        full.position(inCluster);
        full.put(src);
        full.clear();
        return full;
    }

    private void writeSubclusters(long offset, ByteBuffer src, long l2, int idx, long entry) throws IOException {
        int sc = geo.subclusterSize();
        int inCluster = geo.offsetInCluster(offset);
        int n = src.remaining();
        int s0 = inCluster / sc;
        int s1 = (inCluster + n - 1) / sc;
        long bitmap = mapper.bitmap(l2, idx);
        long host = isAllocated(entry) ? mapper.checkedHostForWrite(entry, l2, idx) : 0;
        boolean hasHost = host != 0 || (dataFile != null && L2Entry.isCopied(entry));
        if (!hasHost && (bitmap & L2Entry.ALL_ALLOCATED) != 0) {
            // the reads refuse this entry too; a write must not quietly give it fresh zeros
            throw new CorruptImageException("L2 table", l2 + 16L * idx, "allocated subcluster without a host offset");
        }
        long newHost = host;
        boolean fresh = false;
        if (!hasHost || !(L2Entry.isCopied(entry) || dataFile != null)) {
            newHost = allocateDataCluster(offset);
            fresh = true;
            if (hasHost) {
                // shared with a snapshot: copy the allocated subclusters first
                ByteBuffer copy = ByteBuffer.allocate(geo.clusterSize());
                data().read(host, copy);
                copy.flip();
                data().write(newHost, copy);
            }
        }
        int wStart = inCluster;
        int wEnd = inCluster + n;
        if (wStart % sc != 0 && !L2Entry.subAllocated(bitmap, s0)) {
            wStart = s0 * sc;
        }
        if (wEnd % sc != 0 && !L2Entry.subAllocated(bitmap, s1)) {
            wEnd = (s1 + 1) * sc;
        }
        ByteBuffer buf = src;
        if (wStart != inCluster || wEnd != inCluster + n) {
            buf = ByteBuffer.allocate(wEnd - wStart);
            long base = geo.clusterStart(offset);
            if (wStart < inCluster) {
                readInCluster(base + wStart, slice(buf, inCluster - wStart));
            }
            buf.position(inCluster - wStart);
            buf.put(src);
            if (wEnd > inCluster + n) {
                ByteBuffer tail = buf.duplicate();
                readInCluster(base + inCluster + n, tail);
            }
            buf.clear();
        }
        try {
            data().write(newHost + wStart, buf);
        } catch (IOException e) {
            if (fresh) {
                releaseNew(newHost);
            }
            throw e;
        }
        long range = L2Entry.allocRange(s0, s1);
        long newBitmap = (bitmap | range) & ~(range << 32);
        mapper.setEntry(l2, idx, L2Entry.standard(newHost, true), newBitmap);
        if (fresh && hasHost) {
            refcounts.free(host, geo.clusterSize());
        }
    }

    /** Host cluster for new data: the guest offset itself in a data file, else a new cluster. */
    private long allocateDataCluster(long guestOffset) throws IOException {
        if (dataFile != null) {
            return geo.clusterStart(guestOffset);
        }
        return refcounts.allocate(1, false);
    }

    private void releaseNew(long host) {
        if (dataFile == null) {
            try {
                refcounts.free(host, geo.clusterSize());
            } catch (IOException ignored) {
                // the cluster stays leaked: harmless
            }
        }
    }

    /**
     * Refuses, before the entry changes, an old cluster whose reference {@link #release}
     * could not drop (outside the file: a cut image reads it as zeros but cannot free it).
     */
    void requireReleasable(long entry, long l2, int idx) throws IOException {
        if (dataFile == null && !L2Entry.isCompressed(entry) && isAllocated(entry)) {
            mapper.checkedHostInFile(entry, l2, idx);
        }
    }

    /** Drops the reference an old entry held, after the new entry is written. */
    void release(long entry, long l2, int idx) throws IOException {
        if (L2Entry.isCompressed(entry)) {
            long off = CompressedDescriptor.hostOffset(entry, geo.clusterBits());
            long span = CompressedDescriptor.spanBytes(entry, geo.clusterBits());
            // the refcount covers the sectors the data occupies, clipped like QEMU's
            long start = off;
            long end = ((off / CompressedDescriptor.SECTOR) + CompressedDescriptor.additionalSectors(entry, geo.clusterBits()) + 1)
                    * CompressedDescriptor.SECTOR;
            refcounts.free(start, Math.min(span, end - start));
            if ((entry & ~L2Entry.COPIED) == cachedCompressedEntry) {
                cachedCompressedEntry = -1;
            }
            return;
        }
        if (dataFile != null) {
            return;
        }
        long host = L2Entry.hostOffset(entry);
        if (host != 0) {
            mapper.checkedHostInFile(entry, l2, idx);
            refcounts.free(host, geo.clusterSize());
        }
    }

    /**
     * Writes whole clusters compressed at cluster-aligned {@code offset} (the last one may
     * be the disk's short tail); a cluster that does not shrink is written plain.
     */
    public void writeCompressed(long offset, ByteBuffer src) throws IOException {
        if (dataFile != null) {
            throw new IOException("Compression is not supported with an external data file");
        }
        if (dataView != null) {
            throw new IOException("Compression is not supported for encrypted images");
        }
        compressedWrite.write(offset, src);
    }

    /** Compresses one whole cluster with this thread's codec: the length, or -1 when it does not shrink. */
    int compress(byte[] cluster, byte[] out) {
        return codecs.get().compress(cluster, cluster.length, out);
    }

    /** Status of the cluster run at {@code offset} (at most {@code length} bytes, one cluster). */
    public long entryAt(long offset) throws IOException {
        long l2 = mapper.l2Table(offset);
        return l2 == 0 ? 0 : mapper.entry(l2, mapper.l2Index(offset));
    }

    public long bitmapAt(long offset) throws IOException {
        long l2 = mapper.l2Table(offset);
        return l2 == 0 ? 0 : mapper.bitmap(l2, mapper.l2Index(offset));
    }

    public long checkedHostAt(long offset, long entry) throws IOException {
        long l2 = mapper.l2Table(offset);
        return mapper.checkedHost(entry, l2, mapper.l2Index(offset));
    }

    static ByteBuffer slice(ByteBuffer b, int n) {
        ByteBuffer s = b.duplicate();
        s.limit(s.position() + n);
        return s;
    }

    static void zeroFill(ByteBuffer b) {
        if (b.hasArray()) {
            Arrays.fill(b.array(), b.arrayOffset() + b.position(), b.arrayOffset() + b.limit(), (byte) 0);
            b.position(b.limit());
        } else {
            while (b.hasRemaining()) {
                b.put(ZEROS, 0, Math.min(ZEROS.length, b.remaining()));
            }
        }
    }

    private static final byte[] ZEROS = new byte[64 << 10];
}
