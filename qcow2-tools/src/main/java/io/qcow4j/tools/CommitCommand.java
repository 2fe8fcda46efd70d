package io.qcow4j.tools;

import io.qcow4j.bitmaps.Chain;
import io.qcow4j.bitmaps.Jobs;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.RawImage;
import io.qcow4j.core.api.OpenOptions;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.List;

/**
 * {@code commit [-f FMT] [-t CACHE] [-b BASE] [-d] [-p] [-q] [-r RATE] [--merge-bitmaps] FILE}, as
 * qemu-img commit: the data of FILE (and of the layers between it and BASE) is written
 * into BASE, by default FILE's backing file; FILE is emptied afterwards unless -d is given
 * (-b implies -d, as in qemu-img). BASE's enabled bitmaps record every range written; its
 * disabled ones and FILE's bitmaps stay as they are. With --merge-bitmaps FILE's bitmaps
 * are also merged into same-named bitmaps of BASE (created when missing). BASE may be a
 * raw image too. A BASE smaller than FILE grows to FILE's size first, as in qemu-img.
 */
final class CommitCommand {
    static final String NAME = "commit";
    private static final List<QemuGetopt.Long> LONG = List.of(
            new QemuGetopt.Long("help", false, "h"),
            new QemuGetopt.Long("object", true, "object"),
            new QemuGetopt.Long("image-opts", false, "image-opts"),
            new QemuGetopt.Long("merge-bitmaps", false, "merge-bitmaps"));

    private String format;
    private String cache = "writeback";
    /** -b: the layer to commit into (implies -d). */
    private String base;
    /** -d: keep FILE's data (do not empty it). */
    private boolean drop;
    private boolean progress;
    private boolean quiet;
    /** --merge-bitmaps (qcow4j's): FILE's bitmaps merged into same-named bitmaps of BASE. */
    private boolean mergeBitmaps;
    private String file;
    private PrintWriter out;

    /** Runs {@code commit ARGS} (read as qemu-img reads them: -r checked as it comes); the exit code. */
    static int run(List<String> args, PrintWriter out, PrintWriter err) throws Exception {
        CommitCommand c = new CommitCommand();
        c.out = out;
        List<String> files = QemuGetopt.handle(NAME, args, ":f:ht:b:dpqr:", LONG, out, c::option);
        if (files.size() != 1) {
            throw new CliException(Program.usage("Expecting one image file name"));
        }
        if (!Images.CACHE_MODES.contains(c.cache)) {
            throw new CliException("Invalid cache option: " + c.cache);
        }
        c.file = files.get(0);
        return c.commitFile(err);
    }

    private void option(QemuGetopt.Opt o) {
        String v = o.value();
        switch (o.key()) {
            case "f" -> format = v;
            case "t" -> cache = v;
            case "b" -> base = v;
            case "d" -> drop = true;
            case "p" -> progress = true;
            case "q" -> quiet = true;
            case "r" -> Sizes.cvtnum("rate limit", v); // accepted; qcow4j does not throttle
            case "object" -> ObjectOption.accept(v, out);
            case "image-opts" -> ImageOpts.active(true);
            case "merge-bitmaps" -> mergeBitmaps = true;
            default -> throw new IllegalStateException(o.key());
        }
    }

    private int commitFile(PrintWriter err) throws IOException {
        String[] fmt = {format};
        file = ImageOpts.resolve(file, fmt); // json:{...}, or an option list under --image-opts
        format = fmt[0];
        Chain chain = Chains.open(file, format, true, err, "Image does not have a backing file");
        Committed done = ChainOps.apply(chain, this::commit);
        if (done.baseDepth() > 1) {
            // the library points the top at the base; qemu-img leaves the top's header alone
            // (its data stays, -b implying -d, so it reads the same through either)
            try (Qcow2Image top = Qcow2Image.open(Cwd.path(file), OpenOptions.readWrite().openBacking(false).warnings(CliWarnings.sink()))) {
                top.chain().setBackingFile(done.oldBacking(), done.oldBackingFormat(), null);
            }
        }
        if (!quiet) {
            out.println("Image committed.");
        }
        return 0;
    }

    /** The layer committed into, and FILE's backing file before the commit. */
    private record Committed(int baseDepth, String oldBacking, String oldBackingFormat) {
    }

    private Committed commit(Chain chain) throws IOException {
        if (chain.depth() < 2) {
            throw new CliException("Image does not have a backing file");
        }
        int baseDepth = 1;
        if (base != null) {
            baseDepth = Chains.findBacking(chain, base);
            if (baseDepth < 0) {
                throw new CliException("Did not find '" + base + "' in the backing chain of '" + file + "'");
            }
        }
        boolean raw = chain.layers().get(baseDepth) instanceof RawImage;
        if (!raw && !(chain.layers().get(baseDepth) instanceof Qcow2Image)) {
            throw new CliException("Could not commit into '" + Chains.names(file, chain).get(baseDepth)
                    + "': qcow4j commits into qcow2 and raw images only");
        }
        if (raw && mergeBitmaps) {
            throw new CliException("--merge-bitmaps: '" + Chains.names(file, chain).get(baseDepth)
                    + "' is a raw image, which has no bitmaps");
        }
        Committed done = new Committed(baseDepth, chain.top().chain().backingFile(), chain.top().chain().backingFormat());
        boolean keep = drop || base != null; // qemu-img: -b implies -d
        int depth = baseDepth;
        // qemu-img opens the base read-write before the job starts, and words a failure so
        ChainOps.guard("Could not open '" + Chains.names(file, chain).get(depth) + "': ",
                () -> java.util.Objects.requireNonNull(raw ? chain.reopenRaw(depth) : chain.reopen(depth, true)));
        try {
            ChainOps.job(chain, new Progress(out, progress && !quiet, 0), "Block job failed: ",
                    jobs -> jobs.commit(new Jobs.CommitOptions(depth, !keep, mergeBitmaps)));
        } catch (CliException e) {
            if (e.getCause() instanceof Jobs.BaseCannotGrowException) {
                // qemu's job reports only its errno there; ours says why with --debug
                throw new CliException("Block job failed: Operation not supported", 1, e.getCause());
            }
            throw e;
        }
        return done;
    }
}
