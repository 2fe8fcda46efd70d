package io.qcow4j.core.crypto;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.Set;

import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.api.UnsupportedImageException;

/**
 * The LUKS1 header (592 bytes, big-endian) at the start of the area qcow2's "full disk
 * encryption header pointer" names: cipher, hash, master-key digest, eight keyslots. Every
 * field that sizes or locates something is checked against the area's length.
 */
public final class LuksHeader {
    public static final int SIZE = 592;
    public static final int SLOTS = 8;
    public static final int STRIPES = 4000;
    public static final int ACTIVE = 0x00AC71F3;
    public static final int INACTIVE = 0x0000DEAD;
    static final byte[] MAGIC = {'L', 'U', 'K', 'S', (byte) 0xba, (byte) 0xbe};
    static final int DIGEST_BYTES = 20;
    static final int SALT_BYTES = 32;
    /**
     * PBKDF2 iterations accepted from a file: 2^26 (about 7 times what QEMU's default
     * iter-time of 2 s picks on a current CPU). More is refused as corrupt so a hostile
     * header cannot keep the open busy for hours.
     */
    public static final int MAX_ITERATIONS = 1 << 26;
    /** The active keyslots' iterations together (an open may try them all): at most 2^27. */
    public static final long MAX_TOTAL_ITERATIONS = 1L << 27;
    private static final Set<String> HASHES = Set.of("sha1", "sha224", "sha256", "sha384", "sha512");

    public String cipherName;
    public String cipherMode;
    public String hashSpec;
    public int payloadOffset;
    public int keyBytes;
    public byte[] mkDigest = new byte[DIGEST_BYTES];
    public byte[] mkDigestSalt = new byte[SALT_BYTES];
    public int mkDigestIterations;
    public String uuid;
    public final Slot[] slots = new Slot[SLOTS];

    /** One keyslot: its PBKDF2 parameters and where its split key material lies (in 512-byte sectors). */
    public static final class Slot {
        public int active;
        public int iterations;
        public byte[] salt = new byte[SALT_BYTES];
        public int keyMaterialOffset;
        public int stripes;

        public boolean isActive() {
            return active == ACTIVE;
        }
    }

    /**
     * Parses the header at the start of {@code area}; {@code areaOffset} (its offset in the
     * image file) is for messages, {@code areaLength} bounds the key material.
     */
    public static LuksHeader parse(byte[] area, long areaOffset, long areaLength) throws java.io.IOException {
        if (area.length < SIZE) {
            throw corrupt(areaOffset, "LUKS header shorter than " + SIZE + " bytes");
        }
        ByteBuffer b = ByteBuffer.wrap(area);
        if (!Arrays.equals(Arrays.copyOf(area, 6), MAGIC)) {
            throw corrupt(areaOffset, "Volume is not in LUKS format");
        }
        int version = b.getShort(6) & 0xffff;
        if (version != 1) {
            throw new UnsupportedImageException("LUKS version " + version + " is not supported");
        }
        LuksHeader h = new LuksHeader();
        h.cipherName = string(area, 8, 32);
        h.cipherMode = string(area, 40, 32);
        h.hashSpec = string(area, 72, 32);
        h.payloadOffset = b.getInt(104);
        h.keyBytes = b.getInt(108);
        b.get(112, h.mkDigest);
        b.get(132, h.mkDigestSalt);
        h.mkDigestIterations = b.getInt(164);
        h.uuid = string(area, 168, 40);
        for (int i = 0; i < SLOTS; i++) {
            int at = 208 + 48 * i;
            Slot s = new Slot();
            s.active = b.getInt(at);
            s.iterations = b.getInt(at + 4);
            b.get(at + 8, s.salt);
            s.keyMaterialOffset = b.getInt(at + 40);
            s.stripes = b.getInt(at + 44);
            h.slots[i] = s;
        }
        h.validate(areaOffset, areaLength);
        return h;
    }

