package io.dedisk.nbd;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentSkipListMap;

import io.dedisk.pool.VolumeDevice;
import io.dedisk.pool.VolumeProvider;

/** Test twin of the volume catalogue: a sorted, thread-safe map of {@link MemoryVolume}s by name. */
final class MemoryVolumeProvider implements VolumeProvider {
    private final Map<String, VolumeDevice> volumes = new ConcurrentSkipListMap<>();

    MemoryVolumeProvider(VolumeDevice... devices) {
        for (VolumeDevice device : devices) add(device);
    }

    void add(VolumeDevice device) {
        volumes.put(device.name(), device);
    }

    @Override
    public List<String> volumeNames() {
        return List.copyOf(volumes.keySet());
    }

    @Override
    public Optional<VolumeDevice> volume(String name) {
        return Optional.ofNullable(volumes.get(name));
    }
}
