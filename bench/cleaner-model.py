#!/usr/bin/env python3
"""A model of the log cleaner under the churn bench's workload, for choosing cleaner policies by figures.

1 GiB of 4 KiB blocks in 16 MiB segments; after a sequential fill, uniform random overwrites, half the bytes as
4 KiB writes and half as aligned 64 KiB writes (bench/engine.sh's churn). The cleaner keeps the segments at
live x (1 + spare) and prints write amplification, (client + moved) / client, for greedy and cost-benefit victim
choice, with the cleaner's copies mixed into the fresh writes' segments or written to segments of their own
(hot/cold separation). Measured after the first overwrite of the volume. Pure Python, ~1 minute for the table.

    bench/cleaner-model.py                # the table in docs/decisions.md
    bench/cleaner-model.py 0.18 0.20      # other spares
"""
import random
import sys


def run(spare, policy, segregate, seed=1, blocks=262144, seg=4096, overwrites=6):
    rnd = random.Random(seed)
    cap = int(blocks * (1 + spare) / seg) + 1  # segments allowed, open heads included
    loc = [None] * blocks
    live, members = {}, {}
    state = {"seq": 0, "moved": 0, "user": 0}
    heads = {}

    def put(b, kind):
        h = heads.get(kind)
        if h is None or len(members[h]) >= seg:
            state["seq"] += 1
            h = heads[kind] = state["seq"]
            live[h], members[h] = 0, []
        if loc[b] is not None:
            live[loc[b]] -= 1
        loc[b] = h
        live[h] += 1
        members[h].append(b)

    def clean():
        while len(live) > cap:
            open_heads = set(heads.values())
            cands = [s for s in live if s not in open_heads]
            tail = state["seq"]
            if policy == "greedy":
                v = min(cands, key=lambda s: live[s])
            else:
                v = max(cands, key=lambda s: (1 - live[s] / seg) * (tail - s) / (1 + live[s] / seg))
            for b in members[v]:
                if loc[b] == v:
                    put(b, "gc" if segregate else "user")
                    state["moved"] += 1
            del live[v], members[v]

    for b in range(blocks):
        put(b, "user")
    done, mark = 0, None
    while done < overwrites * blocks:
        if rnd.random() < 16 / 17:
            bs = [rnd.randrange(blocks)]
        else:
            a = rnd.randrange(blocks // 16) * 16
            bs = range(a, a + 16)
        for b in bs:
            put(b, "user")
            state["user"] += 1
        done += len(bs)
        clean()
        if mark is None and done >= blocks:
            mark = (state["moved"], state["user"])
    moved, user = state["moved"] - mark[0], state["user"] - mark[1]
    return (user + moved) / user


if __name__ == "__main__":
    spares = [float(a) for a in sys.argv[1:]] or [0.15, 0.18, 0.20, 0.25]
    print("spare  garbage  policy        mixed  separate   (write amplification = (client + moved) / client)")
    for spare in spares:
        for policy in ("greedy", "cost-benefit"):
            mixed, separate = run(spare, policy, False), run(spare, policy, True)
            print(f"{spare:5.2f}  {spare / (1 + spare):6.1%}  {policy:12s}  {mixed:5.2f}  {separate:8.2f}", flush=True)
