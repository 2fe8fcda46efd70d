package io.qcow4j.tools;

import java.util.List;
import java.util.Map;

/**
 * JSON as qemu-img's {@code --output=json} prints it: four-space indent, {@code "key": value},
 * an empty list as "[" newline "]", every code point outside printable ASCII as an
 * upper-case {@code \\uXXXX}. Maps are printed in their iteration order; callers build
 * them in qemu's order (see {@link ImageInfo}). Values: Map, List, String, Number, Boolean.
 */
public final class QemuJson {
    private QemuJson() {
    }

    public static String pretty(Object value) {
        StringBuilder b = new StringBuilder();
        write(b, value, 0);
        return b.toString();
    }

    private static void write(StringBuilder b, Object value, int level) {
        if (value instanceof Map<?, ?> map) {
            b.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : map.entrySet()) {
                b.append(first ? "\n" : ",\n");
                first = false;
                indent(b, level + 1);
                string(b, e.getKey().toString());
                b.append(": ");
                write(b, e.getValue(), level + 1);
            }
            b.append('\n');
            indent(b, level);
            b.append('}');
        } else if (value instanceof List<?> list) {
            b.append('[');
            boolean first = true;
            for (Object item : list) {
                b.append(first ? "\n" : ",\n");
                first = false;
                indent(b, level + 1);
                write(b, item, level + 1);
            }
            b.append('\n');
            indent(b, level);
            b.append(']');
        } else if (value instanceof String s) {
            string(b, s);
        } else if (value instanceof Number || value instanceof Boolean) {
            b.append(value);
        } else if (value == null) {
            b.append("null");
        } else {
            throw new IllegalArgumentException("not a JSON value: " + value);
        }
    }

    private static void indent(StringBuilder b, int level) {
        b.append("    ".repeat(level));
    }

    /** {@code s} as a JSON string, escaped as qemu escapes it. */
    static String quote(String s) {
        StringBuilder b = new StringBuilder();
        string(b, s);
        return b.toString();
    }

    private static void string(StringBuilder b, String s) {
        b.append('"');
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            i += Character.charCount(cp);
            switch (cp) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\b' -> b.append("\\b");
                case '\f' -> b.append("\\f");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (cp >= 0x20 && cp < 0x7f) {
                        b.append((char) cp);
                    } else if (cp > 0xffff) {
                        for (char c : Character.toChars(cp)) {
                            b.append(String.format("\\u%04X", (int) c));
                        }
                    } else {
                        b.append(String.format("\\u%04X", cp));
                    }
                }
            }
        }
        b.append('"');
    }
}
