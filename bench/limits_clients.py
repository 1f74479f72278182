#!/usr/bin/env python3
"""Hostile NBD clients for bench/limits.sh (not part of the tests; loopback only, bounded in count and time).

  limits_clients.py hold HOST PORT EXPORT --handshake N --idle N --writers N [--max-seconds S]
      opens N connections that stall in the handshake (greeting read, nothing sent), N that open EXPORT with
      NBD_OPT_GO and then stay idle, and N that declare a 32 MiB NBD_CMD_WRITE and never send its data; then
      waits until the server has closed every one (or S seconds passed) and prints one JSON object: per group
      the count, how many the server closed, and the longest time from a connection's last byte to its close.
  limits_clients.py flood HOST PORT --connections N --seconds S
      N connections send NBD_OPT_LIST with 64 bytes of data (refused by the server) as fast as it answers,
      for S seconds, reconnecting whenever the server closes them (its handshake deadline); prints one JSON
      object with the number of options sent and of reconnects.
"""
import argparse
import json
import selectors
import socket
import struct
import sys
import threading
import time

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
OPT_GO = 7
OPT_LIST = 3
REP_ACK = 1
REQUEST_MAGIC = 0x25609513
CMD_WRITE = 1


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("server closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def greet(host, port):
    s = socket.create_connection((host, port), timeout=30)
    magic, opt, _flags = struct.unpack(">QQH", recv_exactly(s, 18))
    if magic != NBDMAGIC or opt != IHAVEOPT:
        raise RuntimeError("not an NBD server")
    return s


def option(s, opt, data):
    s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)
    while True:
        magic, ropt, rtype, length = struct.unpack(">QIII", recv_exactly(s, 20))
        if magic != REPLY_MAGIC or ropt != opt:
            raise RuntimeError("bad option reply")
        recv_exactly(s, length)
        if rtype == REP_ACK or rtype & 0x80000000:
            return rtype


def opened(host, port, export):
    s = greet(host, port)
    s.sendall(struct.pack(">I", 3))  # FIXED_NEWSTYLE | NO_ZEROES
    name = export.encode()
    if option(s, OPT_GO, struct.pack(">I", len(name)) + name + struct.pack(">H", 0)) != REP_ACK:
        raise RuntimeError("NBD_OPT_GO refused")
    return s


def hold(args):
    groups = {"handshake": [], "idle": [], "writers": []}
    last_byte = {}
    start = time.monotonic()
    for i in range(args.handshake):
        s = greet(args.host, args.port)
        groups["handshake"].append(s)
        last_byte[s] = time.monotonic()
    for i in range(args.idle):
        s = opened(args.host, args.port, args.export)
        groups["idle"].append(s)
        last_byte[s] = time.monotonic()
    for i in range(args.writers):
        s = opened(args.host, args.port, args.export)
        s.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_WRITE, i, 0, 32 << 20))
        groups["writers"].append(s)
        last_byte[s] = time.monotonic()
    all_open = time.monotonic()
    print("opened %d connections in %.1f s" % (sum(len(g) for g in groups.values()), all_open - start),
          file=sys.stderr, flush=True)
    sel = selectors.DefaultSelector()
    for name, sockets in groups.items():
        for s in sockets:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, name)
    closed = {name: [] for name in groups}
    remaining = sum(len(g) for g in groups.values())
    deadline = all_open + args.max_seconds
    while remaining and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except (ConnectionResetError, OSError):
                data = b""
            if data:
                continue  # an option reply or error reply; keep waiting for the close
            closed[key.data].append(time.monotonic() - last_byte[s])
            sel.unregister(s)
            s.close()
            remaining -= 1
    result = {"opened_seconds": round(all_open - start, 1), "held_seconds": round(time.monotonic() - all_open, 1)}
    for name, sockets in groups.items():
        result[name] = {"count": len(sockets), "closed_by_server": len(closed[name]),
                        "max_seconds_to_close": round(max(closed[name]), 2) if closed[name] else None}
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    print(json.dumps(result), flush=True)


def flood(args):
    sent = [0] * args.connections
    reconnects = [0] * args.connections
    stop = time.monotonic() + args.seconds

    def run(i):
        junk = b"x" * 64
        while time.monotonic() < stop:
            s = greet(args.host, args.port)
            s.sendall(struct.pack(">I", 3))
            try:
                while time.monotonic() < stop:
                    option(s, OPT_LIST, junk)
                    sent[i] += 1
            except (EOFError, ConnectionError):
                reconnects[i] += 1  # the handshake deadline passed: come back, as an attacker would
            finally:
                s.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(args.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"connections": args.connections, "seconds": args.seconds, "options": sum(sent),
                      "reconnects": sum(reconnects)}), flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    h = sub.add_parser("hold")
    h.add_argument("host")
    h.add_argument("port", type=int)
    h.add_argument("export")
    h.add_argument("--handshake", type=int, default=5000)
    h.add_argument("--idle", type=int, default=5000)
    h.add_argument("--writers", type=int, default=100)
    h.add_argument("--max-seconds", type=float, default=120)
    f = sub.add_parser("flood")
    f.add_argument("host")
    f.add_argument("port", type=int)
    f.add_argument("--connections", type=int, default=8)
    f.add_argument("--seconds", type=float, default=60)
    args = p.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("loopback only")
    hold(args) if args.mode == "hold" else flood(args)


if __name__ == "__main__":
    main()
