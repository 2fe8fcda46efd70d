package io.qcow4j.core;

import static com.tngtech.archunit.base.DescribedPredicate.not;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.type;
import static com.tngtech.archunit.core.domain.JavaFieldAccess.Predicates.target;
import static com.tngtech.archunit.core.domain.properties.HasOwner.Predicates.With.owner;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.Architectures.layeredArchitecture;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import io.qcow4j.core.engine.Qcow2Engine;
import org.junit.jupiter.api.Test;

/**
 * The packages of qcow2-core, bottom up: {@code api} (the types every layer shares) →
 * {@code format} (on-disk records) → {@code storage}, {@code compress}, {@code crypto} (bytes
 * in files) → {@code cache}, {@code alloc}, {@code bitmap} (tables over the file) →
 * {@code engine} → {@code check} → {@code io.qcow4j.core} (the public faces). No class
 * depends on a layer above its own, and no two packages depend on each other.
 */
class ArchitectureTest {
    private static final JavaClasses CORE = new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPackages("io.qcow4j.core");

    @Test
    void apiImportsNothingOfOurs() {
        noClasses().that().resideInAPackage("io.qcow4j.core.api..")
                .should().dependOnClassesThat(resideInAPackage("io.qcow4j..")
                        .and(not(resideInAPackage("io.qcow4j.core.api.."))))
                .because("api is the leaf every layer stands on")
                .check(CORE);
    }

    @Test
    void noPackageDependsOnALayerAboveIt() {
        layeredArchitecture().consideringOnlyDependenciesInLayers()
                .layer("api").definedBy("io.qcow4j.core.api..")
                .layer("format").definedBy("io.qcow4j.core.format..")
                .layer("bytes").definedBy("io.qcow4j.core.storage..", "io.qcow4j.core.compress..",
                        "io.qcow4j.core.crypto..")
                .layer("tables").definedBy("io.qcow4j.core.cache..", "io.qcow4j.core.alloc..",
                        "io.qcow4j.core.bitmap..")
                .layer("engine").definedBy("io.qcow4j.core.engine..")
                .layer("check").definedBy("io.qcow4j.core.check..")
                .layer("faces").definedBy("io.qcow4j.core")
                .whereLayer("faces").mayNotBeAccessedByAnyLayer()
                .whereLayer("check").mayOnlyBeAccessedByLayers("faces")
                .whereLayer("engine").mayOnlyBeAccessedByLayers("check", "faces")
                .whereLayer("tables").mayOnlyBeAccessedByLayers("engine", "check", "faces")
                .whereLayer("bytes").mayOnlyBeAccessedByLayers("tables", "engine", "check", "faces")
                .whereLayer("format").mayOnlyBeAccessedByLayers("bytes", "tables", "engine", "check", "faces")
                .check(CORE);
    }

    @Test
    void noCycleBetweenPackages() {
        slices().matching("io.qcow4j.(**)").should().beFreeOfCycles().check(CORE);
    }

    @Test
    void onlyTheEngineChangesItsState() {
        noClasses().that().doNotBelongToAnyOf(Qcow2Engine.class)
                .should().setFieldWhere(target(owner(type(Qcow2Engine.class))))
                .because("the engine owns the image's state: its parts ask it, they do not set its fields")
                .check(CORE);
    }
}
