package io.qcow4j.tools;

import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.bitmaps.DirtyBitmap;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.BlockDevice;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code measure [--output=human|json] [-O FMT] [-o OPTS] (--size N | [-f FMT] [-l SNAPSHOT] [-U] FILE)},
 * as qemu-img measure: the size a new image of FMT (raw unless -O) would need, for an empty
 * disk of N bytes or for a copy of FILE (its backing chain included, or an internal snapshot
 * of it). The same numbers, output and messages as qemu-img 7.2, checked in its order:
 * the options as they come, then the file names, the input, the output format and its options.
 */
final class MeasureCommand {
    static final String NAME = "measure";
    private static final List<QemuGetopt.Long> LONG = List.of(
            new QemuGetopt.Long("help", false, "h"),
            new QemuGetopt.Long("image-opts", false, "image-opts"),
            new QemuGetopt.Long("object", true, "object"),
            new QemuGetopt.Long("output", true, "output"),
            new QemuGetopt.Long("size", true, "size"),
            new QemuGetopt.Long("force-share", false, "U"));
    /** qcow2's encryption options: known to qemu-img measure, which only counts encrypt.format=luks. */
    private static final Set<String> ENCRYPT = Set.of("encryption", "encrypt.format", "encrypt.key-secret",
            "encrypt.cipher-alg", "encrypt.cipher-mode", "encrypt.hash-alg", "encrypt.iter-time", "encrypt.ivgen-alg",
            "encrypt.ivgen-hash-alg");

    private String inputFormat;
    private String outputFormat = Images.RAW;
    private final List<String> optionLists = new ArrayList<>();
    private SnapshotParam snapshot;
    private boolean forceShare;
    private boolean imageOpts;
    private boolean json;
    private Long size;
    private String file;

    /** Runs {@code measure ARGS}; the exit code (qemu-img's: 0, or 1 on any error). */
    static int run(List<String> args, PrintWriter out, PrintWriter err) throws IOException {
        QemuGetopt opts;
        try {
            opts = new QemuGetopt(NAME, args, "hf:O:o:l:U", LONG);
        } catch (QemuGetopt.BadOption e) {
            // measure lets getopt print the complaint, then shows the help and exits 0
            err.println(e.getoptMessage);
            err.flush();
            PicocliCommands.printUsage(out);
            return 0;
        }
        MeasureCommand c = new MeasureCommand();
        for (QemuGetopt.Opt o : opts.options()) {
            if (o.key().equals("h")) {
                PicocliCommands.printUsage(out);
                return 0;
            }
            c.option(o);
        }
        return c.measure(opts.operands(), out);
    }

    private void option(QemuGetopt.Opt o) {
        String v = o.value();
        switch (o.key()) {
            case "f" -> inputFormat = v;
            case "O" -> outputFormat = v;
            case "o" -> {
                if (!OptionList.isValid(v)) {
                    throw new CliException("Invalid option list: " + v);
                }
                optionLists.add(v);
            }
            case "l" -> snapshot = SnapshotParam.parse(v);
            case "U" -> forceShare = true;
            case "image-opts" -> imageOpts = true;
            case "object" -> {
                // accepted as qemu-img does; only encryption would use it
            }
            case "output" -> json = InfoCommand.checkOutputFormat(v);
            case "size" -> size = Sizes.parseImageSize(v);
            default -> throw new IllegalStateException(o.key());
        }
    }

    private int measure(List<String> operands, PrintWriter out) throws IOException {
        if (operands.size() > 1) {
            throw new CliException("At most one filename argument is allowed.");
        }
        file = operands.isEmpty() ? null : operands.get(0);
        if (file == null && (imageOpts || inputFormat != null || snapshot != null)) {
            throw new CliException("--image-opts, -f, and -l require a filename argument.");
        }
        if (file != null && size != null) {
            throw new CliException("--size N cannot be used together with a filename.");
        }
        if (file == null && size == null) {
            throw new CliException("Either --size N or one filename must be specified.");
        }
        if (imageOpts) {
            ImageOpts.active(true); // the file names are option lists (see Images.open)
        }
        BlockDevice input = file == null ? null : Images.open(file, inputFormat, false, true, forceShare);
        try {
            BlockDevice disk = input == null || snapshot == null ? input : snapshot.load(input);
            Map<String, Object> result = measure(input, disk);
            print(result, out);
        } finally {
            Images.closeQuietly(input);
        }
        return 0;
    }

