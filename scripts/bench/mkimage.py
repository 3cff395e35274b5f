#!/usr/bin/env python3
"""Puts the benchmark's large target image into the test registry, without docker build.

It is the registry's stand-in BASE (rancher/server:v1.6.20) plus one layer holding SIZE_MB of
incompressible data, pushed as rancher/server:TAG. The data is a SHAKE-256 stream of a fixed
seed, and the layer tar and its gzip wrapping are byte-for-byte reproducible (mtime 0, uid 0), so
every run pushes the very same blob: the registry keeps it once, and a later run that finds it
there (stamp file) skips generating and uploading it again. Incompressible data gzips to stored
blocks at any level, so level 0 is used: the same bytes docker push would send, much faster.

The config is the base's with the layer's diff id, a history entry and the label
org.rancher-upgrade.bench=1; CATTLE_RANCHER_SERVER_VERSION stays the base's (v1.6.20).

Usage: mkimage.py REGISTRY BASE_TAG TARGET_TAG SIZE_MB WORKDIR STAMPFILE
Prints the manifest digest (for deleting the tag afterwards) on stdout.
"""
import gzip
import hashlib
import http.client
import io
import json
import os
import sys
import tarfile

REPO = "rancher/server"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
CHUNK = 1 << 20


def log(msg):
    print(f"bench: mkimage: {msg}", file=sys.stderr, flush=True)


class Registry:
    def __init__(self, hostport):
        self.hostport = hostport

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.hostport, timeout=600)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), data

    def get_json(self, path, accept=None):
        status, _, data = self.request("GET", path, headers={"Accept": accept} if accept else {})
        if status != 200:
            raise SystemExit(f"GET {path}: HTTP {status}: {data[:200]!r}")
        return data

    def has_blob(self, digest):
        status, _, _ = self.request("HEAD", f"/v2/{REPO}/blobs/{digest}")
        return status == 200

    def upload_blob(self, digest, body, length):
        if self.has_blob(digest):
            return
        status, headers, data = self.request("POST", f"/v2/{REPO}/blobs/uploads/")
        if status != 202:
            raise SystemExit(f"starting a blob upload: HTTP {status}: {data[:200]!r}")
        location = headers["location"]
        if location.startswith("http"):
            location = "/" + location.split("/", 3)[3]
        sep = "&" if "?" in location else "?"
        status, _, data = self.request(
            "PUT",
            f"{location}{sep}digest={digest}",
            body=body,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(length)},
        )
        if status != 201:
            raise SystemExit(f"uploading {digest}: HTTP {status}: {data[:200]!r}")


class Shake:
    """A file-like reader of SIZE bytes of SHAKE-256 output, one 1 MiB chunk per counter."""

    def __init__(self, size):
        self.size = size
        self.pos = 0
        self.buf = b""
        self.counter = 0

    def read(self, n=-1):
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos)
        while len(self.buf) < n:
            self.buf += hashlib.shake_256(b"rancher-upgrade-bench-%d" % self.counter).digest(CHUNK)
            self.counter += 1
        out, self.buf = self.buf[:n], self.buf[n:]
        self.pos += n
        return out


class HashingWriter:
    def __init__(self, raw):
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, b):
        self.sha.update(b)
        self.size += len(b)
        return self.raw.write(b)

    def flush(self):
        self.raw.flush()


def build_layer(size, path):
    """Writes the gzipped layer to PATH; returns (digest, gz size, diff id)."""
    with open(path, "wb") as raw:
        outer = HashingWriter(raw)
        gz = gzip.GzipFile(filename="", mode="wb", compresslevel=0, fileobj=outer, mtime=0)
        inner = HashingWriter(gz)
        with tarfile.open(fileobj=inner, mode="w|", format=tarfile.GNU_FORMAT) as tar:
            d = tarfile.TarInfo("opt/bench")
            d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(d)
            f = tarfile.TarInfo("opt/bench/large.bin")
            f.size, f.mode, f.mtime = size, 0o644, 0
            tar.addfile(f, Shake(size))
        gz.close()
    return "sha256:" + outer.sha.hexdigest(), outer.size, "sha256:" + inner.sha.hexdigest()


def main():
    registry, base_tag, target_tag, size_mb, workdir, stampfile = sys.argv[1:7]
    size = int(size_mb) * CHUNK
    reg = Registry(registry)
    base = json.loads(reg.get_json(f"/v2/{REPO}/manifests/{base_tag}", MANIFEST_V2))
    if base.get("mediaType") != MANIFEST_V2:
        raise SystemExit(f"{REPO}:{base_tag} is not a schema 2 manifest")
    config = json.loads(reg.get_json(f"/v2/{REPO}/blobs/{base['config']['digest']}"))

    layer = None
    try:
        with open(stampfile) as f:
            stamp = json.load(f)
        if stamp.get("size") == size and reg.has_blob(stamp["digest"]):
            layer = (stamp["digest"], stamp["gz_size"], stamp["diff_id"])
            log(f"layer of {size_mb} MiB already in the registry ({stamp['digest'][:19]})")
    except (OSError, ValueError, KeyError):
        pass
    if layer is None:
        path = os.path.join(workdir, "large-layer.tar.gz")
        log(f"generating a {size_mb} MiB incompressible layer")
        layer = build_layer(size, path)
        log(f"uploading it to {registry} ({layer[0][:19]})")
        with open(path, "rb") as body:
            reg.upload_blob(layer[0], body, layer[1])
        os.unlink(path)
        with open(stampfile, "w") as f:
            json.dump({"size": size, "digest": layer[0], "gz_size": layer[1], "diff_id": layer[2]}, f)
    digest, gz_size, diff_id = layer

    config["rootfs"]["diff_ids"].append(diff_id)
    config.setdefault("history", []).append(
        {"created": "2000-01-01T00:00:00Z", "created_by": f"bench: {size_mb} MiB incompressible layer"}
    )
    labels = config.setdefault("config", {}).get("Labels") or {}
    labels["org.rancher-upgrade.bench"] = "1"
    config["config"]["Labels"] = labels
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    reg.upload_blob(config_digest, io.BytesIO(config_bytes), len(config_bytes))

    manifest = dict(base)
    manifest["config"] = {"mediaType": CONFIG_TYPE, "size": len(config_bytes), "digest": config_digest}
    manifest["layers"] = base["layers"] + [{"mediaType": LAYER_GZIP, "size": gz_size, "digest": digest}]
    body = json.dumps(manifest, indent=3).encode()
    status, headers, data = reg.request(
        "PUT", f"/v2/{REPO}/manifests/{target_tag}", body=body, headers={"Content-Type": MANIFEST_V2}
    )
    if status != 201:
        raise SystemExit(f"putting the manifest {REPO}:{target_tag}: HTTP {status}: {data[:300]!r}")
    print(headers.get("docker-content-digest", "sha256:" + hashlib.sha256(body).hexdigest()))


if __name__ == "__main__":
    main()
