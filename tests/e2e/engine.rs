//! Support for the end-to-end tests: the real engine (docker, or podman: [`Cli`]), the stand-in
//! `rancher/server` images of the test bed, and a [`Scope`] that owns everything one test
//! creates.
//!
//! Every container, network and named volume a test makes is named `e2e-<test>-<pid>[-...]`;
//! the scope removes them (containers with their volumes) and its temporary directory when it is
//! dropped, so cleanup also happens when the test panics. Things with other names are never
//! touched: other tests, and other people, use the same engine at the same time.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The binary under test.
pub const TOOL: &str = env!("CARGO_BIN_EXE_rancher-upgrade");

/// How long a tool run or a bash runbook may take before the test kills it.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);
/// How long a freshly started stand-in may take to answer /ping (it needs ~1.3 s).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The test registry the stand-in images live in (`scripts/testbed.sh` prints it).
pub fn registry() -> String {
    std::env::var("RANCHER_UPGRADE_REGISTRY")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "127.0.0.1:5599".to_string())
}

/// `<registry>/rancher/server:<tag>`.
pub fn image(tag: &str) -> String {
    format!("{}/rancher/server:{tag}", registry())
}

/// The stand-in tags every scenario may start from or upgrade to; pulled once per run.
const BASE_TAGS: [&str; 3] = ["v1.6.10", "v1.6.20", "v1.6.30"];

/// Every `rancher/server` tag `scripts/testbed.sh` pushes: the images a snapshot watches
/// (other images on the engine come and go with other people's work).
const TESTBED_TAGS: [&str; 5] = ["v1.6.10", "v1.6.20", "v1.6.30", "stable", "v1.6.31-crash"];

// ------------------------------------------------------------------- engines --

/// The engine a test drives, by the CLI that reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cli {
    Docker,
    /// The test bed's rootful podman (`RANCHER_UPGRADE_PODMAN`, else `podman` on PATH).
    #[allow(dead_code)] // only some test binaries drive podman
    Podman,
}

impl Cli {
    /// The program to run.
    pub fn program(self) -> String {
        match self {
            Cli::Docker => "docker".to_string(),
            Cli::Podman => std::env::var("RANCHER_UPGRADE_PODMAN")
                .ok()
                .filter(|p| !p.trim().is_empty())
                .unwrap_or_else(|| "podman".to_string()),
        }
    }

