#!/usr/bin/env python3
"""Writes the backup data set: gen-data.py DIR SIZE_MB

A stand-in for a MySQL data directory of SIZE_MB MiB, reproducible (SHAKE-256 of fixed seeds):
  ibdata1                 a third of the size, incompressible (like compressed/encrypted pages)
  cattle/table_NN.ibd     16 files, together the other two thirds less the small files: text
                          rows (ids, names, states, times, a base64 token; gzip -6 takes them to
                          ~48 %, the whole set to ~66 %, zstd -1 a little less far)
  cattle/table_NNN.frm    200 files of 8 KiB, the same rows (many small files, as MySQL has)
Every 64 KiB of rows comes from its own random block, so no compressor finds repeats.
"""
import base64
import hashlib
import os
import sys

MIB = 1 << 20
BLOCK = 1 << 16
ROW_BYTES = 32  # random bytes behind each row
STATES = (b"active", b"inactive", b"removed", b"purged")
ROW = b"(%d,'host-%05d','%s','2019-%02d-%02d %02d:%02d:%02d','%s',%d),\n"


def random_chunks(seed):
    counter = 0
    while True:
        yield hashlib.shake_256(b"%s-%d" % (seed, counter)).digest(MIB)
        counter += 1


def row_chunks(seed):
    counter = 0
    b64 = base64.b64encode
    while True:
        r = hashlib.shake_256(b"%s-%d" % (seed, counter)).digest(BLOCK)
        counter += 1
        yield b"".join(
            [
                ROW
                % (
                    int.from_bytes(r[i : i + 4], "little"),
                    r[i + 4] << 8 | r[i + 5],
                    STATES[r[i + 6] & 3],
                    r[i + 7] % 12 + 1,
                    r[i + 8] % 28 + 1,
                    r[i + 9] % 24,
                    r[i + 10] % 60,
                    r[i + 11] % 60,
                    b64(r[i + 12 : i + ROW_BYTES]),
                    r[i + 6],
                )
                for i in range(0, BLOCK - ROW_BYTES + 1, ROW_BYTES)
            ]
        )


def write(path, chunks, size):
    made = 0
    with open(path, "wb") as f:
        for chunk in chunks:
            chunk = chunk[: size - made]
            f.write(chunk)
            made += len(chunk)
            if made >= size:
                break


def main():
    root, size_mb = sys.argv[1], int(sys.argv[2])
    total = size_mb * MIB
    os.makedirs(os.path.join(root, "cattle"), exist_ok=True)
    write(os.path.join(root, "ibdata1"), random_chunks(b"ibdata1"), total // 3)
    small = 200 * 8192
    per_table = (total - total // 3 - small) // 16
    for i in range(16):
        write(os.path.join(root, "cattle", f"table_{i:02d}.ibd"), row_chunks(b"ibd-%d" % i), per_table)
    for i in range(200):
        write(os.path.join(root, "cattle", f"table_{i:03d}.frm"), row_chunks(b"frm-%d" % i), 8192)


if __name__ == "__main__":
    main()
