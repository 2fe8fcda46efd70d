package io.qcow4j.tools;

import java.io.PrintWriter;
import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.nio.ByteBuffer;

/**
 * Numbers printed the way the qemu tools print them. C's printf rounds the exact
 * binary value of a double, half to even; BigDecimal does the same, Java's Formatter
 * does not, hence the hand-made formatting here.
 */
public final class Output {
    private static final String[] HUMAN_PREFIXES = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};

    private Output() {
    }

    /**
     * A byte count as qemu-img info prints it ("1 GiB", "196 KiB", "1.25 MiB", "512 B"):
     * three significant digits, and the next unit as soon as the number would reach 1000.
     */
    public static String humanSize(long bytes) {
        double v = unsignedToDouble(bytes);
        int unit = 0;
        if (v > 0) {
            // binary exponent of v*1024/1000, so 1000..1023 of a unit already switch up
            int exp = Math.getExponent(v / (1000.0 / 1024.0)) + 1;
            unit = Math.min((exp - 1) / 10, HUMAN_PREFIXES.length - 1);
        }
        double scaled = v / (double) (1L << (unit * 10));
        return formatG3(scaled) + " " + HUMAN_PREFIXES[unit] + "B";
    }

    /** C's {@code %0.3g}: three significant digits, trailing zeros dropped, exponent form outside [1e-4, 1e3). */
    static String formatG3(double v) {
        if (v == 0) {
            return "0";
        }
        BigDecimal r = new BigDecimal(v).round(new MathContext(3, RoundingMode.HALF_EVEN));
        int exponent = r.precision() - r.scale() - 1;
        if (exponent < -4 || exponent >= 3) {
            BigDecimal mantissa = r.movePointLeft(exponent).stripTrailingZeros();
            String sign = exponent < 0 ? "-" : "+";
            int abs = Math.abs(exponent);
            return mantissa.toPlainString() + "e" + sign + (abs < 10 ? "0" : "") + abs;
        }
        BigDecimal fixed = r.setScale(Math.max(0, 2 - exponent), RoundingMode.HALF_EVEN).stripTrailingZeros();
        if (fixed.scale() < 0) {
            fixed = fixed.setScale(0);
        }
        return fixed.toPlainString();
    }

    /**
     * A byte count or rate as qemu-io prints it ("64 KiB", "1.500 KiB", "512 bytes",
     * "563.750610 bytes"): three decimals for units, six for bytes, ".000" cut off.
     */
    public static String ioSize(double value) {
        String[] suffixes = {" EiB", " PiB", " TiB", " GiB", " MiB", " KiB"};
        for (int i = 0; i < suffixes.length; i++) {
            double unit = Math.scalb(1.0, (6 - i) * 10);
            if (value >= unit) {
                return trimZeros(fixed(value / unit, 3), suffixes[i]);
            }
        }
        return trimZeros(fixed(value, 6), " bytes");
    }

    private static String trimZeros(String number, String suffix) {
        int cut = number.indexOf(".000");
        return (cut >= 0 ? number.substring(0, cut) : number) + suffix;
    }

    /** C's {@code %.Nf}. */
    static String fixed(double v, int decimals) {
        return new BigDecimal(v).setScale(decimals, RoundingMode.HALF_EVEN).toPlainString();
    }

    /** qemu-io's elapsed time: "00.01 sec" below a second, "0:00:01.50" above. */
    public static String ioTime(long nanos) {
        long secs = nanos / 1_000_000_000L;
        double frac = (nanos % 1_000_000_000L) / 1e9;
        if (secs == 0) {
            return pad(fixed(frac, 2), 5) + " sec";
        }
        return (secs / 3600) + ":" + two(secs / 60 % 60) + ":" + pad(fixed(secs % 60 + frac, 2), 5);
    }

    private static String two(long v) {
        return v < 10 ? "0" + v : Long.toString(v);
    }

    private static String pad(String s, int width) {
        StringBuilder b = new StringBuilder();
        for (int i = s.length(); i < width; i++) {
            b.append('0');
        }
        return b.append(s).toString();
    }

    /** qemu-io's "read -v" dump: 16 bytes a line, hex then letters and digits ('.' for the rest). */
    public static void hexDump(PrintWriter out, long offset, ByteBuffer data) {
        int len = data.remaining();
        int base = data.position();
        StringBuilder line = new StringBuilder(80);
        for (int i = 0; i < len; i += 16) {
            line.setLength(0);
            line.append(String.format("%08x:  ", offset + i));
            int n = Math.min(16, len - i);
            for (int j = 0; j < n; j++) {
                line.append(String.format("%02x ", data.get(base + i + j) & 0xff));
            }
            line.append(' ');
            for (int j = 0; j < n; j++) {
                int c = data.get(base + i + j) & 0xff;
                line.append(isAlnum(c) ? (char) c : '.');
            }
            out.println(line);
        }
    }

    private static boolean isAlnum(int c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }

    private static double unsignedToDouble(long v) {
        return v >= 0 ? (double) v : (double) (v >>> 1) * 2.0;
    }
}
