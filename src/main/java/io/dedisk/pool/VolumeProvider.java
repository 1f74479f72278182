package io.dedisk.pool;

import java.util.List;
import java.util.Optional;

/** What the NBD server exports: the current set of volumes, looked up by export name. Thread-safe. */
public interface VolumeProvider {
    /** Names of the volumes that can be exported now, sorted. */
    List<String> volumeNames();

    /** The volume with this name, if it exists. */
    Optional<VolumeDevice> volume(String name);

    /** The export used when a client asks for the empty name: the only volume, or one named "default". */
    default Optional<VolumeDevice> defaultVolume() {
        List<String> names = volumeNames();
        if (names.size() == 1) return volume(names.get(0));
        return volume("default");
    }
}
