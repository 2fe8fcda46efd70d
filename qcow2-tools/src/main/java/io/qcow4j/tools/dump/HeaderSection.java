package io.qcow4j.tools.dump;

import static io.qcow4j.tools.dump.DumpValues.hex;
import static io.qcow4j.tools.dump.DumpValues.u32;
import static io.qcow4j.tools.dump.DumpValues.u64;

import io.qcow4j.core.format.BitmapsExtension;
import io.qcow4j.core.format.FeatureNameTable;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HeaderExtension;
import io.qcow4j.tools.dump.Qcow2Dump.Extension;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The {@code header} and {@code extensions} sections: the header fields, decoded, and each header extension of cluster 0. */
final class HeaderSection {
    private final Qcow2Dump d;

    HeaderSection(Qcow2Dump d) {
        this.d = d;
    }

    Map<String, Object> header() throws DumpException {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("offset", 0L);
        m.put("magic", u32(Header.MAGIC));
        m.put("version", d.version);
        m.put("backing_file_offset", u64(d.backingFileOffset));
        m.put("backing_file_size", d.backingFileSize);
        m.put("cluster_bits", d.clusterBits);
        m.put("size", u64(d.size));
        m.put("crypt_method", d.cryptMethod);
        m.put("l1_size", d.l1Size);
        m.put("l1_table_offset", u64(d.l1TableOffset));
        m.put("refcount_table_offset", u64(d.refcountTableOffset));
        m.put("refcount_table_clusters", d.refcountTableClusters);
        m.put("nb_snapshots", d.nbSnapshots);
        m.put("snapshots_offset", u64(d.snapshotsOffset));
        if (d.version >= 3) {
            m.put("incompatible_features", u64(d.incompatibleFeatures));
            m.put("compatible_features", u64(d.compatibleFeatures));
            m.put("autoclear_features", u64(d.autoclearFeatures));
            m.put("refcount_order", d.refcountOrder);
            m.put("header_length", d.headerLength);
            if (d.headerLength > Header.COMPRESSION_TYPE) {
                m.put("compression_type", d.compressionType);
            }
        }
        // decoded
        m.put("cluster_size", d.clusterSize);
        m.put("refcount_bits", 1 << d.refcountOrder);
        if (d.version >= 3) {
            List<FeatureNameTable.Entry> names = featureNames();
            m.put("incompatible_feature_names", featureList(names, FeatureNameTable.INCOMPATIBLE, d.incompatibleFeatures));
            m.put("compatible_feature_names", featureList(names, FeatureNameTable.COMPATIBLE, d.compatibleFeatures));
            m.put("autoclear_feature_names", featureList(names, FeatureNameTable.AUTOCLEAR, d.autoclearFeatures));
            if (d.headerLength > Header.COMPRESSION_TYPE) {
                m.put("compression_type_name", switch (d.compressionType) {
                    case 0 -> "zlib";
                    case 1 -> "zstd";
                    default -> "unknown";
                });
            }
        }
        if (d.backingFileOffset != 0) {
            m.put("backing_file", backingFileName());
        }
        return m;
    }

    private String backingFileName() throws DumpException {
        long end = Math.min(d.clusterSize, d.cluster0.limit());
        if (d.backingFileOffset < 0 || d.backingFileOffset > end || d.backingFileSize > Header.MAX_BACKING_FILE_NAME
                || d.backingFileSize > end - d.backingFileOffset) {
            throw new DumpException("header: backing file name at 0x" + Long.toHexString(d.backingFileOffset) + " ("
                    + d.backingFileSize + " bytes) does not fit in cluster 0");
        }
        byte[] name = new byte[(int) d.backingFileSize];
        d.cluster0.get((int) d.backingFileOffset, name);
        return new String(name, StandardCharsets.UTF_8);
    }

    /** The image's own feature name table when it has one, else the names qemu writes. */
    private List<FeatureNameTable.Entry> featureNames() {
        try {
            for (Extension e : d.extensionList()) {
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

    /** Each header extension in file order (the end marker not included). */
    List<Object> extensions() throws DumpException {
        List<Object> items = new ArrayList<>();
        for (Extension e : d.extensionList()) {
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
        ByteBuffer buf = ByteBuffer.wrap(e.data());
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
                    m.put("nb_bitmaps", u32(buf.getInt(0)));
                    m.put("reserved", u32(buf.getInt(4)));
                    m.put("bitmap_directory_size", u64(buf.getLong(8)));
                    m.put("bitmap_directory_offset", u64(buf.getLong(16)));
                } else {
                    m.put("data", hex(e.data()));
                }
            }
            case HeaderExtension.FULL_DISK_ENCRYPTION -> {
                if (e.data().length == 16) {
                    m.put("encryption_header_offset", u64(buf.getLong(0)));
                    m.put("encryption_header_length", u64(buf.getLong(8)));
                } else {
                    m.put("data", hex(e.data()));
                }
            }
            default -> m.put("data", hex(e.data()));
        }
        return m;
    }
}
