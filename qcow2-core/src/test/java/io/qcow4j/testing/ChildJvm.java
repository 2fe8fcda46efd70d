package io.qcow4j.testing;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The command line of a child JVM running a test class with this JVM's class path and module flags. */
public final class ChildJvm {
    private ChildJvm() {
    }

    /**
     * {@code java [--add-* flags of this JVM] [jvmOptions] -cp CLASSPATH main args...}: the
     * child needs the same Chronicle flags as the test JVM.
     */
    public static List<String> command(List<String> jvmOptions, Class<?> main, String... args) {
        return command(true, jvmOptions, main, args);
    }

    /**
     * The same without this JVM's {@code --add-*} flags: a plain JVM, as an application that
     * embeds the library runs it.
     */
    public static List<String> plainCommand(List<String> jvmOptions, Class<?> main, String... args) {
        return command(false, jvmOptions, main, args);
    }

    private static List<String> command(boolean moduleFlags, List<String> jvmOptions, Class<?> main, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        if (moduleFlags) {
            cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
                    .filter(a -> a.startsWith("--add-")).toList());
        }
        cmd.addAll(jvmOptions);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(main.getName());
        cmd.addAll(List.of(args));
        return cmd;
    }
}
