#!/usr/bin/env python3
"""Polls http://127.0.0.1:PORT/ping every INTERVAL seconds and records each answer.

Usage: prober.py PORT OUTFILE CONTROL_DIR [INTERVAL=0.02] [TIMEOUT=0.2]

Each probe appends "<unix time of the answer> <1|0>" to OUTFILE (1 = HTTP 200 with body pong).
Probes start on a fixed 20 ms grid; one that overruns (timeout) is followed by the next tick.
CONTROL_DIR/ready is created at the first pong. Once CONTROL_DIR/done exists, the prober keeps
going until it has seen STEADY (25, i.e. 0.5 s) consecutive pongs after a pong that came after
`done` was noticed, then exits 0; it exits 3 if that takes longer than 120 s.
"""
import os
import socket
import sys
import time

STEADY = 25
REQUEST = b"GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"


def probe(port, timeout):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(REQUEST)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return False
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    return len(status) >= 2 and status[1] == b"200" and body.strip() == b"pong"


def main():
    port = int(sys.argv[1])
    out = open(sys.argv[2], "w", buffering=1)
    control = sys.argv[3]
    interval = float(sys.argv[4]) if len(sys.argv) > 4 else 0.02
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 0.2
    ready = False
    done_at = None
    steady = 0
    tick = time.monotonic()
    while True:
        ok = probe(port, timeout)
        now = time.time()
        out.write(f"{now:.6f} {1 if ok else 0}\n")
        if ok and not ready:
            ready = True
            open(os.path.join(control, "ready"), "w").close()
        if done_at is None and os.path.exists(os.path.join(control, "done")):
            done_at = now
        if done_at is not None:
            steady = steady + 1 if ok else 0
            if steady >= STEADY:
                return 0
            if now - done_at > 120:
                return 3
        tick += interval
        delay = tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            tick = time.monotonic()


if __name__ == "__main__":
    sys.exit(main())
