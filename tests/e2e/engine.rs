//! Support for the end-to-end tests: the real engine, the stand-in `rancher/server` images of
//! the test bed, and a [`Scope`] that owns everything one test creates.
//!
//! A test runs on one engine ([`TestEngine`]): this machine's dockerd by default, or one of the
//! test bed's other hosts (its own network and mount namespaces, reached by a unix socket or
//! over ssh), or podman. Every docker command of the harness and every run of the tool address
//! the test's engine.
//!
//! Every container, network and named volume a test makes is named `e2e-<test>-<pid>[-...]`;
//! the scope removes them (containers with their volumes) and its temporary directory when it is
//! dropped, so cleanup also happens when the test panics. Things with other names are never
//! touched: other tests, and other people, use the same engine at the same time.

use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
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

// ------------------------------------------------------------------ the gate --

/// The test's [`Scope`] on this machine's engine (or on `$engine`, see [`engine_on`]), or,
/// when that engine does not answer, a skip line and a return from the test (a failure instead
/// with REQUIRE_DOCKER=1; see [`engine`]).
macro_rules! scope {
    ($test:expr) => {
        scope!($test, $crate::engine::TestEngine::Local)
    };
    ($test:expr, $engine:expr) => {
        match $crate::engine::engine_on($test, $engine) {
            Some(scope) => scope,
            None => return,
        }
    };
}

/// Whether a test without its engine fails (`REQUIRE_DOCKER=1`) instead of skipping.
pub fn require_docker() -> bool {
    std::env::var("REQUIRE_DOCKER").is_ok_and(|v| v.trim() == "1")
}

/// The engine a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TestEngine {
    /// This machine's dockerd, at the default socket.
    Local,
    /// The test bed's other host 1, through the unix socket its dockerd also listens on: the
    /// engine sees its own /tmp and /srv and publishes ports on its own address.
    HostUnix,
    /// The same host over `DOCKER_HOST=ssh://root@ADDRESS`.
    HostSsh,
    /// Rootful podman on this machine (`--docker podman`).
    Podman,
}

thread_local! {
    /// The engine of the test running on this thread.
    static CURRENT: RefCell<TestEngine> = const { RefCell::new(TestEngine::Local) };
}

/// The engine of the test running on this thread.
pub fn current_engine() -> TestEngine {
    CURRENT.with(|c| *c.borrow())
}

