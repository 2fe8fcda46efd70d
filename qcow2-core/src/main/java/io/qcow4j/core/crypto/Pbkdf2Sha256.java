package io.qcow4j.core.crypto;

import java.security.MessageDigest;

/**
 * PBKDF2-HMAC-SHA256 with the HMAC pads hashed once and two SHA-256 compressions per
 * iteration, on int arrays. The JDK's Mac rehashes the pads at every call (four
 * compressions), and under the CLI's C1-only JIT its SHA-256 intrinsics are not used:
 * this is several times faster there, which matters for QEMU's millions of iterations.
 */
final class Pbkdf2Sha256 {
    private static final int[] K = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    private static final int[] IV = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

    private Pbkdf2Sha256() {
    }

    static byte[] derive(byte[] password, byte[] salt, int iterations, int length) {
        byte[] key = password;
        if (key.length > 64) {
            key = sha256(key);
        }
        byte[] ipad = new byte[64];
        byte[] opad = new byte[64];
        for (int i = 0; i < 64; i++) {
            byte k = i < key.length ? key[i] : 0;
            ipad[i] = (byte) (k ^ 0x36);
            opad[i] = (byte) (k ^ 0x5c);
        }
        int[] inner = IV.clone();
        compress(inner, words(ipad, 0));
        int[] outer = IV.clone();
        compress(outer, words(opad, 0));
        byte[] out = new byte[length];
        int[] w = new int[64];
        int[] state = new int[8];
        for (int block = 1, pos = 0; pos < length; block++, pos += 32) {
            // U1 = HMAC(salt || be32(block)), through the JDK (the salt may be any length)
            byte[] first = new byte[salt.length + 4];
            System.arraycopy(salt, 0, first, 0, salt.length);
            first[salt.length] = (byte) (block >>> 24);
            first[salt.length + 1] = (byte) (block >>> 16);
            first[salt.length + 2] = (byte) (block >>> 8);
            first[salt.length + 3] = (byte) block;
            int[] u = hmacLong(ipad, opad, first);
            int[] t = u.clone();
            for (int i = 1; i < iterations; i++) {
                // inner: H(ipad-state, U || padding for 96 bytes); outer: H(opad-state, inner || padding)
                System.arraycopy(inner, 0, state, 0, 8);
                System.arraycopy(u, 0, w, 0, 8);
                w[8] = 0x80000000;
                for (int j = 9; j < 15; j++) {
                    w[j] = 0;
                }
                w[15] = (64 + 32) * 8;
                compressWords(state, w);
                System.arraycopy(state, 0, w, 0, 8);
                System.arraycopy(outer, 0, state, 0, 8);
                w[8] = 0x80000000;
                for (int j = 9; j < 15; j++) {
                    w[j] = 0;
                }
                w[15] = (64 + 32) * 8;
                compressWords(state, w);
                System.arraycopy(state, 0, u, 0, 8);
                for (int j = 0; j < 8; j++) {
                    t[j] ^= u[j];
                }
            }
            for (int j = 0; j < 8 && pos + 4 * j < length; j++) {
                for (int b = 0; b < 4 && pos + 4 * j + b < length; b++) {
                    out[pos + 4 * j + b] = (byte) (t[j] >>> (24 - 8 * b));
                }
            }
        }
        return out;
    }

    /** HMAC of a message of any length with the JDK's SHA-256, as 8 words. */
    private static int[] hmacLong(byte[] ipad, byte[] opad, byte[] message) {
        MessageDigest md = LuksHeader.digest("sha256");
        md.update(ipad);
        md.update(message);
        byte[] in = md.digest();
        md.update(opad);
        md.update(in);
        byte[] h = md.digest();
        int[] r = new int[8];
        for (int j = 0; j < 8; j++) {
            r[j] = ((h[4 * j] & 0xff) << 24) | ((h[4 * j + 1] & 0xff) << 16) | ((h[4 * j + 2] & 0xff) << 8) | (h[4 * j + 3] & 0xff);
        }
        return r;
    }

    private static byte[] sha256(byte[] b) {
        return LuksHeader.digest("sha256").digest(b);
    }

    private static int[] words(byte[] b, int off) {
        int[] w = new int[64];
        for (int j = 0; j < 16; j++) {
            int p = off + 4 * j;
            w[j] = ((b[p] & 0xff) << 24) | ((b[p + 1] & 0xff) << 16) | ((b[p + 2] & 0xff) << 8) | (b[p + 3] & 0xff);
        }
        return w;
    }

    private static void compress(int[] state, int[] w) {
        compressWords(state, w);
    }

    /** One SHA-256 compression of the 16 words in {@code w[0..15]} (w is used as the schedule) into {@code state}. */
    private static void compressWords(int[] state, int[] w) {
        for (int j = 16; j < 64; j++) {
            int x = w[j - 15];
            int y = w[j - 2];
            int s0 = Integer.rotateRight(x, 7) ^ Integer.rotateRight(x, 18) ^ (x >>> 3);
            int s1 = Integer.rotateRight(y, 17) ^ Integer.rotateRight(y, 19) ^ (y >>> 10);
            w[j] = w[j - 16] + s0 + w[j - 7] + s1;
        }
        int a = state[0];
        int b = state[1];
        int c = state[2];
        int d = state[3];
        int e = state[4];
        int f = state[5];
        int g = state[6];
        int h = state[7];
        for (int j = 0; j < 64; j++) {
            int t1 = h + (Integer.rotateRight(e, 6) ^ Integer.rotateRight(e, 11) ^ Integer.rotateRight(e, 25))
                    + ((e & f) ^ (~e & g)) + K[j] + w[j];
            int t2 = (Integer.rotateRight(a, 2) ^ Integer.rotateRight(a, 13) ^ Integer.rotateRight(a, 22))
                    + ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        state[0] += a;
        state[1] += b;
        state[2] += c;
        state[3] += d;
        state[4] += e;
        state[5] += f;
        state[6] += g;
        state[7] += h;
    }
}
