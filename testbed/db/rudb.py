#!/usr/bin/env python3
"""rudb: the test bed's external-database stand-in (see README.md beside this file).

A real network service that the stand-in rancher/server images connect to with
--db-host/--db-port/--db-user/--db-pass/--db-name, and that their mysqldump and mysql
stand-ins dump and restore. It keeps, per database name, a few tables (the schema
number among them, forward-only for the servers), holds each server's connection for as
long as that server runs, and writes every connection and every change to a JSON-lines
log that tests read.

    rudb.py serve --listen ADDR:PORT --dir DIR --user USER --password-file FILE
    rudb.py connections --log FILE [--db NAME]   one JSON line per connection, with its times

Python 3 standard library only (Debian 12's python3).
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import socketserver
import sys
import threading
import time

PROTOCOL = 1
# A server stand-in says something at least every second; one silent this long is gone
# (cattle's cluster check-in: every 5 s, 3 misses).
SERVER_IDLE_SECONDS = 15
OTHER_IDLE_SECONDS = 60
MAX_PAYLOAD = 64 * 1024 * 1024
LOG_ROTATE_BYTES = 64 * 1024 * 1024

DB_NAME = re.compile(r"^[A-Za-z0-9_$-]{1,64}$")
USER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
TOKEN = re.compile(r"^[!-~]{1,255}$")  # printable, no space

SCHEMA_TABLE = "schema_version"
LOCK_TABLE = "DATABASECHANGELOGLOCK"
CHANGELOG_TABLE = "DATABASECHANGELOG"
SETTING_TABLE = "setting"
COLUMNS = {
    SCHEMA_TABLE: "(`version` int NOT NULL)",
    LOCK_TABLE: "(`ID` int NOT NULL, `LOCKED` tinyint NOT NULL, `LOCKGRANTED` datetime, `LOCKEDBY` varchar(255))",
    CHANGELOG_TABLE: "(`ID` varchar(255) NOT NULL, `AUTHOR` varchar(255) NOT NULL, `DATEEXECUTED` datetime NOT NULL)",
    SETTING_TABLE: "(`name` varchar(255) NOT NULL, `value` mediumtext)",
}


class SqlError(Exception):
    """An error as MySQL reports it: a code and a message."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def now_iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sha256_hex(data):
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


# ------------------------------------------------------------------------- storage --


class Database:
    """One database: tables (columns text, rows) and the grants of its own users."""

    def __init__(self, name, tables=None, grants=None):
        self.name = name
        self.tables = tables or {}
        self.grants = grants or {}

    def to_json(self):
        return {"tables": self.tables, "grants": self.grants}

    @property
    def schema(self):
        rows = self.tables.get(SCHEMA_TABLE, {}).get("rows") or []
        if not rows or not isinstance(rows[0][0], int):
            return None
        return rows[0][0]

    @property
    def lock(self):
        """The changelog lock's holder, or None when it is free."""
        rows = self.tables.get(LOCK_TABLE, {}).get("rows") or []
        for row in rows:
            if len(row) >= 4 and row[1] == 1:
                return row[3] or "unknown"
        return None

    def put_table(self, name, rows):
        self.tables[name] = {"columns": COLUMNS[name], "rows": rows}

    def set_lock(self, holder, t):
        if holder is None:
            self.put_table(LOCK_TABLE, [[1, 0, None, None]])
        else:
            self.put_table(LOCK_TABLE, [[1, 1, now_iso(t), holder]])


class Store:
    """The databases, one JSON file each under DIR/databases/, written at every change."""

    def __init__(self, directory):
        self.dir = os.path.join(directory, "databases")
        os.makedirs(self.dir, exist_ok=True)
        self.cache = {}

    def path(self, name):
        return os.path.join(self.dir, name + ".json")

    def get(self, name):
        if name in self.cache:
            return self.cache[name]
        try:
            with open(self.path(name)) as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        db = Database(name, data.get("tables"), data.get("grants"))
        self.cache[name] = db
        return db

    def create(self, name):
        db = Database(name)
        self.cache[name] = db
        self.save(db)
        return db

    def save(self, db):
        tmp = self.path(db.name) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(db.to_json(), f, indent=1)
            f.write("\n")
        os.replace(tmp, self.path(db.name))

    def drop(self, name):
        self.cache.pop(name, None)
        try:
            os.remove(self.path(name))
            return True
        except FileNotFoundError:
            return False


