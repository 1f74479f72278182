package io.dedisk.pool;

import io.dedisk.util.Check;
import java.util.ArrayList;
import java.util.List;

/**
 * The trees that may share durable page versions: a volume, its snapshots, their clones, and theirs (every tree
 * derived from one origin volume). The family id is the origin's volume id (0: the chunk table, a family of one);
 * it is stored in each member's volume record and in the tree field of every PAGE record its members write, so a
 * page written by a member that was deleted since is still found by the members that share it (the cleaner).
 *
 * Sharing rule (docs/format.md "Shared pages"): all members have the same shape for the same LBAs (growth only adds
 * levels on top), so a page version is (level, index, address). A version is shared iff two or more members' current
 * paths at (level, index) resolve to that address with its durable content: no page refcount is stored, the
 * members' paths are asked ({@link PageTree#hold}).
 *
 * Threads: changed and read under the pool's metadata write lock (reads of {@link #heldElsewhere} under the read
 * lock too). Invariants: a tree is a member of exactly one family, its own id's tree or the one it was derived in.
 */
final class Family {
    /** How a tree holds a durable page version. */
    enum Hold {
        /** Not at all: its path at that place resolves to another address, or to nothing. */
        NONE,
        /** Only the bytes: its page there is a changed copy (dirty) that still names the version as its previous one. */
        BYTES,
        /** The version itself: its page there is that durable content (not loaded, clean, or dirty only to be moved). */
        VERSION
    }

    final int id;
    private final List<PageTree> members = new ArrayList<>(1);

    Family(int id) {
        Check.that(id >= 0, "family id %d", id);
        this.id = id;
    }

    void add(PageTree t) {
        Check.that(!members.contains(t), "tree %d joins family %d once", t.tree, id);
        members.add(t);
    }

    void remove(PageTree t) {
        Check.that(members.remove(t), "tree %d leaves family %d it belongs to", t.tree, id);
    }

    boolean isEmpty() { return members.isEmpty(); }

    List<PageTree> members() { return List.copyOf(members); }

    /** The strongest hold any member but {@code self} has on the version at (level, index, address). */
    Hold heldElsewhere(PageTree self, int level, long index, long address) {
        if (members.size() == 1 || address == 0) return Hold.NONE; // the common case: nothing is shared
        Hold best = Hold.NONE;
        for (PageTree t : members) {
            if (t == self) continue;
            Hold h = t.hold(level, index, address);
            if (h == Hold.VERSION) return h;
            if (h == Hold.BYTES) best = h;
        }
        return best;
    }
}
