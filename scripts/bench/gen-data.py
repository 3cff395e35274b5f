#!/usr/bin/env python3
"""Writes the backup data set: gen-data.py DIR SIZE_MB

A stand-in for a MySQL data directory of SIZE_MB MiB, reproducible (SHAKE-256 of fixed seeds):
  ibdata1                 half the size, incompressible (like compressed/encrypted pages)
  cattle/table_NN.ibd     16 files, together the other half less the small files: base64 text
                          (gzip takes it to ~76 %, like row data with high entropy)
  cattle/table_NNN.frm    200 files of 8 KiB, text (many small files, as MySQL has)
"""
import base64
import hashlib
import os
import sys

MIB = 1 << 20


def stream(seed, size, text=False):
    made, counter = 0, 0
    while made < size:
        raw = hashlib.shake_256(b"%s-%d" % (seed, counter)).digest(MIB)
        counter += 1
        chunk = base64.encodebytes(raw) if text else raw
        chunk = chunk[: size - made]
        made += len(chunk)
        yield chunk


def write(path, seed, size, text=False):
    with open(path, "wb") as f:
        for chunk in stream(seed, size, text):
            f.write(chunk)


def main():
    root, size_mb = sys.argv[1], int(sys.argv[2])
    total = size_mb * MIB
    os.makedirs(os.path.join(root, "cattle"), exist_ok=True)
    write(os.path.join(root, "ibdata1"), b"ibdata1", total // 2)
    small = 200 * 8192
    per_table = (total - total // 2 - small) // 16
    for i in range(16):
        write(os.path.join(root, "cattle", f"table_{i:02d}.ibd"), b"ibd-%d" % i, per_table, text=True)
    for i in range(200):
        write(os.path.join(root, "cattle", f"table_{i:03d}.frm"), b"frm-%d" % i, 8192, text=True)


if __name__ == "__main__":
    main()
