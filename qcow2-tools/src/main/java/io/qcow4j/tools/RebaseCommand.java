package io.qcow4j.tools;

import io.qcow4j.bitmaps.Chain;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.OpenOptions;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code rebase [-u] [-f FMT] [-b BACKING] [-F FMT] [-t CACHE] [-T CACHE] [-p] [-q] [-U] FILE}, as
 * qemu-img rebase (its command line read as qemu-img reads it).
 * BACKING is named relative to FILE's directory (or absolute) and recorded as given;
 * {@code -b ""} removes the backing file. Safe mode first copies into FILE every range
 * FILE does not hold itself where the old and the new backing read differently, so the
 * guest's view stays; -u only rewrites the header (FILE is opened without its backing
 * chain, which may be missing). As qemu-img 7.2, a new backing file needs -F; unlike it,
 * that is checked before anything is written. As qemu-img's, the copy is made of
 * ordinary writes of the differing sectors, which FILE's enabled bitmaps record.
 */
final class RebaseCommand {
    static final String NAME = "rebase";
    /** Failures of the file itself, which qemu's file driver words "Could not open 'name': why". */
    private static final java.util.Set<String> FILE_ERRORS = java.util.Set.of("No such file or directory", "Permission denied");
    private static final List<QemuGetopt.Long> LONG = List.of(
            new QemuGetopt.Long("help", false, "h"),
            new QemuGetopt.Long("object", true, "object"),
            new QemuGetopt.Long("image-opts", false, "image-opts"),
            new QemuGetopt.Long("force-share", false, "U"));

    /** -u: unsafe, change the header only. */
    private boolean unsafe;
    private String format;
    /** -b: the new backing file ("": none); -F its format. */
    private String backing;
    private String backingFormat;
    private boolean progress;
    private boolean quiet;
    private String cache = "writeback";
    private String srcCache = "writeback";
    private boolean forceShare;
    private String file;
    private PrintWriter out;

    /** Runs {@code rebase ARGS}; the exit code. */
    static int run(List<String> args, PrintWriter out, PrintWriter err) throws Exception {
        RebaseCommand c = new RebaseCommand();
        c.out = out;
        List<String> files = QemuGetopt.handle(NAME, args, ":hf:F:b:upt:T:qU", LONG, out, c::option);
        if (files.size() != 1) {
            throw new CliException(Program.usage("Expecting one image file name"));
        }
        c.file = files.get(0);
        return c.rebase(err);
    }

    private void option(QemuGetopt.Opt o) {
        String v = o.value();
        switch (o.key()) {
            case "f" -> format = v;
            case "F" -> backingFormat = v;
            case "b" -> backing = v;
            case "u" -> unsafe = true;
            case "p" -> progress = true;
            case "t" -> cache = v;
            case "T" -> srcCache = v;
            case "q" -> quiet = true;
            case "U" -> forceShare = true;
            case "object" -> ObjectOption.accept(v, out);
            case "image-opts" -> ImageOpts.active(true);
            default -> throw new IllegalStateException(o.key());
        }
    }

    private int rebase(PrintWriter err) throws IOException {
        if (backing == null && !unsafe) {
            throw new CliException("Must specify backing file (-b) or use unsafe mode (-u)");
        }
        if (!Images.CACHE_MODES.contains(cache)) {
            throw new CliException("Invalid cache option: " + cache);
        }
        if (!Images.CACHE_MODES.contains(srcCache)) {
            throw new CliException("Invalid source cache option: " + srcCache);
        }
        String[] fmt = {format};
        file = ImageOpts.resolve(file, fmt); // json:{...}, or an option list under --image-opts
        format = fmt[0];
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
                    image.chain().setBackingFile(name, name == null ? null : backingFormat, null);
                    image.close();
                });
            } finally {
                Images.closeQuietly(image);
            }
            return 0;
        }
        Chain chain = Chains.open(file, format, true, err, change + "Operation not supported");
        ChainOps.run(chain, c -> {
            if (name != null) {
                checkNewBacking(name);
            }
            // qemu-img rebase redraws in steps of 2%
            ChainOps.job(c, new Progress(out, progress && !quiet, c.top().size(), 2.0), change,
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
            for (BlockDevice d = dev; d != null; d = d instanceof Qcow2Image q ? q.chain().backing() : null) {
                if (d.path() != null && d.path().toRealPath().equals(self)) {
                    throw new CliException(prefix + "'" + file + "' would become its own backing file");
                }
            }
        } finally {
            Images.closeQuietly(dev);
        }
    }
}
