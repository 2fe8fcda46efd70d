package io.qcow4j.tools;

import io.qcow4j.core.BlockDevice;
import io.qcow4j.core.Qcow2Image;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code info [-f FMT] [--output=human|json] [--backing-chain] [-U] FILE}, as qemu-img info.
 * Each image is opened without its backing file; with --backing-chain the chain is
 * walked by name (loops refused, as qemu does), and everything is gathered before
 * anything is printed.
 */
@Command(name = "info", mixinStandardHelpOptions = true, description = "Show what an image is.")
final class InfoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "-f", paramLabel = "FMT", description = "image format (default: probe)")
    String format;

    @Option(names = "--output", paramLabel = "FMT", description = "human (default) or json")
    String output = "human";

    @Option(names = "--backing-chain", description = "also every backing file")
    boolean backingChain;

    @Option(names = {"-U", "--force-share"}, description = "accepted for compatibility")
    boolean forceShare;

    @Option(names = "--image-opts", hidden = true)
    boolean imageOpts;

    @Parameters(paramLabel = "FILE", arity = "1")
    String file;

    @Override
    public Integer call() throws IOException {
        boolean json = checkOutputFormat(output);
        if (imageOpts) {
            throw new CliException("--image-opts is not supported");
        }
        List<ImageInfo> chain = collect();
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            Object doc = backingChain ? chain.stream().map(ImageInfo::toJson).toList() : chain.get(0).toJson();
            out.println(QemuJson.pretty(doc));
        } else {
            for (int i = 0; i < chain.size(); i++) {
                if (i > 0) {
                    out.println();
                }
                chain.get(i).printHuman(out);
            }
        }
        return 0;
    }

    /** qemu-img's --output check, shared by the commands that print reports. */
    static boolean checkOutputFormat(String output) {
        return switch (output) {
            case "json" -> true;
            case "human" -> false;
            default -> throw new CliException("--output must be used with human or json as argument.");
        };
    }

    private List<ImageInfo> collect() throws IOException {
        List<ImageInfo> chain = new ArrayList<>();
        Set<Path> seen = new HashSet<>();
        String name = file;
        String fmt = format;
        while (name != null) {
            if (!seen.add(identity(name))) {
                throw new CliException("Backing file '" + name + "' creates an infinite loop.");
            }
            BlockDevice dev = Images.open(name, fmt, false, false);
            try {
                ImageInfo info = ImageInfo.of(name, dev);
                chain.add(info);
                if (!backingChain || !(dev instanceof Qcow2Image) || info.backingFilename == null) {
                    break;
                }
                name = info.fullBackingFilename;
                fmt = info.backingFormat;
            } finally {
                Images.closeQuietly(dev);
            }
        }
        return chain;
    }

    /** The same file under two names is one link of the chain. */
    private static Path identity(String name) {
        Path p = Cwd.path(name);
        try {
            return p.toRealPath();
        } catch (IOException e) {
            return p.toAbsolutePath().normalize();
        }
    }
}
