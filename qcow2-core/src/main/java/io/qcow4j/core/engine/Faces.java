package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.file.Path;

import io.qcow4j.core.api.BlockDevice;

/**
 * How the engine hands out what it opens (the layers of a backing chain, a reopened image):
 * the public faces live above the engine, so they are passed down to it.
 */
public interface Faces {
    /** The face over a freshly opened engine; it binds itself as the engine's lock. */
    BlockDevice qcow2(Qcow2Engine engine);

    /** A raw backing file; {@code name}: the file as QEMU names it in a lock failure. */
    BlockDevice raw(Path file, boolean readOnly, boolean forceShare, Path name) throws IOException;
}
