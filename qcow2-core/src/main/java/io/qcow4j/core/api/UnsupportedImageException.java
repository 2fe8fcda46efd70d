package io.qcow4j.core.api;

import java.io.IOException;

/** The image uses a feature this engine does not implement (an unknown incompatible bit, encryption...). */
public class UnsupportedImageException extends IOException {
    private static final long serialVersionUID = 1L;

    public UnsupportedImageException(String message) {
        super(message);
    }
}
