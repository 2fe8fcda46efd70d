package io.qcow4j.tools;

import java.io.PrintWriter;
import java.util.List;

/**
 * The commands that read their command line as qemu-img does, with getopt_long
 * ({@link QemuGetopt}) rather than picocli: their errors depend on the order of the
 * options (each is checked as it comes), dd's operands are {@code key=value} words, and
 * the commands scripts run in bulk (create, convert, compare, check, commit, rebase, map, resize, snapshot, bitmap) start without building picocli's model
 * (reflection over classes that class-data sharing cannot archive).
 */
final class RawCommands {
    /** A command's line in the usage text: its synopsis and what it does. */
    record Usage(String name, String synopsis, String description) {
    }

    /** In the order the usage text lists them (after picocli's commands). */
    static final List<Usage> USAGES = List.of(
            new Usage(CreateCommand.NAME, "[-f qcow2|raw] [-o OPTS] [-b BACKING [-F FMT]] [-u] [-q] FILE [SIZE]",
                    "Create a new image (qcow2 unless -f raw)."),
            new Usage(ConvertCommand.NAME, "[-f FMT] [-O qcow2|raw] [-c] [-o OPTS] [-B BACKING [-F FMT]] [-n]"
                    + " [-S SIZE] [-l SNAPSHOT] [--bitmaps [--skip-broken-bitmaps]] [-p] [-q] [-U] SRC... DST",
                    "Copy an image into a new image of the given format (raw unless -O qcow2)."),
            new Usage(CompareCommand.NAME, "[-f FMT] [-F FMT] [-s] [-p] [-q] [-U] A B",
                    "Check that two images read the same."),
            new Usage(CheckCommand.NAME, "[-f FMT] [--output=human|json] [-r leaks|all] [-p] [-q] [-U] FILE",
                    "Check an image for errors; -r repairs them."),
            new Usage(CommitCommand.NAME, "[-f FMT] [-b BASE] [-d] [-p] [-q] [--merge-bitmaps] FILE",
                    "Write an overlay's data into its backing file (or the layer -b names)."),
            new Usage(RebaseCommand.NAME, "[-u] [-f FMT] -b BACKING [-F FMT] [-p] [-q] [-U] FILE",
                    "Change an image's backing file, keeping (or with -u, ignoring) what the guest reads."),
            new Usage(MapCommand.NAME, "[-f FMT] [--output=human|json] [--start-offset=OFF] [--max-length=LEN] [-U]"
                    + " [--bitmap NAME | --since CHECKPOINT] FILE", "Show how the disk maps to its files."),
            new Usage(ResizeCommand.NAME, "[-f FMT] [--shrink] [--preallocation=MODE] [-q] FILE [+|-]SIZE",
                    "Grow or (with --shrink) shrink an image's virtual disk."),
            new Usage(SnapshotCommand.NAME, "(-l | -c NAME | -a NAME | -d NAME) [-q] [-U] FILE",
                    "List, create, apply or delete internal snapshots."),
            new Usage(BitmapCommand.NAME, "(--add [-g SIZE] | --remove | --clear | --enable | --disable | --merge SRC"
                    + " [-b FILE [-F FMT]] | --populate)... [-f FMT] FILE BITMAP",
                    "Add, remove, clear, enable, disable or merge persistent bitmaps, all or nothing."),
            new Usage(MeasureCommand.NAME, "[--output=human|json] [-O FMT] [-o OPTS] (--size N | [-f FMT]"
                    + " [-l SNAPSHOT] [-U] FILE)", "Show how large a new image would have to be."),
            new Usage(AmendCommand.NAME, "[-f FMT] [-p] [-q] [--force] -o OPTS FILE",
                    "Change the options of an existing image (compat, refcount_bits, ...)."),
            new Usage(DdCommand.NAME, "[-f FMT] [-O FMT] [-U] [bs=BYTES] [count=N] [skip=N] if=INPUT of=OUTPUT",
                    "Copy part of a disk into a new image, as dd does."),
            new Usage(BenchCommand.NAME, "[-c COUNT] [-d DEPTH] [-f FMT] [-n] [-o OFFSET] [-q] [-s SIZE]"
                    + " [-S STEP] [-w] [-U] FILE", "Time reads or writes of an image."));

    private RawCommands() {
    }

    static boolean has(String name) {
        return USAGES.stream().anyMatch(u -> u.name().equals(name));
    }

    static int run(String name, List<String> args, PrintWriter out, PrintWriter err) throws Exception {
        return switch (name) {
            case CreateCommand.NAME -> CreateCommand.run(args, out);
            case ConvertCommand.NAME -> ConvertCommand.run(args, out, err);
            case CompareCommand.NAME -> CompareCommand.run(args, out);
            case CheckCommand.NAME -> CheckCommand.run(args, out, err);
            case CommitCommand.NAME -> CommitCommand.run(args, out, err);
            case RebaseCommand.NAME -> RebaseCommand.run(args, out, err);
            case MapCommand.NAME -> MapCommand.run(args, out, err);
            case ResizeCommand.NAME -> ResizeCommand.run(args, out, err);
            case SnapshotCommand.NAME -> SnapshotCommand.run(args, out);
            case BitmapCommand.NAME -> BitmapCommand.run(args, out);
            case MeasureCommand.NAME -> MeasureCommand.run(args, out, err);
            case DdCommand.NAME -> DdCommand.run(args, out, err);
            case BenchCommand.NAME -> BenchCommand.run(args, out, err);
            case AmendCommand.NAME -> AmendCommand.run(args, out, err);
            default -> throw new IllegalArgumentException(name);
        };
    }
}
