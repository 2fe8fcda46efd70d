package io.qcow4j.tools;

import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.bitmaps.DirtyBitmap;
import io.qcow4j.core.BlockDevice;
import io.qcow4j.core.BlockStatus;
import io.qcow4j.core.CreateOptions;
import io.qcow4j.core.OpenOptions;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.RawImage;
import java.io.IOException;
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
 */
@Command(name = "convert", mixinStandardHelpOptions = true,
        description = "Copy an image into a new image of the given format (raw unless -O qcow2).")
final class ConvertCommand implements Callable<Integer> {
    /** Chunk size for a raw target: what qemu-img uses as its buffer granularity. */
    private static final int RAW_CHUNK = 64 * 1024;

    @Spec
    CommandSpec spec;

    @Option(names = "-f", paramLabel = "FMT", description = "source format (default: probe)")
    String sourceFormat;

    @Option(names = "-O", paramLabel = "FMT", description = "target format: raw (default, as qemu-img) or qcow2")
    String targetFormat = Images.RAW;

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

    @Parameters(paramLabel = "SRC DST", arity = "0..*")
    List<String> args = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
        Formats.checkCreatable(targetFormat, "");
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
            throw new CliException("Expecting image file name");
        }
        if (args.size() > 2) {
            throw new CliException("Converting several source images into one is not supported");
        }
        String src = args.get(0);
        String dst = args.get(1);
        if (skipBrokenBitmaps && !bitmaps) {
            throw new CliException("Use of --skip-broken-bitmaps requires --bitmaps");
        }
        if (bitmaps && !targetFormat.equals(Images.QCOW2)) {
            throw new CliException("Format driver '" + targetFormat + "' does not support bitmaps");
        }
        Map<String, String> values = opts.values();
        FormatOptions.checkTypes(table, values);
        for (String refused : List.of("size", "backing_file", "backing_fmt")) {
            if (values.containsKey(refused)) {
                throw new CliException(dst + ": option '" + refused + "' is not supported by convert");
            }
        }
        BlockDevice source = Images.open(src, sourceFormat, false, true, forceShare);
        try {
            if (Files.exists(Cwd.path(dst)) && Files.isSameFile(Cwd.path(src), Cwd.path(dst))) {
                throw new CliException(dst + ": source and target are the same file");
            }
            List<DirtyBitmap> toCopy = bitmapsToCopy(src, source);
            long size = Images.virtualSize(source);
            BlockDevice target = createTarget(dst, size, values);
            try {
                copy(source, target, size);
                copyBitmaps(toCopy, target);
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
                String prealloc = values.get("preallocation");
                if (prealloc != null && !prealloc.equals("off")) {
                    throw new CliException("preallocation=" + prealloc + " is not supported by qcow4j");
                }
                return RawImage.create(path, size);
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

    /** Copies every chunk that holds non-zero data; chunks are the target's clusters. */
    private void copy(BlockDevice source, BlockDevice target, long size) {
        int chunk = target instanceof Qcow2Image q ? q.clusterSize() : RAW_CHUNK;
        ByteBuffer buf = ByteBuffer.allocate(chunk);
        Progress bar = new Progress(spec.commandLine().getOut(), progress && !quiet, size);
        long copiedUpTo = 0; // chunks below this are done
        long pos = 0;
        while (pos < size) {
            BlockStatus st;
            try {
                st = source.blockStatus(pos, size - pos);
            } catch (IOException | RuntimeException e) {
                throw new CliException("error while reading block status at offset " + pos + ": "
                        + Images.reason(e), 1, e);
            }
            long runEnd = pos + Math.max(1, st.length());
            if (st.allocated() && !st.zero()) {
                long first = Math.max(pos - pos % chunk, copiedUpTo);
                for (long c = first; c < runEnd; c += chunk) {
                    int n = (int) Math.min(chunk, size - c);
                    copyChunk(source, target, c, n, buf);
                    bar.update(c + n);
                }
                copiedUpTo = Math.max(copiedUpTo, alignUp(runEnd, chunk));
            }
            pos = runEnd;
            bar.update(pos);
        }
        bar.finish();
    }

    private void copyChunk(BlockDevice source, BlockDevice target, long offset, int length, ByteBuffer buf) {
        buf.clear().limit(length);
        try {
            source.read(offset, buf);
        } catch (IOException | RuntimeException e) {
            throw new CliException("error while reading at byte " + offset + ": " + Images.reason(e), 1, e);
        }
        buf.flip();
        if (isZero(buf)) {
            return; // the new image reads zeros there already
        }
        try {
            if (target instanceof Qcow2Image q) {
                if (compress) {
                    q.writeCompressed(offset, buf);
                } else {
                    q.write(offset, buf);
                }
            } else {
                ((RawImage) target).write(offset, buf);
            }
        } catch (IOException | RuntimeException e) {
            throw new CliException("error while writing at byte " + offset + ": " + Images.reason(e), 1, e);
        }
    }

    static boolean isZero(ByteBuffer buf) {
        int i = buf.position();
        int end = buf.limit();
        for (; i + 8 <= end; i += 8) {
            if (buf.getLong(i) != 0) {
                return false;
            }
        }
        for (; i < end; i++) {
            if (buf.get(i) != 0) {
                return false;
            }
        }
        return true;
    }

    private static long alignUp(long v, long a) {
        long r = v % a;
        return r == 0 ? v : v + (a - r);
    }
}
