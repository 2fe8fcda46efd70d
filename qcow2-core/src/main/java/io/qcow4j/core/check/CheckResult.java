package io.qcow4j.core.check;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a check or repair found, in the terms of {@code qemu-img check}: the counters of
 * its JSON report, the lines it writes to stdout and stderr, and its exit code.
 *
 * <p>stderr carries the diagnostics ({@code Leaked cluster ...}, {@code ERROR ...},
 * {@code Repairing ...}) in the order they were found; stdout the summary
 * ({@link #humanLines()}) or the JSON report ({@link #json(String)}). Lines that qemu-img
 * writes through its error reporter carry the program name ({@link Line#errorReport()}).
 */
public final class CheckResult {
    /** One stderr line; {@code errorReport} lines are printed as "PROGRAM: text". */
    public record Line(String text, boolean errorReport) {
        public String render(String program) {
            return errorReport ? program + ": " + text : text;
        }
    }

    private final long checkErrors;
    private final long corruptions;
    private final long leaks;
    private final long corruptionsFixed;
    private final long leaksFixed;
    private final long imageEndOffset;
    private final long totalClusters;
    private final long allocatedClusters;
    private final long fragmentedClusters;
    private final long compressedClusters;
    private final String failure;
    private final boolean reportRepairs;
    private final List<Line> stderr;
    private final long droppedStderrLines;

    CheckResult(CheckTally t, String failure, boolean reportRepairs, CheckRun run) {
        this.checkErrors = t.checkErrors;
        this.corruptions = t.corruptions;
        this.leaks = t.leaks;
        this.corruptionsFixed = t.corruptionsFixed;
        this.leaksFixed = t.leaksFixed;
        this.imageEndOffset = t.imageEndOffset;
        this.totalClusters = t.totalClusters;
        this.allocatedClusters = t.allocatedClusters;
        this.fragmentedClusters = t.fragmentedClusters;
        this.compressedClusters = t.compressedClusters;
        this.failure = failure;
        this.reportRepairs = reportRepairs;
        this.stderr = Collections.unmodifiableList(new ArrayList<>(run.out));
        this.droppedStderrLines = run.dropped;
    }

    /** False when the check could not be completed (qemu-img prints no report then). */
    public boolean completed() {
        return failure == null;
    }

    /**
     * Why the check did not complete, as qemu-img reports it after its program name
     * ("Check failed: Input/output error", "Could not open 'FILE': ..."), or null.
     */
    public String failure() {
        return failure;
    }

    /** 0 clean, 1 check not completed or internal errors, 2 corruptions, 3 leaks only. */
    public int exitCode() {
        if (failure != null || checkErrors > 0) {
            return 1;
        }
        if (corruptions > 0) {
            return 2;
        }
        return leaks > 0 ? 3 : 0;
    }

    public long checkErrors() {
        return checkErrors;
    }

    public long corruptions() {
        return corruptions;
    }

    public long leaks() {
        return leaks;
    }

    public long corruptionsFixed() {
        return corruptionsFixed;
    }

    public long leaksFixed() {
        return leaksFixed;
    }

    /** End of the last cluster in use (refcounted or referenced), 0 when unknown. */
    public long imageEndOffset() {
        return imageEndOffset;
    }

    /** Clusters of the virtual disk. */
    public long totalClusters() {
        return totalClusters;
    }

    public long allocatedClusters() {
        return allocatedClusters;
    }

    public long fragmentedClusters() {
        return fragmentedClusters;
    }

    public long compressedClusters() {
        return compressedClusters;
    }

    /**
     * Every stderr line, in order, including the closing "Check failed" line when there is
     * one; empty when they were streamed, and only the first 100,000 otherwise.
     */
    public List<Line> stderr() {
        return stderr;
    }

    /** stderr lines beyond the ones kept (stream them to see all). */
    public long droppedStderrLines() {
        return droppedStderrLines;
    }

    /** {@link #stderr()} rendered with {@code program} ("qemu-img") before the error-report lines. */
    public List<String> stderrLines(String program) {
        List<String> out = new ArrayList<>();
        for (Line l : stderr) {
            out.add(l.render(program));
        }
        return out;
    }

    /** The check's own diagnostics (stderr without the error-report lines). */
    public List<String> messages() {
        List<String> out = new ArrayList<>();
        for (Line l : stderr) {
            if (!l.errorReport()) {
                out.add(l.text());
            }
        }
        return out;
    }

    /** What {@code qemu-img check} prints on stdout (human output); empty when the check failed. */
    public List<String> humanLines() {
        List<String> out = new ArrayList<>();
        if (reportRepairs) {
            out.add("The following inconsistencies were found and repaired:");
            out.add("");
            out.add("    " + leaksFixed + " leaked clusters");
            out.add("    " + corruptionsFixed + " corruptions");
            out.add("");
            out.add("Double checking the fixed image now...");
        }
        if (failure != null) {
            return out;
        }
        if (corruptions == 0 && leaks == 0 && checkErrors == 0) {
            out.add("No errors were found on the image.");
        } else {
            if (corruptions != 0) {
                out.add("");
                out.add(corruptions + " errors were found on the image.");
                out.add("Data may be corrupted, or further writes to the image may corrupt it.");
            }
            if (leaks != 0) {
                out.add("");
                out.add(leaks + " leaked clusters were found on the image.");
                out.add("This means waste of disk space, but no harm to data.");
            }
            if (checkErrors != 0) {
                out.add("");
                out.add(checkErrors + " internal errors have occurred during the check.");
            }
        }
        if (totalClusters != 0 && allocatedClusters != 0) {
            out.add(allocatedClusters + "/" + totalClusters + " = " + percent(allocatedClusters * 100.0 / totalClusters)
                    + "% allocated, " + percent(fragmentedClusters * 100.0 / allocatedClusters) + "% fragmented, "
                    + percent(compressedClusters * 100.0 / allocatedClusters) + "% compressed clusters");
        }
        if (imageEndOffset != 0) {
            out.add("Image end offset: " + imageEndOffset);
        }
        return out;
    }

    /** printf's {@code %0.2f}: the double's exact value rounded half to even, as glibc does. */
    static String percent(double v) {
        return new java.math.BigDecimal(v).setScale(2, java.math.RoundingMode.HALF_EVEN).toPlainString();
    }

    /**
     * The fields of {@code qemu-img check --output=json} in qemu's order; optional ones
     * only when non-zero, as qemu prints them. Null when the check failed (no report).
     */
    public Map<String, Object> jsonFields(String filename) {
        if (failure != null) {
            return null;
        }
        Map<String, Object> m = new LinkedHashMap<>();
        optional(m, "image-end-offset", imageEndOffset);
        optional(m, "compressed-clusters", compressedClusters);
        optional(m, "total-clusters", totalClusters);
        optional(m, "corruptions", corruptions);
        optional(m, "corruptions-fixed", corruptionsFixed);
        m.put("check-errors", checkErrors);
        optional(m, "leaks", leaks);
        optional(m, "leaks-fixed", leaksFixed);
        optional(m, "allocated-clusters", allocatedClusters);
        m.put("filename", filename);
        m.put("format", "qcow2");
        optional(m, "fragmented-clusters", fragmentedClusters);
        return m;
    }

    private static void optional(Map<String, Object> m, String key, long value) {
        if (value != 0) {
            m.put(key, value);
        }
    }

    /** The exact stdout of {@code qemu-img check --output=json} (with its final newline), or null. */
    public String json(String filename) {
        Map<String, Object> m = jsonFields(filename);
        if (m == null) {
            return null;
        }
        StringBuilder b = new StringBuilder("{\n");
        int i = 0;
        for (Map.Entry<String, Object> e : m.entrySet()) {
            b.append("    ").append(quote(e.getKey())).append(": ");
            Object v = e.getValue();
            b.append(v instanceof String s ? quote(s) : v.toString());
            b.append(++i < m.size() ? ",\n" : "\n");
        }
        return b.append("}\n").toString();
    }

    private static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                case '\b' -> b.append("\\b");
                case '\f' -> b.append("\\f");
                default -> {
                    if (c < 0x20 || c > 0x7e) {
                        b.append(String.format("\\u%04X", (int) c));
                    } else {
                        b.append(c);
                    }
                }
            }
        }
        return b.append('"').toString();
    }

    @Override
    public String toString() {
        return "CheckResult[exit=" + exitCode() + ", corruptions=" + corruptions + ", leaks=" + leaks
                + ", checkErrors=" + checkErrors + ", corruptionsFixed=" + corruptionsFixed + ", leaksFixed="
                + leaksFixed + ", imageEndOffset=" + imageEndOffset + (failure != null ? ", failure=" + failure : "") + "]";
    }
}
