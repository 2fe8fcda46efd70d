package io.qcow4j.tools;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.BlockDevice;
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
 * {@code info [-f FMT] [--output=human|json] [--backing-chain] [-U] FILE}, as qemu-img info;
 * an image another process holds for writing is refused unless -U.
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

    @Option(names = {"-U", "--force-share"}, description = "open even an image in use (take no locks)")
    boolean forceShare;

    @Option(names = "--image-opts", hidden = true)
    boolean imageOpts;

    @Parameters(paramLabel = "FILE", arity = "1")
    String file;

    @Override
    public Integer call() throws IOException {
        return run(spec.commandLine().getOut());
    }

    /**
     * A plain {@code info} command line, as this command's options would parse it, or null for
     * anything else (help, an option given twice or glued to its value, a second file name,
     * an option this method does not know): {@link Main} runs the common calls without
     * building picocli's model, the rest through picocli. Keep in step with the options above.
     */
    static InfoCommand plain(List<String> args) {
        if (args.isEmpty() || !args.get(0).equals("info")) {
            return null;
        }
        InfoCommand c = new InfoCommand();
        Set<String> seen = new HashSet<>();
        for (int i = 1; i < args.size(); i++) {
            String a = args.get(i);
            String key = a;
            String value = null;
            if (a.startsWith("--output=")) {
                key = "--output";
                value = a.substring("--output=".length());
            } else if (a.equals("--output") || a.equals("-f")) {
                if (i + 1 >= args.size() || args.get(i + 1).startsWith("-")) {
                    return null;
                }
                value = args.get(++i);
            }
            if (key.equals("--force-share")) {
                key = "-U";
            }
            if (key.startsWith("-") && !seen.add(key)) {
                return null;
            }
            switch (key) {
                case "-U" -> c.forceShare = true;
                case "--backing-chain" -> c.backingChain = true;
                case "--output" -> c.output = value;
                case "-f" -> c.format = value;
                default -> {
                    if (a.startsWith("-") || c.file != null) {
                        return null;
                    }
                    c.file = a;
                }
            }
        }
        return c.file == null ? null : c;
    }

    /** The command, its fields set; {@link Main}'s fast path for plain info calls comes here directly. */
    int run(PrintWriter out) throws IOException {
        boolean json = checkOutputFormat(output);
        if (imageOpts) {
            ImageOpts.active(true); // the file names are option lists (see Images.open)
        }
        List<ImageInfo> chain = collect();
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
            BlockDevice dev = Images.openMetadata(name, fmt, forceShare);
            try {
                ImageInfo info = ImageInfo.of(ImageOpts.displayName(name), dev);
                if (ImageOpts.applies(name)) {
                    info.filename = ImageOpts.infoName(name); // with encrypt.key-secret: qemu's json: name
                    if (ImageOpts.fileProtocol(name)) {
                        info.format = "file"; // the protocol driver alone: qemu-img names it, not raw
                    }
                }
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