    /// Runs `PROGRAM ARGS` and returns what it left, success or not.
    pub fn run<S: AsRef<std::ffi::OsStr>>(self, args: &[S]) -> Output {
        Command::new(self.program())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                let words: Vec<String> = args
                    .iter()
                    .map(|a| a.as_ref().to_string_lossy().into_owned())
                    .collect();
                panic!(
                    "could not start `{} {}`: {e}",
                    self.program(),
                    words.join(" ")
                )
            })
    }

    /// Runs `PROGRAM ARGS`, fails the test when it fails, and returns its trimmed stdout.
    pub fn ok(self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "`{} {}` failed ({}): {}",
            self.program(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `inspect --type container NAME`, or `None` when no such container exists.
    pub fn inspect(self, name: &str) -> Option<Value> {
        let out = self.run(&["inspect", "--type", "container", "--", name]);
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            assert!(
                why.to_lowercase().contains("no such"),
                "`{} inspect {name}` failed: {why}",
                self.program()
            );
            return None;
        }
        let mut all: Vec<Value> =
            serde_json::from_slice(&out.stdout).expect("inspect prints a JSON array");
        (!all.is_empty()).then(|| all.swap_remove(0))
    }

    /// [`Cli::inspect`] of a container that must exist.
    pub fn inspect_existing(self, name: &str) -> Value {
        self.inspect(name)
            .unwrap_or_else(|| panic!("container {name} does not exist"))
    }

    /// Whether the engine answers and holds the stand-in images; checked once per test binary.
    fn ready(self) -> &'static Result<(), String> {
        static DOCKER: OnceLock<Result<(), String>> = OnceLock::new();
        static PODMAN: OnceLock<Result<(), String>> = OnceLock::new();
        let once = match self {
            Cli::Docker => &DOCKER,
            Cli::Podman => &PODMAN,
        };
        once.get_or_init(|| {
            let program = self.program();
            let info = Command::new(&program)
                .arg("info")
                .stdin(Stdio::null())
                .output();
            match info {
                Err(e) => return Err(format!("the {program} CLI could not be started: {e}")),
                Ok(out) if !out.status.success() => {
                    return Err(format!(
                        "no {program} engine answers (`{program} info` failed: {})",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                Ok(_) => {}
            }
            for tag in BASE_TAGS {
                let reference = image(tag);
                let pulled = self.run(&["pull", "-q", &reference]);
                if !pulled.status.success() {
                    return Err(format!(
                        "the stand-in image {reference} can't be pulled into {program} ({}); run `bash scripts/testbed.sh` and export the RANCHER_UPGRADE_REGISTRY it prints",
                        String::from_utf8_lossy(&pulled.stderr).trim()
                    ));
                }
            }
            Ok(())
        })
    }
}

// ------------------------------------------------------------------ the gate --

fn require_docker() -> bool {
    std::env::var("REQUIRE_DOCKER").is_ok_and(|v| v.trim() == "1")
}

/// The scope of one test on docker, or `None` (after a skip line) when no engine answers.
/// With `REQUIRE_DOCKER=1` a missing engine fails the test instead.
pub fn engine(test: &str) -> Option<Scope> {
    on(Cli::Docker, test)
}

/// [`engine`] on the engine `cli` reaches.
pub fn on(cli: Cli, test: &str) -> Option<Scope> {
    match cli.ready() {
        Ok(()) => Some(Scope::new(cli, test)),
        Err(why) if require_docker() => {
            panic!("REQUIRE_DOCKER=1, but {why}")
        }
        Err(why) => {
            eprintln!(
                "SKIPPED e2e test {test}: {why} (set REQUIRE_DOCKER=1 to make this a failure)"
            );
            None
        }
    }
}

// ------------------------------------------------------------------- docker --

/// Runs `docker ARGS` and returns what it left, success or not.
#[allow(dead_code)] // only some test binaries run docker by hand
pub fn docker<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Cli::Docker.run(args)
}

/// Runs `docker ARGS`, fails the test when it fails, and returns its trimmed stdout.
pub fn docker_ok(args: &[&str]) -> String {
    Cli::Docker.ok(args)
}

/// `docker inspect --type container NAME`, or `None` when no such container exists.
pub fn inspect(name: &str) -> Option<Value> {
    Cli::Docker.inspect(name)
}

/// `docker inspect` of a container that must exist.
pub fn inspect_existing(name: &str) -> Value {
    Cli::Docker.inspect_existing(name)
}

pub fn exists(name: &str) -> bool {
    inspect(name).is_some()
}

/// The strings of a JSON array at `pointer` (empty when absent or null).
pub fn strings(value: &Value, pointer: &str) -> Vec<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Destination → (type, volume name or host directory) for each mount of a container.
pub fn mounts(container: &Value) -> BTreeMap<String, (String, String)> {
    container
        .get("Mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            let kind = text(m, "/Type").to_string();
            let source = if kind == "volume" {
                text(m, "/Name")
            } else {
                text(m, "/Source")
            };
            (
                text(m, "/Destination").to_string(),
                (kind, source.to_string()),
            )
        })
        .collect()
}

/// The value of `NAME` in a container's `Config.Env`.
pub fn env_value(container: &Value, name: &str) -> Option<String> {
    strings(container, "/Config/Env")
        .into_iter()
        .find_map(|e| e.strip_prefix(&format!("{name}=")).map(str::to_string))
}

// --------------------------------------------------------------------- http --

/// A port nobody listens on right now, on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// `GET http://127.0.0.1:PORT/PATH`: the body of a 200 answer, else `None`.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.lines().next()?;
    status
        .split_whitespace()
        .nth(1)
        .filter(|code| *code == "200")
        .map(|_| body.to_string())
}

/// Waits until `/ping` on the port answers `pong`.
pub fn wait_for_pong(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if http_get(port, "/ping").is_some_and(|b| b.trim() == "pong") {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------- processes --

/// What a finished run of the tool (or of a runbook) left.
#[derive(Debug)]
pub struct Run {
    pub what: String,
    /// `None` when killed by a signal (or by the timeout).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The `--log` file, when the run was given one and it exists.
    pub transcript: Option<String>,
}

impl Run {
    /// Fails the test, showing everything the run printed, unless it exited with `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "`{}` exited with {:?}, expected {code}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- transcript ---\n{}",
            self.what,
            self.code,
            self.stdout,
            self.stderr,
            self.transcript.as_deref().unwrap_or("(none)")
        );
        self
    }

    /// stdout and stderr together.
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Everything the run showed anyone: stdout, stderr and the transcript file.
    pub fn everything_shown(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.stdout,
            self.stderr,
            self.transcript.as_deref().unwrap_or("")
        )
    }

    /// Fails the test unless stdout or stderr mentions one of `needles` (case-insensitive).
    pub fn expect_mention(&self, needles: &[&str]) -> &Self {
        let output = self.output().to_lowercase();
        assert!(
            needles.iter().any(|n| output.contains(&n.to_lowercase())),
            "`{}` should mention one of {needles:?}; it printed:\n{}",
            self.what,
            self.output()
        );
        self
    }
}

