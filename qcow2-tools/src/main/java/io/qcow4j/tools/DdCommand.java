package io.qcow4j.tools;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.RawImage;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.storage.ImageLock;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code dd [-f FMT] [-O FMT] [-U] [bs=BYTES] [count=N] [skip=N] if=INPUT of=OUTPUT}, as
 * qemu-img dd: a new OUTPUT (raw unless -O qcow2; an existing file is emptied) holding the
 * input disk from block {@code skip} on. Exactly as qemu-img 7.2 counts, quirks included:
 * {@code count} limits the input before {@code skip} is taken off it (so count=9 skip=1
 * copies 8 blocks), and a skip past that end prints "cannot skip to specified offset",
 * makes an empty output and exits 0. Every block is written, zeros too, so the output is
 * fully allocated, as qemu-img leaves it; the size in bytes is whatever the blocks give
 * (a last partial block included), in whole sectors.
 */
final class DdCommand {
    static final String NAME = "dd";
    /** How much is copied at a time: the result does not depend on bs, only the count does. */
    private static final int CHUNK = 1 << 20;
    private static final List<QemuGetopt.Long> LONG = List.of(
            new QemuGetopt.Long("help", false, "h"),
            new QemuGetopt.Long("image-opts", false, "image-opts"),
            new QemuGetopt.Long("force-share", false, "U"));

    private String inputFormat;
    private String outputFormat = Images.RAW;
    private boolean forceShare;
    private boolean imageOpts;
    private long bs = 512;
    private Long count;
    private Long skip;
    private String in;
    private String out;

    static int run(List<String> args, PrintWriter out, PrintWriter err) throws IOException {
        QemuGetopt opts;
        try {
            opts = new QemuGetopt(NAME, args, "hf:O:U", LONG);
        } catch (QemuGetopt.BadOption e) {
            throw e.qemuImgError();
        }
        DdCommand c = new DdCommand();
        for (QemuGetopt.Opt o : opts.options()) {
            switch (o.key()) {
                case "h" -> {
                    PicocliCommands.printUsage(out);
                    return 0;
                }
                case "f" -> c.inputFormat = o.value();
                case "O" -> c.outputFormat = o.value();
                case "U" -> c.forceShare = true;
                case "image-opts" -> c.imageOpts = true;
                default -> throw new IllegalStateException(o.key());
            }
        }
        for (String operand : opts.operands()) {
            c.operand(operand);
        }
        return c.copy(err);
    }

    private void operand(String arg) {
        int eq = arg.indexOf('=');
        String key = eq < 0 ? arg : arg.substring(0, eq);
        String value = eq < 0 ? null : arg.substring(eq + 1);
        if (value == null || !List.of("bs", "count", "if", "of", "skip").contains(key)) {
            throw new CliException("unrecognized operand " + key);
        }
        switch (key) {
            case "bs" -> {
                bs = number("bs", value);
                if (bs < 1 || bs > Integer.MAX_VALUE) {
                    throw new CliException("Invalid bs specified. Must be between 1 and " + Integer.MAX_VALUE + ".");
                }
            }
            case "count" -> count = number("count", value);
            case "skip" -> skip = number("skip", value);
            case "if" -> in = value;
            default -> out = value;
        }
    }

    /** A size operand, with qemu-img's words (cvtnum) when it is none. */
    private static long number(String name, String value) {
        try {
            return Sizes.parse(value);
        } catch (Sizes.SizeException e) {
            if (e.problem() == Sizes.Problem.TOO_LARGE) {
                if (name.equals("bs")) {
                    throw new CliException("Invalid bs specified. Must be between 1 and " + Integer.MAX_VALUE + ".");
                }
                throw new CliException("Invalid " + name + " specified. Must be between 0 and " + Long.MAX_VALUE + ".");
            }
            throw new CliException(Program.twoErrors(
                    "Invalid " + name + " specified. You may use k, M, G, T, P or E suffixes for",
                    "kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes."));
        }
    }

    private int copy(PrintWriter err) throws IOException {
        if (in == null || out == null) {
            throw new CliException("Must specify both input and output files");
        }
        if (imageOpts) {
            ImageOpts.active(true); // the file names are option lists (see Images.open)
        }
        BlockDevice source = Images.open(in, inputFormat, false, true, forceShare);
        try {
            checkOutputFormat();
            long size = Images.virtualSize(source);
            if (count != null && count <= Long.MAX_VALUE / bs && size > count * bs) {
                size = count * bs;
            }
            long pos;
            if (skip != null && (skip > Long.MAX_VALUE / bs || size < skip * bs)) {
                Program.printError(err, in + ": cannot skip to specified offset");
                pos = size;
            } else {
                pos = skip == null ? 0 : skip * bs;
            }
            BlockDevice target = create(size - pos);
            try {
                copy(source, pos, size, target);
            } catch (IOException | RuntimeException e) {
                Images.closeQuietly(target);
                throw e;
            }
            target.close();
        } finally {
            Images.closeQuietly(source);
        }
        return 0;
    }

    private void checkOutputFormat() {
        if (Formats.supported(outputFormat)) {
            return;
        }
        if (!Formats.QEMU.contains(outputFormat)) {
            throw new CliException("Unknown file format"); // qemu-img dd names no format here
        }
        if (Formats.QEMU_CANNOT_CREATE.contains(outputFormat)) {
            throw new CliException("Format driver '" + outputFormat + "' does not support image creation");
        }
        throw new CliException(Formats.notSupported(outputFormat)).withQemuWords("Unknown file format");
    }

    /** The new output image, of qemu-img's default options for its format. */
    private BlockDevice create(long size) {
        Path path = Cwd.path(out);
        long sectors = size % 512 == 0 ? size : size + (512 - size % 512);
        try {
            if (outputFormat.equals(Images.RAW)) {
                return RawImage.create(path, sectors);
            }
            return Qcow2Image.create(path, CreateOptions.size(sectors), OpenOptions.readWrite().warnings(CliWarnings.sink()));
        } catch (ImageLock.LockedException e) {
            throw new CliException(out + ": error while creating output image: " + e.getMessage(), 1, e);
        } catch (NoSuchFileException | AccessDeniedException e) {
            throw new CliException(out + ": error while creating output image: Could not create '" + out + "': "
                    + Images.reason(e), 1, e);
        } catch (IOException | RuntimeException e) {
            throw new CliException(out + ": error while creating output image: " + Images.reason(e), 1, e);
        }
    }

    /** Input bytes [pos, end) to the output from 0; every byte written, zeros too. */
    private static void copy(BlockDevice source, long pos, long end, BlockDevice target) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate((int) Math.min(CHUNK, Math.max(1, end - pos)));
        long outPos = 0;
        while (pos < end) {
            int n = (int) Math.min(buf.capacity(), end - pos);
            buf.clear().limit(n);
            try {
                source.read(pos, buf);
            } catch (IOException | RuntimeException e) {
                throw new CliException("error while reading from input image file: " + Images.reason(e), 1, e);
            }
            buf.flip();
            try {
                target.write(outPos, buf);
            } catch (IOException | RuntimeException e) {
                throw new CliException("error while writing to output image file: " + Images.reason(e), 1, e);
            }
            pos += n;
            outPos += n;
        }
    }
}
