package io.qcow4j.core.engine;

import java.io.IOException;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.format.HeaderExtension;

/**
 * An image's link to the layer below it: the backing file its header names and the device
 * its reads fall through to. Rebase, stream and commit change it here, each with what the
 * top now holds itself made durable before the header stops relying on the layer below.
 * Not thread-safe by itself: callers hold the engine's lock.
 */
public final class BackingLink {
    private final Qcow2Engine img;

    BackingLink(Qcow2Engine img) {
        this.img = img;
    }

    /** Backing file name as recorded in the header, or null. */
    public String file() {
        return img.header().backingFile();
    }

    /** Backing format from the header extension, or null. */
    public String format() {
        return img.header().stringExtension(HeaderExtension.BACKING_FORMAT);
    }

    /** The device reads fall through to, or null. */
    public BlockDevice device() {
        return img.io.backing();
    }

    /**
     * Records a new backing file (null: none) in the header and reads through {@code device}
     * from now on.
     */
    public void set(String name, String format, BlockDevice device) throws IOException {
        img.ensureWritable();
        if (name != null && img.header().dataFileRaw()) {
            throw new IllegalArgumentException("Backing file and data-file-raw cannot be used at the same time");
        }
        // what the top now holds itself (stream, rebase) is durable before the header relies on it
        img.syncMetadata();
        img.updateHeader(h -> h.toBuilder().backingFile(name).extension(HeaderExtension.BACKING_FORMAT,
                name == null || format == null ? null : HeaderExtension.ofString(HeaderExtension.BACKING_FORMAT, format).data()).build());
        img.writeHeader();
        img.storage.flush();
        attach(device);
    }

    /** Reads through {@code device} (no header change). */
    public void attach(BlockDevice device) {
        img.io.setBacking(device);
    }

    /** Stops reading through the backing device, without closing it, and returns it. */
    public BlockDevice detach() {
        BlockDevice b = img.io.backing();
        attach(null);
        return b;
    }

    /** Unmaps every cluster of the image's own layer (commit's last step): the layer below shows through. */
    public void makeEmpty() throws IOException {
        img.ensureWritable();
        img.ranges().unmapAll(img.header().size());
        img.syncMetadata();
    }
}
