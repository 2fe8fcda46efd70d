package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** qemu's -o syntax: commas, doubled commas, bare and "no" flags, several lists, help. */
class OptionListTest {
    @Test
    void parsesLikeQemu() {
        OptionList o = OptionList.parse(List.of("cluster_size=4k,data_file=a,,b", "lazy_refcounts,noextended_l2",
                "cluster_size=8k"));
        assertEquals(Map.of("cluster_size", "8k", "data_file", "a,b", "lazy_refcounts", "on", "extended_l2", "off"),
                o.values());
        assertTrue(OptionList.parse(List.of("compat=1.1,help")).wantsHelp());
        assertTrue(OptionList.parse(List.of("?")).wantsHelp());
    }

    @Test
    void refusesMalformedLists() {
        for (String bad : new String[] {"", ",a=1", "a=1,", "a=1,,,"}) {
            CliException e = assertThrows(CliException.class, () -> OptionList.parse(List.of(bad)));
            assertEquals("Invalid option list: " + bad, e.getMessage());
        }
        assertEquals(Map.of("a", "1,"), OptionList.parse(List.of("a=1,,")).values());
    }

    @Test
    void typedValues() {
        assertEquals(true, OptionList.parseBool("x", "yes"));
        assertEquals(false, OptionList.parseBool("x", "n"));
        assertEquals("Parameter 'x' expects 'on' or 'off'",
                assertThrows(CliException.class, () -> OptionList.parseBool("x", "maybe")).getMessage());
        assertEquals(16, OptionList.parseNumber("n", "0x10"));
        assertEquals(8, OptionList.parseNumber("n", "010"));
        assertEquals(0, OptionList.parseNumber("n", "0"));
        assertEquals("Parameter 'n' expects a number",
                assertThrows(CliException.class, () -> OptionList.parseNumber("n", "16k")).getMessage());
        assertEquals(65536, OptionList.parseSize("s", "64k"));
        // qemu's three lines (printed so in drop-in mode, joined as qcow4j)
        assertEquals("Parameter 's' expects a non-negative number below 2^64\nOptional suffix k, M, G, T, P or E"
                + " means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.",
                assertThrows(CliException.class, () -> OptionList.parseSize("s", "-1")).getMessage());
    }
}
