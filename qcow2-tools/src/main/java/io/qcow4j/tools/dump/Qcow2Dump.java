package io.qcow4j.tools.dump;

import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HeaderExtension;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The raw qcow2 structures of one file, read by position (not through the engine, so a
 * damaged image can be inspected too) and returned as ordered maps: the JSON of
 * {@code qcow4j dump}. Fields are named as qcow2.txt names them; every structure carries
 * its file offset ({@code offset}). Every offset and size read from the file is checked
 * before use: against the file's length, and against QEMU's limits where the spec has
 * none (L1 table 32 MiB, refcount table 8 MiB, bitmap directory 64 MiB, snapshot table
 * 64 MiB). Lists show at most {@link #MAX_LISTED} items; {@code *_omitted} counts the rest.
 *
 * <p>Numbers are JSON numbers (unsigned: a 64-bit field with the top bit set prints as the
 * unsigned value); raw table entries are hex strings ({@code "raw": "0x8000000000050000"}).
 */
public final class Qcow2Dump {
    public static final int MAX_LISTED = 65536;
    /** Refcount blocks decoded for their statistics at most (256 MiB of blocks: 8 TiB of 64 KiB clusters). */
    static final long MAX_REFBLOCK_BYTES = 256L << 20;
    static final long MAX_L1_BYTES = 32L << 20;
    static final long MAX_REFTABLE_BYTES = 8L << 20;
    static final long MAX_SNAPSHOT_TABLE_BYTES = 64L << 20;
    static final long MAX_SNAPSHOT_EXTRA = 65536;

    final ImageFile file;
    final ByteBuffer cluster0;
    int version;
    long backingFileOffset;
    long backingFileSize;
    int clusterBits;
    int clusterSize;
    long size;
    long cryptMethod;
    long l1Size;
    long l1TableOffset;
    long refcountTableOffset;
    long refcountTableClusters;
    long nbSnapshots;
    long snapshotsOffset;
    long incompatibleFeatures;
    long compatibleFeatures;
    long autoclearFeatures;
    int refcountOrder = 4;
    long headerLength = Header.V2_LENGTH;
    int compressionType;

    /** One header extension as found in cluster 0. */
    record Extension(long offset, int type, byte[] data) {
    }

    private List<Extension> extensions;

    private Qcow2Dump(ImageFile file, ByteBuffer cluster0) {
        this.file = file;
        this.cluster0 = cluster0;
    }

    /** Reads and checks what everything else depends on: magic, version, cluster size, header length. */
    public static Qcow2Dump open(ImageFile file) throws DumpException, IOException {
        if (file.length() < 4 || file.read("header", 0, 4).getInt(0) != Header.MAGIC) {
            throw new DumpException("Image is not in qcow2 format");
        }
        if (file.length() < Header.V2_LENGTH) {
            throw new DumpException("file too short for a qcow2 header (" + file.length() + " bytes)");
        }
        ByteBuffer h = file.read("header", 0, Header.V2_LENGTH);
        int version = h.getInt(Header.VERSION);
        if (version != 2 && version != 3) {
            throw new DumpException("Unsupported qcow2 version " + Integer.toUnsignedString(version));
        }
        int bits = h.getInt(Header.CLUSTER_BITS);
        if (bits < Header.MIN_CLUSTER_BITS || bits > Header.MAX_CLUSTER_BITS) {
            throw new DumpException("header: cluster_bits " + Integer.toUnsignedString(bits) + " out of range "
                    + Header.MIN_CLUSTER_BITS + ".." + Header.MAX_CLUSTER_BITS);
        }
        int cs = 1 << bits;
        Qcow2Dump d = new Qcow2Dump(file, file.read("header cluster", 0, (int) Math.min(cs, file.length())));
        ByteBuffer b = d.cluster0;
        d.version = version;
        d.clusterBits = bits;
        d.clusterSize = cs;
        d.backingFileOffset = b.getLong(Header.BACKING_FILE_OFFSET);
        d.backingFileSize = b.getInt(Header.BACKING_FILE_SIZE) & 0xffffffffL;
        d.size = b.getLong(Header.SIZE);
        d.cryptMethod = b.getInt(Header.CRYPT_METHOD) & 0xffffffffL;
        d.l1Size = b.getInt(Header.L1_SIZE) & 0xffffffffL;
        d.l1TableOffset = b.getLong(Header.L1_TABLE_OFFSET);
        d.refcountTableOffset = b.getLong(Header.REFCOUNT_TABLE_OFFSET);
        d.refcountTableClusters = b.getInt(Header.REFCOUNT_TABLE_CLUSTERS) & 0xffffffffL;
        d.nbSnapshots = b.getInt(Header.NB_SNAPSHOTS) & 0xffffffffL;
        d.snapshotsOffset = b.getLong(Header.SNAPSHOTS_OFFSET);
        if (version >= 3) {
            if (b.limit() < Header.V3_MIN_LENGTH) {
                throw new DumpException("file too short for a version 3 header (" + file.length() + " bytes)");
            }
            d.incompatibleFeatures = b.getLong(Header.INCOMPATIBLE_FEATURES);
            d.compatibleFeatures = b.getLong(Header.COMPATIBLE_FEATURES);
            d.autoclearFeatures = b.getLong(Header.AUTOCLEAR_FEATURES);
            d.refcountOrder = b.getInt(Header.REFCOUNT_ORDER);
            d.headerLength = b.getInt(Header.HEADER_LENGTH) & 0xffffffffL;
            if (d.headerLength < Header.V3_MIN_LENGTH || d.headerLength > b.limit()) {
                throw new DumpException("header: header_length " + d.headerLength + " out of range "
                        + Header.V3_MIN_LENGTH + ".." + b.limit());
            }
            if (d.refcountOrder < 0 || d.refcountOrder > 6) {
                throw new DumpException("header: refcount_order " + Integer.toUnsignedString(d.refcountOrder)
                        + " out of range 0..6");
            }
            if (d.headerLength > Header.COMPRESSION_TYPE) {
                d.compressionType = b.get(Header.COMPRESSION_TYPE) & 0xff;
            }
        }
        return d;
    }

    boolean extendedL2() {
        return (incompatibleFeatures & Header.INCOMPAT_EXTENDED_L2) != 0;
    }

    int l2Entries() {
        return clusterSize / (extendedL2() ? 16 : 8);
    }

    /** The extension area: from header_length to the backing file name (or the end of cluster 0). */
    List<Extension> extensionList() throws DumpException {
        if (extensions != null) {
            return extensions;
        }
        long start = headerLength;
        long end = Math.min(clusterSize, cluster0.limit());
        if (backingFileOffset > 0 && backingFileOffset < end) {
            end = backingFileOffset;
        }
        List<Extension> list = new ArrayList<>();
        long off = start;
        while (off + 8 <= end) {
            int type = cluster0.getInt((int) off);
            long len = cluster0.getInt((int) off + 4) & 0xffffffffL;
            if (type == HeaderExtension.END) {
                break;
            }
            if (len > end - off - 8) {
                throw new DumpException("header extension 0x" + Integer.toHexString(type) + " at 0x" + Long.toHexString(off)
                        + ": length " + len + " overruns the extension area (ends at 0x" + Long.toHexString(end) + ")");
            }
            byte[] data = new byte[(int) len];
            cluster0.get((int) off + 8, data);
            list.add(new Extension(off, type, data));
            off += 8 + ((len + 7) & ~7L);
        }
        extensions = list;
        return list;
    }

    // ------------------------------------------------------------------ sections

    public Map<String, Object> header() throws DumpException {
        return new HeaderSection(this).header();
    }

    /** Each header extension in file order (the end marker not included). */
    public List<Object> extensions() throws DumpException {
        return new HeaderSection(this).extensions();
    }

    /** The L1 table: count of allocated L2 tables; with {@code list}, its non-zero entries. */
    public Map<String, Object> l1(boolean list) throws DumpException, IOException {
        return new L1L2Section(this).l1(list);
    }

    /** The L2 table of L1 entry {@code index}: each non-zero entry, decoded. */
    public Map<String, Object> l2(long index) throws DumpException, IOException {
        return new L1L2Section(this).l2(index);
    }

    /** The refcount table; with {@code list}, each refcount block with a summary of its counts. */
    public Map<String, Object> refcounts(boolean list) throws DumpException, IOException {
        return new RefcountSection(this).refcounts(list);
    }

    /** The bitmaps extension and directory; with {@code list}, every bitmap's table too. */
    public Map<String, Object> bitmaps(boolean list) throws DumpException, IOException {
        return new BitmapSection(this).bitmaps(list);
    }

    public Map<String, Object> snapshots() throws DumpException, IOException {
        return new SnapshotSection(this).snapshots();
    }
}
