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
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

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
@Command(name = "convert", mixinStandardHelpOptions = true,
        description = "Copy an image into a new image of the given format (raw unless -O qcow2).")
final class ConvertCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "-f", paramLabel = "FMT", description = "source format (default: probe)")
    String sourceFormat;

    String targetFormat = Images.RAW;
    private boolean targetFormatGiven;

    @Option(names = "-O", paramLabel = "FMT", description = "target format: raw (default, as qemu-img) or qcow2")
    void targetFormat(String format) {
        targetFormat = format;
        targetFormatGiven = true;
    }

    @Option(names = "--target-image-opts", description = "with -n: DST is an option list (driver=qcow2,file.filename=F,...)")
    boolean targetImageOpts;

    @Option(names = "-c", description = "compress the target's clusters (qcow2)")
    boolean compress;

    @Option(names = "-o", paramLabel = "OPTIONS", description = "target options, as for create")
    List<String> optionLists = new ArrayList<>();

    @Option(names = "-p", description = "show progress")
    boolean progress;

    @Option(names = "-q", description = "quiet")
    boolean quiet;

    @Option(names = {"-U", "--force-share"}, description = "open even an image in use (take no locks)")
    boolean forceShare;

    @Option(names = "--bitmaps", description = "copy the source's persistent bitmaps (qcow2 target)")
    boolean bitmaps;

    @Option(names = "--skip-broken-bitmaps", description = "with --bitmaps: skip inconsistent bitmaps, with a warning")
    boolean skipBrokenBitmaps;

    @Option(names = "-S", paramLabel = "SIZE", description = "shortest run of zeros left sparse (default 4k; 0: fully allocate)")
    String sparse;

    @Option(names = "-n", description = "write into an existing target (no creation)")
    boolean skipCreate;

    @Option(names = "--target-is-zero", description = "with -n: the target reads zeros already")
    boolean targetIsZero;

    @Option(names = "-B", paramLabel = "BACKING", description = "backing file of the target: copy only the source's top image")
    String backing;

    @Option(names = "-F", paramLabel = "FMT", description = "format of the -B backing file")
    String backingFormat;

    @Option(names = "-l", paramLabel = "SNAPSHOT", description = "copy an internal snapshot (ID_OR_NAME, or snapshot.id=,snapshot.name=)")
    String snapshot;

    @Option(names = "--salvage", description = "read errors become zeros (each 512-byte sector), with a warning")
    boolean salvage;

    @Option(names = "-C", description = "copy offloading (accepted; qcow4j copies itself)")
    boolean copyRange;

    @Option(names = "-m", paramLabel = "N", description = "parallel requests (accepted, 1 to 16)")
    String coroutines;

    @Option(names = "-W", description = "out-of-order writes (accepted)")
    boolean outOfOrder;

    @Option(names = "-t", paramLabel = "CACHE", description = "target cache mode (accepted)")
    String cache;

    @Option(names = "-T", paramLabel = "CACHE", description = "source cache mode (accepted)")
    String sourceCache;

    @Parameters(paramLabel = "SRC... DST", arity = "0..*")
    List<String> args = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        String dstOptions = targetImageOpts ? targetOptions() : null;
        ConvertOptions.Checked checked = ConvertOptions.check(this);
        if (compress && !targetFormat.equals(Images.QCOW2)) {
            throw new CliException("Compression not supported for this file format");
        }
        List<FormatOptions.Opt> table = FormatOptions.forFormat(targetFormat);
        OptionList opts = OptionList.parse(optionLists);
        if (opts.wantsHelp()) {
            FormatOptions.printHelp(spec.commandLine().getOut(), targetFormat, args.size() >= 2);
            return 0;
        }
        if (args.size() < 2) {
            throw new CliException("Must specify image file name");
        }
        String src = args.get(0);
        String dst = args.get(args.size() - 1);
        List<String> sources = args.subList(0, args.size() - 1);
        if (bitmaps && !targetFormat.equals(Images.QCOW2)) {
            throw new CliException("Format driver '" + targetFormat + "' does not support bitmaps");
        }
        Map<String, String> values = opts.values();
        FormatOptions.checkItems(table, opts);
        values.remove("size"); // the size is the source's, as qemu-img sets it
        boolean nbdTarget = NbdImages.isNbd(dst);
        if (nbdTarget && targetFormat.equals(Images.QCOW2)) {
            throw new CliException(dst + ": writing a qcow2 image into an NBD export is not supported (use -O raw)");
        }
        BlockDevice source = ConvertOptions.openSources(this, sources, checked);
        try {
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
        if (!skipCreate) {
            throw new CliException("--target-image-opts requires use of -n flag");
        }
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
        CliWarnings.to(spec.commandLine().getErr()).accept(message);
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
        ConvertCopy c = new ConvertCopy(source, target, mode, new Progress(spec.commandLine().getOut(), progress && !quiet, size));
        if (salvage) {
            PrintWriter err = spec.commandLine().getErr();
            c.salvage(message -> {
                // qemu-img's own warning: printed as qemu-img prints it, also in drop-in mode
                err.println(Program.name() + ": warning: " + message);
                err.flush();
            });
        }
        c.run(size);
    }
}
