//! The test bed's external-database stand-in (`testbed/db/rudb.py`, see its README.md): a
//! database of the test's own ([`TestDb`]), what the tests read and write in it, and its
//! connection log ([`DbConnection`]), from which a test tells which server releases were
//! connected at the same time.
//!
//! `scripts/testbed.sh` prints where it is: `RANCHER_UPGRADE_DB_HOST`, `_PORT`, `_USER`,
//! `_PASS` and `_LOG`.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

/// Where the database stand-in is, and its user.
#[derive(Clone, Debug)]
pub struct DbBed {
    pub host: String,
    pub port: u16,
    /// The bed's user: may use, create and drop every database.
    pub user: String,
    pub password: String,
    /// The JSON-lines log of every connection and change.
    pub log: PathBuf,
}

/// A line `scripts/testbed.sh` printed (exported), or why it is missing.
pub fn setting(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            format!("{name} is not set: export the lines `bash scripts/testbed.sh` prints")
        })
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `'text'` for SQL: backslashes and quotes escaped.
pub fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl DbBed {
    /// The database stand-in the test bed's lines name, or why there is none.
    pub fn from_env() -> Result<DbBed, String> {
        let port = setting("RANCHER_UPGRADE_DB_PORT")?;
        Ok(DbBed {
            host: setting("RANCHER_UPGRADE_DB_HOST")?,
            port: port
                .parse()
                .map_err(|_| format!("RANCHER_UPGRADE_DB_PORT={port} is not a port"))?,
            user: setting("RANCHER_UPGRADE_DB_USER")?,
            password: setting("RANCHER_UPGRADE_DB_PASS")?,
            log: PathBuf::from(setting("RANCHER_UPGRADE_DB_LOG")?),
        })
    }

    /// Whether it answers as the bed's user.
    pub fn check(&self) -> Result<(), String> {
        self.session(&self.user, &self.password, None).map(drop)
    }

    /// A connection as `user`, on `db` (or none), introduced as `kind=harness`.
    pub fn session(&self, user: &str, password: &str, db: Option<&str>) -> Result<Session, String> {
        let address = format!("{}:{}", self.host, self.port);
        let stream = TcpStream::connect(&address)
            .map_err(|e| format!("the database stand-in at {address} does not answer: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .map_err(|e| e.to_string())?;
        let mut session = Session {
            reader: BufReader::new(stream.try_clone().map_err(|e| e.to_string())?),
            writer: stream,
        };
        let greeting = session.line()?;
        let nonce = greeting
            .strip_prefix("RUDB 1 ")
            .ok_or_else(|| format!("{address} is not the database stand-in: {greeting:?}"))?;
        let proof = sha256_hex(format!("{nonce}{}", sha256_hex(password.as_bytes())).as_bytes());
        session.ask(&format!("AUTH {user} {} {proof}", db.unwrap_or("-")))?;
        session.ask("HELLO kind=harness")?;
        Ok(session)
    }

    fn admin(&self) -> Session {
        self.session(&self.user, &self.password, None)
            .unwrap_or_else(|e| panic!("the database stand-in: {e}"))
    }

    /// Every line of the log, parsed.
    pub fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log)
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.log.display()));
        text.lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

/// One connection to the database stand-in.
pub struct Session {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Session {
    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err("the database stand-in closed the connection".into()),
            Ok(_) => Ok(line.trim_end_matches(['\r', '\n']).to_string()),
            Err(e) => Err(format!("reading from the database stand-in: {e}")),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.writer
            .write_all(bytes)
            .map_err(|e| format!("writing to the database stand-in: {e}"))
    }

    /// Sends a command; the answer after `OK`, or the `ERR ...` line as the error.
    pub fn ask(&mut self, command: &str) -> Result<String, String> {
        self.send(format!("{command}\n").as_bytes())?;
        self.answer()
    }

    fn answer(&mut self) -> Result<String, String> {
        let line = self.line()?;
        if line == "OK" {
            return Ok(String::new());
        }
        if let Some(rest) = line.strip_prefix("OK ") {
            return Ok(rest.to_string());
        }
        if let Some(count) = line.strip_prefix("DATA ") {
            let count: usize = count.parse().map_err(|_| format!("bad answer {line:?}"))?;
            let mut data = vec![0; count];
            self.reader
                .read_exact(&mut data)
                .map_err(|e| format!("reading from the database stand-in: {e}"))?;
            return String::from_utf8(data).map_err(|e| e.to_string());
        }
        Err(line)
    }