    private void validate(long areaOffset, long areaLength) throws java.io.IOException {
        if (!cipherName.equals("aes")) {
            throw new UnsupportedImageException("LUKS cipher '" + cipherName + "' is not supported (aes only)");
        }
        if (!cipherMode.equals("xts-plain64") && !cipherMode.equals("xts-plain")) {
            throw new UnsupportedImageException("LUKS cipher mode '" + cipherMode + "' is not supported (xts-plain64, xts-plain)");
        }
        if (!HASHES.contains(hashSpec)) {
            throw new UnsupportedImageException("LUKS hash '" + hashSpec + "' is not supported");
        }
        if (keyBytes != 32 && keyBytes != 48 && keyBytes != 64) {
            throw corrupt(areaOffset + 108, "LUKS key size " + Integer.toUnsignedString(keyBytes) + " bytes is not one of XTS-AES's");
        }
        if (mkDigestIterations <= 0 || mkDigestIterations > MAX_ITERATIONS) {
            throw corrupt(areaOffset + 164, "LUKS master key iterations " + Integer.toUnsignedString(mkDigestIterations)
                    + " outside 1.." + MAX_ITERATIONS);
        }
        long total = 0;
        for (Slot s : slots) {
            total += s.active == ACTIVE ? Integer.toUnsignedLong(s.iterations) : 0;
        }
        if (total > MAX_TOTAL_ITERATIONS) {
            throw corrupt(areaOffset + 212, "LUKS keyslots ask " + total + " PBKDF2 iterations together, more than "
                    + MAX_TOTAL_ITERATIONS);
        }
        long material = (long) keyBytes * STRIPES;
        long materialSectors = (material + Xts.SECTOR - 1) / Xts.SECTOR;
        long headerSectors = (SIZE + Xts.SECTOR - 1) / Xts.SECTOR;
        for (int i = 0; i < SLOTS; i++) {
            Slot s = slots[i];
            long at = areaOffset + 208 + 48L * i;
            if (s.active != ACTIVE && s.active != INACTIVE) {
                throw corrupt(at, "Keyslot " + i + " state (active/disable) is corrupted");
            }
            if (s.stripes != STRIPES) {
                throw corrupt(at + 44, "Keyslot " + i + " is corrupted (stripes " + Integer.toUnsignedString(s.stripes)
                        + " != " + STRIPES + ")");
            }
            long start = Integer.toUnsignedLong(s.keyMaterialOffset);
            if (start < headerSectors || (start + materialSectors) * Xts.SECTOR > areaLength) {
                throw corrupt(at + 40, "Keyslot " + i + " key material (sector " + start
                        + ") is outside the encryption header area of " + areaLength + " bytes");
            }
            for (int j = 0; j < i; j++) {
                long other = Integer.toUnsignedLong(slots[j].keyMaterialOffset);
                if (start < other + materialSectors && other < start + materialSectors) {
                    throw corrupt(at + 40, "Keyslots " + j + " and " + i + " are overlapping in the header");
                }
            }
            if (s.isActive() && (s.iterations <= 0 || s.iterations > MAX_ITERATIONS)) {
                throw corrupt(at + 4, "Keyslot " + i + " iterations " + Integer.toUnsignedString(s.iterations)
                        + " outside 1.." + MAX_ITERATIONS);
            }
        }
    }

    /** The 592 bytes. */
    public byte[] serialize() {
        ByteBuffer b = ByteBuffer.allocate(SIZE);
        b.put(0, MAGIC);
        b.putShort(6, (short) 1);
        putString(b, 8, 32, cipherName);
        putString(b, 40, 32, cipherMode);
        putString(b, 72, 32, hashSpec);
        b.putInt(104, payloadOffset);
        b.putInt(108, keyBytes);
        b.put(112, mkDigest);
        b.put(132, mkDigestSalt);
        b.putInt(164, mkDigestIterations);
        putString(b, 168, 40, uuid);
        for (int i = 0; i < SLOTS; i++) {
            int at = 208 + 48 * i;
            Slot s = slots[i];
            b.putInt(at, s.active).putInt(at + 4, s.iterations);
            b.put(at + 8, s.salt);
            b.putInt(at + 40, s.keyMaterialOffset).putInt(at + 44, s.stripes);
        }
        return b.array();
    }

    /** The 48 bytes of keyslot {@code i}'s record, at {@link #slotRecordOffset}. */
    public byte[] slotRecord(int i) {
        byte[] all = serialize();
        return java.util.Arrays.copyOfRange(all, slotRecordOffset(i), slotRecordOffset(i) + 48);
    }

    public static int slotRecordOffset(int i) {
        return 208 + 48 * i;
    }

    /** Bytes of split key material per slot. */
    public int materialBytes() {
        return keyBytes * STRIPES;
    }

    /** QEMU's names: "aes-256", "xts", "plain64". */
    public String cipherAlg() {
        return cipherName + "-" + (keyBytes * 4);
    }

    public String modeName() {
        return cipherMode.substring(0, cipherMode.indexOf('-'));
    }

    public String ivgenName() {
        return cipherMode.substring(cipherMode.indexOf('-') + 1);
    }

    static MessageDigest digest(String hash) {
        try {
            return MessageDigest.getInstance(jdkName(hash));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static String jdkName(String hash) {
        return "SHA-" + hash.substring(3);
    }

    private static String string(byte[] a, int off, int len) {
        int end = off;
        while (end < off + len && a[end] != 0) {
            end++;
        }
        return new String(a, off, end - off, StandardCharsets.US_ASCII);
    }

    private static void putString(ByteBuffer b, int off, int len, String s) {
        byte[] v = s.getBytes(StandardCharsets.US_ASCII);
        b.put(off, v, 0, Math.min(v.length, len - 1));
    }

    private static CorruptImageException corrupt(long offset, String why) {
        return new CorruptImageException("LUKS header", offset, why);
    }
}
