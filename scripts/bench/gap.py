#!/usr/bin/env python3
"""Downtime from a prober record: gap.py PROBES T_START

PROBES holds "<time> <1|0>" lines (prober.py). The downtime is the longest stretch between two
consecutive pongs that ends after T_START: from the old server's last pong to the new server's
first. (A probe that merely times out while the old server is busy, say during the pull, makes
a short stretch of its own; it is counted, not taken for the downtime.)

Prints "<downtime s> <last pong> <first pong> <failed probes outside the downtime> <probes>",
or exits 1 when no failed probe follows T_START.
"""
import sys


def main():
    t_start = float(sys.argv[2])
    probes = []
    with open(sys.argv[1]) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                probes.append((float(parts[0]), parts[1] == "1"))
    pongs = [t for t, ok in probes if ok]
    gaps = [(b - a, a, b) for a, b in zip(pongs, pongs[1:]) if b > t_start]
    if not gaps or not any(not ok and t >= t_start for t, ok in probes):
        print("no failed probe after the start", file=sys.stderr)
        return 1
    downtime, last, first = max(gaps)
    others = sum(1 for t, ok in probes if not ok and t >= t_start and not last < t < first)
    print(f"{downtime:.3f} {last:.6f} {first:.6f} {others} {len(probes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
