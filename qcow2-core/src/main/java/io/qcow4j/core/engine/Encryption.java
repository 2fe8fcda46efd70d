package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;

import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.api.UnsupportedImageException;
import io.qcow4j.core.crypto.CryptStorage;
import io.qcow4j.core.crypto.Luks;
import io.qcow4j.core.crypto.LuksHeader;
import io.qcow4j.core.crypto.Xts;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HeaderExtension;
import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.storage.Storage;

/** crypt_method 2: the LUKS header the "full disk encryption header pointer" names, and the data cipher. */
final class Encryption {
    static final int CRYPT_NONE = 0;
    static final int CRYPT_AES = 1;
    static final int CRYPT_LUKS = 2;
    /** The encryption header area is a LUKS header and 8 keyslots' material: QEMU's is 2 MiB; more is corrupt. */
    static final long MAX_AREA = 16L << 20;
    static final String SECRET_REQUIRED = "Parameter 'encrypt.key-secret' is required for cipher";

    final long areaOffset;
    final long areaLength;
    final LuksHeader luks;
    /** The cipher of guest data; null when opened without the secret. */
    final Xts cipher;
    /** The unlocked master key (keyslot changes need it); null without the secret. */
    final byte[] masterKey;

    private Encryption(long areaOffset, long areaLength, LuksHeader luks, Xts cipher, byte[] masterKey) {
        this.areaOffset = areaOffset;
        this.areaLength = areaLength;
        this.luks = luks;
        this.cipher = cipher;
        this.masterKey = masterKey;
    }

    /** The image's encryption, null for none; refuses what this engine cannot decrypt. */
    static Encryption open(Storage storage, Header h, Geometry geo, OpenOptions options) throws IOException {
        if (h.cryptMethod() == CRYPT_NONE) {
            return null;
        }
        if (h.cryptMethod() == CRYPT_AES) {
            throw new UnsupportedImageException("Encrypted images with the legacy AES method are not supported (crypt_method 1); "
                    + "convert them with qemu-img");
        }
        if (h.cryptMethod() != CRYPT_LUKS) {
            throw new UnsupportedImageException("Unsupported encryption method: " + h.cryptMethod() + " (crypt_method)");
        }
        HeaderExtension ext = h.extension(HeaderExtension.FULL_DISK_ENCRYPTION);
        if (ext == null) {
            throw new CorruptImageException("header", Header.CRYPT_METHOD, "LUKS encryption without the full disk encryption header extension");
        }
        if (ext.data().length != 16) {
            throw new CorruptImageException("full disk encryption header pointer", h.headerLength(),
                    "length " + ext.data().length + " (16 expected)");
        }
        ByteBuffer b = ByteBuffer.wrap(ext.data());
        long offset = b.getLong(0);
        long length = b.getLong(8);
        if (!HostOffsets.isCluster(offset, geo.clusterSize()) || length < LuksHeader.SIZE || length > MAX_AREA
                || !HostOffsets.fits(offset, length, storage.length())) {
            throw new CorruptImageException("full disk encryption header pointer", h.headerLength(),
                    "encryption header area at 0x" + Long.toHexString(offset) + ", " + Long.toUnsignedString(length)
                            + " bytes: not cluster-aligned, not " + LuksHeader.SIZE + " B to " + MAX_AREA
                            + " B, or beyond the end of the file");
        }
        ByteBuffer head = ByteBuffer.allocate(LuksHeader.SIZE);
        storage.read(offset, head);
        LuksHeader luks = LuksHeader.parse(head.array(), offset, length);
        byte[] secret = options.encryptionSecret();
        if (secret == null) {
            if (options.withoutDecryption()) {
                return new Encryption(offset, length, luks, null, null);
            }
            throw new UnsupportedImageException(SECRET_REQUIRED);
        }
        byte[] master = Luks.unlock(luks, (off, len) -> {
            ByteBuffer m = ByteBuffer.allocate(len);
            storage.read(offset + off, m);
            return m.array();
        }, secret);
        return new Encryption(offset, length, luks, Luks.dataCipher(luks, master), master);
    }

    /** Reads of the header area (key material), bounded by its validated length. */
    Luks.AreaReader area(Storage storage) {
        return (off, len) -> {
            ByteBuffer m = ByteBuffer.allocate(len);
            storage.read(areaOffset + off, m);
            return m.array();
        };
    }

    /** Guest data through the cipher. */
    Storage dataStorage(Storage data) {
        return new CryptStorage(data, cipher);
    }

    /**
     * Makes a new, empty image LUKS-encrypted: the header area in new clusters, then the
     * header names it (crypt_method 2 and the header pointer extension) in one write.
     */
    static void init(Qcow2Engine img, Luks.Created luks) throws IOException {
        img.ensureWritable();
        byte[] area = luks.area();
        int clusters = (int) ((area.length + (long) img.geo.clusterSize() - 1) / img.geo.clusterSize());
        long offset = img.refcounts.allocate(clusters, false);
        img.storage.write(offset, ByteBuffer.wrap(area));
        img.storage.flush();
        ByteBuffer ext = ByteBuffer.allocate(16).putLong(0, offset).putLong(8, area.length);
        img.updateHeader(h -> h.toBuilder().cryptMethod(CRYPT_LUKS).extension(HeaderExtension.FULL_DISK_ENCRYPTION, ext.array()).build());
        img.writeHeader();
        img.storage.flush();
    }
}
