package io.qcow4j.backup.s3;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.backup.BackupException;
import org.junit.jupiter.api.Test;

/**
 * The addressing rule (path style for an IP address or localhost, or when asked) and the
 * parsing of s3:// locations. The clients built from the standard chain run against a real
 * server in the other S3 tests (system properties in-process, environment variables and a
 * profile file in child JVMs: S3ChildJvmTest).
 */
class S3ClientsTest {
    @Test
    void pathStyleForAnIpAddressOrLocalhost() {
        assertTrue(S3Clients.pathStyle("http://127.0.0.1:9000"));
        assertTrue(S3Clients.pathStyle("http://10.20.30.40"));
        assertTrue(S3Clients.pathStyle("https://[fd00::1]:7480"));
        assertTrue(S3Clients.pathStyle("http://localhost:9000"));
        assertTrue(S3Clients.pathStyle("http://LOCALHOST"));
        assertFalse(S3Clients.pathStyle("https://s3.eu-west-1.amazonaws.com"));
        assertFalse(S3Clients.pathStyle("http://minio.example.com:9000"));
        assertFalse(S3Clients.pathStyle("http://10.20.30.40.example.com"));
        assertFalse(S3Clients.pathStyle(null), "AWS itself: virtual-hosted style");
    }

    @Test
    void pathStyleWhenAsked() {
        String old = System.getProperty("qcow4j.s3.pathStyle");
        try {
            System.setProperty("qcow4j.s3.pathStyle", "1");
            assertTrue(S3Clients.pathStyle("http://rgw.example.com"));
            assertTrue(S3Clients.pathStyle(null));
            System.setProperty("qcow4j.s3.pathStyle", "0");
            assertFalse(S3Clients.pathStyle("http://127.0.0.1:9000"), "0 turns it off, even for an IP address");
        } finally {
            if (old == null) {
                System.clearProperty("qcow4j.s3.pathStyle");
            } else {
                System.setProperty("qcow4j.s3.pathStyle", old);
            }
        }
    }

    @Test
    void locations() throws BackupException {
        assertEquals(new S3Location("backups", "vm1/disk0"), S3Location.parse("s3://backups/vm1/disk0/"));
        assertEquals("vm1/disk0/manifest.json", S3Location.parse("S3://backups/vm1/disk0").key("manifest.json"));
        assertEquals("manifest.json", S3Location.parse("s3://backups").key("manifest.json"));
        assertEquals("s3://backups/vm1", S3Location.parse("s3://backups/vm1//").toString());
        BackupException e = assertThrows(BackupException.class, () -> S3Location.parse("s3://Backups/vm1"));
        assertEquals("'s3://Backups/vm1': 'Backups' is not a bucket name (3 to 63 of a-z 0-9 . -)", e.getMessage());
        assertThrows(BackupException.class, () -> S3Location.parse("s3:///vm1"));
    }
}