/// Runs a command with stdin closed, a timeout, and its output captured.
pub fn run_command(command: Command, what: String, transcript: Option<&Path>) -> Run {
    spawn_command(command, what, transcript).wait()
}

/// A command started by [`spawn_command`]: running in the background, its output read as it
/// comes, until [`Background::wait`].
pub struct Background {
    child: std::process::Child,
    what: String,
    transcript: Option<PathBuf>,
    out_reader: std::thread::JoinHandle<Vec<u8>>,
    err_reader: std::thread::JoinHandle<Vec<u8>>,
    deadline: Instant,
}

/// Starts a command with stdin closed and its output captured, and returns at once; the
/// timeout of [`run_command`] counts from now.
pub fn spawn_command(mut command: Command, what: String, transcript: Option<&Path>) -> Background {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("NO_COLOR", "1")
        .env_remove("RANCHER_UPGRADE_YES");
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("could not start `{what}`: {e}"));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buffer = Vec::new();
        let _ = stdout.read_to_end(&mut buffer);
        buffer
    });
    let err_reader = std::thread::spawn(move || {
        let mut buffer = Vec::new();
        let _ = stderr.read_to_end(&mut buffer);
        buffer
    });
    Background {
        child,
        what,
        transcript: transcript.map(Path::to_path_buf),
        out_reader,
        err_reader,
        deadline: Instant::now() + RUN_TIMEOUT,
    }
}

impl Background {
    /// The process id, to send it a signal.
    #[allow(dead_code)] // only some test binaries signal what they started
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has not exited yet.
    #[allow(dead_code)] // only some test binaries watch what they started
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until it exits (killing it at the timeout) and returns what it left.
    pub fn wait(mut self) -> Run {
        let status = loop {
            match self.child.try_wait().expect("waiting for a child") {
                Some(status) => break Some(status),
                None if Instant::now() >= self.deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let stdout =
            String::from_utf8_lossy(&self.out_reader.join().unwrap_or_default()).into_owned();
        let mut stderr =
            String::from_utf8_lossy(&self.err_reader.join().unwrap_or_default()).into_owned();
        if status.is_none() {
            stderr.push_str(&format!(
                "\n(e2e: killed after {} s)",
                RUN_TIMEOUT.as_secs()
            ));
        }
        Run {
            what: self.what,
            code: status.and_then(|s| s.code()),
            stdout,
            stderr,
            transcript: self
                .transcript
                .as_deref()
                .and_then(|p| std::fs::read_to_string(p).ok()),
        }
    }
}

// -------------------------------------------------------------------- scope --

/// How a test's Rancher server is started: the settings an operator could have given it.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Publish `127.0.0.1:PORT:8080`.
    pub port: Option<u16>,
    /// `-e NAME=value`, exactly as given (no shell involved).
    pub env: Vec<String>,
    /// `--label KEY=value`.
    pub labels: Vec<String>,
    /// `--restart=...`.
    pub restart: Option<String>,
    /// `-v SOURCE:DESTINATION`.
    pub binds: Vec<String>,
    /// The arguments after the image name.
    pub args: Vec<String>,
    /// Options given as they are, before the image (`--cap-add`, `--tmpfs`, ...).
    pub raw: Vec<String>,
    /// The networks, the first joined at `run` (`--network` with its alias and addresses),
    /// each other one with `network connect` right after.
    pub networks: Vec<Attachment>,
}

/// A network a test's server is on, with its alias and static addresses there.
#[derive(Clone, Debug, Default)]
pub struct Attachment {
    pub network: String,
    pub alias: String,
    pub ip: String,
    pub ip6: Option<String>,
}

impl Attachment {
    /// The alias and addresses, `alias_flag` naming the alias as `run` or `network connect`
    /// takes it.
    fn flags(&self, alias_flag: &str) -> Vec<String> {
        let mut flags = vec![
            alias_flag.to_string(),
            self.alias.clone(),
            "--ip".into(),
            self.ip.clone(),
        ];
        if let Some(ip6) = &self.ip6 {
            flags.extend(["--ip6".into(), ip6.clone()]);
        }
        flags
    }
}

/// A Rancher server container of a test, under its (stable) name and host port. After an
/// upgrade the same handle reaches the new server, which took the old one's name.
#[derive(Clone, Debug)]
pub struct Server {
    pub name: String,
    pub port: u16,
    /// The engine it runs on.
    pub cli: Cli,
}

impl Server {
    pub fn inspect(&self) -> Value {
        self.cli.inspect_existing(&self.name)
    }

    pub fn id(&self) -> String {
        text(&self.inspect(), "/Id").to_string()
    }

    pub fn get(&self, path: &str) -> Option<String> {
        http_get(self.port, path).map(|b| b.trim().to_string())
    }