    /// Runs SQL (one statement a line); what its `SELECT`s print.
    pub fn exec(&mut self, sql: &str) -> Result<String, String> {
        self.send(format!("EXEC {}\n", sql.len()).as_bytes())?;
        self.send(sql.as_bytes())?;
        self.answer()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.send(b"BYE\n");
        let _ = self.line();
    }
}

/// A database of one test, new and empty (an earlier one of that name is dropped first), and
/// dropped again when this is dropped. Its log lines are those written since.
pub struct TestDb {
    pub bed: DbBed,
    pub name: String,
    created: f64,
}

impl TestDb {
    /// [`TestDb::new`] for a test, or `None` (after a skip line) when the test bed has no
    /// database stand-in; with `REQUIRE_DOCKER=1` that fails the test instead.
    pub fn for_test(name: &str) -> Option<TestDb> {
        match DbBed::from_env().and_then(|bed| bed.check().map(|()| bed)) {
            Ok(bed) => Some(TestDb::new(bed, name)),
            Err(why) if crate::engine::require_docker() => panic!("REQUIRE_DOCKER=1, but {why}"),
            Err(why) => {
                eprintln!(
                    "SKIPPED e2e test {name}: {why} (set REQUIRE_DOCKER=1 to make this a failure)"
                );
                None
            }
        }
    }

    /// A fresh database `name` on the bed's stand-in.
    pub fn new(bed: DbBed, name: &str) -> TestDb {
        let created = crate::engine::now_seconds();
        bed.admin()
            .exec(&format!(
                "DROP DATABASE IF EXISTS `{name}`;\nCREATE DATABASE `{name}`;\n"
            ))
            .unwrap_or_else(|e| panic!("creating the database {name}: {e}"));
        TestDb {
            bed,
            name: name.to_string(),
            created,
        }
    }

    /// Runs SQL in this database as the bed's user; fails the test on an error.
    pub fn exec(&self, sql: &str) -> String {
        self.bed
            .admin()
            .exec(&format!("USE `{}`;\n{sql}", self.name))
            .unwrap_or_else(|e| panic!("in the database {}: {sql}: {e}", self.name))
    }

    /// Lets `user` in with `password` (any characters), on this database only.
    pub fn grant(&self, user: &str, password: &str) {
        self.exec(&format!(
            "GRANT ALL ON `{}`.* TO '{user}'@'%' IDENTIFIED BY {};\n",
            self.name,
            sql_string(password)
        ));
    }

    /// The schema number, or `None` before a server initialised the database.
    pub fn schema(&self) -> Option<u32> {
        // As the bed's user, who may USE any database (a grant on this one may have taken the
        // user's name with another password).
        let mut session = self.bed.admin();
        let answer = session
            .exec(&format!("USE `{}`;\n", self.name))
            .and_then(|_| session.ask("SCHEMA"))
            .unwrap_or_else(|e| panic!("the schema of {}: {e}", self.name));
        answer.split(' ').next().and_then(|n| n.parse().ok())
    }

    /// The rows of a table, each a list of its values as `mysql` prints them.
    pub fn rows(&self, table: &str) -> Vec<Vec<String>> {
        self.exec(&format!("SELECT * FROM `{table}`;\n"))
            .lines()
            .filter(|l| !l.starts_with("#columns\t"))
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    /// Adds a row to the `setting` table (which every server creates).
    pub fn put_setting(&self, name: &str, value: &str) {
        self.exec(&format!(
            "INSERT INTO `setting` VALUES ({},{});\n",
            sql_string(name),
            sql_string(value)
        ));
    }

    /// The `setting` rows, as (name, value).
    pub fn settings(&self) -> Vec<(String, String)> {
        self.rows("setting")
            .into_iter()
            .map(|row| (row[0].clone(), row.get(1).cloned().unwrap_or_default()))
            .collect()
    }

    /// The server arguments that point a stand-in at this database, as the bed's user.
    pub fn server_args(&self) -> Vec<String> {
        [
            "--db-host",
            &self.bed.host,
            "--db-port",
            &self.bed.port.to_string(),
            "--db-user",
            &self.bed.user,
            "--db-pass",
            &self.bed.password,
            "--db-name",
            &self.name,
        ]
        .map(String::from)
        .to_vec()
    }

    /// The log lines about this database since it was made, in order.
    pub fn events(&self) -> Vec<Value> {
        self.bed
            .events()
            .into_iter()
            .filter(|e| e["db"] == self.name.as_str())
            .filter(|e| e["t"].as_f64().is_some_and(|t| t >= self.created - 1.0))
            .collect()
    }

    /// The log lines of one kind of event.
    pub fn events_of(&self, event: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == event)
            .collect()
    }

