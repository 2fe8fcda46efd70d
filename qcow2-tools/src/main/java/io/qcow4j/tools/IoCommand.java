package io.qcow4j.tools;

import io.qcow4j.core.api.BlockDevice;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code io [-r] [-f FMT] [-c CMD]... FILE}, as qemu-io: runs each {@code -c} command
 * in order (or, without -c, the lines of stdin), and exits 1 if any of them failed.
 */
@Command(name = "io", mixinStandardHelpOptions = true,
        description = "Run qemu-io commands on an image: read, write, discard, flush.")
final class IoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = {"-r", "--read-only"}, description = "open the image read-only")
    boolean readOnly;

    @Option(names = {"-f", "--format"}, paramLabel = "FMT", description = "image format (default: probe)")
    String format;

    @Option(names = {"-c", "--cmd"}, paramLabel = "CMD", description = "a command to run; repeatable")
    List<String> commands = new ArrayList<>();

    @Option(names = {"-U", "--force-share"}, description = "open even an image in use (take no locks; with -r only)")
    boolean forceShare;

    @Option(names = {"-n", "--nocache"}, description = "accepted for compatibility")
    boolean noCache;

    @Option(names = {"-t", "--cache"}, paramLabel = "MODE", description = "accepted for compatibility")
    String cacheMode;

    @Option(names = {"-d", "--discard"}, paramLabel = "MODE", description = "accepted for compatibility")
    String discardMode;

    @Option(names = "--image-opts", description = "FILE is an option list, as qemu-io's (e.g. driver=qcow2,file.filename=F,encrypt.key-secret=ID)")
    boolean imageOpts;

    @Parameters(paramLabel = "FILE", arity = "1")
    String file;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (imageOpts) {
            ImageOpts.active(true); // the file name is an option list (see Images.open)
        }
        BlockDevice dev = Images.open(file, format, !readOnly, true, forceShare);
        IoShell shell = new IoShell(new IoTarget(dev, readOnly), out, err);
        try {
            if (commands.isEmpty()) {
                BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
                for (String line = in.readLine(); line != null; line = in.readLine()) {
                    if (!shell.run(line)) {
                        break;
                    }
                }
            } else {
                for (String c : commands) {
                    if (!shell.run(c)) {
                        break;
                    }
                }
            }
        } catch (RuntimeException e) {
            Images.closeQuietly(dev);
            throw e;
        }
        out.flush();
        try {
            dev.close();
        } catch (Exception e) {
            throw new CliException("Failed to close '" + file + "': " + Images.reason(e), 1, e);
        }
        return shell.failed() ? 1 : 0;
    }
}
