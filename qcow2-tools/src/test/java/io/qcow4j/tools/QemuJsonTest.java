package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** qemu's pretty JSON layout, including its empty-list and escaping quirks. */
class QemuJsonTest {
    @Test
    void layout() {
        Map<String, Object> inner = new LinkedHashMap<>();
        inner.put("flags", List.of());
        inner.put("name", "q\"\\\té\u0001x");
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("list", List.of(inner, 7L));
        m.put("ok", true);
        assertEquals("{\n"
                + "    \"list\": [\n"
                + "        {\n"
                + "            \"flags\": [\n"
                + "            ],\n"
                + "            \"name\": \"q\\\"\\\\\\t\\u00E9\\u0001x\"\n"
                + "        },\n"
                + "        7\n"
                + "    ],\n"
                + "    \"ok\": true\n"
                + "}", QemuJson.pretty(m));
    }
}
