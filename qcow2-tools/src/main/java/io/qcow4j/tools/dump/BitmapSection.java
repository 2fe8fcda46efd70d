package io.qcow4j.tools.dump;

import static io.qcow4j.tools.dump.DumpValues.CHUNK;
import static io.qcow4j.tools.dump.DumpValues.omitted;
import static io.qcow4j.tools.dump.DumpValues.rawHex;
import static io.qcow4j.tools.dump.DumpValues.u32;
import static io.qcow4j.tools.dump.DumpValues.u64;
import static io.qcow4j.tools.dump.Qcow2Dump.MAX_LISTED;

import io.qcow4j.core.format.BitmapDirectoryEntry;
import io.qcow4j.core.format.BitmapTableEntry;
import io.qcow4j.core.format.BitmapsExtension;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HeaderExtension;
import io.qcow4j.tools.dump.Qcow2Dump.Extension;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The {@code bitmaps} section: the bitmaps extension, the bitmap directory and, on request, each bitmap table. */
final class BitmapSection {
    private final Qcow2Dump d;

    BitmapSection(Qcow2Dump d) {
        this.d = d;
    }

    /** The bitmaps extension and directory; with {@code list}, every bitmap's table too. */
    Map<String, Object> bitmaps(boolean list) throws DumpException, IOException {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("autoclear_bitmaps", (d.autoclearFeatures & Header.AUTOCLEAR_BITMAPS) != 0);
        Extension ext = null;
        for (Extension e : d.extensionList()) {
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
        d.file.checkRange("bitmap directory", dirOffset, dirSize);
        ByteBuffer dir = ByteBuffer.allocate((int) dirSize);
        for (int done = 0; done < dirSize; ) {
            int n = (int) Math.min(CHUNK, dirSize - done);
            dir.put(done, d.file.read("bitmap directory", dirOffset + done, n), 0, n);
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
        d.file.checkRange("bitmap table of '" + e.get("name") + "'", tableOffset, tableSize * 8);
        List<Object> table = new ArrayList<>();
        long shown = Math.min(tableSize, MAX_LISTED);
        for (long done = 0; done < shown; ) {
            int n = (int) Math.min(CHUNK / 8, shown - done);
            ByteBuffer b = d.file.read("bitmap table", tableOffset + done * 8, n * 8);
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
}
