/**
 * Check and repair, like {@code qemu-img check [-r leaks|all]} (qemu 7.2 is the oracle).
 *
 * <p>{@link io.qcow4j.core.check.ImageChecker} runs qemu's passes in qemu's order, so the
 * findings, their messages, the counters and the exit code are qemu's:
 * <ol>
 *   <li>count the references ({@code ReferenceScan}): header, active L1 and its L2 tables
 *       (with the allocation statistics), snapshot L1/L2 tables, snapshot table, refcount
 *       table, bitmap directory/tables/data ({@code BitmapScan}), refcount blocks;</li>
 *   <li>compare with the stored refcounts ({@code RefcountCheck}); repair in place (raises
 *       before lowerings) or, when a cluster in use has refcount 0 or a refcount block is
 *       broken, rebuild the whole structure elsewhere and switch the header to it in one
 *       write ({@code StructureRebuild}, qemu's layout);</li>
 *   <li>the COPIED flags of the active tables ({@code CopiedFlagCheck});</li>
 *   <li>after a repair that fixed something, a second pass that only checks; its findings
 *       are the report. With no corruption left the dirty and corrupt bits are cleared.</li>
 * </ol>
 * The metadata is walked through the engine's {@link io.qcow4j.core.engine.MetadataWalk}
 * (the structures, in qemu's order) and its L1 trees through
 * {@link io.qcow4j.core.engine.TreeWalk} (the refcount rebuild, the snapshot refcounts and
 * dump walk them with these too: check only reacts differently, reporting what the others
 * refuse, reading the bitmaps with qemu's rules), and a repair's write is checked against
 * the engine's one map of the metadata, {@link io.qcow4j.core.engine.MetadataRanges}.
 *
 * <p>The image opens for a check as for qemu's check: the refcount table is loaded where
 * the header puts it, trusted in nothing, even with no clusters at all, over the header or
 * other metadata, or past the end of the file (read as zeros there); the check reports what
 * that breaks and {@code -r all} rebuilds it. Only a table over 8 MiB or unaligned is
 * refused, as qemu refuses it. A repair, being a read-write open, clears the autoclear bits
 * we do not know first, as qemu's does.
 *
 * <p>Where we deliberately differ from qemu 7.2:
 * <ul>
 *   <li>qemu's read-write open for {@code -r} has side effects we do not copy: it rewrites
 *       consistent bitmaps at close (moving their clusters, and printing
 *       "qcow2_free_clusters failed" when an old one had refcount 0), and clears the dirty
 *       bit at close even when the check failed ({@code -r leaks} on a dirty image), which
 *       leaves wrong refcounts unflagged. We keep the dirty bit until the refcounts are
 *       sound. The one close-time effect we reproduce is for bitmap data clusters past the
 *       end of the file: with {@code -r all} their entries are replaced (qemu stores zeros;
 *       we store "all ones", so no change is lost to an incremental backup) and the line
 *       qemu prints for them is printed.</li>
 *   <li>At a fatal corruption event during a repair qemu drops its unflushed refcount
 *       fixes; ours are already on disk. qemu's image is then unusable for the rest of the
 *       repair ("Check failed: No medium found" after a rebuild); ours goes on with the
 *       rebuild and the pass that checks it.</li>
 *   <li>Metadata that would make the walk larger than any sound image needs (an L1 table
 *       naming one L2 table a million times) stops the check with a check error ("the check
 *       cannot walk it", exit 1) where qemu would grind on for hours.</li>
 *   <li>Without a line consumer the result keeps the first 100,000 stderr lines.</li>
 * </ul>
 */
package io.qcow4j.core.check;
