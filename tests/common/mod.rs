//! Shared helpers for tests that run the built `rancher-upgrade` against the fake docker
//! (`tests/support/fake-docker`) on a copy of a fixture (`tests/fixtures/<name>/`).
//!
//! ```ignore
//! mod common;
//! use common::FakeDocker;
//!
//! let mut fake = FakeDocker::new("embedded");
//! fake.set_env("FAKE_DOCKER_FAIL_AT", "run");
//! fake.command().args(["upgrade", "--to", "v1.6.20", "--yes"]).assert().code(1);
//! assert!(fake.mutating_calls().iter().all(|c| c[0] != "rm"));
//! ```
#![allow(dead_code)] // each test crate uses its own share of these helpers

use assert_cmd::Command;
use serde_json::Value;
use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use tempfile::TempDir;

/// What one run of the binary (or another program) left.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Ran {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Exit 2 with exactly one line on stderr that names `what`.
    #[track_caller]
    pub fn expect_one_line_refusal(self, what: &str) -> Ran {
        let ran = self.expect_code(2);
        let lines: Vec<&str> = ran.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "stderr is not one line: {:?}", ran.stderr);
        assert!(
            lines[0].starts_with("rancher-upgrade: ") && lines[0].contains(what),
            "stderr does not name {what:?}: {:?}",
            ran.stderr
        );
        ran
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl From<std::process::Output> for Ran {
    fn from(output: std::process::Output) -> Ran {
        Ran {
            code: output
                .status
                .code()
                .expect("exited by itself, not by a signal"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }
}

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_rancher-upgrade");

/// docker subcommands that change nothing.
pub const READ_ONLY_SUBCOMMANDS: [&str; 6] = ["inspect", "ps", "logs", "version", "info", "port"];

/// Environment variables passed on from the test's own environment; everything else is cleared.
const PASSED_ON: [&str; 2] = ["RUST_BACKTRACE", "LLVM_PROFILE_FILE"];

/// A host as the fake docker shows it: a copy of a fixture's state, and directories to put
/// on PATH. Everything lives in a temporary directory that goes when this is dropped.
pub struct FakeDocker {
    root: TempDir,
    envs: Vec<(OsString, OsString)>,
}

impl FakeDocker {
    /// A host holding what `tests/fixtures/<fixture>/` holds.
    pub fn new(fixture: &str) -> FakeDocker {
        let source = fixtures_dir().join(fixture);
        assert!(
            source.join("containers").is_dir(),
            "no fixture {fixture} in {}",
            fixtures_dir().display()
        );
        let fake = FakeDocker::bare();
        copy_dir(&source, &fake.state_dir());
        fake
    }

    /// A host with no container and no image.
    pub fn empty() -> FakeDocker {
        let fake = FakeDocker::bare();
        fs::create_dir_all(fake.state_dir().join("containers")).unwrap();
        fs::create_dir_all(fake.state_dir().join("images")).unwrap();
        fake
    }

    fn bare() -> FakeDocker {
        let root = tempfile::Builder::new()
            .prefix("fake-docker-")
            .tempdir()
            .unwrap();
        let python = python3();
        for dir in ["bin", "python-only"] {
            fs::create_dir(root.path().join(dir)).unwrap();
            std::os::unix::fs::symlink(python, root.path().join(dir).join("python3")).unwrap();
        }
        fs::create_dir(root.path().join("work")).unwrap();
        std::os::unix::fs::symlink(script(), root.path().join("bin").join("docker")).unwrap();
        // The tool lists a backup archive with the host's tar (which runs gzip), as on a real host.
        for tool in ["tar", "gzip"] {
            std::os::unix::fs::symlink(host_program(tool), root.path().join("bin").join(tool))
                .unwrap();
        }
        FakeDocker {
            root,
            envs: Vec::new(),
        }
    }

    /// `$FAKE_DOCKER_STATE`: containers/, images/, logs/, calls.jsonl, env.jsonl.
    pub fn state_dir(&self) -> PathBuf {
        self.root.path().join("state")
    }

    /// A directory holding `docker` (the fake) and `python3`: PATH for [`FakeDocker::command`].
    pub fn bin_dir(&self) -> PathBuf {
        self.root.path().join("bin")
    }

    /// A directory holding only `python3`: a PATH on which there is no docker.
    pub fn python_only_dir(&self) -> PathBuf {
        self.root.path().join("python-only")
    }

    /// The working directory of every command: where `--backup-dir` (default `.`), the state
    /// file and the transcript go, so no test writes into the source tree.
    pub fn work_dir(&self) -> PathBuf {
        self.root.path().join("work")
    }

    /// The names of the files in [`FakeDocker::work_dir`], sorted.
    pub fn work_files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.work_dir())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// Sets a variable for every later command: `FAKE_DOCKER_FAIL_AT`, `DOCKER_HOST`, ...
    pub fn set_env(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> &mut Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Forgets a variable set with [`FakeDocker::set_env`].
    pub fn unset_env(&mut self, key: &str) -> &mut Self {
        self.envs.retain(|(k, _)| k != key);
        self
    }

    /// The binary, finding the fake as `docker` on PATH (PATH holds nothing else), with
    /// `FAKE_DOCKER_STATE`, `NO_COLOR=1` and the variables of [`FakeDocker::set_env`], and an
    /// otherwise empty environment, in [`FakeDocker::work_dir`]. Times out after two minutes,
    /// so a hang fails the test.
    pub fn command(&self) -> Command {
        self.command_with_path(self.bin_dir().into_os_string())
    }

    /// Like [`FakeDocker::command`], but PATH holds no docker: the test names the fake with
    /// `--docker` or `RANCHER_UPGRADE_DOCKER` ([`script`] is its path).
    pub fn command_without_docker_on_path(&self) -> Command {
        self.command_with_path(self.python_only_dir().into_os_string())
    }

    fn command_with_path(&self, path: OsString) -> Command {
        let mut command = Command::from_std(self.on_this_host(BINARY, path, &PASSED_ON));
        command.timeout(Duration::from_secs(120));
        command
    }

    /// The binary as a plain [`std::process::Command`], with the environment of
    /// [`FakeDocker::command`]: for a test that spawns it and acts while it runs (a Ctrl-C),
    /// or that passes arguments which are not UTF-8. No timeout: the caller keeps the time.
    pub fn tool(&self) -> std::process::Command {
        self.on_this_host(BINARY, self.bin_dir().into_os_string(), &PASSED_ON)
    }

    /// Any program (bash running a runbook, ...) with the fake first on PATH, then the system's.
    pub fn process(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut path = self.bin_dir().into_os_string();
        path.push(":/usr/local/bin:/usr/bin:/bin");
        self.on_this_host(program, path, &[])
    }

    /// `program` in the work directory, with PATH `path`, the fake's state, no colour and the
    /// variables the test set; of the test's own environment only `inherited`.
    fn on_this_host(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        path: OsString,
        inherited: &[&str],
    ) -> std::process::Command {
        let mut command = std::process::Command::new(program);
        command.env_clear();
        for key in inherited {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        command
            .current_dir(self.work_dir())
            .env("PATH", path)
            .env("FAKE_DOCKER_STATE", self.state_dir())
            .env("NO_COLOR", "1");
        for (key, value) in &self.envs {
            command.env(key, value);
        }
        command
    }

    /// Every docker invocation so far, in order: its argv without the program name.
    pub fn calls(&self) -> Vec<Vec<String>> {
        read_lines(&self.state_dir().join("calls.jsonl"))
            .iter()
            .map(|line| serde_json::from_str(line).expect("calls.jsonl holds JSON arrays"))
            .collect()
    }

    /// The calls whose subcommand can change something (not inspect/ps/logs/version/info/port).
    pub fn mutating_calls(&self) -> Vec<Vec<String>> {
        self.calls()
            .into_iter()
            .filter(|call| {
                !call
                    .first()
                    .is_some_and(|s| READ_ONLY_SUBCOMMANDS.contains(&s.as_str()))
            })
            .collect()
    }

    /// The calls of one subcommand (`"run"`, `"rm"`, ...).
    /// Runs the tool with `args` and presses Ctrl-C twice while `docker SUBCOMMAND` (its first
    /// call) runs: the tool stops that command and leaves at once, without going back, as an
    /// operator who insists does. What is left is an upgrade stopped halfway, recorded as such.
    /// Returns what the tool printed on stderr.
    #[allow(dead_code)] // not every test binary stops an upgrade halfway
    pub fn stop_halfway_at(&mut self, subcommand: &str, args: &[String]) -> String {
        self.set_env("FAKE_DOCKER_FAIL_AT", subcommand)
            .set_env("FAKE_DOCKER_FAIL_MODE", "slow")
            .set_env("FAKE_DOCKER_SLOW_SECONDS", "10");
        let before = self.calls_of(subcommand).len();
        let log = self.state_dir().join("stop-halfway.stderr");
        let mut child = self
            .tool()
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.calls_of(subcommand).len() == before {
            assert!(
                child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline,
                "the tool did not reach docker {subcommand}: {}",
                fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Close together, as the real-engine harness: a way back begun by the first Ctrl-C
        // must not finish before the second, which must not merge with it either.
        for _ in 0..2 {
            let sent = std::process::Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success(), "kill -INT failed");
            std::thread::sleep(Duration::from_millis(5));
        }
        let status = child.wait().unwrap();
        let stderr = fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(status.code(), Some(130), "{stderr}");
        for key in [
            "FAKE_DOCKER_FAIL_AT",
            "FAKE_DOCKER_FAIL_MODE",
            "FAKE_DOCKER_SLOW_SECONDS",
        ] {
            self.unset_env(key);
        }
        stderr
    }

    /// What the fake's external databases served, in order: (client, SHA-256 of the dump), a
    /// `mysqldump` for a dump and a `mysql` for a restore.
    #[allow(dead_code)] // not every test binary upgrades an external database
    pub fn database_clients(&self) -> Vec<(String, String)> {
        read_lines(&self.state_dir().join("databases.jsonl"))
            .iter()
            .map(|line| {
                let served: Value = serde_json::from_str(line).expect("databases.jsonl holds JSON");
                let text = |key: &str| served[key].as_str().unwrap_or_default().to_string();
                (text("client"), text("sha256"))
            })
            .collect()
    }

    pub fn calls_of(&self, subcommand: &str) -> Vec<Vec<String>> {
        self.calls()
            .into_iter()
            .filter(|call| call.first().is_some_and(|s| s == subcommand))
            .collect()
    }

    /// For each docker invocation, the `DOCKER_HOST` and `DOCKER_CONTEXT` it saw (null: unset).
    pub fn docker_env(&self) -> Vec<Value> {
        read_lines(&self.state_dir().join("env.jsonl"))
            .iter()
            .map(|line| serde_json::from_str(line).expect("env.jsonl holds JSON objects"))
            .collect()
    }

    fn container_file(&self, name: &str) -> PathBuf {
        self.state_dir()
            .join("containers")
            .join(format!("{name}.json"))
    }

    /// The `docker inspect` object of a container the fake holds now.
    pub fn container(&self, name: &str) -> Value {
        let file = self.container_file(name);
        let text = fs::read_to_string(&file).unwrap_or_else(|_| {
            panic!(
                "the fake docker has no container {name}; it has {:?}",
                self.container_names()
            )
        });
        serde_json::from_str(&text).unwrap()
    }

    pub fn has_container(&self, name: &str) -> bool {
        self.container_file(name).exists()
    }

    /// The names of the containers the fake holds now, sorted.
    pub fn container_names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.state_dir().join("containers"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter_map(|f| f.strip_suffix(".json").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Adds (or replaces) a container: `container` is its inspect object, named by its `Name`.
    pub fn put_container(&self, container: &Value) {
        let name = container["Name"]
            .as_str()
            .expect("a container has a Name")
            .trim_start_matches('/');
        fs::create_dir_all(self.state_dir().join("containers")).unwrap();
        let text = serde_json::to_string_pretty(container).unwrap();
        fs::write(self.container_file(name), text + "\n").unwrap();
    }

    pub fn remove_container(&self, name: &str) {
        fs::remove_file(self.container_file(name)).unwrap();
    }

    /// What `docker logs` prints for a container (empty when the fake has no log for it).
    pub fn logs(&self, name: &str) -> String {
        fs::read_to_string(self.state_dir().join("logs").join(name)).unwrap_or_default()
    }
}

/// `tests/support/fake-docker`.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fake-docker")
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture's container as captured, for comparing with what the binary made of it.
pub fn fixture_container(fixture: &str, name: &str) -> Value {
    let file = fixtures_dir()
        .join(fixture)
        .join("containers")
        .join(format!("{name}.json"));
    serde_json::from_str(&fs::read_to_string(file).unwrap()).unwrap()
}

/// The real python3 interpreter (not a pyenv shim, which needs bash and more on PATH).
fn host_program(name: &str) -> PathBuf {
    ["/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("the host has no {name}"))
}

fn python3() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let output = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("the fake docker needs python3 on PATH");
        assert!(output.status.success(), "python3 failed: {output:?}");
        PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
    })
}

fn read_lines(file: &Path) -> Vec<String> {
    match fs::read_to_string(file) {
        Ok(text) => text.lines().map(str::to_string).collect(),
        Err(_) => Vec::new(),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// An HTTP server on 127.0.0.1 that answers `pong` to every request, for as long as the
/// test runs: the health check of a new server the fake docker "started". Returns its /ping URL.
pub fn pong_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\npong\n",
            );
        }
    });
    format!("http://127.0.0.1:{port}/ping")
}

/// The indented lines of a failure report under the last line that reads `heading` (such as
/// "To return to the old server, run:"), trimmed, without the "(export ...)" hint.
pub fn report_section<'a>(report: &'a str, heading: &str) -> Option<Vec<&'a str>> {
    let lines: Vec<&str> = report.lines().collect();
    let at = lines.iter().rposition(|line| line.trim() == heading)?;
    Some(
        lines[at + 1..]
            .iter()
            .take_while(|line| line.starts_with("    "))
            .map(|line| line.trim())
            .filter(|line| !line.starts_with("(export "))
            .collect(),
    )
}

/// The arguments of an upgrade of `rancher` to v1.6.20 that the fake can carry out: no backup
/// (the fake writes no archive) and a health URL that answers pong.
pub fn upgrade_args(health_url: &str) -> Vec<String> {
    [
        "upgrade",
        "--container",
        "rancher",
        "--to",
        "v1.6.20",
        "--no-backup",
        "--health-url",
        health_url,
    ]
    .map(String::from)
    .to_vec()
}
