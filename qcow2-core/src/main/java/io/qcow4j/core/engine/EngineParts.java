package io.qcow4j.core.engine;

import java.util.List;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.SnapshotEntry;
import io.qcow4j.core.storage.Storage;

/**
 * The engine's parts, for the check, repair and inspection code that lives beside it.
 * Not a stable API: callers must hold the image's lock (synchronize on the image).
 */
public record EngineParts(Qcow2Engine engine, Storage storage, Storage dataFile, Geometry geometry,
                          RefcountManager refcounts, ClusterMapper mapper, List<SnapshotEntry> snapshots) {
    /** The engine's header as it stands now (a repair may replace it: read it anew after one). */
    public Header header() {
        return engine.header();
    }
}
