/**
 * The {@code qcow4j} command line: qemu-img's {@code create}, {@code info}, {@code convert},
 * {@code compare}, {@code bitmap}, {@code snapshot}, and qemu-io as {@code io}, with their syntax, output and exit codes
 * (checked against qemu-img/qemu-io 7.2 by the *IT tests).
 *
 * <p>Run as {@code qemu-img} (bin/qemu-img, a symlink) it is a drop-in ({@link io.qcow4j.tools.Program}):
 * named qemu-img, qemu-img's errors line for line, its own warnings only with
 * {@code QCOW4J_WARNINGS=1}. What follows is how it words things as qcow4j.
 *
 * <p>Where qcow4j knowingly differs from the qemu tools:
 * <ul>
 * <li>{@code create} makes qcow2 when no {@code -f} is given (qemu-img: raw);
 *     {@code convert} writes raw without {@code -O}, as qemu-img does.</li>
 * <li>Every error is one line: qemu's multi-line messages are joined, its trailing hints
 *     ("Could not open backing image.", "Try 'qemu-img --help'") dropped, and "Could not
 *     open 'x': Could not open 'x': why" said once.</li>
 * <li>Formats other than qcow2 and raw are refused (qemu-img's words for names it does not
 *     know; "Format 'vmdk' is not supported by qcow4j" for those it has), and a file probed as
 *     one of them is not read as raw.</li>
 * <li>{@code preallocation=falloc|full} and encryption are refused with a one-line error;
 *     {@code convert -n -O raw} over a qcow2 image is refused (qemu-img would overwrite
 *     its metadata).</li>
 * <li>{@code compare -s} compares allocated / zero / data per run, not qemu's full
 *     block-status bit set.</li>
 * <li>qemu-io's timing line has the same shape, never the same numbers.</li>
 * <li>{@code snapshot -c} refused by a refcount overflow (refcount_bits=1) changes nothing;
 *     qemu-img leaks the cluster of the new L1 table. {@code snapshot --object} and
 *     {@code --image-opts} are refused.</li>
 * </ul>
 */
package io.qcow4j.tools;
