package io.qcow4j.tools;

import java.io.PrintWriter;
import java.util.List;

/**
 * The commands that read their command line as qemu-img does, with getopt_long
 * ({@link QemuGetopt}) rather than picocli: their errors depend on the order of the
 * options (each is checked as it comes), and dd's operands are {@code key=value} words.
 */
final class RawCommands {
    private RawCommands() {
    }

    static boolean has(String name) {
        return switch (name) {
            case MeasureCommand.NAME, DdCommand.NAME, BenchCommand.NAME, AmendCommand.NAME -> true;
            default -> false;
        };
    }

    static int run(String name, List<String> args, PrintWriter out, PrintWriter err) throws Exception {
        return switch (name) {
            case MeasureCommand.NAME -> MeasureCommand.run(args, out, err);
            case DdCommand.NAME -> DdCommand.run(args, out, err);
            case BenchCommand.NAME -> BenchCommand.run(args, out, err);
            case AmendCommand.NAME -> AmendCommand.run(args, out, err);
            default -> throw new IllegalArgumentException(name);
        };
    }
}
