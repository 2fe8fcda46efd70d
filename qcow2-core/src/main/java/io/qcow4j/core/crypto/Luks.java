package io.qcow4j.core.crypto;

import java.io.IOException;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.UUID;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

import io.qcow4j.core.api.UnsupportedImageException;

/**
 * Unlocking and creating LUKS1 key material: PBKDF2 (HMAC over the header's hash) of the
 * passphrase decrypts a keyslot's split material, the splitter merges it into a master key,
 * and the header's PBKDF2 digest of the master key says whether it is the right one.
 */
public final class Luks {
    /** Reads {@code len} bytes of the encryption header area at {@code offset} (from its start). */
    public interface AreaReader {
        byte[] read(long offset, int len) throws IOException;
    }

    /** A header with the key material of its area, ready to be written there. */
    public record Created(LuksHeader header, byte[] area, byte[] masterKey) {
    }

    /** Where the key material of slot 0 starts (sectors), and the alignment of each slot's (QEMU's 4 KiB). */
    private static final int ALIGN_SECTORS = 8;

    private Luks() {
    }

    /** The master key, or QEMU's refusal when no active slot opens with {@code passphrase}. */
    public static byte[] unlock(LuksHeader h, AreaReader area, byte[] passphrase) throws IOException {
        for (int i = 0; i < LuksHeader.SLOTS; i++) {
            byte[] key = unlockSlot(h, area, passphrase, i);
            if (key != null) {
                return key;
            }
        }
        throw new UnsupportedImageException("Invalid password, cannot unlock any keyslot");
    }

    /** The master key if active slot {@code index} opens with {@code passphrase}, else null. */
    public static byte[] unlockSlot(LuksHeader h, AreaReader area, byte[] passphrase, int index) throws IOException {
        LuksHeader.Slot s = h.slots[index];
        if (!s.isActive()) {
            return null;
        }
        byte[] slotKey = pbkdf2(h.hashSpec, passphrase, s.salt, s.iterations, h.keyBytes);
        byte[] material = area.read((long) s.keyMaterialOffset * Xts.SECTOR, h.materialBytes());
        byte[] padded = java.util.Arrays.copyOf(material, roundUp(material.length));
        new Xts(slotKey, h.cipherMode.endsWith("-plain")).decrypt(padded, 0, padded.length, 0);
        byte[] candidate = AfSplitter.merge(padded, h.keyBytes, s.stripes, h.hashSpec);
        byte[] digest = pbkdf2(h.hashSpec, candidate, h.mkDigestSalt, h.mkDigestIterations, LuksHeader.DIGEST_BYTES);
        return MessageDigest.isEqual(digest, h.mkDigest) ? candidate : null;
    }

    /**
     * Makes slot {@code index} of {@code h} hold {@code masterKey} under {@code passphrase}:
     * sets its salt and iterations (not its state) and returns the encrypted split material
     * to write at its key material offset (whole sectors).
     */
    public static byte[] sealSlot(LuksHeader h, int index, byte[] masterKey, byte[] passphrase, int iterations) {
        SecureRandom random = new SecureRandom();
        LuksHeader.Slot s = h.slots[index];
        s.iterations = iterations;
        random.nextBytes(s.salt);
        byte[] material = java.util.Arrays.copyOf(AfSplitter.split(masterKey, s.stripes, h.hashSpec, random),
                roundUp(h.materialBytes()));
        byte[] slotKey = pbkdf2(h.hashSpec, passphrase, s.salt, iterations, h.keyBytes);
        new Xts(slotKey, h.cipherMode.endsWith("-plain")).encrypt(material, 0, material.length, 0);
        return material;
    }

    /** The cipher for guest data with {@code masterKey}. */
    public static Xts dataCipher(LuksHeader h, byte[] masterKey) {
        return new Xts(masterKey, h.cipherMode.endsWith("-plain"));
    }