fn testbed_setting(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl TestEngine {
    /// The program the harness runs for docker commands.
    pub fn program(self) -> String {
        match self {
            TestEngine::Podman => {
                testbed_setting("RANCHER_UPGRADE_PODMAN").unwrap_or_else(|| "podman".into())
            }
            _ => "docker".into(),
        }
    }

    /// What the engine needs in the environment of the docker CLI (and of the tool).
    pub fn env(self) -> Vec<(String, String)> {
        let variable = match self {
            TestEngine::HostUnix => "RANCHER_UPGRADE_HOST1_UNIX",
            TestEngine::HostSsh => "RANCHER_UPGRADE_HOST1_SSH",
            _ => return Vec::new(),
        };
        let host = testbed_setting(variable).unwrap_or_else(|| {
            panic!("{variable} is not set: export the lines `bash scripts/testbed.sh` prints")
        });
        vec![("DOCKER_HOST".into(), host)]
    }

    /// The arguments that point the tool at this engine.
    pub fn tool_args(self) -> Vec<String> {
        match self {
            TestEngine::Podman => vec!["--docker".into(), self.program()],
            _ => Vec::new(),
        }
    }

    /// Where the engine's published ports are reached from here.
    pub fn address(self) -> Ipv4Addr {
        match self {
            TestEngine::HostUnix | TestEngine::HostSsh => testbed_setting(
                "RANCHER_UPGRADE_HOST1_ADDR",
            )
            .and_then(|a| a.parse().ok())
            .expect(
                "RANCHER_UPGRADE_HOST1_ADDR: export the lines `bash scripts/testbed.sh` prints",
            ),
            _ => Ipv4Addr::LOCALHOST,
        }
    }

    /// Whether the engine shares this machine's network, so that a free port here is one there.
    fn shares_this_network(self) -> bool {
        self.address() == Ipv4Addr::LOCALHOST
    }

    /// A docker (or podman) command on this engine.
    pub fn command(self) -> Command {
        let mut command = Command::new(self.program());
        command.envs(self.env());
        command
    }
}

/// Whether the engine answers and holds the stand-in images; checked once per engine and test
/// binary.
fn engine_ready(engine: TestEngine) -> Result<(), String> {
    static READY: OnceLock<Mutex<BTreeMap<String, Result<(), String>>>> = OnceLock::new();
    let mut ready = READY
        .get_or_init(|| Mutex::new(BTreeMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    ready
        .entry(format!("{engine:?}"))
        .or_insert_with(|| check_engine(engine))
        .clone()
}

fn check_engine(engine: TestEngine) -> Result<(), String> {
    let info = engine.command().arg("info").stdin(Stdio::null()).output();
    match info {
        Err(e) => return Err(format!("{} could not be started: {e}", engine.program())),
        Ok(out) if !out.status.success() => {
            return Err(format!(
                "no {engine:?} engine answers (`{} info` failed: {})",
                engine.program(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(_) => {}
    }
    for tag in BASE_TAGS {
        let reference = image(tag);
        let pulled = engine
            .command()
            .args(["pull", "-q", &reference])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("pull {reference}: {e}"))?;
        if !pulled.status.success() {
            return Err(format!(
                "the stand-in image {reference} can't be pulled on {engine:?} ({}); run `bash scripts/testbed.sh` and export the lines it prints",
                String::from_utf8_lossy(&pulled.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// The scope of one test on this machine's engine, or `None` (after a skip line) when no engine
/// answers. With `REQUIRE_DOCKER=1` a missing engine fails the test instead.
pub fn engine(test: &str) -> Option<Scope> {
    engine_on(test, TestEngine::Local)
}

/// [`engine`] on another engine: the harness and the tool address it for the rest of the test.
pub fn engine_on(test: &str, engine: TestEngine) -> Option<Scope> {
    CURRENT.with(|c| *c.borrow_mut() = engine);
    match engine_ready(engine) {
        Ok(()) => Some(Scope::new(test)),
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

/// Runs `docker ARGS` on the test's engine and returns what it left, success or not.
pub fn docker<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    current_engine()
        .command()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            let words: Vec<String> = args
                .iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect();
            panic!("could not start `docker {}`: {e}", words.join(" "))
        })
}

/// Runs `docker ARGS`, fails the test when it fails, and returns its trimmed stdout.
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "`docker {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker inspect --type container NAME`, or `None` when no such container exists.
pub fn inspect(name: &str) -> Option<Value> {
    let out = docker(&["inspect", "--type", "container", "--", name]);
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        assert!(
            why.to_lowercase().contains("no such"),
            "`docker inspect {name}` failed: {why}"
        );
        return None;
    }
    let mut all: Vec<Value> =
        serde_json::from_slice(&out.stdout).expect("docker inspect prints a JSON array");
    (!all.is_empty()).then(|| all.swap_remove(0))
}

/// `docker inspect` of a container that must exist.
pub fn inspect_existing(name: &str) -> Value {
    inspect(name).unwrap_or_else(|| panic!("container {name} does not exist"))
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

/// A port nobody listens on right now, on 127.0.0.1; on another host's engine, a port there
/// that is most likely free (a taken one makes the start try another).
pub fn free_port() -> u16 {
    if !current_engine().shares_this_network() {
        return 20000 + (std::process::id() as u16 ^ now_seconds().to_bits() as u16) % 20000;
    }
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// `GET http://ADDRESS:PORT/PATH` of the test's engine: the body of a 200 answer, else `None`.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let address = SocketAddr::from((current_engine().address(), port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n\r\n"
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
}

impl Server {
    pub fn inspect(&self) -> Value {
        inspect_existing(&self.name)
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
        let mut child = current_engine()
            .command()
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
        let out = docker(&[
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
    dir: tempfile::TempDir,
    runs: AtomicUsize,
    /// The anonymous volumes the test's containers have used: the tool removes an old server
    /// without `-v` (its volumes stay), so the scope removes them at the end.
    volumes: Mutex<BTreeSet<String>>,
}

impl Scope {
    fn new(test: &str) -> Scope {
        let scope = Scope {
            prefix: format!("e2e-{test}-{}", std::process::id()),
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
        let out = docker(&["ps", "-a", "--no-trunc", "--format", "{{.ID}}\t{{.Names}}"]);
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
            let out = docker(&self.run_args(&name, reference, &options));
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
            let _ = docker(&["rm", "-f", "-v", &name]);
            options.port = Some(free_port());
        }
        let server = Server {
            name,
            port: options.port.unwrap_or(0),
        };
        if options.port.is_some() && !wait_for_pong(server.port, START_TIMEOUT) {
            let logs = docker(&["logs", &server.name]);
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
            // On another host, as Rancher's docs start it: on every address of that host, so
            // that only a tool asking the wrong machine could mistake a local port for it.
            let publish = if current_engine().shares_this_network() {
                format!("127.0.0.1:{port}:8080")
            } else {
                format!("{port}:8080")
            };
            args.extend(["-p".into(), publish]);
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
            docker_ok(&refs);
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
        docker_ok(&args);
        name
    }

    /// Runs `rancher-upgrade ARGS`.
    pub fn tool(&self, args: &[&str]) -> Run {
        self.tool_with_transcript(args, None)
    }

    fn tool_with_transcript(&self, args: &[&str], transcript: Option<&Path>) -> Run {
        let mut command = self.tool_command();
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
        let mut command = self.tool_command();
        command.args(args).current_dir(self.dir());
        self.remember_volumes();
        spawn_command(
            command,
            format!("rancher-upgrade {}", args.join(" ")),
            transcript,
        )
    }

    /// The tool, with the test's engine in its environment (the engine's own arguments come
    /// with [`Scope::server_args`]).
    fn tool_command(&self) -> Command {
        let mut command = Command::new(TOOL);
        command.envs(current_engine().env());
        command
    }

    /// Runs `rancher-upgrade ARGS` and, once `until` holds (asked every 10 ms), presses Ctrl-C
    /// twice, as an operator who insists: the tool stops the running command and leaves at once,
    /// without going back, exit 130. What is left is an upgrade stopped halfway.
    pub fn stop_halfway(
        &self,
        args: &[String],
        transcript: Option<&Path>,
        until: impl Fn() -> bool,
    ) -> Run {
        let mut running = self.spawn_tool(args, transcript);
        let deadline = Instant::now() + Duration::from_secs(90);
        while !until() {
            if !running.is_running() || Instant::now() >= deadline {
                let run = running.wait();
                panic!(
                    "the moment to press Ctrl-C did not come (exit {:?}):\n{}",
                    run.code,
                    run.output()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Close together: the first Ctrl-C starts the way back, and one of a single quick command
        // (a restart policy) could finish before a second pressed 50 ms later; 5 ms still lets
        // the first be handled, so the two are not merged into one signal.
        for _ in 0..2 {
            let sent = Command::new("kill")
                .args(["-INT", &running.pid().to_string()])
                .status()
                .expect("kill");
            assert!(sent.success(), "kill -INT failed");
            std::thread::sleep(Duration::from_millis(5));
        }
        let run = running.wait();
        self.remember_volumes();
        run.expect_code(130);
        run
    }

    /// Runs `bash SCRIPT` with the test's engine and `env` added to its environment.
    pub fn bash(&self, script: &Path, env: &[(&str, &str)]) -> Run {
        let mut command = Command::new("bash");
        command.envs(current_engine().env());
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
            if let Some(c) = inspect(&id) {
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
        let mut args = current_engine().tool_args();
        args.extend([
            "--container".into(),
            self.server_name(),
            "--data-container".into(),
            self.data_name(),
            "--health-timeout".into(),
            "60".into(),
            "--backup-dir".into(),
            self.subdir("backups").display().to_string(),
        ]);
        args
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
            let Some(c) = inspect(&id) else {
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
        let listed = docker_ok(&["volume", "ls", "--format", "{{.Name}}"]);
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
        let mut images: Vec<String> = docker_ok(&[
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
        let out = docker_ok(&[
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
            let _ = docker(&args);
        }
        let volumes = std::mem::take(&mut *self.volumes.lock().unwrap_or_else(|e| e.into_inner()));
        let existing = docker(&["volume", "ls", "-q"]);
        let existing = String::from_utf8_lossy(&existing.stdout);
        let left: Vec<&str> = existing
            .lines()
            .filter(|v| volumes.contains(*v) || self.owns(v))
            .collect();
        if !left.is_empty() {
            let mut args = vec!["volume", "rm"];
            args.extend(left);
            let _ = docker(&args);
        }
        let networks = docker(&["network", "ls", "--format", "{{.Name}}"]);
        let networks = String::from_utf8_lossy(&networks.stdout);
        let own: Vec<&str> = networks.lines().filter(|n| self.owns(n)).collect();
        if !own.is_empty() {
            let mut args = vec!["network", "rm"];
            args.extend(own);
            let _ = docker(&args);
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

/// Every process's command line now, its words joined by spaces, by pid.
pub fn command_lines() -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let raw = std::fs::read(entry.path().join("cmdline")).ok()?;
            let words: Vec<String> = raw
                .split(|b| *b == 0)
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            Some((pid, words.join(" ")))
        })
        .collect()
}

/// Seconds since the epoch, with the fraction.
pub fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs_f64()
}

// ------------------------------------------------- a docker that fails on cue --

/// The real docker CLI: the first `docker` on PATH, as an absolute path, so a wrapper can
/// exec it whatever PATH the tool gives it.
pub fn real_docker() -> PathBuf {
    find_on_path("docker").expect("a docker CLI on PATH")
}

/// The first executable `program` on PATH.
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Writes an executable `/bin/sh` script into the test's directory.
pub fn write_script(scope: &Scope, name: &str, body: &str) -> PathBuf {
    let path = scope.dir().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("writing a script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("making a script executable");
    path
}

/// A path for a shell script, single-quoted (the test's paths hold no single quote).
pub fn sh_quote(path: &Path) -> String {
    let text = path.display().to_string();
    assert!(!text.contains('\''), "{text} holds a single quote");
    format!("'{text}'")
}

/// A docker wrapper for `--docker`: the first time the tool runs `docker VERB ...`, it fails
/// with exit 1 and says so; every other command goes to the real docker.
pub fn docker_failing_once(scope: &Scope, verb: &str) -> PathBuf {
    let marker = scope.dir().join(format!("failed-{verb}-once"));
    write_script(
        scope,
        &format!("docker-failing-{verb}-once"),
        &format!(
            "if [ \"$1\" = {verb} ] && [ ! -e {marker} ]; then\n  : > {marker}\n  echo \"e2e wrapper: docker {verb} refused once\" >&2\n  exit 1\nfi\nexec {docker} \"$@\"\n",
            marker = sh_quote(&marker),
            docker = sh_quote(&real_docker()),
        ),
    )
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

// ------------------------------------------------------- shared scenarios' checks --

/// A server as the scenarios start it: a published port, env, a label, a restart policy.
pub fn server_options() -> ServerOptions {
    ServerOptions {
        port: Some(free_port()),
        env: vec!["GREETING=hello world".into()],
        labels: vec!["team=ops".into()],
        restart: Some("unless-stopped".into()),
        ..ServerOptions::default()
    }
}

pub fn is_running(container: &Value) -> bool {
    container.pointer("/State/Running") == Some(&Value::Bool(true))
}

pub fn backups(scope: &Scope) -> PathBuf {
    scope.subdir("backups")
}

/// The backup archives in the test's `--backup-dir`, in name order.
pub fn archives(scope: &Scope) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(backups(scope))
        .expect("reading the backup directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.to_string_lossy();
            name.ends_with(".tar.zst") || name.ends_with(".tar.gz")
        })
        .collect();
    found.sort();
    found
}

/// The state file the tool keeps beside its backups.
pub fn state(scope: &Scope) -> Value {
    let path = backups(scope).join(format!(
        "rancher-upgrade-{}.state.json",
        scope.server_name()
    ));
    let content = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&content).expect("the state file is JSON")
}

/// Fails unless exactly `holders` (in this order) use each of the data volumes, among every
/// container of the engine (a leaked helper container would show here too), and `docker ps -a
/// --filter name=DATA` lists one data container.
pub fn assert_volume_holders(before: &Before, holders: &[String], data_name: &str) {
    for (destination, (_, volume)) in &before.data {
        let listed = docker_ok(&[
            "ps",
            "-a",
            "--filter",
            &format!("volume={volume}"),
            "--format",
            "{{.Names}}",
        ]);
        let mut found: Vec<&str> = listed.lines().collect();
        found.sort();
        assert_eq!(
            found, holders,
            "the containers that hold the volume at {destination} ({volume})"
        );
    }
    let listed = docker_ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={data_name}"),
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        vec![data_name],
        "data containers"
    );
}

/// The upgrade finished: a new container under the server's name runs `to` on the data of
/// `before`, through the one data container; the old container is gone; one archive.
pub fn assert_upgraded(scope: &Scope, server: &Server, before: &Before, to: &str, schema: &str) {
    let new = server.inspect();
    let name = scope.server_name();
    assert_eq!(text(&new, "/Config/Image"), image(to), "{name}");
    assert_ne!(text(&new, "/Id"), before.id, "{name} is the old container");
    assert!(is_running(&new), "{name} is not running");
    assert!(server.answers_ping(), "{name} does not answer /ping");
    assert_eq!(server.version(), to);
    assert_eq!(server.schema(), schema);
    assert_eq!(
        server.read_data(PROBE_FILE).as_deref(),
        Some(before.probe.as_str()),
        "the data written under v1.6.10"
    );
    assert_eq!(data_mounts(&new), before.data, "the new server's volumes");
    assert_eq!(
        strings(&new, "/HostConfig/VolumesFrom"),
        vec![scope.data_name()]
    );
    assert_eq!(
        text(&new, "/HostConfig/RestartPolicy/Name"),
        "unless-stopped"
    );
    assert!(inspect(&before.id).is_none(), "the old container is left");
    assert_eq!(
        scope.container_names(),
        vec![name.clone(), scope.data_name()],
        "the test's containers"
    );
    assert_volume_holders(before, &[name, scope.data_name()], &scope.data_name());
    assert_eq!(archives(scope).len(), 1, "archives: {:?}", archives(scope));
    assert_eq!(text(&state(scope), "/status"), "completed");
}

/// How often `needle` occurs in `haystack`.
pub fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// After a rollback: the old release answers on the data from before the upgrade, and what the
/// new release wrote since (`cattle/after.txt`) is gone.
pub fn assert_back_on_the_data_from_before(server: &Server, before: &Before) {
    assert!(server.answers_ping(), "the old release does not answer");
    assert_eq!(server.version(), "v1.6.10");
    assert_eq!(server.schema(), "10");
    assert_eq!(
        server.read_data(PROBE_FILE).as_deref(),
        Some(before.probe.as_str())
    );
    assert_eq!(server.read_data("cattle/after.txt"), None);
}
