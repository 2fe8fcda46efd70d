package io.qcow4j.tools;

import java.util.ArrayList;
import java.util.List;

/**
 * POSIX getopt for qemu-io's inner commands ("read -P 0xcd -v 0 64k"): single-letter
 * flags, clustered or not, a letter followed by ':' in the spec takes a value; options
 * may follow operands (GNU permutation); "--" ends options.
 */
final class Getopt {
    /** An option letter this command does not know, or a missing value. */
    static final class BadOption extends Exception {
        private static final long serialVersionUID = 1L;

        BadOption(String message) {
            super(message);
        }
    }

    /** One parsed option: its letter and value (null for a flag). */
    record Opt(char letter, String value) {
    }

    private final List<Opt> options = new ArrayList<>();
    private final List<String> operands = new ArrayList<>();

    /** Parses {@code args} (without the command name) against {@code spec}, e.g. "P:vq". */
    Getopt(String command, String spec, List<String> args) throws BadOption {
        boolean optionsDone = false;
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (optionsDone || a.length() < 2 || a.charAt(0) != '-') {
                operands.add(a);
                continue;
            }
            if (a.equals("--")) {
                optionsDone = true;
                continue;
            }
            for (int j = 1; j < a.length(); j++) {
                char c = a.charAt(j);
                int at = spec.indexOf(c);
                if (at < 0 || c == ':') {
                    throw new BadOption(command + ": invalid option -- '" + c + "'");
                }
                boolean takesValue = at + 1 < spec.length() && spec.charAt(at + 1) == ':';
                if (!takesValue) {
                    options.add(new Opt(c, null));
                    continue;
                }
                String value;
                if (j + 1 < a.length()) {
                    value = a.substring(j + 1);
                } else if (i + 1 < args.size()) {
                    value = args.get(++i);
                } else {
                    throw new BadOption(command + ": option requires an argument -- '" + c + "'");
                }
                options.add(new Opt(c, value));
                break;
            }
        }
    }

    List<Opt> options() {
        return options;
    }

    List<String> operands() {
        return operands;
    }
}
