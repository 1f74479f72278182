package io.dedisk.store;

import io.dedisk.DediskException.InvalidRequestException;
import io.dedisk.util.Check;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.regex.Pattern;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.AwsSessionCredentials;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.http.apache5.Apache5HttpClient;
import software.amazon.awssdk.profiles.ProfileFile;
import software.amazon.awssdk.profiles.ProfileFileLocation;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.regions.providers.AwsProfileRegionProvider;
import software.amazon.awssdk.regions.providers.DefaultAwsRegionProviderChain;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;

/**
 * Where a pool lives in an object store, {@code s3://BUCKET/PREFIX}, and how to reach it the way every AWS tool
 * does. Owns: parsing and validating the URI (AWS bucket naming rules; the prefix normalised to "" or "a/b/"),
 * mapping pool-relative names to bucket keys, and configuring an {@link S3ClientBuilder} from the environment:
 * <ul>
 * <li>endpoint: {@code AWS_ENDPOINT_URL_S3}, else {@code AWS_ENDPOINT_URL} (unless
 * {@code AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true}), else whatever the SDK's own endpoint chain finds (the
 * profile's {@code endpoint_url}, its {@code services} section); none means AWS itself;</li>
 * <li>addressing: path-style whenever an endpoint is set (S3-compatible servers on their own host name have no
 * wildcard DNS for bucket sub-domains), virtual-hosted for AWS;</li>
 * <li>region: {@code AWS_REGION}, else the profile's {@code region}; with an endpoint and neither, us-east-1 (most
 * S3-compatible servers ignore it, but SigV4 needs one); for AWS, the SDK's full chain (also EC2 metadata);</li>
 * <li>credentials: {@code AWS_ACCESS_KEY_ID}/{@code AWS_SECRET_ACCESS_KEY} (+ {@code AWS_SESSION_TOKEN}), else the
 * SDK's default chain for profile {@code AWS_PROFILE} (config and credentials files, SSO, web identity, container
 * and instance roles).</li>
 * <li>files: {@code AWS_CONFIG_FILE} / {@code AWS_SHARED_CREDENTIALS_FILE}, else ~/.aws/config and
 * ~/.aws/credentials.</li>
 * </ul>
 * The environment is passed in as a map (the process's own in production) so that tests decide it; the SDK reads
 * the same variables natively, and with the process environment both agree.
 *
 * Immutable; any thread.
 */
public record S3Location(String bucket, String prefix) {
    public static final String SCHEME = "s3://";
    /** The region an S3-compatible endpoint is signed for when none is configured. */
    public static final Region DEFAULT_ENDPOINT_REGION = Region.US_EAST_1;

    // AWS's general-purpose bucket rules: 3-63 of [a-z0-9.-], a letter or digit at both ends.
    private static final Pattern BUCKET = Pattern.compile("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]");
    private static final Pattern IPV4 = Pattern.compile("\\d{1,3}(\\.\\d{1,3}){3}");
    // AWS's "safe" key characters: no escaping needed in URLs, shells or configuration files.
    private static final Pattern PREFIX_SEGMENT = Pattern.compile("[A-Za-z0-9!_.*'()-]+");

    public S3Location {
        checkBucket(bucket);
        if (!prefix.isEmpty()) {
            if (!prefix.endsWith("/")) throw new InvalidRequestException("S3 key prefix must end in '/': found '" + prefix + "'");
            checkPrefix(prefix.substring(0, prefix.length() - 1));
        }
    }

    /** True when a --pool argument names an object-store pool rather than a local directory. */
    public static boolean isS3Uri(String pool) { return pool.startsWith(SCHEME); }

