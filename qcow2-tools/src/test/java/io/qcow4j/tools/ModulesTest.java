package io.qcow4j.tools;

import static com.tngtech.archunit.base.DescribedPredicate.not;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.Architectures.layeredArchitecture;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import java.util.stream.Collectors;
import java.util.stream.Stream;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.core.importer.Location;
import io.qcow4j.backup.BackupSet;
import io.qcow4j.backup.s3.S3Location;
import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.bitmap.WriteTracking;
import io.qcow4j.nbd.client.NbdClient;
import org.junit.jupiter.api.Test;

/**
 * The modules, bottom up as the whiteboard draws them: core (format, storage, engine) →
 * bitmaps (chains, jobs) → nbd (protocol over any BlockDevice) → backup (sets) → backup.s3
 * → tools (the CLI). This module sees them all: no class depends on a module above its
 * own, and no two packages of any module depend on each other.
 */
class ModulesTest {
    /** Each module's classes, from its own jar or directory (no scan of the whole class path). */
    private static final JavaClasses ALL = new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importLocations(Stream.of(Qcow2Image.class, Bitmaps.class, NbdClient.class, BackupSet.class,
                            S3Location.class, Main.class)
                    .map(c -> Location.of(c.getProtectionDomain().getCodeSource().getLocation()))
                    .collect(Collectors.toSet()));

    @Test
    void seesEveryModule() {
        for (Class<?> c : new Class<?>[] {Qcow2Image.class, Bitmaps.class, NbdClient.class, BackupSet.class,
                S3Location.class, Main.class}) {
            assertTrue(ALL.contain(c), c.getName());
        }
    }

    @Test
    void noModuleDependsOnAModuleAboveIt() {
        layeredArchitecture().consideringOnlyDependenciesInLayers()
                .layer("core").definedBy("io.qcow4j.core..")
                .layer("bitmaps").definedBy("io.qcow4j.bitmaps..")
                .layer("nbd").definedBy("io.qcow4j.nbd..")
                .layer("backup").definedBy("io.qcow4j.backup")
                .layer("backup-s3").definedBy("io.qcow4j.backup.s3..")
                .layer("tools").definedBy("io.qcow4j.tools..")
                .whereLayer("tools").mayNotBeAccessedByAnyLayer()
                .whereLayer("backup-s3").mayOnlyBeAccessedByLayers("tools")
                .whereLayer("backup").mayOnlyBeAccessedByLayers("backup-s3", "tools")
                .whereLayer("nbd").mayOnlyBeAccessedByLayers("backup", "backup-s3", "tools")
                .whereLayer("bitmaps").mayOnlyBeAccessedByLayers("nbd", "backup", "backup-s3", "tools")
                .check(ALL);
    }

    /**
     * The engine's bitmaps ({@code io.qcow4j.core.bitmap}: its write-tracking hook, the
     * ImageBitmaps and bits the bitmaps module builds on) are seen by core and the bitmaps
     * module only: the other modules use Bitmaps, DirtyBitmap and Transaction.
     */
    @Test
    void onlyTheBitmapsModuleSeesTheEngineBitmaps() {
        noClasses().that().resideOutsideOfPackages("io.qcow4j.core..", "io.qcow4j.bitmaps..")
                .should().dependOnClassesThat().resideInAPackage("io.qcow4j.core.bitmap..")
                .check(ALL);
    }

    /** The bitmaps' write-tracking hook is the engine's: no other package, of core or above, holds it. */
    @Test
    void onlyTheEngineSeesTheWriteTrackingHook() {
        noClasses().that().resideOutsideOfPackages("io.qcow4j.core.bitmap..", "io.qcow4j.core.engine..")
                .should().dependOnClassesThat().belongToAnyOf(WriteTracking.class)
                .check(ALL);
    }

    @Test
    void noCycleBetweenModules() {
        slices().matching("io.qcow4j.(*)..").should().beFreeOfCycles().check(ALL);
    }

    /** Inside the modules above core (core's own packages: qcow2-core's ArchitectureTest). */
    @Test
    void noCycleBetweenPackages() {
        slices().matching("io.qcow4j.(**)").should().beFreeOfCycles()
                .check(ALL.that(not(resideInAPackage("io.qcow4j.core.."))));
    }
}
