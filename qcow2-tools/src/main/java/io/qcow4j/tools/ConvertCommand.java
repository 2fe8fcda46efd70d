package io.qcow4j.tools;

import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.bitmaps.DirtyBitmap;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.RawImage;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.nbd.client.NbdClient;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code convert [-f FMT] [-O qcow2|raw] [-c] [-o OPTS] [-p] [--bitmaps [--skip-broken-bitmaps]] SRC DST},
 * as qemu-img convert:
 * the whole disk of SRC (its backing chain included) into a new DST. Runs that read as
 * zeros are not written (a new image reads zeros already); neither are chunks whose
 * data is all zeros. With -c every written cluster is compressed. --bitmaps copies the
 * source image's persistent bitmaps (granularity, enabled state, bits) into a qcow2 target;
 * unlike qemu-img, its refusals (raw target, inconsistent bitmap) come before DST is made.
 * Converting an image that has bitmaps without --bitmaps warns that they stay behind.
 * Several sources are copied one after the other; -l copies an internal snapshot; -n writes
 * into an existing target, -B/-F (or -o backing_file) makes one with a backing file, -S sets
 * the sparse detection: see {@link ConvertOptions} and {@link ConvertCopy}.
 * SRC may be an NBD export ({@code nbd+unix:///EXPORT?socket=PATH}, {@code nbd://HOST:PORT/EXPORT}),
 * read as a raw disk; so may DST with -O raw: as qemu-img, the existing export is
 * written (with or without -n), zeros included.
 */
final class ConvertCommand {
    static final String NAME = "convert";
    private static final List<QemuGetopt.Long> LONG = List.of(
            new QemuGetopt.Long("help", false, "h"),
            new QemuGetopt.Long("object", true, "object"),
            new QemuGetopt.Long("image-opts", false, "image-opts"),
            new QemuGetopt.Long("force-share", false, "U"),
            new QemuGetopt.Long("target-image-opts", false, "target-image-opts"),
            new QemuGetopt.Long("salvage", false, "salvage"),
            new QemuGetopt.Long("target-is-zero", false, "target-is-zero"),
            new QemuGetopt.Long("bitmaps", false, "bitmaps"),
            new QemuGetopt.Long("skip-broken-bitmaps", false, "skip-broken-bitmaps"));

    String sourceFormat;
    String targetFormat = Images.RAW;
    private boolean targetFormatGiven;
    boolean targetImageOpts;
    boolean compress;
    final List<String> optionLists = new ArrayList<>();
    boolean progress;
    boolean quiet;
    boolean forceShare;
    boolean bitmaps;
    boolean skipBrokenBitmaps;
    /** -S: the shortest run of zeros left sparse (0: fully allocate); whether it was given. */
    long sparseSize = ConvertOptions.DEFAULT_SPARSE;
    boolean sparseGiven;
    boolean skipCreate;
    boolean targetIsZero;
    /** -B: the target's backing file (it gets only the source's top image); -F its format. */
    String backing;
    String backingFormat;
    /** -l: an internal snapshot of the source. */
    SnapshotParam snapshot;
    boolean salvage;
    /** -C (copy offloading), -W (out-of-order writes), -m, -r, -t/-T: accepted, checked as qemu-img checks them. */
    boolean copyRange;
    String cache;
    String sourceCache;
    /** The sources, then the target. */
    List<String> args = new ArrayList<>();
    private PrintWriter out;
    private PrintWriter err;

    /** Runs {@code convert ARGS}; the exit code. */
    static int run(List<String> args, PrintWriter out, PrintWriter err) throws Exception {
        ConvertCommand c = new ConvertCommand();
        c.out = out;
        c.err = err;
        c.args = new ArrayList<>(QemuGetopt.handle(NAME, args, ":hf:O:B:CcF:o:l:S:pt:T:qnm:WUr:", LONG, out, c::option));
        return c.convert();
    }

    /** One option, checked as it comes where qemu-img checks it in its option loop. */
    private void option(QemuGetopt.Opt o) {
        String v = o.value();
        switch (o.key()) {
            case "f" -> sourceFormat = v;
            case "O" -> {
                targetFormat = v;
                targetFormatGiven = true;
            }
            case "B" -> backing = v;
            case "F" -> backingFormat = v;
            case "C" -> copyRange = true;
            case "c" -> compress = true;
            case "o" -> {
                if (!OptionList.isValid(v)) {
                    throw new CliException("Invalid option list: " + v);
                }
                optionLists.add(v);
            }
            case "l" -> snapshot = SnapshotParam.parse(v);
            case "S" -> {
                sparseSize = ConvertOptions.sparseSize(v);
                sparseGiven = true;
            }
            case "p" -> progress = true;
            case "t" -> cache = v;
            case "T" -> sourceCache = v;
            case "q" -> quiet = true;
            case "n" -> skipCreate = true;
            case "m" -> ConvertOptions.checkCoroutines(v);
            case "W" -> {
                // out-of-order writes: accepted, as qemu-img takes them
            }
            case "U" -> forceShare = true;
            case "r" -> Sizes.cvtnum("rate limit", v); // accepted; qcow4j does not throttle
            case "object" -> ObjectOption.accept(v, out);
            case "image-opts" -> ImageOpts.active(true);
            case "target-image-opts" -> targetImageOpts = true;
            case "salvage" -> salvage = true;
            case "target-is-zero" -> targetIsZero = true;
            case "bitmaps" -> bitmaps = true;
            case "skip-broken-bitmaps" -> skipBrokenBitmaps = true;
            default -> throw new IllegalStateException(o.key());
        }
    }

    /**
     * The checks after the option loop, in qemu-img's order (the sources open before the
     * target's format and options are looked at), then the copy.
     */
    private int convert() throws Exception {
        ConvertOptions.Checked checked = ConvertOptions.check(this);
        OptionList opts = OptionList.parse(optionLists);
        if (opts.wantsHelp()) {
            Formats.checkCreatable(targetFormat, "");
            FormatOptions.printHelp(out, targetFormat, args.size() >= 2);
            return 0;
        }
        if (args.size() < 2) {
            throw new CliException("Must specify image file name");
        }
        ConvertOptions.checkSourceCache(this);
        String src = args.get(0);
        List<String> sources = List.copyOf(args.subList(0, args.size() - 1));
        BlockDevice source = ConvertOptions.openSources(this, sources, checked);
        try {
            String dstOptions = targetImageOpts ? targetOptions() : null;
            String dst = args.get(args.size() - 1);
            Formats.checkCreatable(targetFormat, "");
            Map<String, String> values = opts.values();
            FormatOptions.checkItems(FormatOptions.forFormat(targetFormat), opts);
            values.remove("size"); // the size is the source's, as qemu-img sets it
            if (compress && !targetFormat.equals(Images.QCOW2)) {
                throw new CliException("Compression not supported for this file format");
            }
            if (bitmaps && !targetFormat.equals(Images.QCOW2)) {
                throw new CliException("Format driver '" + targetFormat + "' does not support bitmaps");
            }
            boolean nbdTarget = NbdImages.isNbd(dst);
            if (nbdTarget && targetFormat.equals(Images.QCOW2)) {
                throw new CliException(dst + ": writing a qcow2 image into an NBD export is not supported (use -O raw)");
            }
            if (!NbdImages.isNbd(src) && !nbdTarget && Files.exists(Cwd.path(dst))
                    && Files.exists(Cwd.path(ImageOpts.displayName(src)))
                    && Files.isSameFile(Cwd.path(ImageOpts.displayName(src)), Cwd.path(dst)) && !skipCreate) {
                throw new CliException(dst + ": source and target are the same file");
            }
            ConvertOptions.checkTarget(this, sources, values);
            if (bitmaps && sources.size() > 1) {
                throw new CliException("Copying bitmaps only possible with single source");
            }
            List<DirtyBitmap> toCopy = bitmapsToCopy(src, source);
            long size = Images.virtualSize(source);
            BlockDevice target;
            try {
                target = skipCreate ? ConvertOptions.openExisting(this, dst, size)
                        : nbdTarget ? openNbdTarget(dst, size) : createTarget(dst, size, values);
            } catch (CliException e) {
                throw dstOptions == null ? e : Images.namedByOptions(e, dstOptions, dst);
            }
            try {
                ConvertOptions.checkTargetCache(this);
                copy(source, target, size, values.containsKey("backing_file"), checked);
                copyBitmaps(toCopy, target);
                if (target instanceof NbdClient nbd) {
                    nbd.flush();
                }
            } catch (IOException e) {
                Images.closeQuietly(target);
                throw new CliException(dst + ": error while flushing: " + Images.reason(e), 1, e);
            } catch (RuntimeException e) {
                Images.closeQuietly(target);
                throw e;
            }
            target.close();
        } finally {
            Images.closeQuietly(source);
        }
        return 0;
    }

    /**
     * --target-image-opts: the last name is an option list for the target (qcow2 or raw over
     * a file), replaced here by its file name and format. Returns the option list.
     */
    private String targetOptions() throws IOException {
        if (targetFormatGiven) {
            throw new CliException("--image-opts and --format are mutually exclusive");
        }
        if (args.size() < 2) {
            return null;
        }
        String list = args.get(args.size() - 1);
        ImageOpts.Spec spec;
        try {
            spec = ImageOpts.parse(list);
        } catch (CliException e) {
            throw new CliException("Could not open '" + list + "': " + e.getMessage(), e.exitCode(), e);
        }
        if (spec.keySecret() != null) {
            throw new CliException("Could not open '" + list + "': qcow4j writes no encrypted target through --target-image-opts");
        }
        Path path = Cwd.path(spec.filename());
        targetFormat = spec.format() != null ? spec.format()
                : Files.isRegularFile(path) ? Images.probe(path) : Images.RAW;
        args.set(args.size() - 1, spec.filename());
        return list;
    }

    /**
     * An NBD export as target without -n: qemu-img "creates" it by opening it, and fails
     * with "Cannot grow NBD nodes" when it is smaller than the source.
     */
    private static BlockDevice openNbdTarget(String dst, long size) {
        BlockDevice target;
        try {
            target = NbdImages.open(dst, Images.RAW, true);
        } catch (CliException e) {
            String why = e.getMessage().substring(("Could not open '" + dst + "': ").length());
            throw new CliException(dst + ": error while converting raw: Protocol driver 'nbd' does not support"
                    + " image creation, and opening the image failed: " + why, e.exitCode(), e);
        }
        if (Images.virtualSize(target) < size) {
            Images.closeQuietly(target);
            throw new CliException(dst + ": error while converting raw: Cannot grow NBD nodes");
        }
        return target;
    }

    /**
     * The bitmaps --bitmaps copies: the source image's own persistent ones (not its backing
     * files'). An inconsistent one fails the convert before the target is made, or is
     * skipped with a warning under --skip-broken-bitmaps (qemu's order: newest first).
     * Without --bitmaps, a warning says the bitmaps stay behind.
     */
    private List<DirtyBitmap> bitmapsToCopy(String src, BlockDevice source) {
        List<DirtyBitmap> all = source instanceof Qcow2Image q
                ? Bitmaps.of(q).list().stream().filter(DirtyBitmap::isPersistent).toList() : List.of();
        if (!bitmaps) {
            if (!all.isEmpty()) {
                warn("'" + src + "' has bitmaps, which are not copied ("
                        + (targetFormat.equals(Images.QCOW2) ? "use --bitmaps" : "a raw image cannot hold them") + ")");
            }
            return List.of();
        }
        List<DirtyBitmap> copy = new ArrayList<>();
        for (int i = all.size() - 1; i >= 0; i--) {
            DirtyBitmap b = all.get(i);
            if (b.isInconsistent()) {
                if (!skipBrokenBitmaps) {
                    throw new CliException("Cannot copy inconsistent bitmap '" + b.name()
                            + "'. Try --skip-broken-bitmaps, or use 'qemu-img bitmap --remove' to delete it");
                }
                warn("Skipping inconsistent bitmap '" + b.name() + "'");
                continue;
            }
            copy.add(0, b);
        }
        return copy;
    }

    /** After the data (so the copy dirties none of them): each bitmap with its granularity, state and bits. */
    private static void copyBitmaps(List<DirtyBitmap> list, BlockDevice target) {
        if (list.isEmpty()) {
            return;
        }
        Bitmaps to = Bitmaps.of((Qcow2Image) target);
        for (DirtyBitmap b : list) {
            try {
                Bitmaps.AddOptions o = Bitmaps.AddOptions.defaults().withGranularity(b.granularity());
                to.add(b.name(), b.isEnabled() ? o : o.disabledBitmap());
                to.merge(b.name(), b);
            } catch (IOException | RuntimeException e) {
                throw new CliException("Could not copy bitmap '" + b.name() + "': " + Images.reason(e), 1, e);
            }
        }
    }

    private void warn(String message) {
        CliWarnings.to(err).accept(message);
    }

    private BlockDevice createTarget(String dst, long size, Map<String, String> values) throws IOException {
        Path path = Cwd.path(dst);
        try {
            if (targetFormat.equals(Images.RAW)) {
                String prealloc = values.getOrDefault("preallocation", "off");
                if (prealloc.equals("metadata")) {
                    throw new CliException("Unsupported preallocation mode: metadata");
                }
                if (!prealloc.equals("off") && !prealloc.equals("falloc") && !prealloc.equals("full")) {
                    throw new CliException("Parameter 'preallocation' does not accept value '" + prealloc + "'");
                }
                RawImage raw = RawImage.create(path, size);
                if (!prealloc.equals("off")) {
                    CreateCommand.writeZeros(raw, 0, size);
                }
                return raw;
            }
            CreateOptions co = CreateCommand.qcow2Options(values, size);
            // as qemu: an existing target is emptied, not replaced, and only if no one uses it
            return Qcow2Image.create(path, co, OpenOptions.readWrite().warnings(CliWarnings.sink()));
        } catch (CliException e) {
            throw new CliException(dst + ": " + e.getMessage(), e.exitCode(), e);
        } catch (IOException | RuntimeException e) {
            throw new CliException(dst + ": " + Images.reason(e), 1, e);
        }
    }

    /** The copy, as qemu-img convert decides for each run (see {@link ConvertCopy}). */
    private void copy(BlockDevice source, BlockDevice target, long size, boolean targetHasBacking,
            ConvertOptions.Checked checked) {
        // an NBD export is written over whatever it holds: it reads zeros only if -n says so
        boolean readsZero = skipCreate ? targetIsZero : !targetHasBacking && !(target instanceof NbdClient);
        ConvertCopy.Mode mode = new ConvertCopy.Mode(checked.sparseSize(), targetHasBacking, readsZero, compress);
        ConvertCopy c = new ConvertCopy(source, target, mode, new Progress(out, progress && !quiet, size));
        if (salvage) {
            c.salvage(message -> {
                // qemu-img's own warning: printed as qemu-img prints it, also in drop-in mode
                err.println(Program.name() + ": warning: " + message);
                err.flush();
            });
        }
        c.run(size);
    }
}
