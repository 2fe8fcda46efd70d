package io.qcow4j.tools;

import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.bitmaps.DirtyBitmap;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.nbd.client.NbdClient;
import io.qcow4j.nbd.protocol.Nbd;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code map [-f FMT] [--output=human|json] [-s|--start-offset=OFF] [-l|--max-length=LEN] [-U] FILE},
 * as qemu-img map (its command line read as qemu-img reads it): the image is opened with its backing chain and walked run by run;
 * runs are merged as qemu merges them (same depth, present, zero, data, file, and
 * contiguous host offsets). JSON lists every run; the human table lists the runs whose
 * data lives in a file (and fails, as qemu does, on compressed clusters, which have no
 * host offset to show). Host offsets of data-file images are offsets in the data file.
 * An NBD export ({@code nbd+unix:///EXPORT?socket=PATH}, {@code nbd://HOST:PORT/EXPORT}) maps
 * as qemu-img maps it: from its base:allocation context, present where data or zero, at
 * its own offsets, depth 0.
 *
 * <p>{@code map --bitmap NAME FILE} is qcow4j's own: the dirty and clean runs of a
 * persistent bitmap over the whole disk, adjacent runs merged, what
 * {@code nbdinfo --map=qemu:dirty-bitmap:NAME} shows of a {@code qemu-nbd -B NAME} export.
 * JSON has qemu-img map's layout, one object a line:
 * <pre>
 * [{ "start": 0, "length": 65536, "dirty": true},
 * { "start": 65536, "length": 16711680, "dirty": false}]
 * </pre>
 * The human form is a table of the dirty runs only ("Offset Length", hex, as the map table).
 * FILE may be an NBD export: its {@code qemu:dirty-bitmap:NAME} context is read.
 *
 * <p>{@code map --since CHECKPOINT FILE} (qcow4j's own) prints, in the same form, what
 * changed since that checkpoint (see {@code qcow4j checkpoint}): the union of its bitmap
 * and every later checkpoint's, across FILE's backing chain.
 */
final class MapCommand {
    static final String NAME = "map";
    private static final String HUMAN_HEADER = String.format("%-16s%-16s%-16s%s", "Offset", "Length", "Mapped to", "File");
    private static final List<QemuGetopt.Long> LONG = List.of(
            new QemuGetopt.Long("help", false, "h"),
            new QemuGetopt.Long("format", true, "f"),
            new QemuGetopt.Long("output", true, "output"),
            new QemuGetopt.Long("object", true, "object"),
            new QemuGetopt.Long("image-opts", false, "image-opts"),
            new QemuGetopt.Long("force-share", false, "U"),
            new QemuGetopt.Long("start-offset", true, "s"),
            new QemuGetopt.Long("max-length", true, "l"),
            new QemuGetopt.Long("bitmap", true, "bitmap"),
            new QemuGetopt.Long("since", true, "since"));

    private String format;
    private String output = "human";
    /** --start-offset, --max-length: checked as they come; -1 when not given. */
    private long start = -1;
    private long max = -1;
    /** --bitmap NAME, --since CHECKPOINT: qcow4j's own. */
    private String bitmap;
    private String since;
    private boolean forceShare;
    private String file;
    private PrintWriter err;

    /** Runs {@code map ARGS}; the exit code. */
    static int run(List<String> args, PrintWriter out, PrintWriter err) throws Exception {
        MapCommand c = new MapCommand();
        c.err = err;
        List<String> files = QemuGetopt.handle(NAME, args, ":f:s:l:hU", LONG, out, o -> c.option(o, out));
        if (files.size() != 1) {
            throw new CliException(Program.usage("Expecting one image file name"));
        }
        c.file = files.get(0);
        return c.map(out);
    }

    private void option(QemuGetopt.Opt o, PrintWriter out) {
        String v = o.value();
        switch (o.key()) {
            case "f" -> format = v;
            case "output" -> output = v;
            case "U" -> forceShare = true;
            case "s" -> start = Sizes.cvtnum("start offset", v);
            case "l" -> max = Sizes.cvtnum("max length", v);
            case "bitmap" -> bitmap = v;
            case "since" -> since = v;
            case "object" -> ObjectOption.accept(v, out);
            case "image-opts" -> ImageOpts.active(true);
            default -> throw new IllegalStateException(o.key());
        }
    }

    /** One run as qemu-img map describes it; offset -1 and filename null when it has none. */
    record Entry(long start, long length, int depth, boolean present, boolean zero, boolean data,
                 long offset, String filename) {
        boolean hasOffset() {
            return offset >= 0;
        }

        Entry longer(long more) {
            return new Entry(start, length + more, depth, present, zero, data, offset, filename);
        }

        /** qemu-img's entry_mergeable. */
        boolean mergeable(Entry next) {
            if (length == 0 || zero != next.zero || data != next.data || depth != next.depth
                    || present != next.present || (filename == null) != (next.filename == null)
                    || hasOffset() != next.hasOffset()) {
                return false;
            }
            if (filename != null && !filename.equals(next.filename)) {
                return false;
            }
            return !hasOffset() || offset + length == next.offset;
        }

        String toJson() {
            return "{ \"start\": " + start + ", \"length\": " + length + ", \"depth\": " + depth
                    + ", \"present\": " + present + ", \"zero\": " + zero + ", \"data\": " + data
                    + (hasOffset() ? ", \"offset\": " + offset : "") + "}";
        }
    }

    private int map(PrintWriter out) throws IOException {
        boolean json = InfoCommand.checkOutputFormat(output);
        if (since != null) {
            if (bitmap != null || start >= 0 || max >= 0) {
                throw new CliException("--since maps the whole disk: --bitmap, --start-offset and --max-length do not apply");
            }
            mapSince(out, json);
            return 0;
        }
        if (bitmap != null) {
            if (start >= 0 || max >= 0) {
                throw new CliException("--bitmap maps the whole disk: --start-offset and --max-length do not apply");
            }
            mapBitmap(out, json);
            return 0;
        }
        BlockDevice dev = Images.open(file, format, false, true, forceShare);
        try {
            map(out, json, dev, Math.max(start, 0), max);
        } finally {
            Images.closeQuietly(dev);
        }
        return 0;
    }

    private void map(PrintWriter out, boolean json, BlockDevice dev, long start, long max) throws IOException {
        List<String> files = fileNames(ImageOpts.displayName(file), dev);
        long length = Images.virtualSize(dev);
        if (max >= 0) {
            length = Math.min(length, start + Math.min(max, Long.MAX_VALUE - start));
        }
        if (json) {
            out.print('[');
        } else {
            out.println(HUMAN_HEADER);
        }
        Entry curr = new Entry(start, 0, 0, false, false, false, -1, null);
        while (curr.start() + curr.length() < length) {
            long pos = curr.start() + curr.length();
            Entry next = status(dev, files, pos, length - pos);
            if (curr.mergeable(next)) {
                curr = curr.longer(next.length());
                continue;
            }
            if (curr.length() > 0) {
                next = print(out, json, curr, next);
            }
            curr = next;
        }
        print(out, json, curr, null);
        if (json) {
            out.println(']');
        }
    }

    /** qemu-img's dump_map_entry; returns {@code next}, which the human form may relabel. */
    private static Entry print(PrintWriter out, boolean json, Entry e, Entry next) {
        if (json) {
            out.print(e.toJson());
            if (next != null) {
                out.println(',');
            }
            return next;
        }
        if (e.data() && !e.hasOffset()) {
            out.flush();
            throw new CliException("File contains external, encrypted or compressed clusters.");
        }
        if (e.data() && !e.zero()) {
            out.println(hex16(e.start()) + hex16(e.length()) + hex16(e.hasOffset() ? e.offset() : 0) + e.filename());
        }
        // the table does not tell zero from unallocated: relabel so that more runs merge
        if (next != null && (!next.data() || next.zero())) {
            next = new Entry(next.start(), next.length(), next.depth(), next.present(), true, false,
                    next.offset(), next.filename());
        }
        return next;
    }

    /** C's {@code %#-16" PRIx64}: "0x" before non-zero numbers, left-aligned in 16 columns. */
    static String hex16(long v) {
        return String.format("%-16s", v == 0 ? "0" : "0x" + Long.toHexString(v));
    }

    private static Entry status(BlockDevice dev, List<String> files, long pos, long n) throws IOException {
        if (dev instanceof NbdClient && pos < dev.size()) {
            // as qemu's NBD driver reports an export: present when data or zero, at its own offset, depth 0
            BlockStatus st = dev.blockStatus(pos, Math.min(n, dev.size() - pos));
            boolean present = st.data() || st.zero();
            return new Entry(pos, st.length(), 0, present, st.zero(), st.data(), present ? pos : -1,
                    present ? files.get(0) : null);
        }
        if (pos >= dev.size()) {
            // the tail of a raw file that is not a whole number of sectors: qemu reads it as zeros
            return new Entry(pos, n, 0, true, true, false, pos, files.get(0));
        }
        BlockStatus st = dev.blockStatus(pos, Math.min(n, dev.size() - pos));
        boolean hasOffset = st.hostOffset() >= 0;
        String name = hasOffset && st.depth() < files.size() ? files.get(st.depth()) : null;
        return new Entry(pos, st.length(), st.depth(), st.allocated(), st.zero(), st.data(),
                hasOffset ? st.hostOffset() : -1, name);
    }

    /**
     * The name qemu prints for the file holding each layer's data: the image as named on
     * the command line, each backing file relative to the image naming it, a data file
     * instead of its image.
     */
    static List<String> fileNames(String name, BlockDevice dev) {
        List<String> names = new ArrayList<>();
        if (dev instanceof NbdClient) {
            return List.of(NbdImages.displayName(name));
        }
        String layer = name;
        BlockDevice d = dev;
        while (d != null) {
            if (d instanceof Qcow2Image img) {
                String dataFile = img.info().dataFile();
                names.add(dataFile != null ? Images.combine(layer, dataFile) : layer);
                if (img.chain().backing() == null || img.chain().backingFile() == null) {
                    break;
                }
                layer = Images.combine(layer, img.chain().backingFile());
                d = img.chain().backing();
            } else {
                names.add(layer);
                break;
            }
        }
        return names;
    }

    private void mapBitmap(PrintWriter out, boolean json) throws IOException {
        if (NbdImages.isNbd(file)) {
            mapNbdBitmap(out, json);
            return;
        }
        BlockDevice dev = Images.open(file, format, false, false, forceShare);
        try {
            if (!(dev instanceof Qcow2Image img)) {
                throw new CliException("Bitmap '" + bitmap + "' is not found");
            }
            Bitmaps bitmaps = Bitmaps.of(img);
            if (!bitmaps.contains(bitmap)) {
                throw new CliException("Bitmap '" + bitmap + "' is not found");
            }
            DirtyBitmap b = bitmaps.get(bitmap);
            if (b.isInconsistent()) {
                throw new CliException("Bitmap '" + bitmap + "' is inconsistent and cannot be used");
            }
            printBitmap(out, json, b.extents());
        } finally {
            Images.closeQuietly(dev);
        }
    }

    /** The export's {@code qemu:dirty-bitmap:NAME} context (qemu-nbd -B NAME), over the whole disk, runs merged. */
    private void mapNbdBitmap(PrintWriter out, boolean json) throws IOException {
        String context = NbdImages.bitmapContext(bitmap);
        NbdClient nbd = NbdImages.open(file, format, false, context);
        List<DirtyBitmap.Extent> extents = new ArrayList<>();
        try {
            if (!nbd.metaContexts().contains(context)) {
                throw new CliException("Bitmap '" + bitmap + "' is not found");
            }
            long size = nbd.size();
            for (long pos = 0; pos < size; ) {
                List<NbdClient.Extent> list;
                try {
                    list = nbd.extents(context, pos, size - pos);
                } catch (IOException e) {
                    throw new CliException("Could not read bitmap '" + bitmap + "' of '" + file + "': "
                            + Images.reason(e), 1, e);
                }
                for (NbdClient.Extent e : list) {
                    boolean dirty = e.has(Nbd.STATE_DIRTY);
                    int last = extents.size() - 1;
                    if (last >= 0 && extents.get(last).dirty() == dirty) {
                        DirtyBitmap.Extent prev = extents.get(last);
                        extents.set(last, new DirtyBitmap.Extent(prev.start(), prev.length() + e.length(), dirty));
                    } else {
                        extents.add(new DirtyBitmap.Extent(e.offset(), e.length(), dirty));
                    }
                    pos = e.end();
                }
            }
        } finally {
            Images.closeQuietly(nbd);
        }
        printBitmap(out, json, extents);
    }

    /** The union of the checkpoint's bitmap and every later one, across FILE's chain (see Checkpoints#dirtySince). */
    private void mapSince(PrintWriter out, boolean json) {
        if (NbdImages.isNbd(file)) {
            throw new CliException("--since needs the image file, not an NBD export (use --bitmap NAME with qemu-nbd -B NAME)");
        }
        io.qcow4j.bitmaps.Chain chain = Chains.open(file, format, false, forceShare, err, null);
        List<DirtyBitmap.Extent> extents;
        try {
            if (chain.checkpoints().list().stream().noneMatch(c -> c.name().equals(since))) {
                throw new CliException("Checkpoint '" + since + "' is not found in the chain of '" + file + "'");
            }
            try {
                extents = chain.checkpoints().dirtySince(since).extents();
            } catch (RuntimeException e) {
                throw new CliException("Cannot map changes since '" + since + "': " + Images.reason(e), 1, e);
            }
        } finally {
            Chains.closeQuietly(chain);
        }
        printBitmap(out, json, extents);
    }

    static void printBitmap(PrintWriter out, boolean json, List<DirtyBitmap.Extent> extents) {
        if (json) {
            StringBuilder b = new StringBuilder("[");
            for (int i = 0; i < extents.size(); i++) {
                DirtyBitmap.Extent e = extents.get(i);
                b.append("{ \"start\": ").append(e.start()).append(", \"length\": ").append(e.length())
                        .append(", \"dirty\": ").append(e.dirty()).append('}');
                if (i + 1 < extents.size()) {
                    b.append(",\n");
                }
            }
            out.println(b.append(']'));
            return;
        }
        out.println(String.format("%-16s%s", "Offset", "Length"));
        for (DirtyBitmap.Extent e : extents) {
            if (e.dirty()) {
                out.println(hex16(e.start()) + (e.length() == 0 ? "0" : "0x" + Long.toHexString(e.length())));
            }
        }
    }
}
