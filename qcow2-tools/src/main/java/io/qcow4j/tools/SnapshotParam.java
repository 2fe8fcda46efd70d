package io.qcow4j.tools;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.Snapshot;
import io.qcow4j.core.api.BlockDevice;
import java.util.List;

/**
 * The {@code -l} argument of measure and convert: an internal snapshot named
 * {@code snapshot.id=ID,snapshot.name=NAME} (either or both must match), or a bare
 * {@code ID_OR_NAME} (an id first, then a name, as qemu looks it up).
 */
record SnapshotParam(String id, String name, String idOrName) {
    private static final String PREFIX = "snapshot.";

    /** Parses {@code -l ARG} with qemu-img's messages for a bad key. */
    static SnapshotParam parse(String arg) {
        if (!arg.startsWith(PREFIX)) {
            return new SnapshotParam(null, null, arg);
        }
        if (!OptionList.isValid(arg)) {
            throw new CliException(Program.twoErrors("Invalid option list: " + arg,
                    "Failed in parsing snapshot param '" + arg + "'"));
        }
        OptionList opts = OptionList.parse(List.of(arg));
        String id = null;
        String name = null;
        for (var e : opts.values().entrySet()) {
            switch (e.getKey()) {
                case "snapshot.id" -> id = e.getValue();
                case "snapshot.name" -> name = e.getValue();
                default -> throw new CliException(Program.twoErrors("Invalid parameter '" + e.getKey() + "'",
                        "Failed in parsing snapshot param '" + arg + "'"));
            }
        }
        return new SnapshotParam(id, name, null);
    }

    /** The snapshot's disk, read-only, or qemu-img's "Failed to load snapshot" refusal. */
    BlockDevice load(BlockDevice image) {
        if (!(image instanceof Qcow2Image q)) {
            throw new CliException("Failed to load snapshot: Block format '" + image.formatName()
                    + "' used by device '' does not support temporarily loading internal snapshots");
        }
        for (Snapshot s : q.snapshots().list()) {
            if (matches(s, q.snapshots().list())) {
                try {
                    return q.snapshots().view(s.id());
                } catch (java.io.IOException | RuntimeException e) {
                    throw new CliException("Failed to load snapshot: " + Images.reason(e), 1, e);
                }
            }
        }
        throw new CliException("Failed to load snapshot: Can't find snapshot");
    }

    private boolean matches(Snapshot s, List<Snapshot> all) {
        if (idOrName != null) {
            // an id wins over a name anywhere in the table
            boolean anyId = all.stream().anyMatch(o -> o.id().equals(idOrName));
            return anyId ? s.id().equals(idOrName) : s.name().equals(idOrName);
        }
        if (id == null && name == null) {
            return false;
        }
        return (id == null || s.id().equals(id)) && (name == null || s.name().equals(name));
    }
}
