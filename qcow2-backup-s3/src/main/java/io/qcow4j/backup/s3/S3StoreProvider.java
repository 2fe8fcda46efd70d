package io.qcow4j.backup.s3;

import java.io.IOException;

import io.qcow4j.backup.SetStore;

/** {@code s3://BUCKET/PREFIX} for {@link io.qcow4j.backup.SetStores#open}: a client from the environment. */
public final class S3StoreProvider implements SetStore.Provider {
    @Override
    public String scheme() {
        return "s3";
    }

    @Override
    public SetStore open(String location) throws IOException {
        return new S3Store(S3Clients.fromEnvironment(), S3Location.parse(location));
    }
}
