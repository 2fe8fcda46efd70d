package io.qcow4j.tools;

import java.math.BigDecimal;
import java.math.BigInteger;

/**
 * Sizes and offsets written the way qemu-img and qemu-io accept them: a decimal
 * number with an optional binary suffix (b/B = bytes, k/K, M, G, T, P, E = powers of
 * 1024), a fraction only together with a suffix ("1.5G"), or a hex number without
 * fraction ("0x10000"; qemu 7.2 still allows a suffix there, deprecated). Leading blanks are allowed, anything trailing is not.
 * Behaviour observed on qemu-img 7.2 (see SizesTest for the cases).
 */
public final class Sizes {

    /** Why a string is not a size: qemu tells garbage and out-of-range apart. */
    public enum Problem { INVALID, TOO_LARGE }

    /** A string that is not a size. */
    public static final class SizeException extends Exception {
        private static final long serialVersionUID = 1L;
        private final Problem problem;

        SizeException(Problem problem) {
            super(problem == Problem.INVALID ? "invalid size" : "size too large");
            this.problem = problem;
        }

        public Problem problem() {
            return problem;
        }
    }

    private static final BigInteger MAX_U64 = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);
    private static final BigInteger MAX_S64 = BigInteger.valueOf(Long.MAX_VALUE);
    private static final BigDecimal TWO_64 = new BigDecimal(BigInteger.ONE.shiftLeft(64));

    private Sizes() {
    }

    /** Parses a size that must fit a signed 64-bit value (qemu's cvtnum). */
    public static long parse(String text) throws SizeException {
        BigInteger v = parseUnsigned(text);
        if (v.compareTo(MAX_S64) > 0) {
            throw new SizeException(Problem.TOO_LARGE);
        }
        return v.longValueExact();
    }

    /** qemu's cvtnum: a size with suffixes up to 2^63-1, or qemu-img's words naming {@code what} ("rate limit"). */
    static long cvtnum(String what, String text) {
        try {
            return parse(text);
        } catch (SizeException e) {
            throw new CliException(e.problem() == Problem.INVALID
                    ? Program.twoErrors("Invalid " + what + " specified. You may use k, M, G, T, P or E suffixes for",
                            "kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.")
                    : "Invalid " + what + " specified. Must be between 0 and " + Long.MAX_VALUE + ".");
        }
    }

    /**
     * The image size argument of qemu-img create, with qemu-img's message (joined to
     * one line) on failure.
     */
    public static long parseImageSize(String text) {
        try {
            return parse(text);
        } catch (SizeException e) {
            throw new CliException(imageSizeMessage(e.problem()));
        }
    }

    static String imageSizeMessage(Problem problem) {
        return problem == Problem.INVALID
                ? Program.twoErrors("Invalid image size specified. You may use k, M, G, T, P or E suffixes for",
                        "kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.")
                : "Invalid image size specified. Must be between 0 and " + Long.MAX_VALUE + ".";
    }

    /** Parses a size up to 2^64-1 (qemu_strtosz). */
    public static BigInteger parseUnsigned(String text) throws SizeException {
        int i = 0;
        int n = text.length();
        while (i < n && isSpace(text.charAt(i))) {
            i++;
        }
        if (i < n && text.charAt(i) == '+') {
            i++;
        }
        int digitsStart = i;
        while (i < n && isDigit(text.charAt(i))) {
            i++;
        }
        if (i == digitsStart) {
            throw invalid();
        }
        BigInteger value = new BigInteger(text.substring(digitsStart, i));
        if (value.compareTo(MAX_U64) > 0) {
            throw new SizeException(Problem.TOO_LARGE);
        }
        if (value.signum() == 0 && i < n && (text.charAt(i) == 'x' || text.charAt(i) == 'X')) {
            return parseHex(text, i + 1);
        }
        BigInteger fraction = BigInteger.ZERO; // 64-bit fixed-point fraction, as qemu keeps it
        if (i < n && text.charAt(i) == '.') {
            i++;
            int fracStart = i;
            while (i < n && isDigit(text.charAt(i))) {
                i++;
            }
            if (i > fracStart) {
                if (i < n && (text.charAt(i) == 'e' || text.charAt(i) == 'E') && exponentFollows(text, i + 1)) {
                    throw invalid(); // "1.5e3": exponents are refused outright
                }
                double f = Double.parseDouble("0." + text.substring(fracStart, i));
                fraction = new BigDecimal(f).multiply(TWO_64).toBigInteger();
            }
        }
        long mul = 1;
        if (i < n) {
            mul = suffixMultiplier(text.charAt(i));
            if (mul > 0) {
                i++;
            } else {
                mul = 1;
            }
        }
        if (i != n) {
            throw invalid();
        }
        if (mul == 1) {
            if (fraction.signum() != 0) {
                throw invalid(); // a fraction needs a suffix: "1.5" is refused, "1.5k" is fine
            }
            return value;
        }
        BigInteger m = BigInteger.valueOf(mul);
        BigInteger scaledFraction = fraction.multiply(m);
        BigInteger result = value.multiply(m).add(scaledFraction.shiftRight(64));
        if (scaledFraction.testBit(63)) {
            result = result.add(BigInteger.ONE); // half a byte or more rounds up
        }
        if (result.compareTo(MAX_U64) > 0) {
            throw new SizeException(Problem.TOO_LARGE);
        }
        return result;
    }

    private static BigInteger parseHex(String text, int start) throws SizeException {
        int i = start;
        int n = text.length();
        while (i < n && Character.digit(text.charAt(i), 16) >= 0) {
            i++;
        }
        if (i == start) {
            throw invalid();
        }
        BigInteger v = new BigInteger(text.substring(start, i), 16);
        if (i < n && suffixMultiplier(text.charAt(i)) > 0) {
            // qemu 7.2 still takes "0x10k" (with a deprecation warning), never a fraction
            v = v.multiply(BigInteger.valueOf(suffixMultiplier(text.charAt(i))));
            i++;
        }
        if (i != n) {
            throw invalid();
        }
        if (v.compareTo(MAX_U64) > 0) {
            throw new SizeException(Problem.TOO_LARGE);
        }
        return v;
    }

    private static boolean exponentFollows(String text, int i) {
        if (i < text.length() && (text.charAt(i) == '+' || text.charAt(i) == '-')) {
            i++;
        }
        return i < text.length() && isDigit(text.charAt(i));
    }

    /** Bytes per unit of a suffix letter, or 0 if the letter is no suffix. */
    static long suffixMultiplier(char c) {
        return switch (c) {
            case 'b', 'B' -> 1L;
            case 'k', 'K' -> 1L << 10;
            case 'm', 'M' -> 1L << 20;
            case 'g', 'G' -> 1L << 30;
            case 't', 'T' -> 1L << 40;
            case 'p', 'P' -> 1L << 50;
            case 'e', 'E' -> 1L << 60;
            default -> 0L;
        };
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }

    private static boolean isSpace(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == 0x0b;
    }

    private static SizeException invalid() {
        return new SizeException(Problem.INVALID);
    }
}
