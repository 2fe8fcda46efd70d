package io.qcow4j.tools;

import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.bitmaps.DirtyBitmap;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.bitmap.BitmapManager;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Unmatched;

/**
 * {@code bitmap (--merge SRC | --add | --remove | --clear | --enable | --disable | --populate)...
 * [-b SRC_FILE [-F SRC_FMT]] [-g SIZE] [-f FMT] FILE BITMAP}, as qemu-img bitmap, with two
 * differences: --populate (not in qemu-img) sets the bits of every range allocated in
 * FILE's own layer (not its backing files'); and the call is all or nothing. Every action runs in memory in the order
 * given; only when all succeeded are the bitmaps stored. When one fails, the error names
 * it and the file is left byte-identical (qemu-img may have changed it by then).
 */
@Command(name = "bitmap", mixinStandardHelpOptions = true,
        description = "Add, remove, clear, enable, disable or merge persistent bitmaps, all or nothing.")
final class BitmapCommand implements Callable<Integer> {
    /** One action, in command-line order. */
    private record Action(String name, String source) {
    }

    @Unmatched
    List<String> args = new ArrayList<>();

    @Override
    public Integer call() throws IOException {
        List<Action> actions = new ArrayList<>();
        List<String> operands = new ArrayList<>();
        String granularity = null;
        String sourceFile = null;
        String sourceFormat = null;
        String format = null;
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            switch (a) {
                case "--add", "--remove", "--clear", "--enable", "--disable", "--populate" -> actions.add(new Action(a.substring(2), null));
                case "--merge" -> actions.add(new Action("merge", value(args, ++i, a)));
                case "-g" -> granularity = value(args, ++i, a);
                case "-b" -> sourceFile = value(args, ++i, a);
                case "-F" -> sourceFormat = value(args, ++i, a);
                case "-f" -> format = value(args, ++i, a);
                case "-q" -> { }
                default -> {
                    if (a.startsWith("-") && a.length() > 1) {
                        throw new CliException("unrecognized option '" + a + "'"); // qemu-img's words
                    }
                    operands.add(a);
                }
            }
        }
        if (actions.isEmpty()) {
            throw new CliException("Need at least one of --add, --remove, --clear, --enable, --disable, or --merge");
        }
        boolean add = actions.stream().anyMatch(x -> x.name().equals("add"));
        boolean merge = actions.stream().anyMatch(x -> x.name().equals("merge"));
        if (granularity != null && !add) {
            throw new CliException("granularity only supported with --add");
        }
        if (sourceFormat != null && sourceFile == null) {
            throw new CliException("-F only allowed with -b");
        }
        if (sourceFile != null && !merge) {
            throw new CliException("Merge bitmap source file only supported with --merge");
        }
        if (operands.size() != 2) {
            throw new CliException("Expecting filename and bitmap name");
        }
        long g = 0;
        if (granularity != null) {
            try {
                g = Sizes.parse(granularity);
            } catch (Sizes.SizeException e) {
                throw new CliException("Invalid granularity specified");
            }
        }
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

    private static void run(Qcow2Image image, BlockDevice source, List<Action> actions, String bitmap, long g) {
        Bitmaps bitmaps = Bitmaps.of(image);
        BitmapManager.State before = image.bitmaps().saveState();
        for (Action a : actions) {
            try {
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
            } catch (IOException | RuntimeException e) {
                // nothing reached the disk yet: forget every action, so the close writes nothing
                image.bitmaps().restoreState(before);
                throw new CliException("Operation " + a.name() + " on bitmap " + bitmap + " failed: " + Images.reason(e), 1, e);
            }
        }
    }

    private static String value(List<String> args, int i, String option) {
        if (i >= args.size()) {
            throw new CliException("option '" + option + "' requires an argument");
        }
        return args.get(i);
    }
}
