package io.qcow4j.tools;

import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The commands picocli reads, and the usage text of all commands. Kept apart from
 * {@link Main} so that a command {@code Main} runs itself (a plain {@code info}, and
 * {@link RawCommands}) loads no picocli class: picocli's classes are Java 5 class files,
 * which class-data sharing cannot archive, and its model is built by reflection.
 */
@Command(name = "qcow4j",
        mixinStandardHelpOptions = true,
        version = "qcow4j " + Main.VERSION + " (qemu-img 7.2 compatible)",
        description = "Create, inspect, convert and compare qcow2 images, as qemu-img does.",
        subcommands = {
            InfoCommand.class,
            IoCommand.class,
            DumpCommand.class,
            OverlayCommand.class,
            StreamCommand.class,
            CheckpointCommand.class,
            NbdCommand.class,
            BackupCommand.class,
            RestoreCommand.class,
            VerifyCommand.class,
            PruneCommand.class
        })
final class PicocliCommands implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        throw new CommandLine.ParameterException(spec.commandLine(), Program.usage("Not enough arguments"));
    }

    /** Runs {@code rest} (the command first) through picocli; the exit code. */
    static int run(List<String> rest, boolean debug, PrintWriter out, PrintWriter err) {
        CommandLine cl = commandLine(rest);
        cl.setOut(out);
        cl.setErr(err);
        cl.setExpandAtFiles(false); // "@name" is a file name here, not an argument file
        cl.setParameterExceptionHandler((ex, argv) -> {
            out.flush();
            String message = ex.getMessage();
            if (ex instanceof CommandLine.UnmatchedArgumentException u && !u.getUnmatched().isEmpty()) {
                String first = u.getUnmatched().get(0);
                if (first.startsWith("-") && first.length() > 1) {
                    message = Program.usage("unrecognized option '" + first + "'"); // qemu-img's words
                } else if (ex.getCommandLine() == cl) {
                    message = Program.usage("Command not found: " + first); // qemu-img's words
                }
            } else if (ex instanceof CommandLine.MissingParameterException && ex.getCommandLine() == cl) {
                message = Program.usage("Not enough arguments");
            }
            message = qemuUsageWords(ex, message);
            Program.printError(err, message);
            if (debug) {
                ex.printStackTrace(err);
            }
            return 1;
        });
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> Main.failure(ex, out, err, debug));
        int code;
        try {
            code = cl.execute(rest.toArray(new String[0]));
        } catch (RuntimeException | Error e) {
            // picocli handles command exceptions; this is the last line of defence
            out.flush();
            Program.printError(err, Images.reason(e));
            if (debug) {
                e.printStackTrace(err);
            }
            code = 1;
        }
        out.flush();
        err.flush();
        return code;
    }

    /**
     * picocli's complaint about a command line in qemu-img's words, where qemu-img has them:
     * a missing option value, a missing or extra file name.
     */
    private static String qemuUsageWords(CommandLine.ParameterException ex, String message) {
        String command = ex.getCommandLine().getCommandName();
        String files = command.equals("info") ? "Expecting one image file name" : null;
        if (ex instanceof CommandLine.MissingParameterException missing) {
            for (CommandLine.Model.ArgSpec a : missing.getMissing()) {
                if (a instanceof CommandLine.Model.OptionSpec o) {
                    String typed = ex.getMessage().replaceAll(".*option '([^']*)'.*", "$1");
                    return Program.usage("missing argument for option '" + (typed.startsWith("-") ? typed : o.longestName()) + "'");
                }
            }
            return files != null ? Program.usage(files) : message;
        }
        if (ex instanceof CommandLine.UnmatchedArgumentException u && files != null && !u.getUnmatched().isEmpty()
                && !u.getUnmatched().get(0).startsWith("-")) {
            return Program.usage(files);
        }
        return message;
    }

    /** The usage text of the whole command (qemu-img's commands print it for -h). */
    static void printUsage(PrintWriter out) {
        commandLine(List.of()).usage(out);
        out.flush();
    }

    /**
     * The command line for {@code args}. When the first argument names a command, only that
     * command's model is built: picocli inspects every option of every subcommand it is given,
     * which would be most of the start-up time of a quick {@code qcow4j info}. Anything else
     * (no command, an option first, {@code help}) gets the whole tree, for its usage texts:
     * picocli's commands, then those {@link RawCommands} runs (a synopsis and a line each,
     * for the list and for {@code help NAME}), then {@code help}.
     */
    static CommandLine commandLine(List<String> args) {
        Class<?> only = args.isEmpty() ? null : subcommand(args.get(0));
        if (only == null) {
            CommandLine all = new CommandLine(new PicocliCommands());
            all.setCommandName(Program.name());
            for (RawCommands.Usage u : RawCommands.USAGES) {
                CommandLine.Model.CommandSpec raw = CommandLine.Model.CommandSpec.create().name(u.name());
                raw.usageMessage().customSynopsis(Program.name() + " " + u.name() + " " + u.synopsis())
                        .description(u.description());
                all.addSubcommand(new CommandLine(raw));
            }
            all.addSubcommand(new CommandLine.HelpCommand());
            return all;
        }
        CommandLine.Model.CommandSpec top = CommandLine.Model.CommandSpec.wrapWithoutInspection(new PicocliCommands());
        top.name(Program.name());
        CommandLine cl = new CommandLine(top);
        cl.addSubcommand(new CommandLine(only));
        return cl;
    }

    /** The subcommand class named {@code name} in the {@code subcommands} above, or null. */
    private static Class<?> subcommand(String name) {
        if (name.startsWith("-")) {
            return null;
        }
        for (Class<?> c : PicocliCommands.class.getAnnotation(Command.class).subcommands()) {
            Command a = c.getAnnotation(Command.class);
            if (a != null && (a.name().equals(name) || List.of(a.aliases()).contains(name))) {
                return c;
            }
        }
        return null;
    }
}
