package io.qcow4j.core;

/**
 * An internal snapshot as listed by {@code qemu-img snapshot -l} / {@code info}.
 *
 * @param id           unique id string
 * @param name         snapshot name
 * @param vmStateSize  size of the saved VM state in bytes
 * @param dateSec      creation time, seconds since the epoch
 * @param dateNsec     creation time, nanoseconds part
 * @param vmClockNsec  guest clock at creation, nanoseconds
 * @param diskSize     virtual disk size when taken
 * @param icount       instruction count, or -1
 */
public record Snapshot(String id, String name, long vmStateSize, long dateSec, long dateNsec,
                       long vmClockNsec, long diskSize, long icount) {
}
