package io.qcow4j.core.check;

/** The counters of one check pass (what qemu keeps in a BdrvCheckResult). */
final class CheckTally {
    long corruptions;
    long leaks;
    long checkErrors;
    long corruptionsFixed;
    long leaksFixed;
    long imageEndOffset;
    long totalClusters;
    long allocatedClusters;
    long fragmentedClusters;
    long compressedClusters;

    CheckTally copy() {
        CheckTally t = new CheckTally();
        t.corruptions = corruptions;
        t.leaks = leaks;
        t.checkErrors = checkErrors;
        t.corruptionsFixed = corruptionsFixed;
        t.leaksFixed = leaksFixed;
        t.imageEndOffset = imageEndOffset;
        t.totalClusters = totalClusters;
        t.allocatedClusters = allocatedClusters;
        t.fragmentedClusters = fragmentedClusters;
        t.compressedClusters = compressedClusters;
        return t;
    }

    void setFrom(CheckTally t) {
        corruptions = t.corruptions;
        leaks = t.leaks;
        checkErrors = t.checkErrors;
        corruptionsFixed = t.corruptionsFixed;
        leaksFixed = t.leaksFixed;
        imageEndOffset = t.imageEndOffset;
        totalClusters = t.totalClusters;
        allocatedClusters = t.allocatedClusters;
        fragmentedClusters = t.fragmentedClusters;
        compressedClusters = t.compressedClusters;
    }
}
