package io.qcow4j.tools;

import java.util.ArrayList;
import java.util.List;

/**
 * Command-line options the way qemu-img reads them (GNU getopt_long): short options,
 * clustered or not, a value glued on or in the next argument; long options with
 * {@code --name=value} or {@code --name value}, abbreviated to any unambiguous prefix;
 * operands anywhere (they are collected in order); "--" ends the options. Options come
 * back in command-line order, so a command can check them in qemu-img's order.
 */
final class QemuGetopt {
    /** A long option: its name, whether it takes a value, and the key it is reported under. */
    record Long(String name, boolean hasValue, String key) {
    }

    /** One option: its key (the letter, or the long option's key) and value (null for a flag). */
    record Opt(String key, String value) {
    }

    /**
     * A bad option: which kind, and the argument qemu-img names in its message: getopt's
     * {@code argv[optind - 1]}, the bad argument itself, except for an unknown letter inside
     * a cluster ("-xq"), where it is the argument before it once getopt has permuted them
     * (the last operand so far, else the last option or its value, else the command).
     */
    static final class BadOption extends Exception {
        private static final long serialVersionUID = 1L;
        final boolean missingValue;
        final String argument;
        /** What glibc's getopt prints itself (used where qemu-img lets it speak). */
        final String getoptMessage;

        BadOption(boolean missingValue, String argument, String getoptMessage) {
            super(argument);
            this.missingValue = missingValue;
            this.argument = argument;
            this.getoptMessage = getoptMessage;
        }

        /** qemu-img's own words for it, with the "Try ... --help" line. */
        CliException qemuImgError() {
            return new CliException(Program.usage(missingValue
                    ? "missing argument for option '" + argument + "'"
                    : "unrecognized option '" + argument + "'"));
        }
    }

    /** What a command does with one option, as getopt_long hands it over. */
    interface Handler {
        void option(Opt o) throws Exception;
    }

    private final List<Opt> options = new ArrayList<>();
    private final List<String> operands = new ArrayList<>();

    /**
     * Parses {@code args} (after the command name): {@code shortSpec} as getopt's ("f:O:U":
     * a letter followed by ':' takes a value), {@code longs} the long options.
     */
    QemuGetopt(String command, List<String> args, String shortSpec, List<Long> longs) throws BadOption {
        parse(command, args, shortSpec, longs);
    }

    private QemuGetopt() {
    }

    /** The first bad option, when parsed by {@link #upToError}; null when there was none. */
    BadOption error;

    /**
     * Parses as getopt_long hands options over: those before a bad option come back (a
     * command acts on each as it comes, as qemu-img does), the bad one in {@link #error}.
     */
    private static QemuGetopt upToError(String command, List<String> args, String shortSpec, List<Long> longs) {
        QemuGetopt g = new QemuGetopt();
        try {
            g.parse(command, args, shortSpec, longs);
        } catch (BadOption e) {
            g.error = e;
        }
        return g;
    }

    /**
     * qemu-img's option loop (its getopt_long spec starts with ':', so qemu-img words the
     * errors): each option goes to {@code handler} in command-line order, so the first check
     * that fails is the one qemu-img reports; -h/--help (key "h") prints the usage and ends
     * the command with exit 0; a bad option fails after the options before it were handled.
     * Returns the operands.
     */
    static List<String> handle(String command, List<String> args, String shortSpec, List<Long> longs,
            java.io.PrintWriter out, Handler handler) throws Exception {
        QemuGetopt g = upToError(command, args, shortSpec, longs);
        for (Opt o : g.options) {
            if (o.key().equals("h")) {
                PicocliCommands.printUsage(out);
                throw CliException.exit(0);
            }
            handler.option(o);
        }
        if (g.error != null) {
            throw g.error.qemuImgError();
        }
        return g.operands;
    }

    private void parse(String command, List<String> args, String shortSpec, List<Long> longs) throws BadOption {
        boolean done = false;
        String lastOperand = null;
        String lastOption = command; // the last argument an option took (itself or its value)
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (done || a.length() < 2 || a.charAt(0) != '-') {
                operands.add(a);
                lastOperand = a;
                continue;
            }
            if (a.equals("--")) {
                done = true;
                continue;
            }
            if (a.startsWith("--")) {
                i = longOption(command, args, i, longs);
                lastOption = args.get(i);
                continue;
            }
            for (int j = 1; j < a.length(); j++) {
                char c = a.charAt(j);
                int at = shortSpec.indexOf(c);
                if (at < 0 || c == ':') {
                    // getopt has moved the operands so far just before this argument
                    String named = j + 1 < a.length() ? (lastOperand != null ? lastOperand : lastOption) : a;
                    throw new BadOption(false, named, command + ": invalid option -- '" + c + "'");
                }
                if (at + 1 >= shortSpec.length() || shortSpec.charAt(at + 1) != ':') {
                    options.add(new Opt(String.valueOf(c), null));
                    continue;
                }
                if (j + 1 < a.length()) {
                    options.add(new Opt(String.valueOf(c), a.substring(j + 1)));
                } else if (i + 1 < args.size()) {
                    options.add(new Opt(String.valueOf(c), args.get(++i)));
                } else {
                    throw new BadOption(true, a, command + ": option requires an argument -- '" + c + "'");
                }
                break;
            }
            lastOption = args.get(i);
        }
    }

    private int longOption(String command, List<String> args, int i, List<Long> longs) throws BadOption {
        String a = args.get(i);
        int eq = a.indexOf('=');
        String name = eq < 0 ? a.substring(2) : a.substring(2, eq);
        Long match = null;
        int matches = 0;
        for (Long l : longs) {
            if (l.name().equals(name)) {
                match = l;
                matches = 1;
                break;
            }
            if (l.name().startsWith(name)) {
                match = l;
                matches++;
            }
        }
        if (match == null || matches > 1 || name.isEmpty()) {
            String why = matches > 1 ? "option '" + a + "' is ambiguous" : "unrecognized option '" + a + "'";
            throw new BadOption(false, a, command + ": " + why);
        }
        if (!match.hasValue()) {
            if (eq >= 0) {
                throw new BadOption(false, a, command + ": option '--" + match.name() + "' doesn't allow an argument");
            }
            options.add(new Opt(match.key(), null));
            return i;
        }
        if (eq >= 0) {
            options.add(new Opt(match.key(), a.substring(eq + 1)));
            return i;
        }
        if (i + 1 >= args.size()) {
            throw new BadOption(true, a, command + ": option '--" + match.name() + "' requires an argument");
        }
        options.add(new Opt(match.key(), args.get(i + 1)));
        return i + 1;
    }

    List<Opt> options() {
        return options;
    }

    List<String> operands() {
        return operands;
    }
}
