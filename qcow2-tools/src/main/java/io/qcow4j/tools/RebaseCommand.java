package io.qcow4j.tools;

import io.qcow4j.bitmaps.Chain;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.OpenOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code rebase [-u] [-f FMT] [-b BACKING] [-F FMT] [-p] [-q] FILE}, as qemu-img rebase.
 * BACKING is named relative to FILE's directory (or absolute) and recorded as given;
 * {@code -b ""} removes the backing file. Safe mode first copies into FILE every range
 * FILE does not hold itself where the old and the new backing read differently, so the
 * guest's view stays; -u only rewrites the header (FILE is opened without its backing
 * chain, which may be missing). As qemu-img 7.2, a new backing file needs -F; unlike it,
 * that is checked before anything is written. As qemu-img's, the copy is made of
 * ordinary writes of the differing sectors, which FILE's enabled bitmaps record.
 */
@Command(name = "rebase", mixinStandardHelpOptions = true,
        description = "Change an image's backing file, keeping (or with -u, ignoring) what the guest reads.")
final class RebaseCommand implements Callable<Integer> {
    /** Failures of the file itself, which qemu's file driver words "Could not open 'name': why". */
    private static final java.util.Set<String> FILE_ERRORS = java.util.Set.of("No such file or directory", "Permission denied");

    @Spec
    CommandSpec spec;

    @Option(names = "-u", description = "unsafe: change the header only")
    boolean unsafe;

    @Option(names = "-f", paramLabel = "FMT", description = "image format (qcow2)")
    String format;

    @Option(names = "-b", paramLabel = "BACKING", description = "the new backing file (\"\": none)")
    String backing;

    @Option(names = "-F", paramLabel = "FMT", description = "the new backing file's format")
    String backingFormat;

    @Option(names = "-p", description = "show progress")
    boolean progress;

    @Option(names = "-q", description = "quiet")
    boolean quiet;

    @Option(names = "-t", paramLabel = "CACHE", description = "accepted for compatibility")
    String cache;

    @Option(names = "-T", paramLabel = "SRC_CACHE", description = "accepted for compatibility")
    String srcCache;

    @Option(names = {"-U", "--force-share"}, description = "open even an image in use (take no locks)")
    boolean forceShare;

    @Parameters(paramLabel = "FILE", arity = "1")
    String file;

    @Override
    public Integer call() throws IOException {
        String[] fmt = {format};
        file = ImageOpts.resolve(file, fmt); // json:{...}, or an option list under --image-opts
        format = fmt[0];
        if (backing == null && !unsafe) {
            throw new CliException("Must specify backing file (-b) or use unsafe mode (-u)");
        }
        if (backingFormat != null && !backingFormat.equals(Images.QCOW2) && !backingFormat.equals(Images.RAW)) {
            throw new CliException("Invalid format name: '" + backingFormat + "'");
        }
        String name = backing == null || backing.isEmpty() ? null : backing;
        String change = "Could not change the backing file to '" + (name == null ? "" : name) + "': ";
        if (name != null && backingFormat == null) {
            throw new CliException(change + "backing format must be specified");
        }
        if (unsafe) {
            Chains.requireQcow2(file, format, change + "Operation not supported");
            Qcow2Image image;
            try {
                image = Qcow2Image.open(Cwd.path(file), OpenOptions.readWrite().openBacking(false).warnings(CliWarnings.sink()));
            } catch (IOException | RuntimeException e) {
                throw new CliException("Could not open '" + file + "': " + Images.reason(e), 1, e);
            }
            try {
                ChainOps.guard(change, () -> {
                    image.setBackingFile(name, name == null ? null : backingFormat, null);
                    image.close();
                });
            } finally {
                Images.closeQuietly(image);
            }
            return 0;
        }
        Chain chain = Chains.open(file, format, true, spec.commandLine().getErr(), change + "Operation not supported");
        ChainOps.run(chain, c -> {
            if (name != null) {
                checkNewBacking(name);
            }
            // qemu-img rebase redraws in steps of 2%
            ChainOps.job(c, new Progress(spec.commandLine().getOut(), progress && !quiet, c.top().size(), 2.0), change,
                    jobs -> jobs.rebase(name, name == null ? null : backingFormat, false, forceShare));
        });
        return 0;
    }

    /** Opens the new backing chain once, read-only, to report qemu's errors before anything is written. */
    private void checkNewBacking(String name) throws IOException {
        String path = Images.combine(file, name);
        String prefix = "Could not open new backing file '" + name + "': ";
        // the image itself as its new backing file: say so before its own lock does
        Path candidate = Cwd.path(path);
        if (java.nio.file.Files.exists(candidate) && java.nio.file.Files.isSameFile(candidate, Cwd.path(file))) {
            throw new CliException(prefix + "'" + file + "' would become its own backing file");
        }
        BlockDevice dev;
        try {
            dev = Images.open(path, backingFormat, false, true, forceShare);
        } catch (CliException e) {
            // qemu's text: "Could not open new backing file 'b': <why>", where only a failure of
            // the file itself (missing, not readable) says "Could not open 'b': " again
            String why = e.getMessage();
            String inner = "Could not open '" + path + "': ";
            if (why.startsWith(inner) && !FILE_ERRORS.contains(why.substring(inner.length()))) {
                why = why.substring(inner.length());
            }
            throw new CliException(prefix + why, 1, e);
        }
        try {
            Path self = Cwd.path(file).toRealPath();
            for (BlockDevice d = dev; d != null; d = d instanceof Qcow2Image q ? q.backing() : null) {
                if (d.path() != null && d.path().toRealPath().equals(self)) {
                    throw new CliException(prefix + "'" + file + "' would become its own backing file");
                }
            }
        } finally {
            Images.closeQuietly(dev);
        }
    }
}
