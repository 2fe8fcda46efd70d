package io.qcow4j.core.check;

/** What {@link ImageChecker#repair} may fix, like {@code qemu-img check -r leaks|all}. */
public enum Repair {
    /** Free leaked clusters only. */
    LEAKS,
    /** Also raise refcounts that are too low, rebuild broken refcount structures, fix COPIED flags. */
    ALL;

    boolean leaks() {
        return true;
    }

    boolean errors() {
        return this == ALL;
    }
}
