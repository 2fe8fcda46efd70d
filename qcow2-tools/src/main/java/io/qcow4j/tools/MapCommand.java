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
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code map [-f FMT] [--output=human|json] [--start-offset=OFF] [--max-length=LEN] [-U] FILE},
 * as qemu-img map: the image is opened with its backing chain and walked run by run;
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
@Command(name = "map", mixinStandardHelpOptions = true, description = "Show how the disk maps to its files.")
final class MapCommand implements Callable<Integer> {
    private static final String HUMAN_HEADER = String.format("%-16s%-16s%-16s%s", "Offset", "Length", "Mapped to", "File");

    @Spec
    CommandSpec spec;

    @Option(names = "-f", paramLabel = "FMT", description = "image format (default: probe)")
    String format;

    @Option(names = "--output", paramLabel = "FMT", description = "human (default) or json")
    String output = "human";

    @Option(names = "--start-offset", paramLabel = "OFFSET", description = "first byte to map")
    String startOffset;

    @Option(names = "--max-length", paramLabel = "LENGTH", description = "bytes to map at most")
    String maxLength;

    @Option(names = "--bitmap", paramLabel = "NAME", description = "map a dirty bitmap instead (qcow4j)")
    String bitmap;

    @Option(names = "--since", paramLabel = "CHECKPOINT", description = "map what changed since a checkpoint (qcow4j)")
    String since;

    @Option(names = {"-U", "--force-share"}, description = "open even an image in use (take no locks)")
    boolean forceShare;

    @Option(names = "--image-opts", hidden = true)
    boolean imageOpts;

    @Parameters(paramLabel = "FILE", arity = "1")
    String file;

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

    @Override
    public Integer call() throws IOException {
        boolean json = InfoCommand.checkOutputFormat(output);
        if (imageOpts) {
            ImageOpts.active(true); // the file names are option lists (see Images.open)
        }
        long start = startOffset == null ? 0 : number("start offset", startOffset);
        long max = maxLength == null ? -1 : number("max length", maxLength);
        PrintWriter out = spec.commandLine().getOut();
        if (since != null) {
            if (bitmap != null || startOffset != null || maxLength != null) {
                throw new CliException("--since maps the whole disk: --bitmap, --start-offset and --max-length do not apply");
            }
            mapSince(out, json);
            return 0;
        }
        if (bitmap != null) {
            if (startOffset != null || maxLength != null) {
                throw new CliException("--bitmap maps the whole disk: --start-offset and --max-length do not apply");
            }
            mapBitmap(out, json);
            return 0;
        }
        BlockDevice dev = Images.open(file, format, false, true, forceShare);
        try {
            map(out, json, dev, start, max);
        } finally {
            Images.closeQuietly(dev);
        }
        return 0;
    }

    /** qemu's cvtnum, with its message. */
    private static long number(String what, String text) {
        try {
            return Sizes.parse(text);
        } catch (Sizes.SizeException e) {
            String capital = "Invalid " + what + " specified.";
            throw new CliException(e.problem() == Sizes.Problem.INVALID
                    ? capital + " You may use k, M, G, T, P or E suffixes for kilobytes, megabytes,"
                            + " gigabytes, terabytes, petabytes and exabytes."
                    : capital + " Must be between 0 and " + Long.MAX_VALUE + ".");
        }
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
                names.add(img.dataFile() != null ? Images.combine(layer, img.dataFile()) : layer);
                if (img.backing() == null || img.backingFile() == null) {
                    break;
                }
                layer = Images.combine(layer, img.backingFile());
                d = img.backing();
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
        io.qcow4j.bitmaps.Chain chain = Chains.open(file, format, false, forceShare, spec.commandLine().getErr(), null);
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
