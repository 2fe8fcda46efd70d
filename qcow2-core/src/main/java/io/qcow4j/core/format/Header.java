package io.qcow4j.core.format;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import io.qcow4j.core.api.CorruptImageException;

/**
 * The qcow2 header ({@code == Header ==}) and its extension area, as one immutable value:
 * a change makes a new header ({@code withX}, or {@link #toBuilder} for several fields), so
 * the engine's current header changes in one place and a header handed out never moves.
 * {@link #parse} validates what it can without knowing the file; {@link #serialize} writes
 * header, extensions and backing file name back, keeping unknown fields and extensions.
 */
public final class Header {
    public static final int MAGIC = 0x514649fb;
    /** Byte 0-3 magic, 4-7 version, 8-15 backing_file_offset, 16-19 backing_file_size. */
    public static final int VERSION = 4;
    public static final int BACKING_FILE_OFFSET = 8;
    public static final int BACKING_FILE_SIZE = 16;
    /** Byte 20-23 cluster_bits, 24-31 size, 32-35 crypt_method, 36-39 l1_size. */
    public static final int CLUSTER_BITS = 20;
    public static final int SIZE = 24;
    public static final int CRYPT_METHOD = 32;
    public static final int L1_SIZE = 36;
    /** Byte 40-47 l1_table_offset, 48-55 refcount_table_offset, 56-59 refcount_table_clusters. */
    public static final int L1_TABLE_OFFSET = 40;
    public static final int REFCOUNT_TABLE_OFFSET = 48;
    public static final int REFCOUNT_TABLE_CLUSTERS = 56;
    /** Byte 60-63 nb_snapshots, 64-71 snapshots_offset. */
    public static final int NB_SNAPSHOTS = 60;
    public static final int SNAPSHOTS_OFFSET = 64;
    /** Version 3: byte 72-79 incompatible, 80-87 compatible, 88-95 autoclear features. */
    public static final int INCOMPATIBLE_FEATURES = 72;
    public static final int COMPATIBLE_FEATURES = 80;
    public static final int AUTOCLEAR_FEATURES = 88;
    /** Byte 96-99 refcount_order, 100-103 header_length, 104 compression_type. */
    public static final int REFCOUNT_ORDER = 96;
    public static final int HEADER_LENGTH = 100;
    public static final int COMPRESSION_TYPE = 104;

    public static final int V2_LENGTH = 72;
    public static final int V3_MIN_LENGTH = 104;
    /** What QEMU writes: 104 plus compression_type and 7 bytes of padding. */
    public static final int V3_LENGTH = 112;

    public static final long INCOMPAT_DIRTY = 1L;
    public static final long INCOMPAT_CORRUPT = 1L << 1;
    public static final long INCOMPAT_DATA_FILE = 1L << 2;
    public static final long INCOMPAT_COMPRESSION = 1L << 3;
    public static final long INCOMPAT_EXTENDED_L2 = 1L << 4;
    public static final long INCOMPAT_KNOWN = 0x1fL;
    public static final long COMPAT_LAZY_REFCOUNTS = 1L;
    public static final long AUTOCLEAR_BITMAPS = 1L;
    public static final long AUTOCLEAR_DATA_FILE_RAW = 1L << 1;
    public static final long AUTOCLEAR_KNOWN = 0x3L;

    public static final int MIN_CLUSTER_BITS = 9;
    public static final int MAX_CLUSTER_BITS = 21;
    public static final int MAX_BACKING_FILE_NAME = 1023;

    private final int version;
    private final long backingFileOffset;
    private final int backingFileSize;
    private final int clusterBits;
    private final long size;
    private final int cryptMethod;
    private final int l1Size;
    private final long l1TableOffset;
    private final long refcountTableOffset;
    private final int refcountTableClusters;
    private final int nbSnapshots;
    private final long snapshotsOffset;
    private final long incompatibleFeatures;
    private final long compatibleFeatures;
    private final long autoclearFeatures;
    private final int refcountOrder;
    private final int headerLength;
    private final int compressionType;
    /** Header bytes past the fields we know (offset 112 up to header_length), kept verbatim. */
    private final byte[] unknownFields;
    private final String backingFile;
    private final List<HeaderExtension> extensions;

