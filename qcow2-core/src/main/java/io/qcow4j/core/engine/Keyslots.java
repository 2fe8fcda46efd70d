package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.api.AmendException;
import io.qcow4j.core.api.UnsupportedImageException;
import io.qcow4j.core.crypto.Luks;
import io.qcow4j.core.crypto.LuksHeader;
import io.qcow4j.core.crypto.Xts;
import io.qcow4j.core.storage.Storage;

/**
 * LUKS keyslot changes as qemu-img amend makes them (encrypt.state, keyslot, new-secret,
 * old-secret), with its refusals in its words. A new slot's material is written and
 * flushed before its header record turns it active; an erased slot's record turns
 * inactive before its material is overwritten with random bytes. An engine part: the caller
 * holds the image's lock.
 */
public final class Keyslots {
    private final Qcow2Engine img;

    Keyslots(Qcow2Engine img) {
        this.img = img;
    }

    /** The LUKS header (as read at open), or null for an image that is not encrypted. */
    public LuksHeader header() {
        return img.encryption == null ? null : img.encryption.luks;
    }

    /** Puts the master key in slot {@code slot} (-1: the first free one) under {@code passphrase}. */
    public void add(byte[] passphrase, int slot, int iterTimeMillis) throws IOException {
        img.ensureOpen();
        Encryption e = requireUnlocked(img);
        LuksHeader h = e.luks;
        if (slot < 0) {
            for (int i = 0; i < LuksHeader.SLOTS && slot < 0; i++) {
                if (!h.slots[i].isActive()) {
                    slot = i;
                }
            }
            if (slot < 0) {
                throw new AmendException("Can't add a keyslot - all keyslots are in use");
            }
        } else {
            checkIndex(slot);
            if (h.slots[slot].isActive()) {
                throw new AmendException("Refusing to overwrite active keyslot " + slot + " - please erase it first");
            }
        }
        byte[] material = Luks.sealSlot(h, slot, e.masterKey, passphrase, Luks.iterationsFor(iterTimeMillis));
        img.storage.write(e.areaOffset + (long) h.slots[slot].keyMaterialOffset * Xts.SECTOR, ByteBuffer.wrap(material));
        img.storage.flush();
        h.slots[slot].active = LuksHeader.ACTIVE;
        writeRecord(img, e, slot);
    }

    /** Erases slot {@code slot}, or (slot -1) every active slot {@code oldPassphrase} opens. */
    public void erase(int slot, byte[] oldPassphrase, boolean force) throws IOException {
        img.ensureOpen();
        Encryption e = requireUnlocked(img);
        LuksHeader h = e.luks;
        int active = 0;
        for (LuksHeader.Slot s : h.slots) {
            active += s.isActive() ? 1 : 0;
        }
        List<Integer> victims = new ArrayList<>();
        if (slot >= 0) {
            checkIndex(slot);
            if (!h.slots[slot].isActive()) {
                throw new AmendException("Given keyslot " + slot + " is already erased (inactive) ");
            }
            if (active == 1 && !force) {
                throw new AmendException("Attempt to erase the only active keyslot " + slot
                        + " which will erase all the data in the image irreversibly - refusing operation");
            }
            victims.add(slot);
        } else if (oldPassphrase != null) {
            Luks.AreaReader area = e.area(img.storage);
            for (int i = 0; i < LuksHeader.SLOTS; i++) {
                if (Luks.unlockSlot(h, area, oldPassphrase, i) != null) {
                    victims.add(i);
                }
            }
            if (victims.isEmpty()) {
                throw new AmendException("No keyslots match given (old) password for erase operation");
            }
            if (victims.size() == active && !force) {
                throw new AmendException("All the active keyslots match the (old) password that was given and erasing them"
                        + " will erase all the data in the image irreversibly - refusing operation");
            }
        } else {
            throw new AmendException("To erase keyslot(s), either explicit keyslot index or the password currently"
                    + " contained in them must be given");
        }
        SecureRandom random = new SecureRandom();
        for (int i : victims) {
            LuksHeader.Slot s = h.slots[i];
            s.active = LuksHeader.INACTIVE;
            s.iterations = 0;
            java.util.Arrays.fill(s.salt, (byte) 0);
            writeRecord(img, e, i);
            byte[] noise = new byte[(h.materialBytes() + Xts.SECTOR - 1) / Xts.SECTOR * Xts.SECTOR];
            random.nextBytes(noise);
            img.storage.write(e.areaOffset + (long) s.keyMaterialOffset * Xts.SECTOR, ByteBuffer.wrap(noise));
            img.storage.flush();
        }
    }

    private static void writeRecord(Qcow2Engine img, Encryption e, int slot) throws IOException {
        Storage st = img.storage;
        st.write(e.areaOffset + LuksHeader.slotRecordOffset(slot), ByteBuffer.wrap(e.luks.slotRecord(slot)));
        st.flush();
    }

    private static void checkIndex(int slot) throws AmendException {
        if (slot >= LuksHeader.SLOTS) {
            throw new AmendException("Invalid keyslot " + slot + " specified, must be between 0 and " + (LuksHeader.SLOTS - 1));
        }
    }

    private static Encryption requireUnlocked(Qcow2Engine img) throws IOException {
        if (img.encryption == null) {
            throw new AmendException("Can't amend encryption options - encryption not present");
        }
        if (img.encryption.masterKey == null) {
            throw new UnsupportedImageException(Encryption.SECRET_REQUIRED);
        }
        if (img.readOnly) {
            throw new IOException("Image is read-only");
        }
        return img.encryption;
    }
}
