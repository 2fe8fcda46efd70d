package io.qcow4j.tools.dump;

import io.qcow4j.core.format.BitmapDirectoryEntry;
import io.qcow4j.core.format.BitmapTableEntry;
import io.qcow4j.core.format.BitmapsExtension;
import io.qcow4j.core.format.CompressedDescriptor;
import io.qcow4j.core.format.FeatureNameTable;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HeaderExtension;
import io.qcow4j.core.format.L1Entry;
import io.qcow4j.core.format.L2Entry;
import io.qcow4j.core.format.RefcountBlock;
import io.qcow4j.core.format.SnapshotEntry;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
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
    private static final int CHUNK = 1 << 20;
    private static final int UNKNOWN_DATA_SHOWN = 256;

    private final ImageFile file;
    private final ByteBuffer cluster0;
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

    private record Extension(long offset, int type, byte[] data) {
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

    // ------------------------------------------------------------------ header

    public Map<String, Object> header() throws DumpException {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("offset", 0L);
        m.put("magic", u32(Header.MAGIC));
        m.put("version", version);
        m.put("backing_file_offset", u64(backingFileOffset));
        m.put("backing_file_size", backingFileSize);
        m.put("cluster_bits", clusterBits);
        m.put("size", u64(size));
        m.put("crypt_method", cryptMethod);
        m.put("l1_size", l1Size);
        m.put("l1_table_offset", u64(l1TableOffset));
        m.put("refcount_table_offset", u64(refcountTableOffset));
        m.put("refcount_table_clusters", refcountTableClusters);
        m.put("nb_snapshots", nbSnapshots);
        m.put("snapshots_offset", u64(snapshotsOffset));
        if (version >= 3) {
            m.put("incompatible_features", u64(incompatibleFeatures));
            m.put("compatible_features", u64(compatibleFeatures));
            m.put("autoclear_features", u64(autoclearFeatures));
            m.put("refcount_order", refcountOrder);
            m.put("header_length", headerLength);
            if (headerLength > Header.COMPRESSION_TYPE) {
                m.put("compression_type", compressionType);
            }
        }
        // decoded
        m.put("cluster_size", clusterSize);
        m.put("refcount_bits", 1 << refcountOrder);
        if (version >= 3) {
            List<FeatureNameTable.Entry> names = featureNames();
            m.put("incompatible_feature_names", featureList(names, FeatureNameTable.INCOMPATIBLE, incompatibleFeatures));
            m.put("compatible_feature_names", featureList(names, FeatureNameTable.COMPATIBLE, compatibleFeatures));
            m.put("autoclear_feature_names", featureList(names, FeatureNameTable.AUTOCLEAR, autoclearFeatures));
            if (headerLength > Header.COMPRESSION_TYPE) {
                m.put("compression_type_name", switch (compressionType) {
                    case 0 -> "zlib";
                    case 1 -> "zstd";
                    default -> "unknown";
                });
            }
        }
        if (backingFileOffset != 0) {
            m.put("backing_file", backingFileName());
        }
        return m;
    }

    private String backingFileName() throws DumpException {
        long end = Math.min(clusterSize, cluster0.limit());
        if (backingFileOffset < 0 || backingFileOffset > end || backingFileSize > Header.MAX_BACKING_FILE_NAME
                || backingFileSize > end - backingFileOffset) {
            throw new DumpException("header: backing file name at 0x" + Long.toHexString(backingFileOffset) + " ("
                    + backingFileSize + " bytes) does not fit in cluster 0");
        }
        byte[] name = new byte[(int) backingFileSize];
        cluster0.get((int) backingFileOffset, name);
        return new String(name, StandardCharsets.UTF_8);
    }

    /** The image's own feature name table when it has one, else the names qemu writes. */
    private List<FeatureNameTable.Entry> featureNames() {
        try {
            for (Extension e : extensionList()) {
                if (e.type() == HeaderExtension.FEATURE_NAME_TABLE) {
                    return FeatureNameTable.parse(e.data());
                }
            }
        } catch (DumpException e) {
            // a broken extension area is reported by the extensions section
        }
        return FeatureNameTable.QEMU;
    }

    private static List<Object> featureList(List<FeatureNameTable.Entry> names, int type, long bits) {
        List<Object> out = new ArrayList<>();
        for (int bit = 0; bit < 64; bit++) {
            if ((bits & (1L << bit)) != 0) {
                String n = FeatureNameTable.nameOf(names, type, bit);
                if (n == null) {
                    n = FeatureNameTable.nameOf(FeatureNameTable.QEMU, type, bit);
                }
                out.add(n != null ? n : "bit " + bit);
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ extensions

    /** The extension area: from header_length to the backing file name (or the end of cluster 0). */
    private List<Extension> extensionList() throws DumpException {
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

    /** Each header extension in file order (the end marker not included). */
    public List<Object> extensions() throws DumpException {
        List<Object> items = new ArrayList<>();
        for (Extension e : extensionList()) {
            items.add(extension(e));
        }
        return items;
    }

    private Map<String, Object> extension(Extension e) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("offset", e.offset());
        m.put("type", u32(e.type()));
        m.put("name", new HeaderExtension(e.type(), e.data()).typeName());
        m.put("length", e.data().length);
        ByteBuffer d = ByteBuffer.wrap(e.data());
        switch (e.type()) {
            case HeaderExtension.BACKING_FORMAT, HeaderExtension.EXTERNAL_DATA_FILE ->
                    m.put("value", new String(e.data(), StandardCharsets.UTF_8));
            case HeaderExtension.FEATURE_NAME_TABLE -> {
                List<Object> features = new ArrayList<>();
                for (FeatureNameTable.Entry f : FeatureNameTable.parse(e.data())) {
                    Map<String, Object> fm = new LinkedHashMap<>();
                    fm.put("type", switch (f.type()) {
                        case FeatureNameTable.INCOMPATIBLE -> "incompatible";
                        case FeatureNameTable.COMPATIBLE -> "compatible";
                        case FeatureNameTable.AUTOCLEAR -> "autoclear";
                        default -> "type " + f.type();
                    });
                    fm.put("bit", f.bit());
                    fm.put("name", f.name());
                    features.add(fm);
                }
                m.put("features", features);
            }
            case HeaderExtension.BITMAPS -> {
                if (e.data().length == BitmapsExtension.SIZE) {
                    m.put("nb_bitmaps", u32(d.getInt(0)));
                    m.put("reserved", u32(d.getInt(4)));
                    m.put("bitmap_directory_size", u64(d.getLong(8)));
                    m.put("bitmap_directory_offset", u64(d.getLong(16)));
                } else {
                    m.put("data", hex(e.data()));
                }
            }
            case HeaderExtension.FULL_DISK_ENCRYPTION -> {
                if (e.data().length == 16) {
                    m.put("encryption_header_offset", u64(d.getLong(0)));
                    m.put("encryption_header_length", u64(d.getLong(8)));
                } else {
                    m.put("data", hex(e.data()));
                }
            }
            default -> m.put("data", hex(e.data()));
        }
        return m;
    }

    // ------------------------------------------------------------------ L1 / L2

    private void checkL1() throws DumpException {
        if (l1Size * 8 > MAX_L1_BYTES) {
            throw new DumpException("L1 table: l1_size " + l1Size + " exceeds QEMU's maximum of " + MAX_L1_BYTES / 8 + " entries");
        }
        file.checkRange("L1 table (l1_size " + l1Size + ")", l1TableOffset, l1Size * 8);
    }

    /** The L1 table: count of allocated L2 tables; with {@code list}, its non-zero entries. */
    public Map<String, Object> l1(boolean list) throws DumpException, IOException {
        checkL1();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("l1_table_offset", u64(l1TableOffset));
        m.put("l1_size", l1Size);
        long allocated = 0;
        long nonZero = 0;
        List<Object> entries = new ArrayList<>();
        for (long done = 0; done < l1Size; ) {
            int n = (int) Math.min(CHUNK / 8, l1Size - done);
            ByteBuffer b = file.read("L1 table", l1TableOffset + done * 8, n * 8);
            for (int i = 0; i < n; i++) {
                long raw = b.getLong(i * 8);
                if (raw == 0) {
                    continue;
                }
                nonZero++;
                if (L1Entry.l2Offset(raw) != 0) {
                    allocated++;
                }
                if (list && entries.size() < MAX_LISTED) {
                    long index = done + i;
                    Map<String, Object> e = new LinkedHashMap<>();
                    e.put("index", index);
                    e.put("offset", l1TableOffset + index * 8);
                    e.put("raw", rawHex(raw));
                    e.put("l2_offset", L1Entry.l2Offset(raw));
                    e.put("copied", L1Entry.isCopied(raw));
                    if ((raw & L1Entry.RESERVED_MASK) != 0) {
                        e.put("reserved", rawHex(raw & L1Entry.RESERVED_MASK));
                    }
                    entries.add(e);
                }
            }
            done += n;
        }
        m.put("l2_tables", allocated);
        m.put("l2_entries_per_table", l2Entries());
        m.put("guest_bytes_per_l2_table", l2Entries() * (long) clusterSize);
        if (list) {
            m.put("entries", entries);
            omitted(m, "entries", nonZero - entries.size());
        }
        return m;
    }

    int l2Entries() {
        return clusterSize / (extendedL2() ? 16 : 8);
    }

    /** The L2 table of L1 entry {@code index}: each non-zero entry, decoded. */
    public Map<String, Object> l2(long index) throws DumpException, IOException {
        checkL1();
        if (index < 0 || index >= l1Size) {
            throw new DumpException("L1 index " + index + " out of range (l1_size " + l1Size + ")");
        }
        long l1Raw = file.read("L1 table", l1TableOffset + index * 8, 8).getLong(0);
        long l2 = L1Entry.l2Offset(l1Raw);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("l1_index", index);
        m.put("l1_entry_offset", l1TableOffset + index * 8);
        m.put("l1_entry", rawHex(l1Raw));
        m.put("l2_offset", l2);
        m.put("extended_l2", extendedL2());
        int perTable = l2Entries();
        m.put("entries_per_table", perTable);
        List<Object> entries = new ArrayList<>();
        if (l2 != 0) {
            if ((l2 & (clusterSize - 1)) != 0) {
                throw new DumpException("L1 entry " + index + ": L2 table offset 0x" + Long.toHexString(l2) + " is not cluster-aligned");
            }
            ByteBuffer t = file.read("L2 table (L1 index " + index + ")", l2, clusterSize);
            int width = extendedL2() ? 16 : 8;
            long guestBase = index * perTable * (long) clusterSize;
            for (int i = 0; i < perTable; i++) {
                long raw = t.getLong(i * width);
                long bitmap = extendedL2() ? t.getLong(i * width + 8) : 0;
                if (raw == 0 && bitmap == 0) {
                    continue;
                }
                entries.add(l2Entry(i, l2 + (long) i * width, guestBase + (long) i * clusterSize, raw, bitmap));
            }
        }
        m.put("entries", entries);
        return m;
    }

    private Map<String, Object> l2Entry(int index, long at, long guest, long raw, long bitmap) {
        Map<String, Object> e = new LinkedHashMap<>();
        e.put("index", index);
        e.put("offset", at);
        e.put("guest_offset", guest);
        e.put("raw", rawHex(raw));
        boolean copied = L2Entry.isCopied(raw);
        if (L2Entry.isCompressed(raw)) {
            e.put("type", "compressed");
            e.put("copied", copied);
            e.put("compressed_offset", CompressedDescriptor.hostOffset(raw, clusterBits));
            e.put("additional_sectors", CompressedDescriptor.additionalSectors(raw, clusterBits));
            if (extendedL2() && bitmap != 0) {
                e.put("bitmap", rawHex(bitmap));
            }
            return e;
        }
        long host = L2Entry.hostOffset(raw);
        boolean zeroFlag = (raw & L2Entry.ZERO) != 0;
        String type;
        if (zeroFlag && !extendedL2() && version >= 3) {
            type = "zero";
        } else if (host != 0 || copied) {
            type = "standard";
        } else {
            type = "unallocated";
        }
        e.put("type", type);
        e.put("host_offset", host);
        e.put("copied", copied);
        e.put("zero", zeroFlag);
        long reserved = raw & L2Entry.STANDARD_RESERVED_MASK;
        if (reserved != 0) {
            e.put("reserved", rawHex(reserved));
        }
        if (extendedL2()) {
            e.put("bitmap", rawHex(bitmap));
            e.put("allocated_subclusters", ranges(bitmap & 0xffffffffL));
            e.put("zero_subclusters", ranges(bitmap >>> 32));
        }
        return e;
    }

    /** "0-3,7,9-31" for the set bits of a 32-bit mask; "" for none. */
    static String ranges(long mask) {
        StringBuilder b = new StringBuilder();
        int i = 0;
        while (i < 32) {
            if ((mask & (1L << i)) == 0) {
                i++;
                continue;
            }
            int j = i;
            while (j + 1 < 32 && (mask & (1L << (j + 1))) != 0) {
                j++;
            }
            if (b.length() > 0) {
                b.append(',');
            }
            b.append(i);
            if (j > i) {
                b.append('-').append(j);
            }
            i = j + 1;
        }
        return b.toString();
    }

    // ------------------------------------------------------------------ refcounts

    /** The refcount table; with {@code list}, each refcount block with a summary of its counts. */
    public Map<String, Object> refcounts(boolean list) throws DumpException, IOException {
        long tableBytes = refcountTableClusters * clusterSize;
        if (tableBytes > MAX_REFTABLE_BYTES) {
            throw new DumpException("refcount table: refcount_table_clusters " + refcountTableClusters
                    + " exceeds QEMU's maximum of " + MAX_REFTABLE_BYTES / clusterSize + " clusters");
        }
        file.checkRange("refcount table", refcountTableOffset, tableBytes);
        long entriesPerBlock = RefcountBlock.entriesPerBlock(clusterBits, refcountOrder);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("refcount_table_offset", u64(refcountTableOffset));
        m.put("refcount_table_clusters", refcountTableClusters);
        m.put("refcount_order", refcountOrder);
        m.put("refcount_bits", 1 << refcountOrder);
        m.put("table_entries", tableBytes / 8);
        m.put("refcounts_per_block", entriesPerBlock);
        long blocks = 0;
        long decoded = 0;
        long summarized = 0;
        List<Object> entries = new ArrayList<>();
        long total = tableBytes / 8;
        for (long done = 0; done < total; ) {
            int n = (int) Math.min(CHUNK / 8, total - done);
            ByteBuffer b = file.read("refcount table", refcountTableOffset + done * 8, n * 8);
            for (int i = 0; i < n; i++) {
                long raw = b.getLong(i * 8);
                if (raw == 0) {
                    continue;
                }
                blocks++;
                if (!list || entries.size() >= MAX_LISTED) {
                    continue;
                }
                long index = done + i;
                long block = raw & RefcountBlock.TABLE_OFFSET_MASK;
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("index", index);
                e.put("offset", refcountTableOffset + index * 8);
                e.put("block_offset", u64(block));
                e.put("first_cluster_offset", u64(index * entriesPerBlock * clusterSize));
                if ((raw & RefcountBlock.TABLE_RESERVED_MASK) != 0) {
                    e.put("reserved", rawHex(raw & RefcountBlock.TABLE_RESERVED_MASK));
                }
                if ((block & (clusterSize - 1)) != 0 || !file.contains(block, clusterSize)) {
                    e.put("problem", "not a cluster-aligned offset inside the file");
                } else if (decoded + clusterSize <= MAX_REFBLOCK_BYTES) {
                    decoded += clusterSize;
                    summarized++;
                    long[] s = stats(file.read("refcount block", block, clusterSize), refcountOrder);
                    e.put("clusters", s[0]);
                    e.put("min_refcount", s[0] == 0 ? 0L : u64(s[1]));
                    e.put("max_refcount", u64(s[2]));
                }
                entries.add(e);
            }
            done += n;
        }
        m.put("blocks", blocks);
        if (list) {
            m.put("entries", entries);
            omitted(m, "entries", blocks - entries.size());
            if (summarized < entries.size()) {
                m.put("note", "counts shown for the first " + summarized + " blocks only ("
                        + (MAX_REFBLOCK_BYTES >> 20) + " MiB of refcount blocks)");
            }
        }
        return m;
    }

    /** Non-zero refcounts in a block: {count, min, max} (unsigned). */
    static long[] stats(ByteBuffer block, int order) {
        long count = 0;
        long min = -1; // unsigned maximum
        long max = 0;
        int bits = 1 << order;
        int n = block.limit();
        if (bits < 8) {
            int mask = (1 << bits) - 1;
            for (int i = 0; i < n; i++) {
                int by = block.get(i) & 0xff;
                if (by == 0) {
                    continue;
                }
                for (int k = 0; k < 8; k += bits) {
                    long v = (by >>> k) & mask;
                    if (v != 0) {
                        count++;
                        min = Long.compareUnsigned(v, min) < 0 ? v : min;
                        max = Long.compareUnsigned(v, max) > 0 ? v : max;
                    }
                }
            }
        } else {
            int width = bits / 8;
            for (int i = 0; i < n; i += width) {
                long v = switch (width) {
                    case 1 -> block.get(i) & 0xffL;
                    case 2 -> block.getShort(i) & 0xffffL;
                    case 4 -> block.getInt(i) & 0xffffffffL;
                    default -> block.getLong(i);
                };
                if (v != 0) {
                    count++;
                    min = Long.compareUnsigned(v, min) < 0 ? v : min;
                    max = Long.compareUnsigned(v, max) > 0 ? v : max;
                }
            }
        }
        return new long[] {count, min, max};
    }

    // ------------------------------------------------------------------ bitmaps

    /** The bitmaps extension and directory; with {@code list}, every bitmap's table too. */
    public Map<String, Object> bitmaps(boolean list) throws DumpException, IOException {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("autoclear_bitmaps", (autoclearFeatures & Header.AUTOCLEAR_BITMAPS) != 0);
        Extension ext = null;
        for (Extension e : extensionList()) {
            if (e.type() == HeaderExtension.BITMAPS) {
                ext = e;
                break;
            }
        }
        if (ext == null) {
            m.put("nb_bitmaps", 0L);
            m.put("directory", List.of());
            return m;
        }
        if (ext.data().length != BitmapsExtension.SIZE) {
            throw new DumpException("bitmaps extension at 0x" + Long.toHexString(ext.offset()) + ": length "
                    + ext.data().length + ", not " + BitmapsExtension.SIZE);
        }
        ByteBuffer x = ByteBuffer.wrap(ext.data());
        long nb = x.getInt(0) & 0xffffffffL;
        long dirSize = x.getLong(8);
        long dirOffset = x.getLong(16);
        m.put("nb_bitmaps", nb);
        m.put("bitmap_directory_size", u64(dirSize));
        m.put("bitmap_directory_offset", u64(dirOffset));
        if (nb > BitmapsExtension.MAX_BITMAPS) {
            throw new DumpException("bitmaps extension: nb_bitmaps " + nb + " exceeds QEMU's maximum of " + BitmapsExtension.MAX_BITMAPS);
        }
        if (dirSize < 0 || dirSize > BitmapsExtension.MAX_DIRECTORY_SIZE) {
            throw new DumpException("bitmaps extension: bitmap_directory_size " + Long.toUnsignedString(dirSize)
                    + " exceeds QEMU's maximum of " + BitmapsExtension.MAX_DIRECTORY_SIZE);
        }
        file.checkRange("bitmap directory", dirOffset, dirSize);
        ByteBuffer dir = ByteBuffer.allocate((int) dirSize);
        for (int done = 0; done < dirSize; ) {
            int n = (int) Math.min(CHUNK, dirSize - done);
            dir.put(done, file.read("bitmap directory", dirOffset + done, n), 0, n);
            done += n;
        }
        List<Object> entries = new ArrayList<>();
        int pos = 0;
        for (long i = 0; i < nb; i++) {
            long at = dirOffset + pos;
            if (dirSize - pos < BitmapDirectoryEntry.FIXED_SIZE) {
                throw new DumpException("bitmap directory entry " + i + " at 0x" + Long.toHexString(at)
                        + " overruns the directory (" + dirSize + " bytes)");
            }
            int nameSize = dir.getShort(pos + 18) & 0xffff;
            long extra = dir.getInt(pos + 20) & 0xffffffffL;
            long entrySize = (BitmapDirectoryEntry.FIXED_SIZE + extra + nameSize + 7) & ~7L;
            if (entrySize > dirSize - pos) {
                throw new DumpException("bitmap directory entry " + i + " at 0x" + Long.toHexString(at)
                        + " overruns the directory (" + dirSize + " bytes)");
            }
            byte[] name = new byte[nameSize];
            dir.get(pos + BitmapDirectoryEntry.FIXED_SIZE + (int) extra, name);
            long tableOffset = dir.getLong(pos);
            long tableSize = dir.getInt(pos + 8) & 0xffffffffL;
            int flags = dir.getInt(pos + 12);
            int granularityBits = dir.get(pos + 17) & 0xff;
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("offset", at);
            e.put("name", new String(name, StandardCharsets.UTF_8));
            e.put("bitmap_table_offset", u64(tableOffset));
            e.put("bitmap_table_size", tableSize);
            e.put("flags", u32(flags));
            e.put("flag_names", bitmapFlags(flags));
            e.put("type", dir.get(pos + 16) & 0xff);
            e.put("granularity_bits", granularityBits);
            if (granularityBits < 63) {
                e.put("granularity", 1L << granularityBits);
            }
            e.put("name_size", nameSize);
            e.put("extra_data_size", extra);
            if (list && entries.size() < MAX_LISTED) {
                bitmapTable(e, tableOffset, tableSize);
            }
            if (entries.size() < MAX_LISTED) {
                entries.add(e);
            }
            pos += (int) entrySize;
        }
        m.put("directory", entries);
        omitted(m, "directory", nb - entries.size());
        if (pos != dirSize) {
            m.put("problem", "bitmap_directory_size is " + dirSize + " but the entries take " + pos + " bytes");
        }
        return m;
    }

    private void bitmapTable(Map<String, Object> e, long tableOffset, long tableSize) throws DumpException, IOException {
        if (tableSize > BitmapDirectoryEntry.MAX_TABLE_SIZE) {
            throw new DumpException("bitmap '" + e.get("name") + "': bitmap_table_size " + tableSize
                    + " exceeds QEMU's maximum of " + BitmapDirectoryEntry.MAX_TABLE_SIZE);
        }
        file.checkRange("bitmap table of '" + e.get("name") + "'", tableOffset, tableSize * 8);
        List<Object> table = new ArrayList<>();
        long shown = Math.min(tableSize, MAX_LISTED);
        for (long done = 0; done < shown; ) {
            int n = (int) Math.min(CHUNK / 8, shown - done);
            ByteBuffer b = file.read("bitmap table", tableOffset + done * 8, n * 8);
            for (int i = 0; i < n; i++) {
                long raw = b.getLong(i * 8);
                long data = BitmapTableEntry.offset(raw);
                Map<String, Object> t = new LinkedHashMap<>();
                t.put("index", done + i);
                t.put("offset", tableOffset + (done + i) * 8);
                t.put("raw", rawHex(raw));
                t.put("content", data != 0 ? "data" : (raw & BitmapTableEntry.ALL_ONES) != 0 ? "all-ones" : "all-zeros");
                if (data != 0) {
                    t.put("data_cluster_offset", data);
                }
                if ((raw & BitmapTableEntry.RESERVED_MASK) != 0) {
                    t.put("reserved", rawHex(raw & BitmapTableEntry.RESERVED_MASK));
                }
                table.add(t);
            }
            done += n;
        }
        e.put("table", table);
        omitted(e, "table", tableSize - shown);
    }

    private static List<Object> bitmapFlags(int flags) {
        List<Object> out = new ArrayList<>();
        for (int bit = 0; bit < 32; bit++) {
            if ((flags & (1 << bit)) != 0) {
                out.add(switch (bit) {
                    case 0 -> "in_use";
                    case 1 -> "auto";
                    case 2 -> "extra_data_compatible";
                    default -> "bit " + bit;
                });
            }
        }
        return out;
    }

    // ------------------------------------------------------------------ snapshots

    public Map<String, Object> snapshots() throws DumpException, IOException {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("nb_snapshots", nbSnapshots);
        m.put("snapshots_offset", u64(snapshotsOffset));
        if (nbSnapshots > SnapshotEntry.MAX_SNAPSHOTS) {
            throw new DumpException("snapshot table: nb_snapshots " + nbSnapshots + " exceeds QEMU's maximum of "
                    + SnapshotEntry.MAX_SNAPSHOTS);
        }
        List<Object> table = new ArrayList<>();
        long pos = snapshotsOffset;
        for (long i = 0; i < nbSnapshots; i++) {
            if (pos - snapshotsOffset > MAX_SNAPSHOT_TABLE_BYTES) {
                throw new DumpException("snapshot table at 0x" + Long.toHexString(snapshotsOffset)
                        + " exceeds QEMU's maximum of " + MAX_SNAPSHOT_TABLE_BYTES + " bytes");
            }
            String what = "snapshot table entry " + i;
            ByteBuffer f = file.read(what, pos, SnapshotEntry.FIXED_SIZE);
            int idSize = f.getShort(12) & 0xffff;
            int nameSize = f.getShort(14) & 0xffff;
            long extraSize = f.getInt(36) & 0xffffffffL;
            if (extraSize > MAX_SNAPSHOT_EXTRA) {
                throw new DumpException(what + " at 0x" + Long.toHexString(pos) + ": extra_data_size " + extraSize
                        + " is implausible (QEMU accepts " + SnapshotEntry.MAX_EXTRA_DATA + ")");
            }
            int rest = (int) extraSize + idSize + nameSize;
            ByteBuffer v = file.read(what, pos + SnapshotEntry.FIXED_SIZE, rest);
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("offset", pos);
            byte[] id = new byte[idSize];
            v.get((int) extraSize, id);
            byte[] name = new byte[nameSize];
            v.get((int) extraSize + idSize, name);
            e.put("id", new String(id, StandardCharsets.UTF_8));
            e.put("name", new String(name, StandardCharsets.UTF_8));
            e.put("l1_table_offset", u64(f.getLong(0)));
            e.put("l1_size", f.getInt(8) & 0xffffffffL);
            long sec = f.getInt(16) & 0xffffffffL;
            long nsec = f.getInt(20) & 0xffffffffL;
            e.put("date_sec", sec);
            e.put("date_nsec", nsec);
            e.put("date", Instant.ofEpochSecond(sec, Math.min(nsec, 999_999_999L)).toString());
            e.put("vm_clock_nsec", u64(f.getLong(24)));
            long vmState = f.getInt(32) & 0xffffffffL;
            if (extraSize >= 8) {
                vmState = v.getLong(0);
            }
            e.put("vm_state_size", u64(vmState));
            if (extraSize >= 16) {
                e.put("disk_size", u64(v.getLong(8)));
            }
            if (extraSize >= 24) {
                e.put("icount", v.getLong(16));
            }
            e.put("extra_data_size", extraSize);
            if (table.size() < MAX_LISTED) {
                table.add(e);
            }
            pos += (SnapshotEntry.FIXED_SIZE + rest + 7) & ~7L;
        }
        m.put("table", table);
        omitted(m, "table", nbSnapshots - table.size());
        return m;
    }

    // ------------------------------------------------------------------ helpers

    private static void omitted(Map<String, Object> m, String list, long n) {
        if (n > 0) {
            m.put(list + "_omitted", n);
        }
    }

    static Object u64(long v) {
        return v >= 0 ? (Object) v : new BigInteger(Long.toUnsignedString(v));
    }

    static long u32(int v) {
        return v & 0xffffffffL;
    }

    static String rawHex(long v) {
        return String.format("0x%016x", v);
    }

    private static String hex(byte[] data) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < Math.min(data.length, UNKNOWN_DATA_SHOWN); i++) {
            b.append(String.format("%02x", data[i] & 0xff));
        }
        if (data.length > UNKNOWN_DATA_SHOWN) {
            b.append("...");
        }
        return b.toString();
    }
}