    Header(HeaderBuilder b) {
        version = b.version;
        backingFileOffset = b.backingFileOffset;
        backingFileSize = b.backingFileSize;
        clusterBits = b.clusterBits;
        size = b.size;
        cryptMethod = b.cryptMethod;
        l1Size = b.l1Size;
        l1TableOffset = b.l1TableOffset;
        refcountTableOffset = b.refcountTableOffset;
        refcountTableClusters = b.refcountTableClusters;
        nbSnapshots = b.nbSnapshots;
        snapshotsOffset = b.snapshotsOffset;
        incompatibleFeatures = b.incompatibleFeatures;
        compatibleFeatures = b.compatibleFeatures;
        autoclearFeatures = b.autoclearFeatures;
        refcountOrder = b.refcountOrder;
        headerLength = b.headerLength;
        compressionType = b.compressionType;
        unknownFields = b.unknownFields.clone();
        backingFile = b.backingFile;
        extensions = List.copyOf(b.extensions);
    }

    /** A new header: version 0, refcount order 4, everything else zero or absent. */
    public static HeaderBuilder builder() {
        return new HeaderBuilder();
    }

    /** A builder holding this header's fields, for a change of several at once. */
    public HeaderBuilder toBuilder() {
        return new HeaderBuilder(this);
    }

    public int version() {
        return version;
    }

    /** Where the backing file name was when parsed ({@link #serialize} places it anew). */
    public long backingFileOffset() {
        return backingFileOffset;
    }

    public int backingFileSize() {
        return backingFileSize;
    }

    public int clusterBits() {
        return clusterBits;
    }

    public long size() {
        return size;
    }

    public int cryptMethod() {
        return cryptMethod;
    }

    public int l1Size() {
        return l1Size;
    }

    public long l1TableOffset() {
        return l1TableOffset;
    }

    public long refcountTableOffset() {
        return refcountTableOffset;
    }

    public int refcountTableClusters() {
        return refcountTableClusters;
    }

    public int nbSnapshots() {
        return nbSnapshots;
    }

    public long snapshotsOffset() {
        return snapshotsOffset;
    }

    public long incompatibleFeatures() {
        return incompatibleFeatures;
    }

    public long compatibleFeatures() {
        return compatibleFeatures;
    }

    public long autoclearFeatures() {
        return autoclearFeatures;
    }

    public int refcountOrder() {
        return refcountOrder;
    }

    /** header_length as parsed ({@link #serialize} writes what the fields need). */
    public int headerLength() {
        return headerLength;
    }

    public int compressionType() {
        return compressionType;
    }

    /** A copy of the header bytes past the fields we know, kept verbatim. */
    public byte[] unknownFields() {
        return unknownFields.clone();
    }

    public String backingFile() {
        return backingFile;
    }

    /** The extensions in the order read or added; unmodifiable. */
    public List<HeaderExtension> extensions() {
        return extensions;
    }

    public int clusterSize() {
        return 1 << clusterBits;
    }

    public int refcountBits() {
        return 1 << refcountOrder;
    }

    public boolean hasIncompatible(long bit) {
        return (incompatibleFeatures & bit) != 0;
    }

    /** The lazy refcounts compatible feature. */
    public boolean lazyRefcounts() {
        return (compatibleFeatures & COMPAT_LAZY_REFCOUNTS) != 0;
    }

    /** The external data file's name as the header extension records it, or null. */
    public String dataFile() {
        return stringExtension(HeaderExtension.EXTERNAL_DATA_FILE);
    }

    /** data_file_raw: the external data file is a valid raw image (guest offset = host offset). */
    public boolean dataFileRaw() {
        return (autoclearFeatures & AUTOCLEAR_DATA_FILE_RAW) != 0;
    }

    public HeaderExtension extension(int type) {
        for (HeaderExtension e : extensions) {
            if (e.type() == type) {
                return e;
            }
        }
        return null;
    }

    public String stringExtension(int type) {
        HeaderExtension e = extension(type);
        return e == null ? null : e.asString();
    }

    // ------------------------------------------------------------ copies with one change

    public Header withSize(long newSize) {
        return toBuilder().size(newSize).build();
    }

    public Header withL1Table(long offset, int entries) {
        return toBuilder().l1TableOffset(offset).l1Size(entries).build();
    }

    public Header withRefcountTable(long offset, int clusters) {
        return toBuilder().refcountTableOffset(offset).refcountTableClusters(clusters).build();
    }

    public Header withSnapshots(int count, long offset) {
        return toBuilder().nbSnapshots(count).snapshotsOffset(offset).build();
    }

    public Header withIncompatibleFeatures(long bits) {
        return toBuilder().incompatibleFeatures(bits).build();
    }

    public Header withCompatibleFeatures(long bits) {
        return toBuilder().compatibleFeatures(bits).build();
    }

    public Header withAutoclearFeatures(long bits) {
        return toBuilder().autoclearFeatures(bits).build();
    }

    public Header withBackingFile(String name) {
        return toBuilder().backingFile(name).build();
    }

    /** This header with extension {@code type} holding {@code data} (replacing one of that type). */
    public Header withExtension(int type, byte[] data) {
        return toBuilder().extension(type, data).build();
    }

