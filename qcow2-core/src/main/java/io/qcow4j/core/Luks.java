package io.qcow4j.core;

import java.io.IOException;

import io.qcow4j.core.crypto.LuksHeader;
import io.qcow4j.core.engine.Qcow2Engine;

/**
 * An encrypted image's LUKS keyslots ({@code qemu-img amend -o encrypt.*}): each call holds
 * the image's lock, as the image's own methods do. Refusals are AmendExceptions in QEMU's
 * words, before anything is written.
 */
public final class Luks {
    private final Qcow2Image image;
    private final Qcow2Engine engine;

    Luks(Qcow2Image image, Qcow2Engine engine) {
        this.image = image;
        this.engine = engine;
    }

    /** The LUKS header (as read at open), or null for an image that is not encrypted. */
    public LuksHeader header() {
        synchronized (image) {
            return engine.keyslots().header();
        }
    }

    /**
     * {@code encrypt.state=active,encrypt.new-secret=...}: puts the master key in keyslot
     * {@code slot} (-1: the first free one) under {@code passphrase}, its PBKDF2 iterations
     * what qcow4j runs in {@code iterTimeMillis}.
     */
    public void addKeyslot(byte[] passphrase, int slot, int iterTimeMillis) throws IOException {
        synchronized (image) {
            engine.keyslots().add(passphrase, slot, iterTimeMillis);
        }
    }

    /**
     * {@code encrypt.state=inactive}: erases keyslot {@code slot}, or (slot -1) every active
     * one {@code oldPassphrase} opens; the last active one only with {@code force}.
     */
    public void eraseKeyslots(int slot, byte[] oldPassphrase, boolean force) throws IOException {
        synchronized (image) {
            engine.keyslots().erase(slot, oldPassphrase, force);
        }
    }
}
