package io.qcow4j.tools;

import java.math.BigInteger;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * qemu-img's {@code -o} lists: {@code key=value} pairs separated by commas, a literal
 * comma written as ",,", a bare {@code key} meaning {@code key=on} and {@code nokey}
 * meaning {@code key=off}. Several {@code -o} are joined; a later key wins.
 */
public final class OptionList {
    private final Map<String, String> values = new LinkedHashMap<>();
    /** Every key=value as given, in order, repeats and "help" included: qemu checks each. */
    private final List<Map.Entry<String, String>> items = new java.util.ArrayList<>();
    private final boolean help;

    private OptionList(boolean help) {
        this.help = help;
    }

    /** Parses every {@code -o} argument, in order. */
    public static OptionList parse(List<String> lists) {
        boolean help = false;
        for (String list : lists) {
            if (!isValid(list)) {
                throw new CliException("Invalid option list: " + list);
            }
        }
        for (String list : lists) {
            for (String item : split(list)) {
                if (item.equals("help") || item.equals("?")) {
                    help = true;
                }
            }
        }
        OptionList result = new OptionList(help);
        for (String list : lists) {
            for (String item : split(list)) {
                String key;
                String value;
                int eq = item.indexOf('=');
                if (eq >= 0) {
                    key = item.substring(0, eq);
                    value = item.substring(eq + 1);
                } else if (item.startsWith("no")) {
                    key = item.substring(2);
                    value = "off";
                } else {
                    key = item;
                    value = "on";
                }
                result.items.add(Map.entry(key, value));
                if (!item.equals("help") && !item.equals("?")) {
                    result.values.put(key, value);
                }
            }
        }
        return result;
    }

    /** qemu refuses an empty list and a single trailing or leading comma. */
    static boolean isValid(String list) {
        if (list.isEmpty() || list.startsWith(",")) {
            return false;
        }
        int trailing = 0;
        for (int i = list.length() - 1; i >= 0 && list.charAt(i) == ','; i--) {
            trailing++;
        }
        return trailing % 2 == 0;
    }

    /** The items of a list, ",," read as a comma. */
    static List<String> splitItems(String list) {
        return split(list);
    }

    private static List<String> split(String list) {
        java.util.ArrayList<String> items = new java.util.ArrayList<>();
        StringBuilder cur = new StringBuilder();
        for (int i = 0; i < list.length(); i++) {
            char c = list.charAt(i);
            if (c == ',') {
                if (i + 1 < list.length() && list.charAt(i + 1) == ',') {
                    cur.append(',');
                    i++;
                    continue;
                }
                items.add(cur.toString());
                cur.setLength(0);
            } else {
                cur.append(c);
            }
        }
        items.add(cur.toString());
        return items;
    }

    public boolean wantsHelp() {
        return help;
    }

    public Map<String, String> values() {
        return values;
    }

    /** Every option as given, in order (a key given twice is here twice; "help" is "help=on"). */
    public List<Map.Entry<String, String>> items() {
        return items;
    }

    public String get(String key) {
        return values.get(key);
    }

    public boolean has(String key) {
        return values.containsKey(key);
    }

    /** A boolean option value as qemu accepts it. */
    public static boolean parseBool(String name, String value) {
        return switch (value) {
            case "on", "yes", "true", "y" -> true;
            case "off", "no", "false", "n" -> false;
            default -> throw new CliException("Parameter '" + name + "' expects 'on' or 'off'");
        };
    }

    /** A size-typed option value (cluster_size, ...). */
    public static long parseSize(String name, String value) {
        try {
            BigInteger v = Sizes.parseUnsigned(value);
            if (v.bitLength() > 63) {
                throw new CliException("Parameter '" + name + "' expects a non-negative number below 2^63");
            }
            return v.longValue();
        } catch (Sizes.SizeException e) {
            throw new CliException("Parameter '" + name + "' expects a non-negative number below 2^64"
                    + "\nOptional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-"
                    + "\nand exabytes, respectively.");
        }
    }

    /** A number-typed option value (refcount_bits): decimal, 0x hex or 0 octal. */
    public static long parseNumber(String name, String value) {
        String s = value.strip();
        try {
            if (s.startsWith("+")) {
                s = s.substring(1);
            }
            if (s.startsWith("0x") || s.startsWith("0X")) {
                return Long.parseUnsignedLong(s.substring(2), 16);
            }
            if (s.length() > 1 && s.startsWith("0")) {
                return Long.parseUnsignedLong(s.substring(1), 8);
            }
            return Long.parseUnsignedLong(s);
        } catch (NumberFormatException e) {
            throw new CliException("Parameter '" + name + "' expects a number");
        }
    }

    /** A value as qemu echoes it in "Formatting ..." (commas doubled again). */
    public static String escape(String value) {
        return value.replace(",", ",,");
    }
}
