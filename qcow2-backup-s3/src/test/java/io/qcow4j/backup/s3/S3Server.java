package io.qcow4j.backup.s3;

import java.net.URI;
import java.nio.file.Path;
import java.util.Properties;

import org.gaul.s3proxy.AuthenticationType;
import org.gaul.s3proxy.S3Proxy;
import org.jclouds.ContextBuilder;
import org.jclouds.blobstore.BlobStoreContext;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * A real S3-compatible server for the tests: S3Proxy on 127.0.0.1 (a free port), in this JVM,
 * storing objects through jclouds' filesystem backend under a directory, signatures checked
 * against one key pair. {@link #configureSdk()} points the SDK's standard configuration (the
 * aws.* system properties, read like the AWS_* environment) at it, so the code under test
 * builds its client as in production; {@link #configureChild} gives a child process the same
 * through its environment.
 */
public final class S3Server implements AutoCloseable {
    public static final String ACCESS = "qcow4j-test-access";
    public static final String SECRET = "qcow4j-test-secret-key";

    private final S3Proxy proxy;
    private final BlobStoreContext context;
    public final URI endpoint;

    private S3Server(S3Proxy proxy, BlobStoreContext context, URI endpoint) {
        this.proxy = proxy;
        this.context = context;
        this.endpoint = endpoint;
    }

    public static S3Server start(Path baseDir) throws Exception {
        Properties p = new Properties();
        p.setProperty("jclouds.filesystem.basedir", baseDir.toString());
        BlobStoreContext ctx = ContextBuilder.newBuilder("filesystem").credentials("identity", "credential").overrides(p)
                .build(BlobStoreContext.class);
        S3Proxy proxy = S3Proxy.builder().blobStore(ctx.getBlobStore()).endpoint(URI.create("http://127.0.0.1:0"))
                .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, ACCESS, SECRET).build();
        proxy.start();
        for (int i = 0; i < 200 && !proxy.getState().equals("STARTED"); i++) {
            Thread.sleep(25);
        }
        if (!proxy.getState().equals("STARTED")) {
            throw new IllegalStateException("S3Proxy did not start: " + proxy.getState());
        }
        return new S3Server(proxy, ctx, URI.create("http://127.0.0.1:" + proxy.getPort()));
    }

    private static S3Server shared;

    /**
     * One server for every test class of this JVM (S3Proxy takes seconds to start), with the
     * bucket {@link S3Sets#BUCKET} and the SDK configured ({@link #configureSdk()}); stopped and
     * its directory removed when the JVM exits. Each class works under a prefix of its own.
     */
    public static synchronized S3Server shared() throws Exception {
        if (shared == null) {
            Path dir = java.nio.file.Files.createTempDirectory("qcow4j-s3proxy");
            S3Server s = start(dir);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try {
                    s.close();
                } catch (Exception e) {
                    // exiting anyway
                }
                try (var files = java.nio.file.Files.walk(dir)) {
                    files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
                } catch (java.io.IOException e) {
                    // a temporary directory left behind
                }
            }));
            s.configureSdk();
            try (S3Client c = s.client()) {
                c.createBucket(r -> r.bucket(S3Sets.BUCKET));
            }
            shared = s;
        }
        return shared;
    }

    /** The SDK's standard settings, as system properties of this JVM. */
    public void configureSdk() {
        sdkSettings().forEach(System::setProperty);
    }

    private java.util.Map<String, String> sdkSettings() {
        return java.util.Map.of("aws.accessKeyId", ACCESS, "aws.secretAccessKey", SECRET, "aws.region", "us-east-1",
                "aws.endpointUrl", endpoint.toString());
    }

    /**
     * The same settings as the environment of a child process: AWS_* variables, or with
     * {@code profileDir} a profile ({@code AWS_PROFILE}) in config and credentials files
     * written there. The endpoint is named {@code localhost}; the user's own AWS_* variables
     * and ~/.aws files are kept out.
     */
    public void configureChild(java.util.Map<String, String> env, Path profileDir) throws java.io.IOException {
        env.keySet().removeIf(k -> k.startsWith("AWS_") || k.startsWith("QCOW4J_S3"));
        String local = "http://localhost:" + endpoint.getPort();
        if (profileDir == null) {
            env.put("AWS_ACCESS_KEY_ID", ACCESS);
            env.put("AWS_SECRET_ACCESS_KEY", SECRET);
            env.put("AWS_REGION", "eu-central-1");
            env.put("AWS_ENDPOINT_URL", local);
            env.put("AWS_CONFIG_FILE", "/nonexistent/aws-config");
            env.put("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials");
            return;
        }
        Path config = profileDir.resolve("aws-config");
        Path credentials = profileDir.resolve("aws-credentials");
        java.nio.file.Files.writeString(config, "[profile qcow4j-test]\nregion = eu-west-3\nendpoint_url = " + local + "\n");
        java.nio.file.Files.writeString(credentials, "[qcow4j-test]\naws_access_key_id = " + ACCESS
                + "\naws_secret_access_key = " + SECRET + "\n");
        env.put("AWS_CONFIG_FILE", config.toString());
        env.put("AWS_SHARED_CREDENTIALS_FILE", credentials.toString());
        env.put("AWS_PROFILE", "qcow4j-test");
    }

    /** A client of the test's own, to look at the bucket behind the library's back. */
    public S3Client client() {
        return S3Client.builder().endpointOverride(endpoint).region(Region.US_EAST_1).forcePathStyle(true)
                .httpClient(software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient.create())
                .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create(ACCESS, SECRET))).build();
    }

    @Override
    public void close() throws Exception {
        try {
            proxy.stop();
        } finally {
            context.close();
        }
    }
}