    /** Parses {@code s3://BUCKET}, {@code s3://BUCKET/} or {@code s3://BUCKET/PRE/FIX[/]}. */
    public static S3Location parse(String uri) {
        if (!isS3Uri(uri)) throw new InvalidRequestException("expected an S3 URI s3://BUCKET/PREFIX, found '" + uri + "'");
        String rest = uri.substring(SCHEME.length());
        if (rest.indexOf('?') >= 0 || rest.indexOf('#') >= 0) {
            throw new InvalidRequestException("S3 URI must not have a query or fragment (endpoint and options come from the environment): '" + uri + "'");
        }
        int slash = rest.indexOf('/');
        String bucket = slash < 0 ? rest : rest.substring(0, slash);
        String path = slash < 0 ? "" : rest.substring(slash + 1);
        if (bucket.isEmpty()) throw new InvalidRequestException("S3 URI names no bucket: '" + uri + "'");
        if (bucket.contains("@") || bucket.contains(":")) {
            throw new InvalidRequestException("S3 URI must name only a bucket, no credentials or port (set AWS_ENDPOINT_URL for another server): '" + uri + "'");
        }
        if (path.endsWith("/")) path = path.substring(0, path.length() - 1);
        return new S3Location(bucket, path.isEmpty() ? "" : path + "/");
    }

    private static void checkBucket(String bucket) {
        String why = null;
        if (!BUCKET.matcher(bucket).matches()) why = "3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit";
        else if (bucket.contains("..")) why = "no two adjacent periods";
        else if (IPV4.matcher(bucket).matches()) why = "not formatted as an IP address";
        else if (bucket.startsWith("xn--") || bucket.startsWith("sthree-") || bucket.endsWith("-s3alias") || bucket.endsWith("--ol-s3")) why = "no reserved prefix or suffix";
        if (why != null) throw new InvalidRequestException("invalid S3 bucket name '" + bucket + "': expected " + why);
    }

    private static void checkPrefix(String path) {
        for (String segment : path.split("/", -1)) {
            if (segment.isEmpty()) throw new InvalidRequestException("S3 key prefix '" + path + "/' has an empty path segment ('//')");
            if (segment.equals(".") || segment.equals("..")) throw new InvalidRequestException("S3 key prefix '" + path + "/' has a '" + segment + "' segment");
            if (!PREFIX_SEGMENT.matcher(segment).matches()) {
                throw new InvalidRequestException("S3 key prefix segment '" + segment + "' has characters outside A-Z a-z 0-9 ! _ . * ' ( ) -");
            }
        }
    }

    /** The bucket key of a pool-relative object name. */
    public String key(String name) { return prefix + name; }

    /** The pool-relative name of a bucket key under this prefix. */
    public String name(String key) {
        Check.that(key.startsWith(prefix), "bucket key %s is not under prefix %s", key, prefix);
        return key.substring(prefix.length());
    }

    /** This location with name + "/" appended to its prefix (e.g. one fresh prefix per test). */
    public S3Location resolve(String name) { return new S3Location(bucket, key(name) + "/"); }

    @Override
    public String toString() { return SCHEME + bucket + "/" + prefix; }

    /**
     * A client builder for this location: endpoint, addressing, region and credentials from {@code env} (see the
     * class comment) and an Apache 5 HTTP client; callers add timeouts, retries and the HTTP client's tuning.
     */
    public S3ClientBuilder clientBuilder(Map<String, String> env) {
        String profile = env.getOrDefault("AWS_PROFILE", "default");
        ProfileFile files = profileFile(env);
        URI endpoint = endpointFromEnvironment(env);
        Region region = configuredRegion(env, files, profile);
        if (endpoint == null) endpoint = sdkEndpoint(env, files, profile, region == null ? DEFAULT_ENDPOINT_REGION : region);
        if (region == null) region = endpoint != null ? DEFAULT_ENDPOINT_REGION : awsRegion(files, profile);
        S3ClientBuilder b = baseBuilder(env, files, profile, region);
        // Only an override is path-style: AWS itself is virtual-hosted (path-style is deprecated there).
        if (endpoint != null) b.endpointOverride(endpoint).forcePathStyle(true);
        return b;
    }

