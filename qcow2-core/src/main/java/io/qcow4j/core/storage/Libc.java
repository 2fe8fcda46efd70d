package io.qcow4j.core.storage;

import java.lang.reflect.Method;

import com.sun.jna.Function;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;

/**
 * C library functions through JNA, found among the process's own symbols (libc is always
 * loaded into a JVM). JNA's public way there, {@link NativeLibrary#getProcess()}, first
 * runs NativeLibrary's static initialiser, which on Linux starts {@code /sbin/ldconfig -p}
 * (a whole process, some 30-40 ms) to build a search path we never use; a short CLI run
 * cannot afford that. So the lookup goes through JNA's own dlopen/dlsym entry points
 * ({@code Native.open(null)}, {@code Native.findSymbol}), and only falls back to the
 * public way if those are not there (another JNA version).
 */
public final class Libc {
    private static final int RTLD_LAZY = 1;
    private static volatile Method findSymbol;
    private static volatile long process;

    private Libc() {
    }

    /**
     * The function {@code name} of the C library.
     *
     * @throws UnsatisfiedLinkError when this libc has no such function
     */
    public static Function function(String name) {
        try {
            Method find = findSymbol;
            if (find == null) {
                synchronized (Libc.class) {
                    if (findSymbol == null) {
                        Class<?> nat = Class.forName("com.sun.jna.Native");
                        Method open = nat.getDeclaredMethod("open", String.class, int.class);
                        open.setAccessible(true);
                        Method f = nat.getDeclaredMethod("findSymbol", long.class, String.class);
                        f.setAccessible(true);
                        process = (long) open.invoke(null, null, RTLD_LAZY); // dlopen(NULL): the process
                        findSymbol = f;
                    }
                    find = findSymbol;
                }
            }
            long address = (long) find.invoke(null, process, name);
            if (address != 0) {
                return Function.getFunction(new Pointer(address));
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            // not this JNA: the public way below
        }
        return NativeLibrary.getProcess().getFunction(name);
    }
}