# ---------------------------------------------------------------------------- SQL --
# What the stand-ins' dumps hold, and a little more for tests: one statement a line,
# ending with ';'. Identifiers in backticks (or bare), strings in single quotes.


def split_values(text, line_no):
    """`(1,'a'),(2,NULL)` -> [[1, 'a'], [2, None]]."""
    rows, i, n = [], 0, len(text)
    while i < n:
        while i < n and text[i] in " ,":
            i += 1
        if i >= n:
            break
        if text[i] != "(":
            raise SqlError(1064, f"You have an error in your SQL syntax near '{text[i:i + 20]}' at line {line_no}")
        i += 1
        row = []
        while True:
            while i < n and text[i] == " ":
                i += 1
            if i >= n:
                raise SqlError(1064, f"You have an error in your SQL syntax: unterminated row at line {line_no}")
            if text[i] == "'":
                i += 1
                out = []
                while True:
                    if i >= n:
                        raise SqlError(1064, f"You have an error in your SQL syntax: unterminated string at line {line_no}")
                    c = text[i]
                    if c == "\\" and i + 1 < n:
                        nxt = text[i + 1]
                        out.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0", "Z": "\x1a"}.get(nxt, nxt))
                        i += 2
                    elif c == "'" and i + 1 < n and text[i + 1] == "'":
                        out.append("'")
                        i += 2
                    elif c == "'":
                        i += 1
                        break
                    else:
                        out.append(c)
                        i += 1
                row.append("".join(out))
            else:
                m = re.match(r"(NULL|-?[0-9]+)", text[i:])
                if not m:
                    raise SqlError(1064, f"You have an error in your SQL syntax near '{text[i:i + 20]}' at line {line_no}")
                row.append(None if m.group(1) == "NULL" else int(m.group(1)))
                i += len(m.group(1))
            while i < n and text[i] == " ":
                i += 1
            if i < n and text[i] == ",":
                i += 1
                continue
            if i < n and text[i] == ")":
                i += 1
                break
            raise SqlError(1064, f"You have an error in your SQL syntax near '{text[i:i + 20]}' at line {line_no}")
        rows.append(row)
    return rows


def sql_value(v):
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    s = str(v).replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r").replace("\0", "\\0")
    return "'" + s + "'"


def column_names(columns):
    return re.findall(r"[(,]\s*`([^`]+)`", columns or "")


IDENT = r"`([^`]+)`|([A-Za-z0-9_$-]+)"


def ident(m, first):
    return m.group(first) or m.group(first + 1)