    /** The numbers, in qemu-img's JSON order (bitmaps, when there are, first). */
    private Map<String, Object> measure(BlockDevice image, BlockDevice disk) throws IOException {
        checkOutputFormat();
        Map<String, String> values = outputOptions();
        checkMeasurable(values);
        if (size != null) {
            values.put("size", Long.toString(size));
        }
        long optSize = values.containsKey("size") ? OptionList.parseSize("size", values.get("size")) : 0;
        Map<String, Object> r = new LinkedHashMap<>();
        if (outputFormat.equals(Images.RAW)) {
            long required = disk != null ? Images.virtualSize(disk) : Qcow2Measure.roundUp(optSize, 512);
            r.put("required", Long.toUnsignedString(required));
            r.put("fully-allocated", Long.toUnsignedString(required));
            return r;
        }
        return new Qcow2Target(values).measure(optSize, image, disk);
    }

    private void checkOutputFormat() {
        String f = outputFormat;
        if (Formats.supported(f)) {
            return;
        }
        if (!Formats.QEMU.contains(f)) {
            throw new CliException("Unknown file format '" + f + "'");
        }
        if (Formats.QEMU_CANNOT_CREATE.contains(f)) {
            throw new CliException("Format driver '" + f + "' does not support image creation");
        }
    }

    /** After the options: a format qemu-img knows but qcow4j cannot measure. */
    private void checkMeasurable(Map<String, String> values) {
        String f = outputFormat;
        if (Formats.supported(f)) {
            return;
        }
        if (f.equals("luks")) {
            throw encryptionRefused(values.get("key-secret"), "key-secret");
        }
        // qemu-img has these drivers, and none of them measures
        throw new CliException("Block driver '" + f + "' does not support size measurement");
    }

    /**
     * The -o options of the output format, each checked as qemu-img parses them: in order,
     * repeats included; "help" is just a name here.
     */
    private Map<String, String> outputOptions() {
        OptionList opts = OptionList.parse(optionLists);
        List<FormatOptions.Opt> table = Formats.options(outputFormat);
        for (Map.Entry<String, String> e : opts.items()) {
            String key = e.getKey();
            FormatOptions.Opt o = FormatOptions.find(table, key);
            if (o == null && outputFormat.equals(Images.QCOW2) && ENCRYPT.contains(key)) {
                o = new FormatOptions.Opt(key, key.equals("encryption") ? FormatOptions.Type.BOOL
                        : key.equals("encrypt.iter-time") ? FormatOptions.Type.NUMBER : FormatOptions.Type.STRING, null, "");
            }
            if (o == null) {
                throw invalidOptions("Invalid parameter '" + key + "'");
            }
            try {
                FormatOptions.typed(o, e.getValue());
            } catch (CliException ce) {
                throw invalidOptions(ce.getMessage());
            }
        }
        return new LinkedHashMap<>(opts.values());
    }

    /** LUKS: qemu-img's words for a missing secret; with one, qcow4j's refusal (no LUKS yet). */
    private static CliException encryptionRefused(String secret, String option) {
        if (secret == null) {
            return new CliException("Parameter '" + option + "' is required for cipher");
        }
        return new CliException("LUKS encryption is not supported by qcow4j")
                .withQemuWords("No secret with id '" + secret + "'");
    }

    private CliException invalidOptions(String why) {
        return new CliException(Program.twoErrors(why, "Invalid options for file format '" + outputFormat + "'"));
    }

    private void print(Map<String, Object> r, PrintWriter out) {
        if (json) {
            Map<String, Object> doc = new LinkedHashMap<>();
            r.forEach((k, v) -> doc.put(k, new java.math.BigInteger(v.toString())));
            out.println(QemuJson.pretty(doc));
            return;
        }
        out.println("required size: " + r.get("required"));
        out.println("fully allocated size: " + r.get("fully-allocated"));
        if (r.containsKey("bitmaps")) {
            out.println("bitmaps size: " + r.get("bitmaps"));
        }
    }

