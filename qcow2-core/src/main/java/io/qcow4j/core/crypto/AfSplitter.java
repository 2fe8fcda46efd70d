package io.qcow4j.core.crypto;

import java.security.MessageDigest;
import java.security.SecureRandom;

/**
 * LUKS1's anti-forensic splitter: a key of n bytes spread over {@code stripes} blocks of n
 * bytes, every block needed to recover it. The blocks are xored together, with a hash
 * "diffusion" of the running value between them.
 */
final class AfSplitter {
    private AfSplitter() {
    }

    /** The key {@code material} (stripes blocks of {@code keyBytes}) holds. */
    static byte[] merge(byte[] material, int keyBytes, int stripes, String hash) {
        byte[] d = new byte[keyBytes];
        for (int s = 0; s < stripes - 1; s++) {
            xor(d, material, s * keyBytes);
            diffuse(d, hash);
        }
        xor(d, material, (stripes - 1) * keyBytes);
        return d;
    }

    /** Random blocks whose merge is {@code key}. */
    static byte[] split(byte[] key, int stripes, String hash, SecureRandom random) {
        int n = key.length;
        byte[] material = new byte[n * stripes];
        random.nextBytes(material);
        byte[] d = new byte[n];
        for (int s = 0; s < stripes - 1; s++) {
            xor(d, material, s * n);
            diffuse(d, hash);
        }
        for (int i = 0; i < n; i++) {
            material[(stripes - 1) * n + i] = (byte) (d[i] ^ key[i]);
        }
        return material;
    }

    private static void xor(byte[] d, byte[] src, int off) {
        for (int i = 0; i < d.length; i++) {
            d[i] ^= src[off + i];
        }
    }

    /** Each digest-sized piece i becomes H(be32(i) || piece), the last one cut to its length. */
    private static void diffuse(byte[] d, String hash) {
        MessageDigest md = LuksHeader.digest(hash);
        int ds = md.getDigestLength();
        for (int i = 0, pos = 0; pos < d.length; i++, pos += ds) {
            int len = Math.min(ds, d.length - pos);
            md.reset();
            md.update(new byte[] {(byte) (i >>> 24), (byte) (i >>> 16), (byte) (i >>> 8), (byte) i});
            md.update(d, pos, len);
            byte[] h = md.digest();
            System.arraycopy(h, 0, d, pos, len);
        }
    }
}
