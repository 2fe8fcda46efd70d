package io.qcow4j.nbd.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/** URIs as qemu-img reads them (its canonical names and messages were taken from qemu-img 7.2 info). */
class NbdUriTest {
    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "nbd+unix:///exp?socket=/run/s|nbd+unix:///exp?socket=/run/s",
        "nbd+unix:///?socket=/run/s|nbd+unix://?socket=/run/s",
        "nbd+unix://?socket=/run/s|nbd+unix://?socket=/run/s",
        "nbd+unix:///e%78p?socket=/run/s#frag|nbd+unix:///exp?socket=/run/s",
        "nbd://127.0.0.1:10899|nbd://127.0.0.1:10899",
        "nbd://127.0.0.1:010899/|nbd://127.0.0.1:10899",
        "nbd+tcp://host/a%20b|nbd://host:10809/a b",
        "nbd://[::1]:5000/x|nbd://::1:5000/x",
        "nbd:127.0.0.2:10809:exportname=a b|nbd://127.0.0.2:10809/a b",
        "nbd:unix:/run/s:exportname=exp|nbd+unix:///exp?socket=/run/s",
        "nbds+unix:///vda?socket=/run/s&tls-certificates=/etc/pki/qemu|nbds+unix:///vda?socket=/run/s",
    })
    void canonicalNames(String uri, String name) {
        assertEquals(name, NbdUri.parse(uri).toString());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "nbd+unix:///exp|No valid URL specified",
        "nbd+unix://host/exp?socket=/s|No valid URL specified",
        "nbd:///exp|No valid URL specified",
        "nbd://|No valid URL specified",
        "nbd://127.0.0.1:99999/x|No valid URL specified",
        "nbd://127.0.0.1:abc/x|No valid URL specified",
        "nbd://127.0.0.1/x?socket=/s|No valid URL specified",
        "nbd+unix:///exp?socket=/s&foo=1|No valid URL specified",
        "nbd+unix:///exp?socket=/s&socket=/s|No valid URL specified",
        "nbd+unix:///exp?socket=/s&tls-certificates=/d|No valid URL specified",
        "nbd+foo:///x|Unknown protocol 'nbd+foo'",
        "nbd+unix:?socket=/s|File name string for NBD must start with 'nbd:'",
        "nbd:foo|error parsing address 'foo'",
    })
    void qemuRefusesThese(String uri, String message) {
        assertEquals(message, assertThrows(IllegalArgumentException.class, () -> NbdUri.parse(uri)).getMessage());
    }

    @Test
    void partsAndFileNames() {
        NbdUri u = NbdUri.parse("nbds://backup:10810/vda?tls-certificates=/etc/pki/qemu");
        assertEquals(new NbdUri(null, "backup", 10810, "vda", true, Path.of("/etc/pki/qemu")), u);
        assertEquals("backup:10810", u.address());
        assertTrue(NbdUri.isNbd("nbd+unix:///?socket=s") && NbdUri.isNbd("nbd:host:1"));
        assertFalse(NbdUri.isNbd("disk.qcow2") || NbdUri.isNbd("dir/nbd:x") || NbdUri.isNbd("./nbd://x"));
    }
}
