package io.qcow4j.core;

import java.io.IOException;
import java.nio.file.Path;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.engine.Faces;
import io.qcow4j.core.engine.Qcow2Engine;

/**
 * The faces the engine puts on the layers it opens (backing files, a reopened image): a qcow2
 * layer gets a {@link Qcow2Image}, a raw one a {@link RawImage}. The engine sits below the
 * faces and cannot name them, so they are handed down to it.
 */
final class LayerFaces implements Faces {
    static final LayerFaces INSTANCE = new LayerFaces();

    private LayerFaces() {
    }

    @Override
    public BlockDevice qcow2(Qcow2Engine engine) {
        return new Qcow2Image(engine);
    }

    @Override
    public BlockDevice raw(Path file, boolean readOnly, boolean forceShare, Path name) throws IOException {
        return RawImage.open(file, readOnly, forceShare, name);
    }
}
