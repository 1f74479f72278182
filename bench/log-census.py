#!/usr/bin/env python3
"""Bytes of a directory pool's log by record type, and PAGE records by page kind and encoding.

    bench/log-census.py POOL_DIR

Parses the segment files with the offsets docs/format.md gives (independently of dedisk's own code): every
record's 28-byte header, WRITE/RELOCATE records split into their covered part (header and entries) and the chunk
bodies after it. Counts every record still in a segment, live or garbage. Read-only.
"""
import collections
import glob
import os
import struct
import sys

NAMES = {1: "SEGMENT_HEADER", 2: "SEAL", 3: "VOLUME_CREATE", 4: "VOLUME_DELETE", 5: "VOLUME_RESIZE", 6: "WRITE",
         7: "MAP_RANGE", 8: "PAGE", 9: "ROOT", 10: "RELOCATE", 11: "VOLUME_RENAME", 12: "SNAPSHOT_CREATE",
         13: "CLONE_CREATE", 14: "VOLUME_ROLLBACK"}
KINDS = {1: "block-map leaf", 2: "interior", 3: "chunk-table leaf"}


def main(pool):
    total = collections.Counter()
    count = collections.Counter()
    segments = sorted(glob.glob(os.path.join(pool, "segments", "*.seg")))
    if not segments:
        sys.exit("no segments under %s/segments" % pool)
    for path in segments:
        data = open(path, "rb").read()
        off = 0
        while off + 28 <= len(data):
            magic, typ, _version, _res, length, covered, _lsn, _crc = struct.unpack_from("<IBBHIIQI", data, off)
            if magic != 0x43455244:
                break
            name = NAMES.get(typ, "type %d" % typ)
            if typ == 8:
                key = "PAGE %s, encoding %d" % (KINDS.get(data[off + 28], "kind ?"), data[off + 30])
                total[key] += 28 + length
                count[key] += 1
            elif typ in (6, 10):
                total[name + " header+entries"] += 28 + covered
                count[name + " header+entries"] += 1
                total[name + " chunk bodies"] += length - covered
            else:
                total[name] += 28 + length
                count[name] += 1
            off += 28 + length
    print("%-40s %14s %9s %9s" % ("records", "bytes", "count", "avg"))
    for key in sorted(total):
        n = count.get(key, 0)
        print("%-40s %14d %9s %9s" % (key, total[key], n or "", total[key] // n if n else ""))
    print("%-40s %14d" % ("all segments", sum(os.path.getsize(p) for p in segments)))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
