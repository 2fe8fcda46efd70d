package io.qcow4j.tools;

import static com.tngtech.archunit.base.DescribedPredicate.not;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.library.Architectures.layeredArchitecture;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.Test;

/**
 * The modules, bottom up as the whiteboard draws them: core (format, storage, engine) →
 * bitmaps (chains, jobs) → nbd (protocol over any BlockDevice) → backup (sets) → backup.s3
 * → tools (the CLI). This module sees them all: no class depends on a module above its
 * own, and no two packages of any module depend on each other.
 */
class ModulesTest {
    private static final JavaClasses ALL = new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .withImportOption(location -> !location.contains("-tests.jar")) // core's test helpers (io.qcow4j.testing)
            .importPackages("io.qcow4j");

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