    public Header withoutExtension(int type) {
        return toBuilder().extension(type, null).build();
    }

    /** The bitmaps extension with autoclear bit 0 set, or (data null) neither: the two go together. */
    public Header withBitmapsExtension(byte[] data) {
        long bits = data == null ? autoclearFeatures & ~AUTOCLEAR_BITMAPS : autoclearFeatures | AUTOCLEAR_BITMAPS;
        return toBuilder().extension(HeaderExtension.BITMAPS, data).autoclearFeatures(bits).build();
    }

    /**
     * Parses cluster 0 (or as much of it as the file has). Checks magic, version, cluster
     * size, header length, backing file name bounds and the extension list.
     */
    public static Header parse(byte[] buf) throws CorruptImageException {
        if (buf.length < V2_LENGTH) {
            throw new CorruptImageException("header", 0, "file too short for a qcow2 header");
        }
        ByteBuffer b = ByteBuffer.wrap(buf);
        if (b.getInt(0) != MAGIC) {
            throw new CorruptImageException("header", 0, "Image is not in qcow2 format (bad magic)");
        }
        HeaderBuilder h = new HeaderBuilder();
        h.version = b.getInt(VERSION);
        if (h.version != 2 && h.version != 3) {
            throw new CorruptImageException("header", VERSION, "Unsupported qcow2 version " + h.version);
        }
        h.clusterBits = b.getInt(CLUSTER_BITS);
        if (h.clusterBits < MIN_CLUSTER_BITS || h.clusterBits > MAX_CLUSTER_BITS) {
            throw new CorruptImageException("header", CLUSTER_BITS, "Unsupported cluster size: 2^" + h.clusterBits);
        }
        int cs = 1 << h.clusterBits;
        h.backingFileOffset = b.getLong(BACKING_FILE_OFFSET);
        h.backingFileSize = b.getInt(BACKING_FILE_SIZE);
        h.size = b.getLong(SIZE);
        h.cryptMethod = b.getInt(CRYPT_METHOD);
        h.l1Size = b.getInt(L1_SIZE);
        h.l1TableOffset = b.getLong(L1_TABLE_OFFSET);
        h.refcountTableOffset = b.getLong(REFCOUNT_TABLE_OFFSET);
        h.refcountTableClusters = b.getInt(REFCOUNT_TABLE_CLUSTERS);
        h.nbSnapshots = b.getInt(NB_SNAPSHOTS);
        h.snapshotsOffset = b.getLong(SNAPSHOTS_OFFSET);
        if (h.version == 2) {
            h.headerLength = V2_LENGTH;
            h.refcountOrder = 4;
        } else {
            if (buf.length < V3_MIN_LENGTH) {
                throw new CorruptImageException("header", 0, "file too short for a version 3 header");
            }
            h.incompatibleFeatures = b.getLong(INCOMPATIBLE_FEATURES);
            h.compatibleFeatures = b.getLong(COMPATIBLE_FEATURES);
            h.autoclearFeatures = b.getLong(AUTOCLEAR_FEATURES);
            h.refcountOrder = b.getInt(REFCOUNT_ORDER);
            h.headerLength = b.getInt(HEADER_LENGTH);
            if (h.refcountOrder < 0 || h.refcountOrder > 6) {
                throw new CorruptImageException("header", REFCOUNT_ORDER, "Refcount order " + h.refcountOrder + " out of range 0..6");
            }
            if (h.headerLength < V3_MIN_LENGTH || (h.headerLength & 7) != 0 || h.headerLength > cs) {
                throw new CorruptImageException("header", HEADER_LENGTH, "invalid header_length " + h.headerLength);
            }
            if (h.headerLength > buf.length) {
                throw new CorruptImageException("header", HEADER_LENGTH, "header_length " + h.headerLength + " past the end of the file");
            }
            h.compressionType = h.headerLength > COMPRESSION_TYPE ? buf[COMPRESSION_TYPE] & 0xff : 0;
            if (h.headerLength > V3_LENGTH) {
                h.unknownFields = Arrays.copyOfRange(buf, V3_LENGTH, h.headerLength);
            }
        }
        long extEnd = h.backingFileOffset != 0 ? h.backingFileOffset : Math.min(cs, buf.length);
        if (h.backingFileOffset != 0) {
            if (h.backingFileOffset < 0 || h.backingFileOffset > cs
                    || h.backingFileSize < 0 || h.backingFileSize > MAX_BACKING_FILE_NAME
                    || h.backingFileOffset + h.backingFileSize > Math.min(cs, buf.length)) {
                throw new CorruptImageException("header", BACKING_FILE_OFFSET, "Invalid backing file offset or size");
            }
            h.backingFile = new String(buf, (int) h.backingFileOffset, h.backingFileSize, StandardCharsets.UTF_8);
        }
        parseExtensions(h, buf, h.headerLength, (int) Math.min(extEnd, buf.length));
        return h.build();
    }