    /// Every connection to this database, in the order they introduced themselves.
    pub fn connections(&self) -> Vec<DbConnection> {
        let mut found: Vec<DbConnection> = Vec::new();
        for event in self.events() {
            let id = event["conn"].as_str().unwrap_or("").to_string();
            let text = |key: &str| event[key].as_str().map(str::to_string);
            match event["event"].as_str() {
                Some("connect") => found.push(DbConnection {
                    conn: id,
                    kind: text("kind").unwrap_or_default(),
                    version: text("version"),
                    schema: event["schema"].as_u64().map(|s| s as u32),
                    hostname: text("hostname"),
                    advertise_address: text("advertise_address"),
                    peer: text("peer").unwrap_or_default(),
                    connected_at: event["connected_at"].as_f64().unwrap_or(0.0),
                    disconnected_at: None,
                    outcome: None,
                    events: Vec::new(),
                }),
                Some(kind) => {
                    if let Some(c) = found.iter_mut().find(|c| c.conn == id) {
                        if kind == "disconnect" {
                            c.disconnected_at = event["disconnected_at"].as_f64();
                            c.outcome = text("outcome");
                        } else {
                            c.events.push(kind.to_string());
                        }
                    }
                }
                None => {}
            }
        }
        found
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut session) = self.bed.session(&self.bed.user, &self.bed.password, None) {
            let _ = session.exec(&format!("DROP DATABASE IF EXISTS `{}`;\n", self.name));
        }
    }
}

/// One connection of the log: who, and from when to when.
#[derive(Clone, Debug)]
pub struct DbConnection {
    pub conn: String,
    /// `server`, `mysqldump`, `mysql`, `harness`.
    pub kind: String,
    /// A server's release.
    pub version: Option<String>,
    /// The schema that release expects.
    pub schema: Option<u32>,
    /// The container's hostname.
    pub hostname: Option<String>,
    pub advertise_address: Option<String>,
    /// `IP:PORT` it came from (10.231.0.(10+K) for a container on the bed's host K).
    pub peer: String,
    pub connected_at: f64,
    /// `None` while it is connected.
    pub disconnected_at: Option<f64>,
    /// The server's last step (`running`, `migrated`, `refused-newer-schema`, ...).
    pub outcome: Option<String>,
    /// Its other events, in order (`migrate-start`, `migrate`, `join`, `dump`, `exec`, ...).
    pub events: Vec<String>,
}

impl DbConnection {
    pub fn is_server(&self) -> bool {
        self.kind == "server"
    }

    /// Whether the two were connected at the same time.
    pub fn overlaps(&self, other: &DbConnection) -> bool {
        let end = |c: &DbConnection| c.disconnected_at.unwrap_or(f64::INFINITY);
        self.connected_at < end(other) && other.connected_at < end(self)
    }

    /// `v1.6.20@10.231.0.11` (the release and where it came from).
    pub fn label(&self) -> String {
        let host = self.peer.rsplit_once(':').map_or("", |(ip, _)| ip);
        format!("{}@{host}", self.version.as_deref().unwrap_or(&self.kind))
    }
}

/// The pairs of server connections that overlapped, as sorted `(label, label)`.
pub fn overlapping_servers(connections: &[DbConnection]) -> Vec<(String, String)> {
    let servers: Vec<&DbConnection> = connections.iter().filter(|c| c.is_server()).collect();
    let mut pairs = Vec::new();
    for (i, a) in servers.iter().enumerate() {
        for b in &servers[i + 1..] {
            if a.overlaps(b) {
                let (x, y) = (a.label(), b.label());
                pairs.push(if x <= y { (x, y) } else { (y, x) });
            }
        }
    }
    pairs.sort();
    pairs
}
