package io.qcow4j.backup.s3;

import java.net.InetAddress;
import java.net.URI;
import java.util.function.Consumer;

import software.amazon.awssdk.awscore.retry.AwsRetryStrategy;
import software.amazon.awssdk.core.client.config.ClientOverrideConfiguration;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.profiles.ProfileFile;
import software.amazon.awssdk.profiles.ProfileFileSystemSetting;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.regions.providers.DefaultAwsRegionProviderChain;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;

/**
 * The S3 client of the CLI: credentials, region and endpoint from the SDK's standard chain
 * (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL, AWS_PROFILE and
 * ~/.aws/config; the same as aws.* system properties), the JDK's HTTP client, the standard
 * retry mode with 5 attempts (a part of an upload or a ranged read is sent again after a
 * dropped connection, a 5xx or throttling). Path-style addressing ({@code ENDPOINT/BUCKET/KEY})
 * when the endpoint's host is an IP address or {@code localhost}, as MinIO and Ceph RGW
 * deployments need, or when QCOW4J_S3_PATH_STYLE=1 (system property qcow4j.s3.pathStyle).
 * Without any region configured, us-east-1 (most S3-compatible servers ignore it).
 */
public final class S3Clients {
    static final int ATTEMPTS = 5;

    private S3Clients() {
    }

    public static S3Client fromEnvironment() {
        return builder(o -> { }).build();
    }

    /**
     * The same client's builder, for a caller that adds to it. Its override configuration
     * (retries) is set here and {@code override} adds to it (an interceptor, a metrics
     * publisher): a later {@code overrideConfiguration(...)} on the builder would replace it,
     * retries included.
     */
    public static S3ClientBuilder builder(Consumer<ClientOverrideConfiguration.Builder> override) {
        S3ClientBuilder b = S3Client.builder()
                .httpClient(UrlConnectionHttpClient.builder()
                        .connectionTimeout(java.time.Duration.ofSeconds(10))
                        .socketTimeout(java.time.Duration.ofSeconds(120))
                        .build())
                .region(region())
                .overrideConfiguration(o -> override.accept(o.retryStrategy(
                        AwsRetryStrategy.standardRetryStrategy().toBuilder().maxAttempts(ATTEMPTS).build())));
        return b.forcePathStyle(pathStyle(endpoint()));
    }

    private static Region region() {
        try {
            return new DefaultAwsRegionProviderChain().getRegion();
        } catch (SdkException e) {
            return Region.US_EAST_1;
        }
    }

    /** The endpoint the SDK will use, as far as it is configured outside the code (null: AWS's own). */
    static String endpoint() {
        for (String v : new String[] {System.getProperty("aws.endpointUrlS3"), System.getenv("AWS_ENDPOINT_URL_S3"),
                System.getProperty("aws.endpointUrl"), System.getenv("AWS_ENDPOINT_URL")}) {
            if (v != null && !v.isBlank()) {
                return v;
            }
        }
        try {
            String name = ProfileFileSystemSetting.AWS_PROFILE.getStringValueOrThrow();
            var profile = ProfileFile.defaultProfileFile().profile(name);
            if (profile.isPresent()) {
                var v = profile.get().property("endpoint_url");
                if (v.isPresent()) {
                    return v.get();
                }
            }
        } catch (RuntimeException e) {
            // no profile file, or an unreadable one: the SDK says so itself if it matters
        }
        return null;
    }

    static boolean pathStyle(String endpoint) {
        String forced = System.getProperty("qcow4j.s3.pathStyle", System.getenv("QCOW4J_S3_PATH_STYLE"));
        if (forced != null && !forced.isBlank()) {
            return forced.equals("1") || forced.equalsIgnoreCase("true");
        }
        if (endpoint == null) {
            return false;
        }
        String host;
        try {
            host = URI.create(endpoint).getHost();
        } catch (IllegalArgumentException e) {
            return false;
        }
        if (host == null) {
            return false;
        }
        if (host.equalsIgnoreCase("localhost") || host.startsWith("[")) {
            return true;
        }
        return host.matches("\\d{1,3}(\\.\\d{1,3}){3}") && isLiteral(host);
    }

    private static boolean isLiteral(String host) {
        try {
            return InetAddress.getByName(host) != null; // a dotted quad resolves without a look-up
        } catch (java.net.UnknownHostException e) {
            return false;
        }
    }
}