    /** qcow2 as the output format: its options checked with qemu-img measure's words. */
    private static final class Qcow2Target {
        private final Map<String, String> v;

        Qcow2Target(Map<String, String> values) {
            this.v = values;
        }

        Map<String, Object> measure(long optSize, BlockDevice image, BlockDevice disk) throws IOException {
            boolean extendedL2 = v.containsKey("extended_l2") && OptionList.parseBool("extended_l2", v.get("extended_l2"));
            long clusterSize = v.containsKey("cluster_size") ? OptionList.parseSize("cluster_size", v.get("cluster_size")) : 65536;
            if (clusterSize < 512 || clusterSize > 2 * 1024 * 1024 || Long.bitCount(clusterSize) != 1) {
                throw new CliException("Cluster size must be a power of two between 512 and 2048k");
            }
            if (extendedL2 && clusterSize < 16384) {
                throw new CliException("Extended L2 entries are only supported with cluster sizes of at least 16384 bytes");
            }
            String compat = v.getOrDefault("compat", "1.1");
            int version = switch (compat) {
                case "0.10" -> 2;
                case "1.1" -> 3;
                default -> throw new CliException("Invalid compatibility level: '" + compat + "'");
            };
            long refcountBits = v.containsKey("refcount_bits") ? OptionList.parseNumber("refcount_bits", v.get("refcount_bits")) : 16;
            if (refcountBits < 1 || refcountBits > 64 || Long.bitCount(refcountBits) != 1) {
                throw new CliException("Refcount width must be a power of two and may not exceed 64 bits");
            }
            if (version < 3 && refcountBits != 16) {
                throw new CliException("Different refcount widths than 16 bits require compatibility level 1.1 or above"
                        + " (use compat=1.1 or greater)");
            }
            String prealloc = v.getOrDefault("preallocation", "off");
            if (!List.of("off", "metadata", "falloc", "full").contains(prealloc)) {
                throw new CliException("invalid parameter value: " + prealloc);
            }
            boolean hasBacking = v.containsKey("backing_file");
            // LUKS: the header and 8 keyslots of aes-256-xts (2068480 bytes) in whole clusters
            long luksBytes = 0;
            if ("luks".equals(v.get("encrypt.format"))) {
                if (v.get("encrypt.key-secret") == null) {
                    throw encryptionRefused(null, "encrypt.key-secret");
                }
                ObjectOption.secret(v.get("encrypt.key-secret"));
                luksBytes = Qcow2Measure.roundUp(2068480, clusterSize);
            }
            if (Qcow2Measure.tooLarge(optSize, clusterSize, extendedL2)) {
                throw new CliException("The image size is too large (try using a larger cluster size)");
            }
            boolean fullPrealloc = prealloc.equals("falloc") || prealloc.equals("full");
            long virtualSize = Qcow2Measure.roundUp(optSize, clusterSize);
            // the data clusters an empty disk needs: none, unless preallocated
            long required = fullPrealloc ? virtualSize : 0;
            if (disk != null) {
                virtualSize = Qcow2Measure.roundUp(Images.virtualSize(disk), clusterSize);
                if (hasBacking || fullPrealloc) {
                    required = virtualSize; // a new backing file may share nothing: count every cluster
                } else {
                    try (DataRuns runs = new DataRuns(disk, image)) {
                        required = runs.clustersWithData(Images.virtualSize(disk), clusterSize);
                    }
                }
            }
            long full = Qcow2Measure.fullyAllocated(virtualSize, clusterSize, (int) refcountBits, extendedL2);
            Map<String, Object> r = new LinkedHashMap<>();
            if (version >= 3 && image instanceof Qcow2Image q && q.info().version() >= 3) {
                List<Qcow2Measure.Bitmap> bitmaps = new ArrayList<>();
                for (DirtyBitmap b : Bitmaps.of(q).list()) {
                    if (b.isPersistent()) {
                        bitmaps.add(new Qcow2Measure.Bitmap(b.name(), b.granularity(), Images.virtualSize(q)));
                    }
                }
                r.put("bitmaps", Qcow2Measure.bitmaps(bitmaps, clusterSize));
            }
            r.put("required", full - virtualSize + required + luksBytes);
            r.put("fully-allocated", full + luksBytes);
            return r;
        }
    }
}
