package io.qcow4j.core.crypto;

import java.security.GeneralSecurityException;
import javax.crypto.Cipher;
import javax.crypto.spec.SecretKeySpec;

/**
 * AES in XTS mode (IEEE 1619) over 512-byte sectors, with LUKS's "plain64" (or "plain",
 * 32-bit) initial vector: the sector number, little-endian, zero-padded to 16 bytes.
 * Built on AES/ECB/NoPadding (the JDK has no XTS); sectors are whole blocks, so no
 * ciphertext stealing is needed.
 */
public final class Xts {
    public static final int SECTOR = 512;
    private final Cipher dataEnc;
    private final Cipher dataDec;
    private final Cipher tweakEnc;
    private final boolean plain32;

    /** {@code key}: the two AES keys one after the other (32, 48 or 64 bytes). */
    public Xts(byte[] key, boolean plain32) {
        int half = key.length / 2;
        try {
            SecretKeySpec k1 = new SecretKeySpec(key, 0, half, "AES");
            SecretKeySpec k2 = new SecretKeySpec(key, half, half, "AES");
            dataEnc = Cipher.getInstance("AES/ECB/NoPadding");
            dataEnc.init(Cipher.ENCRYPT_MODE, k1);
            dataDec = Cipher.getInstance("AES/ECB/NoPadding");
            dataDec.init(Cipher.DECRYPT_MODE, k1);
            tweakEnc = Cipher.getInstance("AES/ECB/NoPadding");
            tweakEnc.init(Cipher.ENCRYPT_MODE, k2);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES is not available: " + e, e);
        }
        this.plain32 = plain32;
    }

    /** Encrypts {@code len} bytes (whole sectors) of {@code buf} in place, the first being sector {@code sector}. */
    public void encrypt(byte[] buf, int off, int len, long sector) {
        run(buf, off, len, sector, true);
    }

    public void decrypt(byte[] buf, int off, int len, long sector) {
        run(buf, off, len, sector, false);
    }

    private synchronized void run(byte[] buf, int off, int len, long sector, boolean enc) {
        if (len % SECTOR != 0) {
            throw new IllegalArgumentException("not whole sectors: " + len);
        }
        byte[] t = new byte[16];
        byte[] x = new byte[SECTOR];
        try {
            for (int s = 0; s < len; s += SECTOR, sector++) {
                long iv = plain32 ? sector & 0xffffffffL : sector;
                java.util.Arrays.fill(t, (byte) 0);
                for (int i = 0; i < 8; i++) {
                    t[i] = (byte) (iv >>> (8 * i));
                }
                tweakEnc.doFinal(t, 0, 16, t, 0);
                // x = P xor T_j for every block, one ECB call for the sector, then xor T_j again
                byte[] tweaks = new byte[SECTOR];
                for (int b = 0; b < SECTOR; b += 16) {
                    System.arraycopy(t, 0, tweaks, b, 16);
                    for (int i = 0; i < 16; i++) {
                        x[b + i] = (byte) (buf[off + s + b + i] ^ t[i]);
                    }
                    multiplyByAlpha(t);
                }
                (enc ? dataEnc : dataDec).doFinal(x, 0, SECTOR, x, 0);
                for (int i = 0; i < SECTOR; i++) {
                    buf[off + s + i] = (byte) (x[i] ^ tweaks[i]);
                }
            }
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES failed: " + e, e);
        }
    }

    /** T = T * alpha in GF(2^128), little-endian byte order as XTS defines it. */
    private static void multiplyByAlpha(byte[] t) {
        int carry = 0;
        for (int i = 0; i < 16; i++) {
            int b = t[i] & 0xff;
            t[i] = (byte) ((b << 1) | carry);
            carry = b >>> 7;
        }
        if (carry != 0) {
            t[0] ^= (byte) 0x87;
        }
    }
}
