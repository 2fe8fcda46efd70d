package io.qcow4j.jmh;

import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Enumeration;
import java.util.List;
import java.util.jar.Attributes;
import java.util.jar.JarFile;
import java.util.jar.Manifest;

import org.openjdk.jmh.runner.NoBenchmarksException;
import org.openjdk.jmh.runner.ProfilersFailedException;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.CommandLineOptionException;
import org.openjdk.jmh.runner.options.CommandLineOptions;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.VerboseMode;

/**
 * Main class of {@code benchmarks.jar}: JMH's own command line, with the JVM flags Chronicle
 * Bytes needs prepended to every forked benchmark JVM. The flags come from one place, the
 * {@code Chronicle-Jvm-Flags} entry of this jar's manifest (filled from
 * {@code <chronicle.jvm.flags>} in the parent pom), so {@code java -jar benchmarks.jar ...}
 * works without repeating them. Flags given with {@code -jvmArgsPrepend} come after ours.
 */
public final class BenchMain {
    static final String MANIFEST_ENTRY = "Chronicle-Jvm-Flags";

    private BenchMain() {
    }

    public static void main(String[] args) throws IOException {
        CommandLineOptions cmd;
        try {
            cmd = new CommandLineOptions(args);
        } catch (CommandLineOptionException e) {
            System.err.println("Error parsing command line:");
            System.err.println(" " + e.getMessage());
            System.exit(1);
            return;
        }
        List<String> prepend = new ArrayList<>(chronicleFlags());
        Collection<String> own = cmd.getJvmArgsPrepend().orElse(List.of());
        prepend.addAll(own);
        Options options = new OptionsBuilder()
                .parent(cmd)
                .jvmArgsPrepend(prepend.toArray(new String[0]))
                .build();
        Runner runner = new Runner(options);

        if (cmd.shouldHelp()) {
            cmd.showHelp();
            return;
        }
        if (cmd.shouldList()) {
            runner.list();
            return;
        }
        if (cmd.shouldListWithParams()) {
            runner.listWithParams(cmd);
            return;
        }
        if (cmd.shouldListProfilers()) {
            cmd.listProfilers();
            return;
        }
        if (cmd.shouldListResultFormats()) {
            cmd.listResultFormats();
            return;
        }
        try {
            runner.run();
        } catch (NoBenchmarksException e) {
            System.err.println("No matching benchmarks. Miss-spelled regexp?");
            if (cmd.verbosity().orElse(VerboseMode.NORMAL) != VerboseMode.EXTRA) {
                System.err.println("Use " + VerboseMode.EXTRA + " verbose mode to debug the pattern matching.");
            } else {
                runner.list();
            }
            System.exit(1);
        } catch (ProfilersFailedException e) {
            System.err.println(e.getMessage());
            System.exit(1);
        } catch (RunnerException e) {
            System.err.print("ERROR: ");
            e.printStackTrace(System.err);
            System.exit(1);
        }
    }

    /** The flags from this jar's manifest, split on whitespace; empty outside a jar. */
    static List<String> chronicleFlags() throws IOException {
        String value = manifestValue();
        if (value == null || value.isBlank()) {
            System.err.println("# BenchMain: no " + MANIFEST_ENTRY + " in the manifest; forks get no extra JVM flags");
            return List.of();
        }
        return Arrays.asList(value.trim().split("\\s+"));
    }

    private static String manifestValue() throws IOException {
        // our own jar first: the shaded jar has exactly one manifest, but a class path may hold several
        CodeSource src = BenchMain.class.getProtectionDomain().getCodeSource();
        if (src != null && src.getLocation() != null) {
            try {
                Path p = Path.of(src.getLocation().toURI());
                if (Files.isRegularFile(p)) {
                    try (JarFile jar = new JarFile(p.toFile())) {
                        Manifest m = jar.getManifest();
                        if (m != null && m.getMainAttributes().getValue(MANIFEST_ENTRY) != null) {
                            return m.getMainAttributes().getValue(MANIFEST_ENTRY);
                        }
                    }
                }
            } catch (java.net.URISyntaxException | IllegalArgumentException e) {
                // fall through to the class-path scan
            }
        }
        Enumeration<URL> all = BenchMain.class.getClassLoader().getResources(JarFile.MANIFEST_NAME);
        while (all.hasMoreElements()) {
            try (InputStream in = all.nextElement().openStream()) {
                Attributes a = new Manifest(in).getMainAttributes();
                if (a.getValue(MANIFEST_ENTRY) != null) {
                    return a.getValue(MANIFEST_ENTRY);
                }
            }
        }
        return null;
    }
}