    private static void parseExtensions(HeaderBuilder h, byte[] buf, int start, int end) throws CorruptImageException {
        ByteBuffer b = ByteBuffer.wrap(buf);
        int off = start;
        while (off + 8 <= end) {
            int type = b.getInt(off);
            long len = b.getInt(off + 4) & 0xffffffffL;
            if (type == HeaderExtension.END) {
                return;
            }
            if (len > end - off - 8) {
                throw new CorruptImageException("header extension", off, "extension of length " + len + " overruns the header area");
            }
            byte[] data = Arrays.copyOfRange(buf, off + 8, off + 8 + (int) len);
            for (HeaderExtension e : h.extensions) {
                if (e.type() == type) {
                    throw new CorruptImageException("header extension", off, "duplicate extension 0x" + Integer.toHexString(type));
                }
            }
            h.extensions.add(new HeaderExtension(type, data));
            off += 8 + (int) ((len + 7) & ~7L);
        }
        // Running into the end of the area without an end marker: QEMU accepts a header
        // that ends exactly at the area end, so do we.
    }

    /**
     * Serializes header, extensions (in QEMU's order, unknown ones last), end marker and
     * backing file name into one cluster-0 image; fails if it does not fit. header_length
     * and the backing file name's offset and size are those of this layout, not the parsed ones.
     */
    public byte[] serialize() {
        int cs = clusterSize();
        ByteBuffer b = ByteBuffer.allocate(cs);
        int len = version == 2 ? V2_LENGTH : V3_LENGTH + unknownFields.length;
        b.putInt(0, MAGIC).putInt(VERSION, version);
        b.putInt(CLUSTER_BITS, clusterBits).putLong(SIZE, size).putInt(CRYPT_METHOD, cryptMethod);
        b.putInt(L1_SIZE, l1Size).putLong(L1_TABLE_OFFSET, l1TableOffset);
        b.putLong(REFCOUNT_TABLE_OFFSET, refcountTableOffset).putInt(REFCOUNT_TABLE_CLUSTERS, refcountTableClusters);
        b.putInt(NB_SNAPSHOTS, nbSnapshots).putLong(SNAPSHOTS_OFFSET, snapshotsOffset);
        if (version >= 3) {
            b.putLong(INCOMPATIBLE_FEATURES, incompatibleFeatures).putLong(COMPATIBLE_FEATURES, compatibleFeatures);
            b.putLong(AUTOCLEAR_FEATURES, autoclearFeatures).putInt(REFCOUNT_ORDER, refcountOrder);
            b.putInt(HEADER_LENGTH, len);
            b.put(COMPRESSION_TYPE, (byte) compressionType);
            b.put(V3_LENGTH, unknownFields);
        }
        b.position(len);
        for (HeaderExtension e : orderedExtensions()) {
            if (b.remaining() < e.paddedSize() + 8) {
                throw new IllegalStateException("header extensions do not fit in cluster 0");
            }
            b.putInt(e.type()).putInt(e.length()).put(e.data());
            b.position(b.position() + ((e.length() + 7) & ~7) - e.length());
        }
        b.putInt(HeaderExtension.END).putInt(0);
        long nameOffset = 0;
        int nameSize = 0;
        if (backingFile != null) {
            byte[] name = backingFile.getBytes(StandardCharsets.UTF_8);
            if (name.length > MAX_BACKING_FILE_NAME || b.remaining() < name.length) {
                throw new IllegalArgumentException("Backing file name too long");
            }
            nameOffset = b.position();
            nameSize = name.length;
            b.put(name);
        }
        b.putLong(BACKING_FILE_OFFSET, nameOffset).putInt(BACKING_FILE_SIZE, nameSize);
        return Arrays.copyOf(b.array(), b.position());
    }

    private List<HeaderExtension> orderedExtensions() {
        int[] order = {HeaderExtension.BACKING_FORMAT, HeaderExtension.EXTERNAL_DATA_FILE,
                HeaderExtension.FULL_DISK_ENCRYPTION, HeaderExtension.FEATURE_NAME_TABLE, HeaderExtension.BITMAPS};
        List<HeaderExtension> out = new ArrayList<>();
        for (int t : order) {
            HeaderExtension e = extension(t);
            if (e != null) {
                out.add(e);
            }
        }
        for (HeaderExtension e : extensions) {
            if (!out.contains(e)) {
                out.add(e);
            }
        }
        return out;
    }
}
