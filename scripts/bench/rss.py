#!/usr/bin/env python3
"""Runs a command and records its peak resident memory and its children's: rss.py OUTFILE CMD...

GNU time's %M is the largest of the command and the children it waited for, which for
rancher-upgrade is the docker CLI's. This samples /proc every 20 ms instead: the command's own
VmHWM (the kernel's high-water mark, so the last sample is its peak up to its last 20 ms), and
the largest VmHWM of any process below it (the docker or podman CLI, and what that starts).
Writes "COMMAND_KB CHILDREN_KB" to OUTFILE; passes stdin, stdout and stderr through and exits
with the command's status.
"""
import os
import shutil
import subprocess
import sys
import time

INTERVAL = 0.02


def runs(pid, program):
    """Whether the process runs `program` yet: between fork and exec it is a copy of this one."""
    try:
        return os.path.realpath(f"/proc/{pid}/exe") == program
    except OSError:
        return False


def hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return found


def descendants(pid):
    pending, seen = children(pid), []
    while pending:
        child = pending.pop()
        seen.append(child)
        pending += children(child)
    return seen


def main():
    out, command = sys.argv[1], sys.argv[2:]
    program = os.path.realpath(shutil.which(command[0]) or command[0])
    process = subprocess.Popen(command)
    own = below = 0
    while process.poll() is None:
        if runs(process.pid, program):
            own = max(own, hwm_kb(process.pid))
        for child in descendants(process.pid):
            below = max(below, hwm_kb(child))
        time.sleep(INTERVAL)
    with open(out, "w") as f:
        f.write(f"{own} {below}\n")
    sys.exit(process.returncode if process.returncode >= 0 else 128 - process.returncode)


if __name__ == "__main__":
    main()
