package io.qcow4j.tools;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.RawImage;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.CreateOptions;
import java.io.IOException;
import java.io.PrintWriter;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Unmatched;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code resize [-f FMT] [--shrink] [-q] FILE [+|-]SIZE}, as qemu-img resize: the size is
 * the last argument (so "-1G" is no option), relative with + or -; a smaller size needs
 * --shrink and drops the data past the new end; a qcow2 size is a multiple of 512.
 * Persistent bitmaps follow the new size.
 */
@Command(name = "resize", description = "Grow or (with --shrink) shrink an image's virtual disk.")
final class ResizeCommand implements Callable<Integer> {
    private static final int SECTOR = 512;

    @Spec
    CommandSpec spec;

    @Unmatched
    List<String> args = new ArrayList<>();

    @Override
    public Integer call() throws IOException {
        if (args.contains("-h") || args.contains("--help")) {
            spec.commandLine().getOut().println("Usage: qcow4j resize [-f FMT] [--shrink] [-q] FILE [+|-]SIZE");
            return 0;
        }
        if (args.size() < 2) {
            throw new CliException("Not enough arguments");
        }
        // as qemu-img: the size comes off the end before the options are parsed
        String size = args.get(args.size() - 1);
        List<String> operands = new ArrayList<>();
        String format = null;
        boolean quiet = false;
        boolean shrink = false;
        String prealloc = null;
        boolean optionsDone = false;
        List<String> rest = args.subList(0, args.size() - 1);
        for (int i = 0; i < rest.size(); i++) {
            String a = rest.get(i);
            if (optionsDone || !a.startsWith("-") || a.equals("-")) {
                operands.add(a);
                continue;
            }
            switch (a) {
                case "--" -> optionsDone = true;
                case "-f" -> format = value(rest, ++i, a);
                case "-q" -> quiet = true;
                case "--shrink" -> shrink = true;
                case "--preallocation" -> prealloc = value(rest, ++i, a);
                case "--image-opts" -> ImageOpts.active(true);
                default -> {
                    if (a.startsWith("--preallocation=")) {
                        prealloc = a.substring("--preallocation=".length());
                    } else if (a.startsWith("-f") && a.length() > 2) {
                        format = a.substring(2);
                    } else {
                        throw new CliException("unrecognized option '" + a + "'"); // qemu-img's words
                    }
                }
            }
        }
        if (operands.size() != 1) {
            throw new CliException("Expecting image file name and size");
        }
        String file = operands.get(0);
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
                PrintWriter err = spec.commandLine().getErr();
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
            spec.commandLine().getOut().println("Image resized.");
        }
        return 0;
    }

    private static String value(List<String> args, int i, String option) {
        if (i >= args.size()) {
            throw new CliException("option '" + option + "' requires an argument");
        }
        return args.get(i);
    }
}
