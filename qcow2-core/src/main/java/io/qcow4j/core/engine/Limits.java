package io.qcow4j.core.engine;

/** QEMU's implementation limits, which we enforce before allocating by them. */
public final class Limits {
    /** QCOW_MAX_L1_SIZE: 32 MiB of L1 entries. */
    public static final int MAX_L1_ENTRIES = (32 << 20) / 8;
    /** QCOW_MAX_SNAPSHOTS. */
    public static final int MAX_SNAPSHOTS = 65536;

    private Limits() {
    }
}
