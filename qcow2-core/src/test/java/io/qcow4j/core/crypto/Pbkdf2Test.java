package io.qcow4j.core.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** PBKDF2-HMAC-SHA256 against RFC 7914's vector and the JDK's own PBKDF2 (text passwords), keys short and long. */
class Pbkdf2Test {
    @Test
    void rfc7914Vector() {
        byte[] expected = HexFormat.of().parseHex("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
                + "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783");
        assertArrayEquals(expected, Luks.pbkdf2("sha256", "passwd".getBytes(), "salt".getBytes(), 1, 64));
    }

    @Test
    void sameAsTheJdkPbkdf2() throws Exception {
        Random r = new Random(7);
        javax.crypto.SecretKeyFactory jdk = javax.crypto.SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256");
        for (int keyLen : new int[] {1, 3, 64, 65, 100}) {
            char[] key = new char[keyLen];
            for (int i = 0; i < keyLen; i++) {
                key[i] = (char) (' ' + r.nextInt(95));
            }
            byte[] salt = new byte[32];
            r.nextBytes(salt);
            for (int len : new int[] {20, 32, 64}) {
                byte[] want = jdk.generateSecret(new javax.crypto.spec.PBEKeySpec(key, salt, 1000, 8 * len)).getEncoded();
                assertArrayEquals(want, Luks.pbkdf2("sha256", new String(key).getBytes(java.nio.charset.StandardCharsets.US_ASCII),
                        salt, 1000, len), "key " + keyLen + ", length " + len);
            }
        }
    }
}
