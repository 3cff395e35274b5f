#!/usr/bin/env python3
"""Counts Docker Engine API requests: apiproxy.py SOCKET LOGFILE [UPSTREAM=/var/run/docker.sock]

Listens on the unix socket SOCKET, forwards every connection to UPSTREAM unchanged, and appends
the request line of each request ("GET /v1.41/info HTTP/1.1") to LOGFILE. Point a docker
client at it with DOCKER_HOST=unix://SOCKET. Runs until killed.
"""
import os
import socket
import sys
import threading

METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE")


def pump(src, dst, log):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if log is not None:
                for line in data.split(b"\r\n"):
                    if line.split(b" ", 1)[0] in METHODS and b" HTTP/" in line:
                        log.write(line.decode(errors="replace") + "\n")
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def main():
    path, logpath = sys.argv[1], sys.argv[2]
    upstream = sys.argv[3] if len(sys.argv) > 3 else "/var/run/docker.sock"
    log = open(logpath, "a", buffering=1)
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(64)
    while True:
        client, _ = server.accept()
        engine = socket.socket(socket.AF_UNIX)
        engine.connect(upstream)
        threading.Thread(target=pump, args=(client, engine, log), daemon=True).start()
        threading.Thread(target=pump, args=(engine, client, None), daemon=True).start()


if __name__ == "__main__":
    main()
