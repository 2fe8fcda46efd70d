package io.qcow4j.tools;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * convert's options beyond the plain copy, checked with qemu-img's words: -S, -m, -C, -W,
 * -t/-T, -l (an internal snapshot as the source), several sources one after the other,
 * -n (an existing target) with --target-is-zero, and -B/-F or -o backing_file (a target
 * with a backing file, which gets only the source's top image).
 */
final class ConvertOptions {
    /** qemu-img's default -S: 8 sectors. */
    static final long DEFAULT_SPARSE = 4096;
    private static final long MAX_SPARSE = 16L << 20;

    /** What the checks worked out. */
    record Checked(long sparseSize, SnapshotParam snapshot) {
    }

    private ConvertOptions() {
    }

    /** -S, checked as qemu-img's option loop checks it: the shortest run of zeros left sparse. */
    static long sparseSize(String value) {
        long sparse = Sizes.cvtnum("buffer size for sparse output", value);
        if (sparse % 512 != 0 || sparse > MAX_SPARSE) {
            throw new CliException("Invalid buffer size for sparse output specified. Valid sizes are multiples of 512"
                    + " up to " + MAX_SPARSE + ". Select 0 to disable sparse detection (fully allocates output).");
        }
        return sparse;
    }

    /** -m, checked as qemu-img's option loop checks it (a C integer: decimal, 0x hex or 0 octal). */
    static void checkCoroutines(String value) {
        long m;
        try {
            m = Long.decode(value.stripLeading());
        } catch (NumberFormatException e) {
            m = 0;
        }
        if (m < 1 || m > 16) {
            throw new CliException("Invalid number of coroutines. Allowed number of coroutines is between 1 and 16");
        }
    }

    /** The option checks qemu-img makes after its option loop, before it opens anything, in its order. */
    static Checked check(ConvertCommand c) {
        if (c.skipBrokenBitmaps && !c.bitmaps) {
            throw new CliException("Use of --skip-broken-bitmaps requires --bitmaps");
        }
        if (c.compress && c.copyRange) {
            throw new CliException("Cannot enable copy offloading when -c is used");
        }
        if (c.sparseGiven && c.copyRange) {
            throw new CliException("Cannot enable copy offloading when -S is used");
        }
        if (c.copyRange && c.salvage) {
            throw new CliException("Cannot use copy offloading in salvaging mode");
        }
        if (c.targetImageOpts && !c.skipCreate) {
            throw new CliException("--target-image-opts requires use of -n flag");
        }
        if (c.skipCreate && !c.optionLists.isEmpty()) {
            throw new CliException("-o has no effect when skipping image creation");
        }
        if (c.targetIsZero && !c.skipCreate) {
            throw new CliException("--target-is-zero requires use of -n flag");
        }
        return new Checked(c.sparseSize, c.snapshot);
    }

    /** -T: after the file names are counted. */
    static void checkSourceCache(ConvertCommand c) {
        if (c.sourceCache != null && !Images.CACHE_MODES.contains(c.sourceCache)) {
            throw new CliException("Invalid source cache option: " + c.sourceCache);
        }
    }

    /** -t: qemu-img checks it only when it opens the target it has just created (which stays). */
    static void checkTargetCache(ConvertCommand c) {
        if (c.cache != null && !Images.CACHE_MODES.contains(c.cache)) {
            throw new CliException("Invalid cache option: " + c.cache);
        }
    }

    /** The source disk: one image, several one after the other, or an internal snapshot of one. */
    static BlockDevice openSources(ConvertCommand c, List<String> names, Checked checked) {
        List<BlockDevice> opened = new ArrayList<>();
        try {
            for (String name : names) {
                opened.add(Images.open(name, c.sourceFormat, false, true, c.forceShare));
            }
            if (checked.snapshot() != null) {
                if (opened.size() > 1) {
                    throw new CliException("No support for concatenating multiple snapshot");
                }
                BlockDevice image = opened.get(0);
                return new SnapshotSource(checked.snapshot().load(image), image);
            }
            return opened.size() == 1 ? opened.get(0) : new ConcatDevice(opened);
        } catch (RuntimeException e) {
            opened.forEach(Images::closeQuietly);
            throw e;
        }
    }

    /** The target's backing file (-B wins over -o backing_file) and what qemu-img refuses about it. */
    static void checkTarget(ConvertCommand c, List<String> sources, Map<String, String> values) {
        if (c.backing != null) {
            values.put("backing_file", c.backing);
        }
        if (c.backingFormat != null) {
            values.put("backing_fmt", c.backingFormat);
        }
        boolean raw = c.targetFormat.equals(Images.RAW);
        if (raw && c.backing != null) {
            throw new CliException("Backing file not supported for file format 'raw'");
        }
        if (raw && c.backingFormat != null) {
            throw new CliException("Backing file format not supported for file format 'raw'");
        }
        if (values.containsKey("backing_file") && sources.size() > 1) {
            throw new CliException("Having a backing file for the target makes no sense when concatenating multiple"
                    + " input images");
        }
        if (values.containsKey("backing_file") && !values.containsKey("backing_fmt")) {
            throw new CliException("Use of backing file requires explicit backing format");
        }
        if (!c.skipCreate && values.containsKey("backing_fmt") && !values.containsKey("backing_file")) {
            String dst = c.args.get(c.args.size() - 1);
            throw new CliException(dst + ": error while converting " + c.targetFormat
                    + ": Backing format cannot be used without backing file");
        }
    }

    /** -n: the existing target, opened for writing as the -O format; it must hold the whole source. */
    static BlockDevice openExisting(ConvertCommand c, String dst, long size) {
        Path path = Cwd.path(dst);
        if (!NbdImages.isNbd(dst) && !java.nio.file.Files.exists(path)) {
            // named once, as qcow4j names a missing file; drop-in mode names it twice, as qemu-img
            throw new CliException("Could not open '" + dst + "': No such file or directory");
        }
        try {
            if (c.targetFormat.equals(Images.RAW) && java.nio.file.Files.isRegularFile(path)
                    && Images.probe(path).equals(Images.QCOW2)) {
                // qemu-img would write raw data over the qcow2 structures
                throw new CliException("Could not open '" + dst + "': it is a qcow2 image: -n with -O raw would"
                        + " overwrite its metadata (use -O qcow2)");
            }
        } catch (IOException e) {
            throw new CliException("Could not open '" + dst + "': " + Images.reason(e), 1, e);
        }
        BlockDevice target = Images.open(dst, c.targetFormat, true, true);
        if (Images.virtualSize(target) < size) {
            Images.closeQuietly(target);
            throw new CliException("output file is smaller than input file");
        }
        return target;
    }

    /** An internal snapshot's disk that closes its image when it is closed. */
    private record SnapshotSource(BlockDevice view, BlockDevice image) implements BlockDevice {
        @Override
        public long size() {
            return view.size();
        }

        @Override
        public String formatName() {
            return view.formatName();
        }

        @Override
        public Path path() {
            return image.path();
        }

        @Override
        public void read(long offset, ByteBuffer dst) throws IOException {
            view.read(offset, dst);
        }

        @Override
        public BlockStatus blockStatus(long offset, long length) throws IOException {
            return view.blockStatus(offset, length);
        }

        @Override
        public void close() throws IOException {
            view.close();
            image.close();
        }
    }
}
