package io.qcow4j.core.compress;

import java.lang.ref.Cleaner;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;

import com.sun.jna.Function;
import com.sun.jna.Native;
import com.sun.jna.Pointer;

/**
 * libdeflate's whole-buffer raw deflate decoder (the system's {@code libdeflate.so.0},
 * through JNA), when the machine has it: it inflates a cluster in about two thirds of
 * zlib's time. Only a fast path: a cluster it does not decode to exactly the cluster's
 * length, with the stream ending there, goes to {@link java.util.zip.Inflater}, whose
 * result and messages are the reference (a stream that fills the cluster without ending
 * is accepted there, as QEMU accepts it).
 */
final class Libdeflate {
    /** libdeflate_result: LIBDEFLATE_SUCCESS. */
    private static final int SUCCESS = 0;
    private static final int RTLD_LAZY = 1;
    private static final Cleaner CLEANER = Cleaner.create();
    private static final Object LOCK = new Object();
    private static volatile boolean looked;
    private static Function alloc;
    private static Function free;
    private static Function decompress;

    private final Pointer decompressor;

    private Libdeflate(Pointer decompressor) {
        this.decompressor = decompressor;
    }

    /** A decompressor of this thread's own, or null when libdeflate is not there (or disabled). */
    static Libdeflate create() {
        if (!available()) {
            return null;
        }
        Pointer d = (Pointer) alloc.invoke(Pointer.class, new Object[0]);
        if (d == null) {
            return null;
        }
        Libdeflate l = new Libdeflate(d);
        Function f = free;
        CLEANER.register(l, () -> f.invoke(Void.class, new Object[] {d}));
        return l;
    }

    private static boolean available() {
        if (!looked) {
            synchronized (LOCK) {
                if (!looked) {
                    load();
                    looked = true;
                }
            }
        }
        return decompress != null;
    }

    /**
     * dlopen through JNA's own entry points, as {@link io.qcow4j.core.storage.Libc} does
     * (JNA's NativeLibrary would first run ldconfig). Off with {@code -Dqcow4j.libdeflate=false}.
     */
    private static void load() {
        if ("false".equals(System.getProperty("qcow4j.libdeflate")) || Native.SIZE_T_SIZE != 8) {
            return;
        }
        try {
            Method open = Native.class.getDeclaredMethod("open", String.class, int.class);
            open.setAccessible(true);
            Method find = Native.class.getDeclaredMethod("findSymbol", long.class, String.class);
            find.setAccessible(true);
            long lib = (long) open.invoke(null, "libdeflate.so.0", RTLD_LAZY);
            if (lib == 0) {
                return;
            }
            Function a = symbol(find, lib, "libdeflate_alloc_decompressor");
            Function f = symbol(find, lib, "libdeflate_free_decompressor");
            Function d = symbol(find, lib, "libdeflate_deflate_decompress");
            if (a != null && f != null && d != null) {
                alloc = a;
                free = f;
                decompress = d;
            }
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            // no libdeflate (or not this JNA): Inflater does it all
        }
    }

    private static Function symbol(Method find, long lib, String name) throws ReflectiveOperationException {
        long address = (long) find.invoke(null, lib, name);
        return address == 0 ? null : Function.getFunction(new Pointer(address));
    }

    /**
     * Inflates {@code src[srcOff, srcOff + srcLen)} into {@code dst[dstOff, dstOff + dstLen)},
     * both direct buffers (absolute indexes, checked against their capacities). True when the
     * stream ended there with exactly {@code dstLen} bytes; false for anything else, which the
     * caller then decodes with Inflater.
     */
    boolean inflate(ByteBuffer src, int srcOff, int srcLen, ByteBuffer dst, int dstOff, int dstLen) {
        if (!src.isDirect() || !dst.isDirect() || srcOff < 0 || srcLen < 0 || srcLen > src.capacity() - srcOff
                || dstOff < 0 || dstLen < 0 || dstLen > dst.capacity() - dstOff) {
            return false;
        }
        Pointer in = Native.getDirectBufferPointer(src).share(srcOff);
        Pointer out = Native.getDirectBufferPointer(dst).share(dstOff);
        // a null actual_out_nbytes_ret: success only if exactly dstLen bytes came out
        int r = decompress.invokeInt(new Object[] {decompressor, in, (long) srcLen, out, (long) dstLen, null});
        return r == SUCCESS;
    }
}
