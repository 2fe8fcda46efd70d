package io.qcow4j.tools;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.RawImage;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.CreateOptions;
import java.io.IOException;
import java.io.PrintWriter;
import java.math.BigInteger;
import java.util.List;

/**
 * {@code resize [-f FMT] [--shrink] [--preallocation=MODE] [-q] FILE [+|-]SIZE}, as qemu-img
 * resize (its command line read as qemu-img reads it): the size is the last argument (so "-1G" is no option), relative with + or -; a smaller size needs
 * --shrink and drops the data past the new end; a qcow2 size is a multiple of 512.
 * Persistent bitmaps follow the new size.
 */
final class ResizeCommand {
    static final String NAME = "resize";
    private static final int SECTOR = 512;
    private static final List<QemuGetopt.Long> LONG = List.of(
            new QemuGetopt.Long("help", false, "h"),
            new QemuGetopt.Long("object", true, "object"),
            new QemuGetopt.Long("image-opts", false, "image-opts"),
            new QemuGetopt.Long("preallocation", true, "preallocation"),
            new QemuGetopt.Long("shrink", false, "shrink"));

    private String format;
    /** --preallocation: for the grown part (null: none). */
    private String prealloc;
    private boolean quiet;
    private boolean shrink;

    /** Runs {@code resize ARGS}; the exit code. */
    static int run(List<String> args, PrintWriter out, PrintWriter err) throws Exception {
        if (args.size() < 2) {
            throw new CliException(Program.usage("Not enough arguments"));
        }
        // as qemu-img: the size comes off the end before the options are read (so "-1G" is no option)
        String size = args.get(args.size() - 1);
        ResizeCommand c = new ResizeCommand();
        List<String> operands = QemuGetopt.handle(NAME, args.subList(0, args.size() - 1), ":f:hq", LONG, out,
                o -> c.option(o, out));
        if (operands.size() != 1) {
            throw new CliException(Program.usage("Expecting image file name and size"));
        }
        return c.resize(operands.get(0), size, out, err);
    }

    private void option(QemuGetopt.Opt o, PrintWriter out) {
        switch (o.key()) {
            case "f" -> format = o.value();
            case "q" -> quiet = true;
            case "shrink" -> shrink = true;
            case "preallocation" -> prealloc = o.value();
            case "object" -> ObjectOption.accept(o.value(), out);
            case "image-opts" -> ImageOpts.active(true);
            default -> throw new IllegalStateException(o.key());
        }
    }

    private int resize(String file, String size, PrintWriter out, PrintWriter err) throws IOException {
        int relative = 0;
        String number = size;
        if (size.startsWith("+")) {
            relative = 1;
            number = size.substring(1);
        } else if (size.startsWith("-")) {
            relative = -1;
            number = size.substring(1);
        }
        BigInteger n;
        try {
            n = Sizes.parseUnsigned(number);
        } catch (Sizes.SizeException e) {
            throw new CliException(e.problem() == Sizes.Problem.TOO_LARGE
                    ? "Value '" + number + "' is out of range for parameter 'size'"
                    : "Parameter 'size' expects a non-negative number below 2^64\n"
                            + "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
                            + "and exabytes, respectively.");
        }
        CreateOptions.Preallocation mode = CreateOptions.Preallocation.OFF;
        if (prealloc != null) {
            mode = switch (prealloc) {
                case "off" -> CreateOptions.Preallocation.OFF;
                case "metadata" -> CreateOptions.Preallocation.METADATA;
                case "falloc" -> CreateOptions.Preallocation.FALLOC;
                case "full" -> CreateOptions.Preallocation.FULL;
                default -> throw new CliException("Invalid preallocation mode '" + prealloc + "'");
            };
        }
        BlockDevice dev = Images.open(file, format, true, true);
        try {
            long current = Images.virtualSize(dev);
            // qemu's int64 arithmetic, wrapping included ("+9E" comes out negative)
            long total = relative == 0 ? n.longValue() : current + n.longValue() * relative;
            if (total <= 0) {
                throw new CliException("New image size must be positive");
            }
            if (prealloc != null && total < current) {
                throw new CliException("Preallocation can only be used for growing images");
            }
            if (total < current && !shrink) {
                err.println(Program.name() + ": Use the --shrink option to perform a shrink operation.");
                err.println(Program.name() + ": warning: Shrinking an image will delete all data beyond the shrunken image's end."
                        + " Before performing such an operation, make sure there is no important data there.");
                err.flush();
                return 1;
            }
            try {
                if (dev instanceof Qcow2Image q) {
                    if (total % SECTOR != 0) {
                        throw new CliException("The new size must be a multiple of 512");
                    }
                    if (prealloc != null) {
                        q.growPreallocated(total, mode);
                    } else {
                        q.resizeDiscarding(total);
                    }
                } else {
                    if (mode == CreateOptions.Preallocation.METADATA) {
                        throw new CliException("Unsupported preallocation mode: metadata");
                    }
                    ((RawImage) dev).resize(total);
                    if (mode != CreateOptions.Preallocation.OFF) {
                        CreateCommand.writeZeros((RawImage) dev, current, total);
                    }
                }
            } catch (CliException e) {
                throw e;
            } catch (IOException | RuntimeException e) {
                throw new CliException(Images.reason(e), 1, e);
            }
            dev.close();
        } finally {
            Images.closeQuietly(dev);
        }
        if (!quiet) {
            out.println("Image resized.");
        }
        return 0;
    }
}
