package io.dedisk.store;

import io.dedisk.sim.SimObjectStore;

/** The simulated twin, with no faults injected, keeps the object-store contract S3 keeps. */
class SimObjectStoreContractTest extends ObjectStoreContract {
    @Override
    protected ObjectStore newStore(int listPageSize) { return new SimObjectStore(42); }
}
