package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.qcow4j.testing.Qemu;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Size parsing against the oracle: {@code qemu-img create -f raw F SIZE} either echoes
 * "size=N" or refuses, saying whether the text is garbage or out of range.
 */
class SizesTest {
    private static final Pattern ECHO = Pattern.compile("size=(\\d+)");

    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"0", "1", "512", "1b", "1B", "1k", "1K", "1m", "1M", "1g", "1G", "1t", "1T",
        "1.5G", "0.5k", "1.k", "1.0", "1.", "1.25M", "3.999999999k", "0.0001k", "0x10", "0X1f", " 5", "\t7k", "+5",
        "007", "4096", "1e3", "1.5e3k", "1.5e", "abc", "1x", "1.5", "1024.5", "1kk", "1Kb", "", " ", "0x", "0x1.5",
        "0x10k", "0x1g", "0xffffffffffffffffk", "-1", "- 1", "5 ", "16E", "8E", "7.99E", "9223372036854775807", "9223372036854775808",
        "18446744073709551615", "18446744073709551616", "99999999999999999999999", ".5k", "k", "1,5k"})
    void sameAsQemuImg(String text) {
        // "-" first would be taken as an option by qemu-img; "--" ends its options
        Qemu.Result r = Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "qemu-img", "create", "-f", "raw", "s.raw", "--", text);
        String expected;
        Matcher m = ECHO.matcher(r.stdout());
        if (m.find()) {
            expected = m.group(1); // echoed, even when the raw driver then refuses the size
        } else if (r.stderr().contains("Must be between")) {
            expected = "TOO_LARGE";
        } else {
            expected = "INVALID";
        }
        String actual;
        try {
            actual = Long.toString(Sizes.parse(text));
        } catch (Sizes.SizeException e) {
            actual = e.problem().name();
        }
        assertEquals(expected, actual, "'" + text + "': " + r.describe());
    }
}
