package io.qcow4j.tools;

import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.Qcow2Info;
import io.qcow4j.core.Snapshot;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.crypto.LuksHeader;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What {@code qemu-img info} reports about one image, and its two renderings. The JSON
 * key order is qemu's (its dictionaries iterate in hash order, so the order below is
 * copied from qemu-img 7.2's output, key by key); the human form follows qemu's
 * fixed line order and prints "Format specific information" in that same JSON order.
 */
final class ImageInfo {
    private static final DateTimeFormatter SNAPSHOT_DATE = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss");

    String filename;
    String format;
    long virtualSize;
    long actualSize = -1;
    /** An NBD export: qemu prints "disk size: unavailable" and no dirty flag. */
    boolean protocolOnly;
    int clusterSize = -1;
    boolean dirty;
    String backingFilename;
    String fullBackingFilename;
    String backingFormat;
    List<Snapshot> snapshots = List.of();
    /** format-specific "data", in qemu's order; null for raw. */
    Map<String, Object> qcow2Data;
    boolean encrypted;

    /** Gathers the info of an open device named {@code name} on the command line. */
    static ImageInfo of(String name, BlockDevice dev) throws IOException {
        ImageInfo info = new ImageInfo();
        info.filename = name;
        info.format = dev.formatName();
        info.virtualSize = Images.virtualSize(dev);
        if (dev instanceof io.qcow4j.nbd.client.NbdClient) {
            info.filename = NbdImages.displayName(name);
            info.protocolOnly = true;
            return info;
        }
        // the image file alone: qemu 7.2 counts neither the data file nor the backing file
        info.actualSize = DiskUsage.allocatedBytes(Cwd.path(name));
        if (dev instanceof Qcow2Image img) {
            Qcow2Info format = img.info();
            info.clusterSize = format.clusterSize();
            info.encrypted = format.encrypted();
            info.dirty = format.dirty();
            info.backingFilename = img.chain().backingFile();
            if (info.backingFilename != null) {
                info.fullBackingFilename = Images.combine(name, info.backingFilename);
                info.backingFormat = img.chain().backingFormat();
            }
            info.snapshots = img.snapshots().list();
            info.qcow2Data = qcow2Data(img);
        }
        return info;
    }

    private static Map<String, Object> qcow2Data(Qcow2Image img) {
        Qcow2Info format = img.info();
        LuksHeader luksHeader = img.luks().header();
        Map<String, Object> d = new LinkedHashMap<>();
        boolean v3 = format.version() >= 3;
        d.put("compat", v3 ? "1.1" : "0.10");
        d.put("compression-type", format.compressionType().qemuName());
        if (v3) {
            d.put("lazy-refcounts", format.lazyRefcounts());
        }
        List<Object> bitmaps = bitmaps(img);
        if (!bitmaps.isEmpty()) {
            d.put("bitmaps", bitmaps);
        }
        d.put("refcount-bits", format.refcountBits());
        if (luksHeader != null) {
            d.put("encrypt", luks(luksHeader));
        }
        if (v3 && format.dataFile() != null) {
            d.put("data-file", format.dataFile());
            d.put("data-file-raw", format.dataFileRaw());
        }
        if (v3) {
            d.put("corrupt", format.corrupt());
            d.put("extended-l2", format.extendedL2());
        }
        return d;
    }

