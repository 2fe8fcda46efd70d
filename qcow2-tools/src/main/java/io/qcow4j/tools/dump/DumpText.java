package io.qcow4j.tools.dump;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The human form of a dump: the same tree as the JSON, as indented "key: value" lines;
 * a list of flat objects becomes a table with a header row. Offsets, raw entries, the
 * magic and feature masks print in hex.
 */
public final class DumpText {
    private DumpText() {
    }

    public static String render(Map<String, Object> doc) {
        StringBuilder b = new StringBuilder();
        for (Map.Entry<String, Object> e : doc.entrySet()) {
            if (b.length() > 0) {
                b.append('\n');
            }
            b.append(e.getKey()).append(':');
            value(b, e.getKey(), e.getValue(), 1);
        }
        return b.toString();
    }

    /** Appends a value after "key:" (on the same line when it is short). */
    private static void value(StringBuilder b, String key, Object v, int level) {
        if (v instanceof Map<?, ?> map) {
            b.append('\n');
            map(b, map, level);
        } else if (v instanceof List<?> list) {
            if (list.isEmpty()) {
                b.append(" (none)\n");
            } else if (list.stream().allMatch(DumpText::isScalar)) {
                b.append(' ').append(joined(key, list)).append('\n');
            } else {
                b.append(" ").append(list.size()).append('\n');
                list(b, list, level);
            }
        } else {
            b.append(' ').append(scalar(key, v)).append('\n');
        }
    }

    private static void map(StringBuilder b, Map<?, ?> map, int level) {
        int width = 0;
        for (Map.Entry<?, ?> e : map.entrySet()) {
            if (inline(e.getValue())) {
                width = Math.max(width, e.getKey().toString().length());
            }
        }
        for (Map.Entry<?, ?> e : map.entrySet()) {
            String key = e.getKey().toString();
            indent(b, level);
            b.append(key).append(':');
            if (inline(e.getValue())) {
                b.append(" ".repeat(width - key.length()));
            }
            value(b, key, e.getValue(), level + 1);
        }
    }

    private static void list(StringBuilder b, List<?> list, int level) {
        boolean flat = list.stream().allMatch(item -> item instanceof Map<?, ?> m
                && m.values().stream().allMatch(v -> isScalar(v) || (v instanceof List<?> l && l.stream().allMatch(DumpText::isScalar))));
        if (!flat) {
            for (Object item : list) {
                indent(b, level);
                if (item instanceof Map<?, ?> m) {
                    b.append("-\n");
                    map(b, m, level + 1);
                } else {
                    b.append("- ").append(scalar("", item)).append('\n');
                }
            }
            return;
        }
        Set<String> columns = new LinkedHashSet<>();
        for (Object item : list) {
            for (Object k : ((Map<?, ?>) item).keySet()) {
                columns.add(k.toString());
            }
        }
        List<String> cols = new ArrayList<>(columns);
        List<String[]> rows = new ArrayList<>();
        int[] width = new int[cols.size()];
        for (int c = 0; c < cols.size(); c++) {
            width[c] = cols.get(c).length();
        }
        for (Object item : list) {
            Map<?, ?> m = (Map<?, ?>) item;
            String[] row = new String[cols.size()];
            for (int c = 0; c < cols.size(); c++) {
                Object v = m.get(cols.get(c));
                row[c] = v == null ? "" : v instanceof List<?> l ? joined(cols.get(c), l) : scalar(cols.get(c), v);
                width[c] = Math.max(width[c], row[c].length());
            }
            rows.add(row);
        }
        row(b, level, cols.toArray(String[]::new), width);
        for (String[] r : rows) {
            row(b, level, r, width);
        }
    }

    private static void row(StringBuilder b, int level, String[] cells, int[] width) {
        StringBuilder line = new StringBuilder();
        for (int c = 0; c < cells.length; c++) {
            line.append(cells[c]);
            if (c + 1 < cells.length) {
                line.append(" ".repeat(width[c] - cells[c].length() + 2));
            }
        }
        indent(b, level);
        b.append(line.toString().stripTrailing()).append('\n');
    }

    private static String joined(String key, List<?> list) {
        if (list.isEmpty()) {
            return "-";
        }
        List<String> parts = new ArrayList<>();
        for (Object o : list) {
            parts.add(scalar(key, o));
        }
        return String.join(", ", parts);
    }

    /** Printed on the key's line: a scalar, or a list of scalars. */
    private static boolean inline(Object v) {
        return isScalar(v) || (v instanceof List<?> l && l.stream().allMatch(DumpText::isScalar));
    }

    private static boolean isScalar(Object v) {
        return !(v instanceof Map) && !(v instanceof List);
    }

    static boolean hexKey(String key, Object v) {
        if (key.equals("type")) {
            return v instanceof Number n && n.longValue() > 0xffff; // an extension type, not a small code
        }
        return key.equals("offset") || key.endsWith("_offset") || key.equals("magic") || key.endsWith("_features")
                || key.equals("flags");
    }

    private static String scalar(String key, Object v) {
        if (v instanceof Number n && hexKey(key, v)) {
            BigInteger big = n instanceof BigInteger bi ? bi : BigInteger.valueOf(n.longValue());
            return big.signum() == 0 ? "0" : "0x" + big.toString(16);
        }
        if (v instanceof String s && s.isEmpty()) {
            return "\"\"";
        }
        return String.valueOf(v);
    }

    private static void indent(StringBuilder b, int level) {
        b.append("  ".repeat(level));
    }
}
