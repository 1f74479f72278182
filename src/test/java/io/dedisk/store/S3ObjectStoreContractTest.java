package io.dedisk.store;

import org.junit.jupiter.api.extension.RegisterExtension;

/** S3ObjectStore on a real S3 server (S3Proxy on 127.0.0.1) keeps the object-store contract the twin keeps. */
class S3ObjectStoreContractTest extends ObjectStoreContract {
    @RegisterExtension
    static final S3ProxyFixture S3 = new S3ProxyFixture();

    @Override
    protected ObjectStore newStore(int listPageSize) { return S3.newStore(S3ProxyFixture.fastSettings().withListPageSize(listPageSize)); }
}