    /**
     * A new header as QEMU makes it (aes-256-xts-plain64, sha256, slot 0 active, the other
     * seven inactive, each slot's material 4 KiB-aligned); the area is the header plus the
     * material, {@code payload offset} its length.
     */
    public static Created create(byte[] passphrase, int slotIterations, int digestIterations) {
        SecureRandom random = new SecureRandom();
        LuksHeader h = new LuksHeader();
        h.cipherName = "aes";
        h.cipherMode = "xts-plain64";
        h.hashSpec = "sha256";
        h.keyBytes = 64;
        h.uuid = UUID.randomUUID().toString();
        byte[] master = new byte[h.keyBytes];
        random.nextBytes(master);
        random.nextBytes(h.mkDigestSalt);
        h.mkDigestIterations = digestIterations;
        h.mkDigest = pbkdf2(h.hashSpec, master, h.mkDigestSalt, digestIterations, LuksHeader.DIGEST_BYTES);
        int materialSectors = roundUp(h.materialBytes()) / Xts.SECTOR;
        int slotSectors = (materialSectors + ALIGN_SECTORS - 1) / ALIGN_SECTORS * ALIGN_SECTORS;
        for (int i = 0; i < LuksHeader.SLOTS; i++) {
            LuksHeader.Slot s = new LuksHeader.Slot();
            s.active = LuksHeader.INACTIVE;
            s.keyMaterialOffset = ALIGN_SECTORS + i * slotSectors;
            s.stripes = LuksHeader.STRIPES;
            h.slots[i] = s;
        }
        h.payloadOffset = ALIGN_SECTORS + LuksHeader.SLOTS * slotSectors;
        byte[] area = new byte[h.payloadOffset * Xts.SECTOR];
        LuksHeader.Slot s0 = h.slots[0];
        s0.active = LuksHeader.ACTIVE;
        s0.iterations = slotIterations;
        random.nextBytes(s0.salt);
        byte[] material = java.util.Arrays.copyOf(AfSplitter.split(master, s0.stripes, h.hashSpec, random),
                materialSectors * Xts.SECTOR);
        byte[] slotKey = pbkdf2(h.hashSpec, passphrase, s0.salt, slotIterations, h.keyBytes);
        new Xts(slotKey, false).encrypt(material, 0, material.length, 0);
        System.arraycopy(material, 0, area, s0.keyMaterialOffset * Xts.SECTOR, h.materialBytes());
        System.arraycopy(h.serialize(), 0, area, 0, LuksHeader.SIZE);
        return new Created(h, area, master);
    }

    /**
     * PBKDF2-HMAC-SHA256 iterations this JVM runs in {@code millis} ms with a 64-byte key
     * (QEMU's way of honouring encrypt.iter-time, with our own speed), at least 1000 and
     * at most {@link LuksHeader#MAX_ITERATIONS} (so the image can be opened again).
     */
    public static int iterationsFor(int millis) {
        byte[] salt = new byte[LuksHeader.SALT_BYTES];
        byte[] pass = new byte[8];
        // the JIT compiles the HMAC loop only after a while: grow the probe until it takes
        // 50 ms, and keep the best rate of the runs (a cold first run would count too few)
        long rate = 1;
        for (int probe = 1 << 12, runs = 0; runs < 12; runs++) {
            long start = System.nanoTime();
            pbkdf2("sha256", pass, salt, probe, 64);
            long took = Math.max(1, System.nanoTime() - start);
            rate = Math.max(rate, (long) (probe * 1_000_000.0 / took)); // iterations per ms
            if (took >= 50_000_000L && runs >= 4) {
                break;
            }
            probe = (int) Math.min(1 << 24, (long) probe * 2);
        }
        long wanted = rate * millis;
        return (int) Math.max(1000, Math.min(LuksHeader.MAX_ITERATIONS, wanted));
    }

    /**
     * PBKDF2 (RFC 8018) with HMAC-{@code hash}; the password is bytes (a master key is not
     * text). Through the JDK's Mac, whose SHA code the full JIT replaces with the CPU's SHA
     * instructions: the CLI runs LUKS commands with the full JIT for this (bin/qcow4j).
     */
    static byte[] pbkdf2(String hash, byte[] password, byte[] salt, int iterations, int length) {
        try {
            Mac mac = Mac.getInstance("Hmac" + LuksHeader.jdkName(hash).replace("-", ""));
            mac.init(password.length == 0 ? new EmptyKey() : new SecretKeySpec(password, "HMAC"));
            int hl = mac.getMacLength();
            byte[] out = new byte[length];
            byte[] u = new byte[hl];
            byte[] t = new byte[hl];
            for (int block = 1, pos = 0; pos < length; block++, pos += hl) {
                mac.update(salt);
                mac.update(new byte[] {(byte) (block >>> 24), (byte) (block >>> 16), (byte) (block >>> 8), (byte) block});
                mac.doFinal(u, 0);
                System.arraycopy(u, 0, t, 0, hl);
                for (int i = 1; i < iterations; i++) {
                    mac.update(u);
                    mac.doFinal(u, 0);
                    for (int k = 0; k < hl; k++) {
                        t[k] ^= u[k];
                    }
                }
                System.arraycopy(t, 0, out, pos, Math.min(hl, length - pos));
            }
            return out;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("PBKDF2 with " + hash + " is not available: " + e, e);
        }
    }

    /** HMAC with an empty key (an empty passphrase): SecretKeySpec refuses zero-length keys. */
    private static final class EmptyKey implements javax.crypto.SecretKey {
        @Override
        public String getAlgorithm() {
            return "HMAC";
        }

        @Override
        public String getFormat() {
            return "RAW";
        }

        @Override
        public byte[] getEncoded() {
            return new byte[0];
        }
    }

    private static int roundUp(int n) {
        return (n + Xts.SECTOR - 1) / Xts.SECTOR * Xts.SECTOR;
    }
}
