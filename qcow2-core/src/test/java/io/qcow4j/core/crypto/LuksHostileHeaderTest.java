package io.qcow4j.core.crypto;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.api.OpenOptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * A qemu-made LUKS image with one field of its encryption header pointer or LUKS header
 * made hostile: the open fails with CorruptImageException naming the LUKS structure, before
 * any PBKDF2 work or allocation the field would size (the iteration counts are capped at
 * {@link LuksHeader#MAX_ITERATIONS}).
 */
class LuksHostileHeaderTest {
    @TempDir
    static Path shared;
    static Path pristine;

    /** {@code where}: "ext+N" (the header extension's data) or "luks+N" (the LUKS header); a 4- or 8-byte value. */
    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "area offset unaligned,     ext+0,   8, 0x40001",
            "area offset past the end,  ext+0,   8, 0x7fffffffffff0000",
            "area length huge,          ext+8,   8, 0x7fffffffffffffff",
            "area length too short,     ext+8,   8, 100",
            "key bytes,                 luks+108, 4, 0x7fffffff",
            "master key iterations,     luks+164, 4, 0x7fffffff",
            "master key iterations 0,   luks+164, 4, 0",
            "slot 0 iterations,         luks+212, 4, 0x7fffffff",
            "slot 0 key material,       luks+248, 4, 0x7ffffff0",
            "slot 0 stripes,            luks+252, 4, 0x7fffffff",
            "slot 1 state,              luks+256, 4, 0x12345678",
            "slot 1 overlaps slot 0,    luks+296, 4, 9",
    })
    void refusedAsCorrupt(String name, String where, int width, String value) throws IOException {
        Path img = shared.resolve(name.replace(' ', '-') + ".qcow2");
        Files.copy(pristine(), img, StandardCopyOption.REPLACE_EXISTING);
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(0x78);
            long area = f.readLong();
            long at = where.startsWith("ext+") ? 0x78 + Long.parseLong(where.substring(4)) : area + Long.parseLong(where.substring(5));
            long v = Long.decode(value);
            f.seek(at);
            if (width == 8) {
                f.writeLong(v);
            } else {
                f.writeInt((int) v);
            }
        }
        CorruptImageException e = assertThrows(CorruptImageException.class, () -> Qcow2Image.open(img,
                LuksImageTest.withSecret(OpenOptions.readOnly())).close());
        assertTrue(e.getMessage().contains("LUKS header") || e.getMessage().contains("encryption header"), e.getMessage());
    }

    private static synchronized Path pristine() {
        if (pristine == null) {
            pristine = LuksImageTest.qemuLuks(shared, "pristine.qcow2", "4M");
        }
        return pristine;
    }
}
