package io.qcow4j.core.engine;

import java.io.IOException;

import io.qcow4j.core.format.Header;

/**
 * What a read-write image does once, before its first write of anything: clear the
 * autoclear bits we do not understand, and rebuild the refcounts of an image left dirty
 * (lazy refcounts) so no allocation can hand out a cluster in use. A read-write open
 * that writes nothing changes no byte. The caller holds the image's lock.
 */
final class FirstWrite {
    private boolean prepared;

    void prepare(Qcow2Engine img) throws IOException {
        if (prepared) {
            return;
        }
        prepared = true;
        Header header = img.header();
        try {
            boolean repair = !img.checkMode && header.hasIncompatible(Header.INCOMPAT_DIRTY);
            if (repair) {
                // the repair reads every reference: let it refuse a broken image before the header changes
                RefcountRebuilder.count(img.engineParts());
            }
            if ((header.autoclearFeatures() & ~Header.AUTOCLEAR_KNOWN) != 0) {
                img.updateHeader(h -> h.withAutoclearFeatures(h.autoclearFeatures() & Header.AUTOCLEAR_KNOWN));
                img.writeHeader();
                img.storage.flush();
            }
            if (repair) {
                RefcountRebuilder.repairDirty(img);
            }
        } catch (IOException | RuntimeException e) {
            prepared = false; // a later write tries again
            throw e;
        }
    }
}