    /// Whether `/ping` answers `pong` right now (one short retry window).
    pub fn answers_ping(&self) -> bool {
        wait_for_pong(self.port, Duration::from_secs(3))
    }

    /// `/version` of the running server.
    pub fn version(&self) -> String {
        self.get("/version")
            .unwrap_or_else(|| panic!("{} does not answer /version", self.name))
    }

    /// `/schema` of the running server.
    pub fn schema(&self) -> String {
        self.get("/schema")
            .unwrap_or_else(|| panic!("{} does not answer /schema", self.name))
    }

    /// Writes a file under the server's /var/lib/mysql (its embedded database).
    pub fn write_data(&self, relative: &str, content: &str) {
        let path = format!("/var/lib/mysql/{relative}");
        let mut child = Command::new(self.cli.program())
            .args(["exec", "-i", &self.name, "sh", "-c"])
            .arg(r#"mkdir -p "$(dirname "$1")" && cat > "$1""#)
            .args(["sh", &path])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker exec");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(content.as_bytes())
            .expect("writing to docker exec");
        let out = child.wait_with_output().expect("docker exec");
        assert!(
            out.status.success(),
            "writing {path} in {} failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Reads a file under the server's /var/lib/mysql, through the running container.
    pub fn read_data(&self, relative: &str) -> Option<String> {
        let out = self.cli.run(&[
            "exec",
            &self.name,
            "cat",
            &format!("/var/lib/mysql/{relative}"),
        ]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// What the engine holds that a test can see without seeing other people's work: the
/// test's own containers (id, name, image, state with start/finish times, restart policy,
/// mounts), the test bed's `rancher/server` images, and the volumes the test's containers use
/// (or that are named after the test). The engine is shared, so a whole-engine `docker ps -a`
/// or `docker volume ls` would see other tests' work; [`Scope::events_since`] covers what
/// this leaves out: a pull that changes no image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub containers: Vec<String>,
    pub images: Vec<String>,
    pub volumes: Vec<String>,
}

/// Everything one test creates, removed again when it is dropped (also on panic).
pub struct Scope {
    /// `e2e-<test>-<pid>`: the server's name, and the start of every name the test uses.
    pub prefix: String,
    /// The engine the test drives, and the tool with it.
    pub cli: Cli,
    dir: tempfile::TempDir,
    runs: AtomicUsize,
    /// The anonymous volumes the test's containers have used: the tool removes an old server
    /// without `-v` (its volumes stay), so the scope removes them at the end.
    volumes: Mutex<BTreeSet<String>>,
}

impl Scope {
    fn new(cli: Cli, test: &str) -> Scope {
        let scope = Scope {
            prefix: format!("e2e-{test}-{}", std::process::id()),
            cli,
            dir: tempfile::Builder::new()
                .prefix(&format!("rancher-upgrade-e2e-{test}-"))
                .tempdir()
                .expect("creating a temporary directory"),
            runs: AtomicUsize::new(0),
            volumes: Mutex::new(BTreeSet::new()),
        };
        // Leftovers of an earlier run that died before cleaning up (same pid, rare).
        scope.remove_containers();
        scope
    }

    /// The server's container name.
    pub fn server_name(&self) -> String {
        self.prefix.clone()
    }

    /// The data container name every upgrade of this test passes with `--data-container`.
    pub fn data_name(&self) -> String {
        format!("{}-data", self.prefix)
    }

    /// The test's temporary directory (transcripts, backups, bind-mounted data).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A new subdirectory of [`Scope::dir`].
    pub fn subdir(&self, name: &str) -> PathBuf {
        let path = self.dir().join(name);
        std::fs::create_dir_all(&path).expect("creating a directory");
        path
    }

    fn owns(&self, name: &str) -> bool {
        name == self.prefix
            || name
                .strip_prefix(&self.prefix)
                .is_some_and(|rest| rest.starts_with('-'))
    }

    /// The test's containers, as (id, name), in name order.
    pub fn containers(&self) -> Vec<(String, String)> {
        let out = self
            .cli
            .run(&["ps", "-a", "--no-trunc", "--format", "{{.ID}}\t{{.Names}}"]);
        let mut found: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .filter(|(_, name)| self.owns(name))
            .map(|(id, name)| (id.to_string(), name.to_string()))
            .collect();
        found.sort_by(|a, b| a.1.cmp(&b.1));
        found
    }

    /// The names of the test's containers.
    pub fn container_names(&self) -> Vec<String> {
        self.containers().into_iter().map(|(_, n)| n).collect()
    }

    /// Starts a stand-in server of `tag` under [`Scope::server_name`] and waits for /ping
    /// when it publishes a port.
    pub fn start_server(&self, tag: &str, options: ServerOptions) -> Server {
        self.start_server_image(&image(tag), options)
    }

    /// [`Scope::start_server`] from a whole image reference (a stand-in under another name,
    /// or in another registry).
    pub fn start_server_image(&self, reference: &str, mut options: ServerOptions) -> Server {
        let name = self.server_name();
        // The engine is shared: another process may take the free port first. Then the
        // container is removed and started again on another port.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let out = self.cli.run(&self.run_args(&name, reference, &options));
            self.remember_volumes();
            if out.status.success() {
                self.connect_networks(&name, &options.networks);
                break;
            }
            let why = String::from_utf8_lossy(&out.stderr).into_owned();
            let port_taken = why.contains("already in use") || why.contains("already allocated");
            assert!(
                port_taken && options.port.is_some() && attempts < 5,
                "starting {name} ({reference}) failed: {why}"
            );
            let _ = self.cli.run(&["rm", "-f", "-v", &name]);
            options.port = Some(free_port());
        }
        let server = Server {
            name,
            port: options.port.unwrap_or(0),
            cli: self.cli,
        };
        if options.port.is_some() && !wait_for_pong(server.port, START_TIMEOUT) {
            let logs = self.cli.run(&["logs", &server.name]);
            panic!(
                "{} ({reference}) did not answer /ping on 127.0.0.1:{} within {} s; logs:\n{}{}",
                server.name,
                server.port,
                START_TIMEOUT.as_secs(),
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        server
    }

    /// `docker run -d` of a server of the image `reference` under `name`, as `options` describe
    /// it.
    fn run_args(&self, name: &str, reference: &str, options: &ServerOptions) -> Vec<String> {
        let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name.into()];
        if let Some(restart) = &options.restart {
            args.push(format!("--restart={restart}"));
        }
        if let Some(port) = options.port {
            args.extend(["-p".into(), format!("127.0.0.1:{port}:8080")]);
        }
        for env in &options.env {
            args.extend(["-e".into(), env.clone()]);
        }
        for label in &options.labels {
            args.extend(["--label".into(), label.clone()]);
        }
        for bind in &options.binds {
            args.extend(["-v".into(), bind.clone()]);
        }
        args.extend(options.raw.iter().cloned());
        if let Some(first) = options.networks.first() {
            args.extend(["--network".into(), first.network.clone()]);
            args.extend(first.flags("--network-alias"));
        }
        args.push(reference.to_string());
        args.extend(options.args.iter().cloned());
        args
    }

    /// `network connect` of `container` to each network past the first.
    fn connect_networks(&self, container: &str, networks: &[Attachment]) {
        for attachment in networks.iter().skip(1) {
            let mut args = vec!["network".to_string(), "connect".into()];
            args.extend(attachment.flags("--alias"));
            args.extend([attachment.network.clone(), container.to_string()]);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            self.cli.ok(&refs);
        }
    }

    /// A network of the test's own, `<prefix>-<suffix>`, on `subnets` (an IPv6 one makes it a
    /// dual-stack network). Removed with the scope.
    #[allow(dead_code)] // only some test binaries put their servers on networks
    pub fn network(&self, suffix: &str, subnets: &[&str]) -> String {
        let name = format!("{}-{suffix}", self.prefix);
        let mut args = vec!["network", "create"];
        if subnets.iter().any(|s| s.contains(':')) {
            args.push("--ipv6");
        }
        for subnet in subnets {
            args.extend(["--subnet", subnet]);
        }
        args.push(&name);
        self.cli.ok(&args);
        name
    }

    /// Runs `rancher-upgrade ARGS`.
    pub fn tool(&self, args: &[&str]) -> Run {
        self.tool_with_transcript(args, None)
    }

    fn tool_with_transcript(&self, args: &[&str], transcript: Option<&Path>) -> Run {
        let mut command = Command::new(TOOL);
        command.args(args);
        self.run(
            command,
            format!("rancher-upgrade {}", args.join(" ")),
            transcript,
        )
    }

    /// Starts `rancher-upgrade ARGS` in the test's directory and returns at once, to signal it
    /// or watch the engine while it runs; [`Background::wait`] gives the [`Run`].
    #[allow(dead_code)] // only some test binaries run the tool in the background
    pub fn spawn_tool(&self, args: &[String], transcript: Option<&Path>) -> Background {
        let mut command = Command::new(TOOL);
        command.args(args).current_dir(self.dir());
        self.remember_volumes();
        spawn_command(
            command,
            format!("rancher-upgrade {}", args.join(" ")),
            transcript,
        )
    }

    /// Runs `bash SCRIPT` with `env` added to its environment.
    pub fn bash(&self, script: &Path, env: &[(&str, &str)]) -> Run {
        let mut command = Command::new("bash");
        command.arg(script);
        for (name, value) in env {
            command.env(name, value);
        }
        self.run(command, format!("bash {}", script.display()), None)
    }

    /// [`run_command`] in the test's directory (so nothing lands in the repository), remembering
    /// the volumes of the test's containers before and after.
    fn run(&self, mut command: Command, what: String, transcript: Option<&Path>) -> Run {
        command.current_dir(self.dir());
        self.remember_volumes();
        let run = run_command(command, what, transcript);
        self.remember_volumes();
        run
    }

    /// Adds the anonymous volumes the test's containers use now to those removed at the end.
    pub fn remember_volumes(&self) {
        let mut remembered = self.volumes.lock().unwrap_or_else(|e| e.into_inner());
        for (id, _) in self.containers() {
            if let Some(c) = self.cli.inspect(&id) {
                remembered.extend(
                    mounts(&c)
                        .into_values()
                        .filter(|(kind, source)| kind == "volume" && is_anonymous(source))
                        .map(|(_, source)| source),
                );
            }
        }
    }

    /// The selection every run of this test passes: server, target, data container, a short
    /// health timeout, and backups into the test's directory.
    pub fn selection(&self, to: &str) -> Vec<String> {
        let mut args = vec!["--to".to_string(), to.to_string()];
        args.extend(self.server_args());
        args
    }

    /// [`Scope::selection`] without the target: what `rollback` takes. The engine is named
    /// when it is not docker.
    pub fn server_args(&self) -> Vec<String> {
        let engine = match self.cli {
            Cli::Docker => vec![],
            Cli::Podman => vec!["--docker".into(), self.cli.program()],
        };
        engine.into_iter().chain(self.own_server_args()).collect()
    }

    fn own_server_args(&self) -> Vec<String> {
        vec![
            "--container".into(),
            self.server_name(),
            "--data-container".into(),
            self.data_name(),
            "--health-timeout".into(),
            "60".into(),
            "--backup-dir".into(),
            self.subdir("backups").display().to_string(),
        ]
    }

    /// `rancher-upgrade upgrade --yes` of the test's server to `to`, with its transcript and
    /// backups in the test's directory, plus `extra` arguments.
    pub fn upgrade(&self, to: &str, extra: &[&str]) -> Run {
        let (args, transcript) = self.upgrade_args(to, extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.tool_with_transcript(&refs, Some(&transcript))
    }

    /// `rancher-upgrade rollback --yes` of the test's server, with its transcript and backups
    /// in the test's directory, plus `extra` arguments.
    pub fn rollback(&self, extra: &[&str]) -> Run {
        let mut args = vec!["rollback".to_string()];
        args.extend(self.server_args());
        let transcript = self.add_run_args(&mut args, extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.tool_with_transcript(&refs, Some(&transcript))
    }

    /// The arguments of [`Scope::upgrade`], and the transcript file they name.
    pub fn upgrade_args(&self, to: &str, extra: &[&str]) -> (Vec<String>, PathBuf) {
        let mut args = vec!["upgrade".to_string()];
        args.extend(self.selection(to));
        let transcript = self.add_run_args(&mut args, extra);
        (args, transcript)
    }

    /// Adds `--yes`, a transcript of its own, and `extra`; returns the transcript's path.
    fn add_run_args(&self, args: &mut Vec<String>, extra: &[&str]) -> PathBuf {
        let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        let transcript = self.dir().join(format!("transcript-{n}.log"));
        args.extend([
            "--yes".into(),
            "--log".into(),
            transcript.display().to_string(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        transcript
    }

    /// Every text file the tool wrote into the backups directory (the archives of the data
    /// aside), with its content.
    pub fn files_written(&self) -> Vec<(PathBuf, String)> {
        let mut found = Vec::new();
        let mut pending = vec![self.subdir("backups")];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else if !path.to_string_lossy().ends_with(".tar.gz") {
                    let content = std::fs::read(&path).unwrap_or_default();
                    found.push((path, String::from_utf8_lossy(&content).into_owned()));
                }
            }
        }
        found
    }

    /// See [`Snapshot`].
    pub fn snapshot(&self) -> Snapshot {
        let mut containers = Vec::new();
        let mut volumes = BTreeSet::new();
        for (id, name) in self.containers() {
            let Some(c) = self.cli.inspect(&id) else {
                continue;
            };
            let mounts = mounts(&c);
            for (kind, source) in mounts.values() {
                if kind == "volume" {
                    volumes.insert(source.clone());
                }
            }
            containers.push(format!(
                "{id} {name} image={} status={} running={} started={} finished={} exit={} restart={}:{} volumes-from={:?} mounts={mounts:?}",
                text(&c, "/Config/Image"),
                text(&c, "/State/Status"),
                c.pointer("/State/Running").unwrap_or(&Value::Null),
                text(&c, "/State/StartedAt"),
                text(&c, "/State/FinishedAt"),
                c.pointer("/State/ExitCode").unwrap_or(&Value::Null),
                text(&c, "/HostConfig/RestartPolicy/Name"),
                c.pointer("/HostConfig/RestartPolicy/MaximumRetryCount")
                    .unwrap_or(&Value::Null),
                strings(&c, "/HostConfig/VolumesFrom"),
            ));
        }
        let listed = self.cli.ok(&["volume", "ls", "--format", "{{.Name}}"]);
        let existing: BTreeSet<&str> = listed.lines().collect();
        let volumes = volumes
            .into_iter()
            .map(|v| {
                let state = if existing.contains(v.as_str()) {
                    "listed"
                } else {
                    "MISSING"
                };
                format!("{v} {state}")
            })
            .chain(
                existing
                    .iter()
                    .filter(|v| v.contains(&self.prefix))
                    .map(|v| format!("{v} named")),
            )
            .collect();
        let testbed_images: BTreeSet<String> = TESTBED_TAGS.iter().map(|t| image(t)).collect();
        let mut images: Vec<String> = self
            .cli
            .ok(&[
                "images",
                "--no-trunc",
                "--format",
                "{{.ID}} {{.Repository}}:{{.Tag}} {{.CreatedAt}}",
            ])
            .lines()
            .filter(|line| {
                line.split(' ')
                    .nth(1)
                    .is_some_and(|r| testbed_images.contains(r))
            })
            .map(str::to_string)
            .collect();
        images.sort();
        Snapshot {
            containers,
            images,
            volumes,
        }
    }

    /// The engine's events since `since` (seconds since the epoch) that concern this test's
    /// containers, or a pull of `pulled_image`. Waits until the events up to now are in.
    pub fn events_since(&self, since: f64, pulled_image: &str) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(300));
        let until = now_seconds();
        let out = self.cli.ok(&[
            "events",
            "--since",
            &format!("{since:.6}"),
            "--until",
            &format!("{until:.6}"),
            "--format",
            "{{json .}}",
        ]);
        let ids: BTreeSet<String> = self.containers().into_iter().map(|(id, _)| id).collect();
        out.lines()
            .filter(|line| {
                let Ok(event) = serde_json::from_str::<Value>(line) else {
                    return false;
                };
                let kind = text(&event, "/Type");
                let action = text(&event, "/Action");
                let actor = text(&event, "/Actor/ID");
                let name = text(&event, "/Actor/Attributes/name");
                match kind {
                    "container" => ids.contains(actor) || self.owns(name),
                    "image" => action == "pull" && (actor == pulled_image || name == pulled_image),
                    _ => self.owns(name),
                }
            })
            .map(str::to_string)
            .collect()
    }

    /// Removes the test's containers with their volumes, the volumes they used before, and the
    /// test's own networks and named volumes.
    fn remove_containers(&self) {
        self.remember_volumes();
        let containers = self.containers();
        if !containers.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(containers.iter().map(|(id, _)| id.as_str()));
            let _ = self.cli.run(&args);
        }
        let volumes = std::mem::take(&mut *self.volumes.lock().unwrap_or_else(|e| e.into_inner()));
        let existing = self.cli.run(&["volume", "ls", "-q"]);
        let existing = String::from_utf8_lossy(&existing.stdout);
        let left: Vec<&str> = existing
            .lines()
            .filter(|v| volumes.contains(*v) || self.owns(v))
            .collect();
        if !left.is_empty() {
            let mut args = vec!["volume", "rm"];
            args.extend(left);
            let _ = self.cli.run(&args);
        }
        let networks = self.cli.run(&["network", "ls", "--format", "{{.Name}}"]);
        let networks = String::from_utf8_lossy(&networks.stdout);
        let own: Vec<&str> = networks.lines().filter(|n| self.owns(n)).collect();
        if !own.is_empty() {
            let mut args = vec!["network", "rm"];
            args.extend(own);
            let _ = self.cli.run(&args);
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        self.remove_containers();
        let left = self.containers();
        if !left.is_empty() {
            eprintln!("e2e cleanup: could not remove {left:?}; remove them with docker rm -f -v");
        }
        // The temporary directory goes with `self.dir`.
    }
}

/// Anonymous volumes are named by 64 hex digits; only those are a test's own to remove.
fn is_anonymous(volume: &str) -> bool {
    volume.len() == 64 && volume.chars().all(|c| c.is_ascii_hexdigit())
}

/// Seconds since the epoch, with the fraction.
pub fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs_f64()
}

// ---------------------------------------------------------- the port thief --

/// A listener that grabs `127.0.0.1:PORT` the moment it is free: standing in for another
/// process that takes the server's port while the old server is down.
pub struct PortThief {
    stop: Arc<AtomicBool>,
    taken: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

/// When the thief lets go of the port it took.
pub type ReleaseWhen = Box<dyn Fn() -> bool + Send>;

impl PortThief {
    /// Tries to bind the port every millisecond for at most `patience`; once it has it, holds
    /// it until [`PortThief::release`], or until `release_when` (asked every 10 ms) says so.
    pub fn lie_in_wait(port: u16, patience: Duration, release_when: Option<ReleaseWhen>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let taken = Arc::new(AtomicBool::new(false));
        let (stop_flag, taken_flag) = (stop.clone(), taken.clone());
        let handle = std::thread::spawn(move || {
            let deadline = Instant::now() + patience;
            let listener = loop {
                if stop_flag.load(Ordering::SeqCst) || Instant::now() >= deadline {
                    return;
                }
                if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                    break listener;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            taken_flag.store(true, Ordering::SeqCst);
            while !stop_flag.load(Ordering::SeqCst) {
                if release_when.as_ref().is_some_and(|done| done()) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            drop(listener);
        });
        PortThief {
            stop,
            taken,
            handle: Some(handle),
        }
    }

    /// Whether the port was taken (and maybe released again) so far.
    pub fn took_it(&self) -> bool {
        self.taken.load(Ordering::SeqCst)
    }

    /// Stops waiting, frees the port, and returns whether it was ever taken.
    pub fn release(mut self) -> bool {
        self.finish();
        self.took_it()
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for PortThief {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Where the scenarios write the file they look for after an upgrade, under /var/lib/mysql.
pub const PROBE_FILE: &str = "cattle/probe.txt";
/// Rancher's data paths: the image's VOLUMEs.
pub const DATA_PATHS: [&str; 3] = ["/var/lib/mysql", "/var/lib/cattle", "/var/log/mysql"];

/// What the old server held before the upgrade, to compare with afterwards.
pub struct Before {
    pub id: String,
    /// Destination → (type, volume name or host directory) of the old server's data paths.
    pub data: BTreeMap<String, (String, String)>,
    pub probe: String,
}

/// Writes the probe file into the server's data and records what it holds now.
pub fn record_before(scope: &Scope, server: &Server) -> Before {
    let probe = format!("written under v1.6.10 by {}\n", scope.prefix);
    server.write_data(PROBE_FILE, &probe);
    let old = server.inspect();
    Before {
        id: text(&old, "/Id").to_string(),
        data: data_mounts(&old),
        probe,
    }
}

/// The mounts of a container at Rancher's data paths.
pub fn data_mounts(container: &Value) -> BTreeMap<String, (String, String)> {
    mounts(container)
        .into_iter()
        .filter(|(destination, _)| DATA_PATHS.contains(&destination.as_str()))
        .collect()
}

/// The commands a failure report leaves to run by hand to get the old server back: the
/// "Not done" section of a rollback that stopped too, or else the "To return to the old server"
/// section. Its `docker` lines (indented or not, with or without a `$ ` prompt) up to the first
/// blank line. Only commands that step back are accepted (start, stop, rm, rename, update, and
/// a throwaway `run --rm` that restores a backup): anything else fails the test before it runs.
pub fn way_back_commands(output: &str) -> Vec<String> {
    let lines: Vec<&str> = output.lines().collect();
    let section = |start: usize, header: &str| -> Option<usize> {
        lines[start..]
            .iter()
            .position(|l| l.contains(header))
            .map(|i| start + i + 1)
    };
    let rolled_back_partly = output.contains("rollback stopped");
    let begin = if rolled_back_partly {
        let rollback = lines
            .iter()
            .rposition(|l| l.contains("Rolling back"))
            .unwrap_or(0);
        section(rollback, "Not done")
    } else {
        section(0, "To return to the old server")
    };
    let Some(begin) = begin else {
        return Vec::new();
    };
    let commands: Vec<String> = lines[begin..]
        .iter()
        .map(|l| l.trim())
        .take_while(|l| !l.is_empty())
        .map(|l| l.strip_prefix("$ ").unwrap_or(l))
        .filter(|l| l.starts_with("docker "))
        .map(str::to_string)
        .collect();
    for command in &commands {
        let words: Vec<&str> = command.split_whitespace().collect();
        let verb = words.get(1).copied().unwrap_or("");
        let steps_back = ["start", "stop", "rm", "rename", "update"].contains(&verb)
            || (verb == "run" && words.contains(&"--rm"));
        assert!(
            steps_back,
            "the way back holds `{command}`, which is not a step back:\n{output}"
        );
    }
    commands
}