def dump_text(db, host, with_create, t):
    """What `mysqldump [--databases] NAME` prints: the tables of the database, in order."""
    lines = [
        "-- MySQL dump 10.13 (rancher-upgrade test bed stand-in, rudb %d)" % PROTOCOL,
        "--",
        f"-- Host: {host}    Database: {db.name}",
        "-- ------------------------------------------------------",
        "-- Server version\t5.7-rudb",
        f"-- Schema: {db.schema if db.schema is not None else 'none'}",
        "",
    ]
    if with_create:
        lines += [
            "--",
            f"-- Current Database: `{db.name}`",
            "--",
            "",
            f"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `{db.name}`;",
            "",
            f"USE `{db.name}`;",
            "",
        ]
    for name, table in db.tables.items():
        lines += [
            "--",
            f"-- Table structure for table `{name}`",
            "--",
            "",
            f"DROP TABLE IF EXISTS `{name}`;",
            f"CREATE TABLE `{name}` {table.get('columns') or '()'};",
        ]
        rows = table.get("rows") or []
        if rows:
            values = ",".join("(" + ",".join(sql_value(v) for v in row) + ")" for row in rows)
            lines.append(f"INSERT INTO `{name}` VALUES {values};")
        lines.append("")
    lines.append("-- Dump completed on " + datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------- server --


class Connection:
    """One client, from AUTH to its disconnection."""

    def __init__(self, conn_id, peer, t):
        self.id = conn_id
        self.peer = peer
        self.user = None
        self.admin = False
        self.db = None  # the database named at AUTH (or by USE)
        self.hello = {}
        self.connected_at = t
        self.said_hello = False
        self.member = None  # cluster membership, after JOIN
        self.migration = None  # (from, to, started) while this one holds the lock
        self.outcome = None
        self.last_seen = t

    @property
    def kind(self):
        return self.hello.get("kind", "unknown")

    def describe(self):
        d = {
            "conn": self.id,
            "peer": self.peer,
            "user": self.user,
            "kind": self.kind,
            "version": self.hello.get("version"),
            "schema": int(self.hello["schema"]) if self.hello.get("schema", "").isdigit() else None,
            "hostname": self.hello.get("hostname"),
            "advertise_address": self.hello.get("advertise"),
            "advertise_http_port": self.hello.get("http_port"),
            "clustered": self.hello.get("clustered") == "true",
            "member": self.member is not None,
        }
        return d


class Member:
    def __init__(self, member_id, uuid, advertise, http_port, clustered, t):
        self.id = member_id
        self.uuid = uuid
        self.advertise = advertise
        self.http_port = http_port
        self.clustered = clustered
        self.heartbeat = int(t * 1000)


class State:
    """Everything the connections share, under one lock."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.store = Store(args.dir)
        self.user = args.user
        with open(args.password_file) as f:
            self.password_hash = sha256_hex(f.read().rstrip("\n"))
        self.log_path = os.path.join(args.dir, "log.jsonl")
        if os.path.exists(self.log_path) and os.path.getsize(self.log_path) > LOG_ROTATE_BYTES:
            os.replace(self.log_path, self.log_path + ".1")
        self.log_file = open(self.log_path, "a", buffering=1)
        self.host = args.listen.rsplit(":", 1)[0]
        self.started = time.time()
        self.seq = 0
        self.members_seq = 0
        self.live = {}  # conn id -> Connection

    def next_id(self):
        self.seq += 1
        return f"{int(self.started)}-{self.seq}"

    def log(self, event, conn, db=None, t=None, **fields):
        t = time.time() if t is None else t
        record = {"time": now_iso(t), "t": round(t, 6), "event": event}
        if conn is not None:
            record.update(conn.describe())
            record["db"] = db if db is not None else conn.db
        elif db is not None:
            record["db"] = db
        record.update(fields)
        self.log_file.write(json.dumps(record, sort_keys=False) + "\n")

    def others_on(self, db_name, me):
        """The other live connections to a database, as the log shows them."""
        return [
            {k: c.describe()[k] for k in ("conn", "kind", "version", "hostname", "advertise_address", "member")}
            for c in self.live.values()
            if c is not me and c.db == db_name and c.said_hello
        ]

    def members(self, db_name):
        found = [c.member for c in self.live.values() if c.db == db_name and c.member is not None]
        return sorted(found, key=lambda m: m.id)


class Handler(socketserver.StreamRequestHandler):
    """One connection: the greeting, AUTH, then one command a line (see README.md)."""

    state = None  # set by serve()

    def setup(self):
        super().setup()
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def send(self, line):
        self.wfile.write((line + "\n").encode())
        self.wfile.flush()

    def send_data(self, text):
        data = text.encode()
        self.wfile.write(b"DATA %d\n" % len(data) + data)
        self.wfile.flush()

    def read_line(self):
        line = self.rfile.readline(1 << 20)
        if not line:
            return None
        return line.decode("utf-8", "replace").rstrip("\r\n")

    def handle(self):
        st = self.state
        t = time.time()
        peer = "%s:%d" % self.client_address[:2]
        with st.lock:
            conn = Connection(st.next_id(), peer, t)
        self.conn = conn
        nonce = secrets.token_hex(16)
        self.request.settimeout(OTHER_IDLE_SECONDS)
        reason = "closed"
        authed = False
        try:
            self.send(f"RUDB {PROTOCOL} {nonce}")
            line = self.read_line()
            if line is None:
                return
            if not self.auth(line, nonce):
                return
            authed = True
            while True:
                self.request.settimeout(SERVER_IDLE_SECONDS if conn.kind == "server" else OTHER_IDLE_SECONDS)
                line = self.read_line()
                if line is None:
                    break
                conn.last_seen = time.time()
                if line == "BYE":
                    self.send("OK bye")
                    reason = "bye"
                    break
                try:
                    self.command(line)
                except SqlError as e:
                    self.send(f"ERR {e.code} {e.message}")
        except socket.timeout:
            reason = "timeout"
        except (ConnectionError, OSError):
            reason = "reset"
        finally:
            if authed:
                self.disconnect(reason)

    # --- AUTH user db|- proof ------------------------------------------------------
    def auth(self, line, nonce):
        st, conn = self.state, self.conn
        parts = line.split(" ")
        if len(parts) != 4 or parts[0] != "AUTH":
            self.send("ERR 1043 Bad handshake")
            return False
        _, user, db_name, proof = parts
        db_name = None if db_name == "-" else db_name
        host = conn.peer.rsplit(":", 1)[0]
        with st.lock:
            ok, admin = False, False
            db = st.store.get(db_name) if db_name and DB_NAME.match(db_name) else None
            if USER_NAME.match(user):
                if db is not None and user in db.grants:
                    ok = secrets.compare_digest(proof, sha256_hex(nonce + db.grants[user]))
                elif user == st.user:
                    ok = secrets.compare_digest(proof, sha256_hex(nonce + st.password_hash))
                    admin = ok
            if not ok:
                st.log("auth-failed", None, db=db_name, peer=conn.peer, user=user)
                self.send(f"ERR 1045 Access denied for user '{user}'@'{host}' (using password: YES)")
                return False
            if db_name is not None and not DB_NAME.match(db_name):
                self.send(f"ERR 1102 Incorrect database name '{db_name}'")
                return False
            if db_name is not None and db is None:
                # The bed's own user may name any database: a new name is a new, empty one.
                db = st.store.create(db_name)
                st.log("create", None, db=db_name, peer=conn.peer, user=user)
            conn.user, conn.admin, conn.db = user, admin, db_name
            st.live[conn.id] = conn
        self.send("OK")
        return True

    def disconnect(self, reason):
        st, conn = self.state, self.conn
        t = time.time()
        with st.lock:
            st.live.pop(conn.id, None)
            fields = {
                "connected_at": round(conn.connected_at, 6),
                "disconnected_at": round(t, 6),
                "duration": round(t - conn.connected_at, 6),
                "reason": reason,
                "outcome": conn.outcome,
            }
            if conn.migration is not None:
                fields["left_lock"] = True
            was_member = conn.member is not None
            conn.member = None
            st.log("disconnect", conn, t=t, was_member=was_member, **fields)

    # --- commands ----------------------------------------------------------------
    def command(self, line):
        verb, _, rest = line.partition(" ")
        handler = {
            "HELLO": self.c_hello,
            "PING": self.c_ping,
            "SCHEMA": self.c_schema,
            "MIGRATE": self.c_migrate,
            "COMMIT": self.c_commit,
            "JOIN": self.c_join,
            "MEMBERS": self.c_members,
            "DUMP": self.c_dump,
            "EXEC": self.c_exec,
        }.get(verb)
        if handler is None:
            raise SqlError(1047, f"Unknown command '{verb}'")
        handler(rest)

    def need_db(self):
        db = self.state.store.get(self.conn.db) if self.conn.db else None
        if db is None:
            raise SqlError(1046, "No database selected")
        return db

    def c_hello(self, rest):
        """HELLO key=value ...: who this is (kind, version, schema, hostname, advertise, ...)."""
        st, conn = self.state, self.conn
        fields = {}
        for item in rest.split(" "):
            key, eq, value = item.partition("=")
            if not eq or not key or not TOKEN.match(value):
                raise SqlError(1064, f"bad HELLO field '{item}'")
            fields[key] = value
        with st.lock:
            if conn.said_hello:
                raise SqlError(1064, "HELLO twice")
            conn.hello = fields
            conn.said_hello = True
            st.log("connect", conn, connected_at=round(conn.connected_at, 6),
                   others=st.others_on(conn.db, conn))
        self.send("OK")

    def c_ping(self, _rest):
        with self.state.lock:
            if self.conn.member is not None:
                self.conn.member.heartbeat = int(time.time() * 1000)
        self.send("OK")

    def c_schema(self, _rest):
        with self.state.lock:
            db = self.need_db()
            schema = db.schema
            lock = db.lock
        self.send(f"OK {schema if schema is not None else 'none'} {'locked' if lock else 'unlocked'}")

    def c_migrate(self, rest):
        """MIGRATE N: a server of schema N starts (Liquibase's update, forward only)."""
        st, conn = self.state, self.conn
        if not rest.isdigit():
            raise SqlError(1064, "MIGRATE needs a schema number")
        target = int(rest)
        t = time.time()
        with st.lock:
            db = self.need_db()
            current = db.schema
            others = st.others_on(db.name, conn)
            holder = db.lock
            if holder is not None:
                conn.outcome = "waiting-for-lock"
                st.log("lock-wait", conn, holder=holder, schema_current=current, others=others)
                self.send(f"WAIT {holder}")
                return
            if current is None:
                db.put_table(SCHEMA_TABLE, [[target]])
                db.set_lock(None, t)
                db.put_table(CHANGELOG_TABLE, [[f"schema-{target}", conn.hello.get("version", "?"), now_iso(t)]])
                if SETTING_TABLE not in db.tables:
                    db.put_table(SETTING_TABLE, [])
                st.store.save(db)
                conn.outcome = "initialised"
                st.log("init", conn, schema_to=target, others=others)
                self.send(f"OK init {target}")
            elif current > target:
                conn.outcome = "refused-newer-schema"
                st.log("refused", conn, schema_current=current, others=others)
                self.send(f"ERR newer {current}")
            elif current == target:
                conn.outcome = "schema-current"
                st.log("schema-current", conn, schema_current=current, others=others)
                self.send(f"OK current {current}")
            else:
                holder = f"{conn.id} {conn.hello.get('version', '?')} {conn.hello.get('hostname', '?')}"
                db.set_lock(holder, t)
                st.store.save(db)
                conn.migration = (current, target, t)
                conn.outcome = "migrating"
                st.log("migrate-start", conn, schema_from=current, schema_to=target, others=others)
                self.send(f"OK migrating {current} {target}")

    def c_commit(self, _rest):
        st, conn = self.state, self.conn
        t = time.time()
        with st.lock:
            db = self.need_db()
            if conn.migration is None:
                raise SqlError(1064, "COMMIT without MIGRATE")
            current, target, started = conn.migration
            db.put_table(SCHEMA_TABLE, [[target]])
            db.set_lock(None, t)
            changelog = db.tables.get(CHANGELOG_TABLE, {}).get("rows") or []
            changelog.append([f"schema-{target}", conn.hello.get("version", "?"), now_iso(t)])
            db.put_table(CHANGELOG_TABLE, changelog)
            st.store.save(db)
            conn.migration = None
            conn.outcome = "migrated"
            st.log("migrate", conn, schema_from=current, schema_to=target, started_at=round(started, 6),
                   others=st.others_on(db.name, conn))
        self.send(f"OK {target}")

    def c_join(self, rest):
        """JOIN uuid=U advertise=A:P http_port=N clustered=true|false: a cluster check-in."""
        st, conn = self.state, self.conn
        fields = dict(item.partition("=")[::2] for item in rest.split(" ") if "=" in item)
        uuid = fields.get("uuid", "")
        if not TOKEN.match(uuid):
            raise SqlError(1064, "JOIN needs uuid=")
        http_port = int(fields["http_port"]) if fields.get("http_port", "").isdigit() else 8080
        t = time.time()
        with st.lock:
            db = self.need_db()
            # cattle's check-in deletes the rows of its own uuid first: a second node with the
            # same advertise address takes the first one's place in the list.
            displaced = []
            for other in st.live.values():
                if other is not conn and other.db == db.name and other.member is not None and other.member.uuid == uuid:
                    displaced.append(other.id)
                    other.member = None
            st.members_seq += 1
            conn.member = Member(st.members_seq, uuid, fields.get("advertise", ""), http_port,
                                 fields.get("clustered") == "true", t)
            conn.outcome = "running"
            st.log("join", conn, uuid=uuid, displaced=displaced, others=st.others_on(db.name, conn))
        self.send("OK")

    def c_members(self, _rest):
        """MEMBERS: the cluster membership of this database, as /v2-beta/clustermemberships."""
        st, conn = self.state, self.conn
        with st.lock:
            db = self.need_db()
            if conn.member is not None:
                conn.member.heartbeat = int(time.time() * 1000)
            data = []
            for m in st.members(db.name):
                config = {"advertiseAddress": m.advertise, "httpPort": m.http_port, "clustered": m.clustered}
                data.append({
                    "id": f"1cm{m.id}",
                    "type": "clusterMembership",
                    "links": {"self": f"/v2-beta/clustermemberships/1cm{m.id}"},
                    "actions": {},
                    "baseType": "clusterMembership",
                    "name": None,
                    "state": "active",
                    "clustered": m.clustered,
                    "config": json.dumps(config, separators=(",", ":")),
                    "heartbeat": m.heartbeat,
                    "uuid": m.uuid,
                })
        collection = {
            "type": "collection",
            "resourceType": "clusterMembership",
            "links": {"self": "/v2-beta/clustermemberships"},
            "createTypes": {},
            "actions": {},
            "data": data,
            "sortLinks": {},
            "pagination": {"first": None, "previous": None, "next": None, "limit": 1000, "total": None, "partial": False},
            "sort": None,
            "filters": {},
            "createDefaults": {},
        }
        self.send("OK " + json.dumps(collection, separators=(",", ":")))

    def c_dump(self, rest):
        """DUMP NAME 0|1: mysqldump's output for one database (1: with CREATE DATABASE and USE)."""
        st, conn = self.state, self.conn
        parts = rest.split(" ")
        if len(parts) != 2 or parts[1] not in ("0", "1"):
            raise SqlError(1064, "DUMP needs a database name and 0 or 1")
        name = parts[0]
        t = time.time()
        with st.lock:
            db = st.store.get(name) if DB_NAME.match(name) else None
            if db is None:
                raise SqlError(1049, f"Unknown database '{name}'")
            if not conn.admin and conn.db != name:
                raise SqlError(1044, f"Access denied for user '{conn.user}' to database '{name}'")
            text = dump_text(db, st.host, parts[1] == "1", t)
            st.log("dump", conn, db=name, schema_current=db.schema, bytes=len(text.encode()),
                   others=st.others_on(name, conn))
        self.send_data(text)

    def c_exec(self, rest):
        """EXEC N, then N bytes of SQL: what `mysql` reads (a dump to restore, or statements)."""
        st, conn = self.state, self.conn
        if not rest.isdigit() or int(rest) > MAX_PAYLOAD:
            raise SqlError(1064, "EXEC needs a byte count")
        script = self.rfile.read(int(rest))
        if len(script) != int(rest):
            raise ConnectionError("the script was cut short")
        output = []
        with st.lock:
            before = {}
            try:
                self.run_script(script.decode("utf-8", "replace"), output, before)
            finally:
                for name, (schema_before, statements) in before.items():
                    db = st.store.get(name)
                    if db is not None:
                        st.store.save(db)
                    st.log("exec", conn, db=name, statements=statements, schema_before=schema_before,
                           schema_after=db.schema if db is not None else None, dropped=db is None,
                           others=st.others_on(name, conn))
        self.send_data("".join(output))

    def run_script(self, script, output, touched):
        st, conn = self.state, self.conn

        def touch(name):
            db = st.store.get(name)
            if name not in touched:
                touched[name] = [db.schema if db is not None else None, 0]
            touched[name][1] += 1

        def admin_only(what):
            if not conn.admin:
                raise SqlError(1044, f"Access denied for user '{conn.user}' ({what})")

        def current():
            if conn.db is None:
                raise SqlError(1046, "No database selected")
            db = st.store.get(conn.db)
            if db is None:
                raise SqlError(1049, f"Unknown database '{conn.db}'")
            return db

        def table_of(db, name):
            if name not in db.tables:
                raise SqlError(1146, f"Table '{db.name}.{name}' doesn't exist")
            return db.tables[name]

        for line_no, raw in enumerate(script.split("\n"), 1):
            line = raw.strip()
            if not line or line.startswith("--") or line.startswith("#"):
                continue
            if re.match(r"^/\*!.*\*/\s*;?$", line):
                continue  # a version comment: SET ... of a real dump
            line = re.sub(r"/\*!\d+\s*(.*?)\*/", r"\1", line)
            if not line.endswith(";"):
                raise SqlError(1064, f"You have an error in your SQL syntax: statement without ';' at line {line_no}")
            stmt = line[:-1].strip()
            upper = stmt.upper()
            if re.match(r"^(SET|LOCK TABLES|UNLOCK TABLES|START TRANSACTION|COMMIT|FLUSH)\b", upper):
                continue
            m = re.match(r"^CREATE DATABASE\s+(IF NOT EXISTS\s+)?(?:" + IDENT + r")$", stmt, re.I)
            if m:
                name = ident(m, 2)
                if st.store.get(name) is None:
                    admin_only("CREATE DATABASE")
                    if not DB_NAME.match(name):
                        raise SqlError(1102, f"Incorrect database name '{name}'")
                    touch(name)
                    st.store.create(name)
                elif not m.group(1):
                    raise SqlError(1007, f"Can't create database '{name}'; database exists")
                continue
            m = re.match(r"^DROP DATABASE\s+(IF EXISTS\s+)?(?:" + IDENT + r")$", stmt, re.I)
            if m:
                admin_only("DROP DATABASE")
                name = ident(m, 2)
                if st.store.get(name) is None:
                    if not m.group(1):
                        raise SqlError(1008, f"Can't drop database '{name}'; database doesn't exist")
                    continue
                touch(name)
                st.store.drop(name)
                continue
            m = re.match(r"^USE\s+(?:" + IDENT + r")$", stmt, re.I)
            if m:
                name = ident(m, 1)
                if st.store.get(name) is None:
                    raise SqlError(1049, f"Unknown database '{name}'")
                if not conn.admin and name != conn.db:
                    raise SqlError(1044, f"Access denied for user '{conn.user}' to database '{name}'")
                conn.db = name
                continue
            m = re.match(r"^GRANT ALL(?: PRIVILEGES)? ON (?:" + IDENT + r")\.\* TO '([^']+)'(?:@'[^']*')? IDENTIFIED BY '((?:[^'\\]|\\.|'')*)'$", stmt, re.I)
            if m:
                admin_only("GRANT")
                name, user = ident(m, 1), m.group(3)
                password = split_values("('" + m.group(4) + "')", line_no)[0][0]
                if not USER_NAME.match(user):
                    raise SqlError(1470, f"String '{user}' is not valid as a user name here")
                touch(name)
                db = st.store.get(name) or st.store.create(name)
                db.grants[user] = sha256_hex(password)
                continue
            m = re.match(r"^DROP TABLE\s+(IF EXISTS\s+)?(.+)$", stmt, re.I)
            if m:
                db = current()
                touch(db.name)
                for part in m.group(2).split(","):
                    name = part.strip().strip("`")
                    if name not in db.tables and not m.group(1):
                        raise SqlError(1051, f"Unknown table '{db.name}.{name}'")
                    db.tables.pop(name, None)
                continue
            m = re.match(r"^CREATE TABLE\s+(IF NOT EXISTS\s+)?(?:" + IDENT + r")\s*(\(.*\))?\s*[^()]*$", stmt, re.I)
            if m:
                db = current()
                name = ident(m, 2)
                if name in db.tables:
                    if not m.group(1):
                        raise SqlError(1050, f"Table '{name}' already exists")
                    continue
                touch(db.name)
                db.tables[name] = {"columns": m.group(4) or "()", "rows": []}
                continue
            m = re.match(r"^INSERT INTO\s+(?:" + IDENT + r")\s+VALUES\s*(.*)$", stmt, re.I)
            if m:
                db = current()
                table = table_of(db, ident(m, 1))
                rows = split_values(m.group(3), line_no)
                touch(db.name)
                table["rows"] = (table.get("rows") or []) + rows
                continue
            m = re.match(r"^DELETE FROM\s+(?:" + IDENT + r")$", stmt, re.I)
            if m:
                db = current()
                table = table_of(db, ident(m, 1))
                touch(db.name)
                table["rows"] = []
                continue
            m = re.match(r"^SELECT \* FROM\s+(?:" + IDENT + r")$", stmt, re.I)
            if m:
                db = current()
                table = table_of(db, ident(m, 1))
                names = column_names(table.get("columns"))
                if names:
                    output.append("#columns\t" + "\t".join(names) + "\n")
                for row in table.get("rows") or []:
                    output.append("\t".join("NULL" if v is None else str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n") for v in row) + "\n")
                continue
            raise SqlError(1064, f"You have an error in your SQL syntax near '{stmt[:40]}' at line {line_no}")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(args):
    host, _, port = args.listen.rpartition(":")
    state = State(args)
    Handler.state = state
    server = Server((host, int(port)), Handler)
    # SIGTERM (scripts/testbed.sh restarting it) ends serve_forever like Ctrl-C, so the
    # log says it stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    state.log("start", None, listen=args.listen, pid=os.getpid())
    print(f"rudb: listening on {args.listen}, data in {args.dir}, log {state.log_path}", flush=True)
    try:
        server.serve_forever()
    finally:
        state.log("stop", None)


# -------------------------------------------------------------------- connections --


def connections(args):
    """One JSON line per connection (connect merged with disconnect), in connect order."""
    found = {}
    order = []
    with open(args.log) as f:
        for line in f:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if args.db and event.get("db") != args.db:
                continue
            conn = event.get("conn")
            if event.get("event") == "connect":
                found[conn] = dict(event, disconnected_at=None, outcome=None)
                order.append(conn)
            elif conn in found:
                if event.get("event") == "disconnect":
                    found[conn]["disconnected_at"] = event.get("disconnected_at")
                    found[conn]["outcome"] = event.get("outcome")
                    found[conn]["reason"] = event.get("reason")
                else:
                    found[conn].setdefault("events", []).append(event.get("event"))
    for conn in order:
        record = found[conn]
        for key in ("event", "time", "t", "others", "member"):
            record.pop(key, None)
        print(json.dumps(record))


def main():
    parser = argparse.ArgumentParser(prog="rudb.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the stand-in database")
    p.add_argument("--listen", required=True, help="ADDRESS:PORT")
    p.add_argument("--dir", required=True, help="where the databases and log.jsonl live")
    p.add_argument("--user", required=True, help="the user that may use every database")
    p.add_argument("--password-file", required=True, help="that user's password")
    p = sub.add_parser("connections", help="the connections in a log, one JSON line each")
    p.add_argument("--log", required=True)
    p.add_argument("--db")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args)
    else:
        connections(args)


if __name__ == "__main__":
    sys.exit(main())
