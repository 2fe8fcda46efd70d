package io.qcow4j.core.format;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import io.qcow4j.core.api.CorruptImageException;

/** The offset checks at their edges: the header cluster, alignment, the end of the file, and overflow near 2^63. */
class HostOffsetsTest {
    private static final int CS = 65536;
    private static final long FILE = 10L * CS;

    @Test
    void aClusterIsAlignedAndPastTheHeader() {
        assertTrue(HostOffsets.isCluster(CS, CS));
        assertFalse(HostOffsets.isCluster(0, CS));
        assertFalse(HostOffsets.isCluster(CS + 512, CS));
        assertFalse(HostOffsets.isCluster(-CS, CS));
        assertFalse(HostOffsets.isCluster(Long.MIN_VALUE, CS));
    }

    @Test
    void fitsRefusesNegativesAndOverflow() {
        assertTrue(HostOffsets.fits(0, FILE, FILE));
        assertTrue(HostOffsets.fits(FILE, 0, FILE));
        assertFalse(HostOffsets.fits(FILE - 7, 8, FILE));
        assertFalse(HostOffsets.fits(-8, 8, FILE));
        assertFalse(HostOffsets.fits(8, -8, FILE));
        // wraps around to a small number without addExact
        assertFalse(HostOffsets.fits(Long.MAX_VALUE - 7, 16, FILE));
        assertFalse(HostOffsets.fits(Long.MAX_VALUE, 1, Long.MAX_VALUE));
        assertTrue(HostOffsets.fits(Long.MAX_VALUE - 1, 1, Long.MAX_VALUE));
    }

    @Test
    void clusterInFileAndStartsInFile() {
        assertTrue(HostOffsets.clusterInFile(FILE - CS, CS, FILE));
        assertFalse(HostOffsets.clusterInFile(FILE, CS, FILE));
        assertFalse(HostOffsets.clusterInFile(Long.MAX_VALUE & -CS, CS, Long.MAX_VALUE));
        assertTrue(HostOffsets.clusterStartsInFile(FILE - CS, CS, FILE + 1 - CS));
        assertFalse(HostOffsets.clusterStartsInFile(FILE, CS, FILE));
        assertTrue(HostOffsets.startsInFile(CS + 512, CS, FILE));
        assertFalse(HostOffsets.startsInFile(CS - 512, CS, FILE));
        assertFalse(HostOffsets.startsInFile(FILE, CS, FILE));
    }

    @Test
    void refusalNamesTheStructureTheEntryAndTheOffset() throws Exception {
        CorruptImageException e = assertThrows(CorruptImageException.class, () -> HostOffsets.requireClusterInFile(
                FILE, CS, FILE, "L1 table", 0x30008, o -> "L2 table offset 0x" + Long.toHexString(o) + " invalid"));
        assertEquals("L1 table at offset 0x30008: L2 table offset 0xa0000 invalid", e.getMessage());
        assertEquals(2 * CS, HostOffsets.requireCluster(2 * CS, CS, "x", 0, o -> "never"));
    }
}