    /** The endpoint the environment sets, or null. */
    static URI endpointFromEnvironment(Map<String, String> env) {
        if ("true".equalsIgnoreCase(env.getOrDefault("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", ""))) return null;
        for (String name : new String[] {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"}) {
            String value = env.get(name);
            if (value != null && !value.isBlank()) return endpointUri(name, value.strip());
        }
        return null;
    }

    private static URI endpointUri(String variable, String value) {
        URI u;
        try {
            u = new URI(value);
        } catch (URISyntaxException e) {
            throw new InvalidRequestException(variable + " must be an http:// or https:// URL, found '" + value + "': " + e.getMessage());
        }
        if (u.getScheme() == null || !(u.getScheme().equals("http") || u.getScheme().equals("https")) || u.getHost() == null) {
            throw new InvalidRequestException(variable + " must be an http:// or https:// URL with a host, found '" + value + "'");
        }
        return u;
    }

    /**
     * The config and credentials files: those AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE name (each defaulting
     * to its ~/.aws file, as the SDK's does), or the SDK's own default when the environment names neither.
     */
    private static ProfileFile profileFile(Map<String, String> env) {
        String config = env.get("AWS_CONFIG_FILE");
        String credentials = env.get("AWS_SHARED_CREDENTIALS_FILE");
        if (config == null && credentials == null) return ProfileFile.defaultProfileFile();
        var all = ProfileFile.aggregator();
        Path c = config != null ? Path.of(config) : ProfileFileLocation.configurationFilePath();
        Path k = credentials != null ? Path.of(credentials) : ProfileFileLocation.credentialsFilePath();
        if (Files.isRegularFile(c)) all.addFile(ProfileFile.builder().content(c).type(ProfileFile.Type.CONFIGURATION).build());
        if (Files.isRegularFile(k)) all.addFile(ProfileFile.builder().content(k).type(ProfileFile.Type.CREDENTIALS).build());
        return all.build();
    }

    /** AWS_REGION, else the profile's region, else null. */
    private static Region configuredRegion(Map<String, String> env, ProfileFile files, String profile) {
        String r = env.get("AWS_REGION");
        if (r != null && !r.isBlank()) return Region.of(r.strip());
        try {
            return new AwsProfileRegionProvider(() -> files, profile).getRegion();
        } catch (SdkClientException noRegionInProfile) {
            return null;
        }
    }

    /** The SDK's full region chain, for AWS itself (EC2 instance metadata included). */
    private static Region awsRegion(ProfileFile files, String profile) {
        try {
            return DefaultAwsRegionProviderChain.builder().profileFile(() -> files).profileName(profile).build().getRegion();
        } catch (SdkClientException e) {
            throw new InvalidRequestException("no AWS region configured for S3: set AWS_REGION or 'region' in ~/.aws/config (" + e.getMessage() + ")");
        }
    }

    /** The endpoint the SDK's own chain resolves (config-file endpoint_url, services sections), or null. */
    private static URI sdkEndpoint(Map<String, String> env, ProfileFile files, String profile, Region region) {
        try (S3Client probe = baseBuilder(env, files, profile, region).build()) {
            return probe.serviceClientConfiguration().endpointOverride().orElse(null);
        }
    }

    private static S3ClientBuilder baseBuilder(Map<String, String> env, ProfileFile files, String profile, Region region) {
        return S3Client.builder().region(region).credentialsProvider(credentials(env, files, profile))
                .httpClientBuilder(Apache5HttpClient.builder())
                .overrideConfiguration(c -> c.defaultProfileFile(files).defaultProfileName(profile));
    }

    private static AwsCredentialsProvider credentials(Map<String, String> env, ProfileFile files, String profile) {
        String id = env.get("AWS_ACCESS_KEY_ID");
        String secret = env.get("AWS_SECRET_ACCESS_KEY");
        if (id != null && !id.isBlank() && secret != null && !secret.isBlank()) {
            String token = env.get("AWS_SESSION_TOKEN");
            return StaticCredentialsProvider.create(token == null || token.isBlank()
                    ? AwsBasicCredentials.create(id.strip(), secret.strip())
                    : AwsSessionCredentials.create(id.strip(), secret.strip(), token.strip()));
        }
        return DefaultCredentialsProvider.builder().profileFile(files).profileName(profile).build();
    }
}
