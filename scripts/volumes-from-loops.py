#!/usr/bin/env python3
"""Prints every --volumes-from loop among the containers of a Docker data root, one per line:

    rancher (3f2a…) -> rancher-data (9c1b…) -> rancher

dockerd 20.10 never finishes starting ("Loading containers: start.") when a container takes its
volumes from one that, directly or not, takes them back (moby#38825). A loop forms when a data
container names a server by name and a later server takes that name, with --volumes-from the data
container. Reads the files only; dockerd need not run.

    volumes-from-loops.py [DATA_ROOT]   (default: /var/lib/docker)
"""
import json
import os
import sys


def containers(root):
    """id -> (name, [volumes-from references])."""
    found = {}
    base = os.path.join(root, "containers")
    for cid in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        try:
            with open(os.path.join(base, cid, "config.v2.json")) as f:
                name = json.load(f).get("Name", "").lstrip("/")
            with open(os.path.join(base, cid, "hostconfig.json")) as f:
                refs = json.load(f).get("VolumesFrom") or []
        except (OSError, ValueError):
            continue
        # "name:ro" and "name:rw" name the same container.
        found[cid] = (name, [ref.rsplit(":", 1)[0] if ref.endswith((":ro", ":rw")) else ref for ref in refs])
    return found


def resolve(ref, found, by_name):
    if ref in by_name:
        return by_name[ref]
    matches = [cid for cid in found if cid.startswith(ref)]
    return matches[0] if len(matches) == 1 else None


def loops(found):
    by_name = {name: cid for cid, (name, _) in found.items()}
    edges = {cid: [t for t in (resolve(r, found, by_name) for r in refs) if t] for cid, (_, refs) in found.items()}
    seen_loops = set()
    result = []
    for start in sorted(edges):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in edges.get(node, []):
                if nxt == start:
                    key = frozenset(path)
                    if key not in seen_loops:
                        seen_loops.add(key)
                        result.append(path + [start])
                elif nxt not in path and nxt > start:
                    stack.append((nxt, path + [nxt]))
    return result


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "/var/lib/docker"
    found = containers(root)
    for path in loops(found):
        print(" -> ".join(f"{found[cid][0]} ({cid[:12]})" for cid in path))


if __name__ == "__main__":
    main()