    /** The LUKS header as qemu's "encrypt" block shows it. */
    private static Map<String, Object> luks(LuksHeader h) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ivgen-alg", h.ivgenName());
        m.put("hash-alg", h.hashSpec);
        m.put("cipher-alg", h.cipherAlg());
        m.put("uuid", h.uuid);
        m.put("format", "luks");
        m.put("cipher-mode", h.modeName());
        List<Object> slots = new ArrayList<>();
        for (LuksHeader.Slot s : h.slots) {
            Map<String, Object> slot = new LinkedHashMap<>();
            slot.put("active", s.isActive());
            if (s.isActive()) {
                slot.put("iters", Integer.toUnsignedLong(s.iterations));
            }
            slot.put("key-offset", Integer.toUnsignedLong(s.keyMaterialOffset) * 512);
            if (s.isActive()) {
                slot.put("stripes", s.stripes);
            }
            slots.add(slot);
        }
        m.put("slots", slots);
        m.put("payload-offset", Integer.toUnsignedLong(h.payloadOffset) * 512);
        m.put("master-key-iters", Integer.toUnsignedLong(h.mkDigestIterations));
        return m;
    }

    /** The bitmap directory as stored on disk: flags ("in-use", "auto"), name, granularity. */
    private static List<Object> bitmaps(Qcow2Image img) {
        List<Object> list = new ArrayList<>();
        for (Bitmaps.Stored e : Bitmaps.of(img).stored()) {
            List<Object> flags = new ArrayList<>();
            if (e.inUse()) {
                flags.add("in-use");
            }
            if (e.auto()) {
                flags.add("auto");
            }
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("flags", flags);
            m.put("name", e.name());
            m.put("granularity", e.granularity());
            list.add(m);
        }
        return list;
    }

    /** The JSON object, keys in qemu-img's order. */
    Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        if (backingFormat != null) {
            m.put("backing-filename-format", backingFormat);
        }
        if (!snapshots.isEmpty()) {
            List<Object> list = new ArrayList<>();
            for (Snapshot s : snapshots) {
                list.add(snapshotJson(s));
            }
            m.put("snapshots", list);
        }
        m.put("virtual-size", virtualSize);
        m.put("filename", filename);
        if (clusterSize > 0) {
            m.put("cluster-size", clusterSize);
        }
        m.put("format", format);
        if (actualSize >= 0) {
            m.put("actual-size", actualSize);
        }
        if (qcow2Data != null) {
            Map<String, Object> spec = new LinkedHashMap<>();
            spec.put("type", format);
            spec.put("data", qcow2Data);
            m.put("format-specific", spec);
        }
        if (backingFilename != null) {
            m.put("full-backing-filename", fullBackingFilename);
        }
        if (encrypted) {
            m.put("encrypted", true); // qemu's order: between the two backing names
        }
        if (backingFilename != null) {
            m.put("backing-filename", backingFilename);
        }
        if (!protocolOnly) {
            m.put("dirty-flag", dirty);
        }
        return m;
    }

    private static Map<String, Object> snapshotJson(Snapshot s) {
        Map<String, Object> m = new LinkedHashMap<>();
        if (s.icount() != -1) {
            m.put("icount", s.icount());
        }
        m.put("vm-clock-nsec", s.vmClockNsec() % 1_000_000_000L);
        m.put("name", s.name());
        m.put("date-sec", s.dateSec());
        m.put("date-nsec", s.dateNsec());
        m.put("vm-clock-sec", s.vmClockNsec() / 1_000_000_000L);
        m.put("id", s.id());
        m.put("vm-state-size", s.vmStateSize());
        return m;
    }

    /** The human form, line for line as qemu-img info. */
    void printHuman(PrintWriter out) {
        out.println("image: " + filename);
        out.println("file format: " + format);
        out.println("virtual size: " + Output.humanSize(virtualSize) + " (" + virtualSize + " bytes)");
        if (actualSize >= 0) {
            out.println("disk size: " + Output.humanSize(actualSize));
        } else if (protocolOnly) {
            out.println("disk size: unavailable");
        }
        if (encrypted) {
            out.println("encrypted: yes");
        }
        if (clusterSize > 0) {
            out.println("cluster_size: " + clusterSize);
        }
        if (dirty) {
            out.println("cleanly shut down: no");
        }
        if (backingFilename != null) {
            String line = "backing file: " + backingFilename;
            if (!backingFilename.equals(fullBackingFilename)) {
                line += " (actual path: " + fullBackingFilename + ")";
            }
            out.println(line);
            if (backingFormat != null) {
                out.println("backing file format: " + backingFormat);
            }
        }
        if (!snapshots.isEmpty()) {
            out.println("Snapshot list:");
            out.println(snapshotHeader());
            for (Snapshot s : snapshots) {
                out.println(snapshotLine(s));
            }
        }
        if (qcow2Data != null) {
            out.println("Format specific information:");
            printDict(out, qcow2Data, 1);
        }
    }

    /** qemu-img snapshot -l / info's table header. */
    static String snapshotHeader() {
        return String.format("%-10s%-17s%8s%20s%13s%11s", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK", "ICOUNT");
    }

    static String snapshotLine(Snapshot s) {
        String date = SNAPSHOT_DATE.format(Instant.ofEpochSecond(s.dateSec()).atZone(ZoneId.systemDefault()));
        long secs = s.vmClockNsec() / 1_000_000_000L;
        String clock = String.format("%02d:%02d:%02d.%03d", secs / 3600, (secs / 60) % 60, secs % 60,
                (s.vmClockNsec() / 1_000_000L) % 1000);
        String icount = s.icount() == -1 ? "" : Long.toString(s.icount());
        return String.format("%-9s %-16s %8s%20s%13s%11s", s.id(), s.name(), Output.humanSize(s.vmStateSize()),
                date, clock, icount);
    }

    /** A nested dictionary the way qemu's human dump prints it: "key: value", '-' shown as ' '. */
    @SuppressWarnings("unchecked")
    private static void printDict(PrintWriter out, Map<String, Object> dict, int level) {
        String pad = "    ".repeat(level);
        for (Map.Entry<String, Object> e : dict.entrySet()) {
            String key = e.getKey().replace('-', ' ');
            Object v = e.getValue();
            if (v instanceof Map<?, ?> m) {
                out.println(pad + key + ":");
                printDict(out, (Map<String, Object>) m, level + 1);
            } else if (v instanceof List<?> l) {
                out.println(pad + key + ":");
                printList(out, l, level + 1);
            } else {
                out.println(pad + key + ": " + v);
            }
        }
    }

    @SuppressWarnings("unchecked")
    private static void printList(PrintWriter out, List<?> list, int level) {
        String pad = "    ".repeat(level);
        for (int i = 0; i < list.size(); i++) {
            Object v = list.get(i);
            if (v instanceof Map<?, ?> m) {
                out.println(pad + "[" + i + "]:");
                printDict(out, (Map<String, Object>) m, level + 1);
            } else {
                out.println(pad + "[" + i + "]: " + v);
            }
        }
    }
}
