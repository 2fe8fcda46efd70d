package io.qcow4j.tools;

import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.bitmaps.DirtyBitmap;
import io.qcow4j.bitmaps.Transaction;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.BlockDevice;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code bitmap (--merge SRC | --add | --remove | --clear | --enable | --disable | --populate)...
 * [-b SRC_FILE [-F SRC_FMT]] [-g SIZE] [-f FMT] FILE BITMAP}, as qemu-img bitmap, with two
 * differences: --populate (not in qemu-img) sets the bits of every range allocated in
 * FILE's own layer (not its backing files'); and the call is all or nothing. Every action runs in memory in the order
 * given; only when all succeeded are the bitmaps stored. When one fails, the error names
 * it and the file is left byte-identical (qemu-img may have changed it by then). The command
 * line is read as qemu-img reads it ({@link QemuGetopt}: -g checked as it comes).
 */
final class BitmapCommand {
    static final String NAME = "bitmap";
    private static final List<QemuGetopt.Long> LONG = List.of(
            new QemuGetopt.Long("help", false, "h"),
            new QemuGetopt.Long("object", true, "object"),
            new QemuGetopt.Long("image-opts", false, "image-opts"),
            new QemuGetopt.Long("add", false, "add"),
            new QemuGetopt.Long("remove", false, "remove"),
            new QemuGetopt.Long("clear", false, "clear"),
            new QemuGetopt.Long("enable", false, "enable"),
            new QemuGetopt.Long("disable", false, "disable"),
            new QemuGetopt.Long("merge", true, "merge"),
            new QemuGetopt.Long("populate", false, "populate"));

    /** One action, in command-line order. */
    private record Action(String name, String source) {
    }

    private final List<Action> actions = new ArrayList<>();
    /** -g, checked as it comes; -1 when not given. */
    private long granularity = -1;
    /** -b, -F: the file (and its format) --merge takes its source bitmaps from. */
    private String sourceFile;
    private String sourceFormat;
    private String format;

    /** Runs {@code bitmap ARGS}; the exit code. */
    static int run(List<String> args, PrintWriter out) throws Exception {
        BitmapCommand c = new BitmapCommand();
        List<String> operands = QemuGetopt.handle(NAME, args, ":b:f:F:g:h", LONG, out, o -> c.option(o, out));
        return c.bitmap(operands);
    }

    private void option(QemuGetopt.Opt o, PrintWriter out) {
        String v = o.value();
        switch (o.key()) {
            case "add", "remove", "clear", "enable", "disable", "populate", "merge" -> actions.add(new Action(o.key(), v));
            case "g" -> granularity = Sizes.cvtnum("granularity", v);
            case "b" -> sourceFile = v;
            case "F" -> sourceFormat = v;
            case "f" -> format = v;
            case "object" -> ObjectOption.accept(v, out);
            case "image-opts" -> ImageOpts.active(true);
            default -> throw new IllegalStateException(o.key());
        }
    }

    private int bitmap(List<String> operands) throws IOException {
        if (actions.isEmpty()) {
            throw new CliException("Need at least one of --add, --remove, --clear, --enable, --disable, or --merge");
        }
        boolean add = actions.stream().anyMatch(x -> x.name().equals("add"));
        boolean merge = actions.stream().anyMatch(x -> x.name().equals("merge"));
        if (granularity >= 0 && !add) {
            throw new CliException("granularity only supported with --add");
        }
        if (sourceFormat != null && sourceFile == null) {
            throw new CliException("-F only supported with -b");
        }
        if (sourceFile != null && !merge) {
            throw new CliException("Merge bitmap source file only supported with --merge");
        }
        if (operands.size() != 2) {
            throw new CliException("Expecting filename and bitmap name");
        }
        long g = Math.max(granularity, 0);
        String file = operands.get(0);
        if (format != null && !format.equals(Images.QCOW2)) {
            Images.checkFormat(format, "Could not open '" + file + "': ");
            throw new CliException("Format driver '" + format + "' does not support bitmaps");
        }
        String bitmap = operands.get(1);
        BlockDevice dev = Images.open(file, Images.QCOW2, true, false);
        BlockDevice source = null;
        try {
            Qcow2Image image = (Qcow2Image) dev;
            if (sourceFile != null) {
                Images.checkFormat(sourceFormat, "Could not open '" + sourceFile + "': ");
                if (Images.RAW.equals(sourceFormat)) {
                    throw new CliException("Could not open '" + sourceFile + "': Format driver 'raw' does not support bitmaps");
                }
                source = Images.open(sourceFile, Images.QCOW2, false, false);
            }
            run(image, source, actions, bitmap, g);
            image.close();
        } finally {
            Images.closeQuietly(source);
            Images.closeQuietly(dev);
        }
        return 0;
    }

    /**
     * The actions as one {@link Transaction} over the image: nothing reaches the disk before
     * every action succeeded (the close stores), and a failure returns the bitmaps to what
     * they were, so the close writes nothing.
     */
    private static void run(Qcow2Image image, BlockDevice source, List<Action> actions, String bitmap, long g)
            throws IOException {
        Transaction tx = Transaction.of(image);
        for (Action a : actions) {
            tx.step(0, bitmaps -> {
                try {
                    apply(bitmaps, a, source, actions, bitmap, g);
                } catch (IOException | RuntimeException e) {
                    throw new CliException("Operation " + a.name() + " on bitmap " + bitmap + " failed: " + Images.reason(e), 1, e);
                }
            });
        }
        tx.commit();
    }

    private static void apply(Bitmaps bitmaps, Action a, BlockDevice source, List<Action> actions, String bitmap, long g)
            throws IOException {
        switch (a.name()) {
            case "add" -> {
                boolean disabled = actions.stream().anyMatch(x -> x.name().equals("disable"));
                Bitmaps.AddOptions o = Bitmaps.AddOptions.defaults().withGranularity(g);
                bitmaps.add(bitmap, disabled ? o.disabledBitmap() : o);
            }
            case "remove" -> bitmaps.remove(bitmap);
            case "clear" -> bitmaps.clear(bitmap);
            case "enable" -> bitmaps.enable(bitmap);
            case "disable" -> bitmaps.disable(bitmap);
            case "populate" -> bitmaps.populate(bitmap);
            case "merge" -> {
                Bitmaps from = source == null ? bitmaps : Bitmaps.of((Qcow2Image) source);
                DirtyBitmap src = from.get(a.source());
                bitmaps.merge(bitmap, src);
            }
            default -> throw new IllegalStateException(a.name());
        }
    }
}
