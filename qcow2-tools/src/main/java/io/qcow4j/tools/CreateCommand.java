package io.qcow4j.tools;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.RawImage;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.CompressionType;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.storage.ImageLock;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code create [-f qcow2|raw] [-o OPTS] [-b BACKING [-F FMT]] [-u] [-q] FILE [SIZE]}, as
 * qemu-img create: the same checks in the same order, the same "Formatting" line
 * (printed after the option syntax and the backing file were checked, before the
 * option combinations are), the same messages; the command line read as qemu-img reads it
 * (-o's syntax checked as it comes).
 */
final class CreateCommand {
    static final String NAME = "create";
    private static final List<QemuGetopt.Long> LONG = List.of(
            new QemuGetopt.Long("help", false, "h"),
            new QemuGetopt.Long("object", true, "object"));

    /** -f: qcow2 unless given (raw as qemu-img, which defaults to it). */
    private String format;
    private final List<String> optionLists = new ArrayList<>();
    /** -b, -F: the backing file and its format. */
    private String backing;
    private String backingFormat;
    /** -u: the backing file is not opened (its size cannot be used then). */
    private boolean unsafe;
    /** -q: no "Formatting" line. */
    private boolean quiet;
    /** FILE [SIZE]. */
    private List<String> args;

    /** Runs {@code create ARGS}; the exit code. */
    static int run(List<String> args, PrintWriter out) throws Exception {
        CreateCommand c = new CreateCommand();
        c.args = QemuGetopt.handle(NAME, args, ":F:b:f:ho:qu", LONG, out, o -> c.option(o, out));
        return c.create(out);
    }

    private void option(QemuGetopt.Opt o, PrintWriter out) {
        String v = o.value();
        switch (o.key()) {
            case "F" -> backingFormat = v;
            case "b" -> backing = v;
            case "f" -> format = v;
            case "o" -> {
                if (!OptionList.isValid(v)) {
                    throw new CliException("Invalid option list: " + v);
                }
                optionLists.add(v);
            }
            case "q" -> quiet = true;
            case "u" -> unsafe = true;
            case "object" -> ObjectOption.accept(v, out);
            default -> throw new IllegalStateException(o.key());
        }
    }

    private int create(PrintWriter out) throws Exception {
        if (format == null) {
            // qemu-img's default is raw: a script that omits -f must get what it got from qemu-img
            format = Program.dropIn() ? Images.RAW : Images.QCOW2;
        }
        OptionList opts = OptionList.parse(optionLists);
        if (args.isEmpty() && !opts.wantsHelp()) {
            throw new CliException(Program.usage("Expecting image file name"));
        }
        Formats.checkCreatable(format, opts.wantsHelp() || args.isEmpty() ? "" : args.get(0) + ": ");
        List<FormatOptions.Opt> table = FormatOptions.forFormat(format);
        if (opts.wantsHelp()) {
            FormatOptions.printHelp(out, format, !args.isEmpty());
            return 0;
        }
        if (args.size() > 2) {
            throw new CliException("Unexpected argument: " + args.get(2));
        }
        String file = args.get(0);
        Map<String, String> values = opts.values();
        if (backing != null && format.equals(Images.RAW)) {
            throw new CliException(file + ": Backing file not supported for file format 'raw'");
        }
        if (backing != null) {
            values.put("backing_file", backing);
        }
        if (backingFormat != null) {
            values.put("backing_fmt", backingFormat);
        }
        Long size = args.size() > 1 ? Sizes.parseImageSize(args.get(1)) : null;
        try {
            FormatOptions.checkItems(table, opts);
            FormatOptions.checkTypes(table, values);
            if (size != null && values.containsKey("size")) {
                throw new CliException("The image size must be specified only once");
            }
            if (size != null) {
                values.put("size", Long.toString(size));
            }
            String backingFile = values.get("backing_file");
            if (backingFile != null) {
                checkBacking(file, backingFile, values);
            }
            if (!values.containsKey("size")) {
                throw new CliException("Image creation needs a size parameter");
            }
            if (!quiet) {
                out.println(FormatOptions.formattingLine(file, format, table, values));
                out.flush();
            }
            String backingFmt = values.get("backing_fmt");
            if (backingFmt != null && !Formats.QEMU.contains(backingFmt)) {
                // -u: the name is checked only when the image is made (after the "Formatting" line)
                throw new CliException("Parameter 'backing-fmt' does not accept value '" + backingFmt + "'");
            }
            long imageSize = (Long) FormatOptions.typed(FormatOptions.find(table, "size"), values.get("size"));
            if (format.equals(Images.RAW)) {
                createRaw(file, roundUpToSector(imageSize), values);
            } else {
                createQcow2(file, roundUpToSector(imageSize), values);
            }
        } catch (CliException e) {
            throw e.prefixed(file + ": ", e.exitCode());
        } catch (ImageLock.LockedException e) {
            throw new CliException(file + ": " + e.getMessage(), 1, e); // qemu-img's words: the file is in use
        }
        return 0;
    }

    /**
     * The backing file must be named, must not be the new file, must have a format
     * (qemu 7.2 no longer probes it), and unless -u must open; its size is the default.
     */
    private void checkBacking(String file, String backingFile, Map<String, String> values) {
        if (backingFile.isEmpty()) {
            throw new CliException("Expected backing file name, got empty string");
        }
        String fullName = Images.combine(file, backingFile);
        if (Cwd.path(fullName).normalize().equals(Cwd.path(file).normalize())) {
            throw new CliException("Error: Trying to create an image with the same filename as the backing file");
        }
        String backingFmt = values.get("backing_fmt");
        if (backingFmt == null) {
            throw new CliException("Backing file specified without backing format");
        }
        if (unsafe) {
            return;
        }
        BlockDevice dev;
        try {
            Formats.checkOpenable(backingFmt, "Could not open '" + fullName + "': ");
            dev = Images.open(fullName, backingFmt, false, true);
        } catch (CliException e) {
            // qemu-img names the file once here, adds a line, and names a format it lacks alone
            String words = e.getMessage();
            if (!Formats.supported(backingFmt)) {
                words = "Unknown driver '" + backingFmt + "'";
            }
            throw new CliException(e.getMessage(), e.exitCode(), e).withQemuWords(words + "\nCould not open backing image.");
        }
        try {
            values.putIfAbsent("size", Long.toString(Images.virtualSize(dev)));
        } finally {
            Images.closeQuietly(dev);
        }
    }

    private static void createRaw(String file, long size, Map<String, String> values) throws Exception {
        String prealloc = values.getOrDefault("preallocation", "off");
        if (prealloc.equals("metadata")) {
            // qemu-img has made the file when it finds out (and emptied one that was there: not we)
            if (!java.nio.file.Files.exists(Cwd.path(file))) {
                java.nio.file.Files.createFile(Cwd.path(file));
            }
            throw new CliException("Unsupported preallocation mode: metadata");
        }
        if (!List.of("off", "falloc", "full").contains(prealloc)) {
            throw new CliException("Parameter 'preallocation' does not accept value '" + prealloc + "'");
        }
        try (RawImage img = RawImage.create(Cwd.path(file), size)) {
            if (!prealloc.equals("off")) {
                writeZeros(img, 0, size);
            }
            img.flush();
        }
    }

    private void createQcow2(String file, long size, Map<String, String> values) throws Exception {
        CreateOptions co = qcow2Options(values, size);
        Path path = Cwd.path(file);
        // as qemu: an existing file is emptied and reused (keeps its owner and mode); create()
        // empties it only after QEMU's locks show no one (a running VM) is using it
        try {
            Qcow2Image.create(path, co, OpenOptions.readWrite().warnings(CliWarnings.sink())).close();
        } catch (IllegalArgumentException e) {
            throw new CliException(e.getMessage(), 1, e);
        } catch (IOException e) {
            // create() opens the new image with its backing chain, which -u lets name a
            // file that does not exist (yet): the image itself is complete if it opens alone
            if (!unsafe || co.backingFile() == null || !opensWithoutBacking(path)) {
                throw e;
            }
        }
    }

    private static boolean opensWithoutBacking(Path path) {
        try (Qcow2Image img = Qcow2Image.open(path, OpenOptions.readOnly().openBacking(false).warnings(CliWarnings.sink()))) {
            return img.size() >= 0;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** qemu-img makes disks of whole 512-byte sectors: 1000 bytes become 1024. */
    private static long roundUpToSector(long size) {
        return size % 512 == 0 ? size : Math.addExact(size, 512 - size % 512);
    }

    /** Maps the -o values to CreateOptions, refusing what qemu refuses, in qemu's order. */
    static CreateOptions qcow2Options(Map<String, String> v, long size) {
        String compat = v.getOrDefault("compat", "1.1");
        int version = switch (compat) {
            case "0.10", "v2" -> 2;
            case "1.1", "v3" -> 3;
            default -> throw new CliException("Parameter 'version' does not accept value '" + compat + "'");
        };
        String ct = v.getOrDefault("compression_type", "zlib");
        CompressionType compression = switch (ct) {
            case "zlib" -> CompressionType.ZLIB;
            case "zstd" -> CompressionType.ZSTD;
            default -> throw new CliException("Parameter 'compression-type' does not accept value '" + ct + "'");
        };
        String pa = v.getOrDefault("preallocation", "off");
        CreateOptions.Preallocation prealloc = switch (pa) {
            case "off" -> CreateOptions.Preallocation.OFF;
            case "metadata" -> CreateOptions.Preallocation.METADATA;
            case "falloc" -> CreateOptions.Preallocation.FALLOC;
            case "full" -> CreateOptions.Preallocation.FULL;
            default -> throw new CliException("Parameter 'preallocation' does not accept value '" + pa + "'");
        };
        long clusterSize = (Long) value(v, "cluster_size");
        boolean extendedL2 = (Boolean) value(v, "extended_l2");
        boolean lazy = (Boolean) value(v, "lazy_refcounts");
        long refcountBits = (Long) value(v, "refcount_bits");
        String dataFile = v.get("data_file");
        boolean dataFileRaw = v.containsKey("data_file_raw") && (Boolean) value(v, "data_file_raw");
        String backingFile = v.get("backing_file");
        String backingFmt = v.get("backing_fmt");

        if (clusterSize < 512 || clusterSize > 2 * 1024 * 1024 || Long.bitCount(clusterSize) != 1) {
            throw new CliException("Cluster size must be a power of two between 512 and 2048k");
        }
        if (extendedL2 && version < 3) {
            throw new CliException("Extended L2 entries are only supported with compatibility level 1.1 and above"
                    + " (use version=v3 or greater)");
        }
        if (extendedL2 && clusterSize < 16384) {
            throw new CliException("Extended L2 entries are only supported with cluster sizes of at least 16384 bytes");
        }
        if (backingFile != null && prealloc != CreateOptions.Preallocation.OFF && !extendedL2) {
            throw new CliException("Backing file and preallocation can only be used at the same time"
                    + " if extended_l2 is on");
        }
        if (backingFmt != null && backingFile == null) {
            throw new CliException("Backing format cannot be used without backing file");
        }
        if (lazy && version < 3) {
            throw new CliException("Lazy refcounts only supported with compatibility level 1.1 and above"
                    + " (use version=v3 or greater)");
        }
        if (refcountBits < 1 || refcountBits > 64 || Long.bitCount(refcountBits) != 1) {
            throw new CliException("Refcount width must be a power of two and may not exceed 64 bits");
        }
        if (refcountBits != 16 && version < 3) {
            throw new CliException("Different refcount widths than 16 bits require compatibility level 1.1 or above"
                    + " (use version=v3 or greater)");
        }
        if (dataFileRaw && dataFile == null) {
            throw new CliException("data-file-raw requires data-file");
        }
        if (dataFileRaw && backingFile != null) {
            throw new CliException("Backing file and data-file-raw cannot be used at the same time");
        }
        if (dataFile != null && version < 3) {
            throw new CliException("External data files are only supported with compatibility level 1.1 and above"
                    + " (use version=v3 or greater)");
        }
        if (compression != CompressionType.ZLIB && version < 3) {
            throw new CliException("Non-zlib compression type is only supported with compatibility level 1.1 and above"
                    + " (use version=v3 or greater)");
        }
        CreateOptions co = CreateOptions.size(size)
                .compat(version == 2 ? "0.10" : "1.1")
                .clusterSize((int) clusterSize)
                .refcountBits((int) refcountBits)
                .lazyRefcounts(lazy)
                .extendedL2(extendedL2)
                .compressionType(compression)
                .preallocation(prealloc)
                .dataFileRaw(dataFileRaw);
        if (dataFile != null) {
            co.dataFile(dataFile);
        }
        if (backingFile != null) {
            co.backingFile(backingFile).backingFormat(backingFmt);
        }
        luks(v, co);
        return co;
    }

    /**
     * encrypt.format=luks: the passphrase from encrypt.key-secret's --object secret, QEMU's
     * default algorithms (the only ones qcow4j writes), encrypt.iter-time in ms.
     */
    private static void luks(Map<String, String> v, CreateOptions co) {
        String format = v.get("encrypt.format");
        if ("on".equals(v.get("encryption")) || "aes".equals(format)) {
            throw new CliException("qcow4j does not create images with the legacy AES encryption (use encrypt.format=luks)");
        }
        if (format == null) {
            return;
        }
        if (!format.equals("luks")) {
            throw new CliException("Parameter 'encrypt.format' does not accept value '" + format + "'");
        }
        for (String[] d : new String[][] {{"encrypt.cipher-alg", "aes-256"}, {"encrypt.cipher-mode", "xts"},
                {"encrypt.ivgen-alg", "plain64"}, {"encrypt.hash-alg", "sha256"}}) {
            String given = v.get(d[0]);
            if (given != null && !given.equals(d[1])) {
                throw new CliException("qcow4j creates LUKS images with aes-256, xts, plain64 and sha256 only ("
                        + d[0] + "=" + given + ")");
            }
        }
        String id = v.get("encrypt.key-secret");
        if (id == null) {
            throw new CliException("Parameter 'encrypt.key-secret' is required for cipher");
        }
        byte[] secret = ObjectOption.secret(id);
        long iterTime = v.containsKey("encrypt.iter-time") ? (Long) value(v, "encrypt.iter-time") : 2000;
        if (iterTime <= 0 || iterTime > Integer.MAX_VALUE) {
            throw new CliException("Parameter 'encrypt.iter-time' expects a positive number of milliseconds");
        }
        co.luks(secret, (int) iterTime);
    }

    private static Object value(Map<String, String> v, String name) {
        FormatOptions.Opt o = FormatOptions.find(FormatOptions.QCOW2, name);
        return FormatOptions.typed(o, v.getOrDefault(name, o.defaultValue() != null ? o.defaultValue() : "off"));
    }

    /** preallocation=falloc|full of a raw image: its bytes made real zeros (qemu's fallocate reads the same). */
    static void writeZeros(RawImage img, long from, long to) throws IOException {
        java.nio.ByteBuffer zeros = java.nio.ByteBuffer.allocate((int) Math.min(Math.max(to - from, 0), 1 << 20));
        for (long at = from; at < to; ) {
            int n = (int) Math.min(zeros.capacity(), to - at);
            zeros.clear().limit(n);
            img.write(at, zeros);
            at += n;
        }
    }
}
