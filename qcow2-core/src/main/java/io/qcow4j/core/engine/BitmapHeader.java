package io.qcow4j.core.engine;

import java.io.IOException;
import java.util.function.UnaryOperator;

import io.qcow4j.core.bitmap.WriteTracking;
import io.qcow4j.core.format.Header;

/**
 * The engine's header as the bitmaps read and change it (their extension, autoclear bit 0).
 * Their header writes happen inside a write or close already prepared, so this writes with
 * {@link Qcow2Engine#writeHeader}, not {@link Qcow2Engine#rewriteHeader}.
 */
final class BitmapHeader implements WriteTracking.HeaderWriter {
    private final Qcow2Engine engine;

    BitmapHeader(Qcow2Engine engine) {
        this.engine = engine;
    }

    @Override
    public Header header() {
        return engine.header();
    }

    @Override
    public void updateHeader(UnaryOperator<Header> change) {
        engine.updateHeader(change);
    }

    @Override
    public void writeHeader() throws IOException {
        engine.writeHeader();
    }
}
