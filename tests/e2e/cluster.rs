//! Several Rancher servers on one external database, as Rancher 1.6's HA runs them: the test
//! bed's other hosts (`ruhost1..3`, each its own engine, reached by its unix socket; see
//! `scripts/testbed.sh`) as the nodes, and its database stand-in ([`crate::db`]) as the MySQL.
//!
//! A [`Cluster`] owns what one test makes: a database of its own and, on every node, the
//! containers named `e2e-<test>-<pid>-...`, removed (with their volumes) when it is dropped,
//! also when the test panics. Without the nodes or the database the test prints a skip line and
//! passes, unless `REQUIRE_DOCKER=1`, which makes that a failure.

use crate::db::{DbBed, TestDb, setting};
use crate::engine::{image, require_docker};
use serde_json::Value;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How many of the bed's other hosts a cluster uses.
pub const NODES: usize = 3;
/// How long a stand-in may take to answer /ping (it needs ~1.3 s).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The releases a cluster test runs, pulled on every node when missing.
const TAGS: [&str; 4] = ["v1.6.10", "v1.6.20", "v1.6.30", "v1.6.31-crash"];

/// The test's [`Cluster`], or a skip line and a return from the test (a failure instead with
/// `REQUIRE_DOCKER=1`).
macro_rules! cluster {
    ($test:expr) => {
        match $crate::cluster::Cluster::new($test) {
            Some(cluster) => cluster,
            None => return,
        }
    };
}

/// One of the bed's other hosts: its engine and its address.
#[derive(Clone, Debug)]
pub struct Node {
    /// 1, 2, 3: the bed's host K.
    pub index: usize,
    /// `unix://.../ruhostK/docker.sock`, for `DOCKER_HOST`.
    pub docker_host: String,
    /// 10.231.0.(10+K): where its published ports answer.
    pub address: Ipv4Addr,
}

impl Node {
    fn from_env(index: usize) -> Result<Node, String> {
        let address = setting(&format!("RANCHER_UPGRADE_HOST{index}_ADDR"))?;
        Ok(Node {
            index,
            docker_host: setting(&format!("RANCHER_UPGRADE_HOST{index}_UNIX"))?,
            address: address
                .parse()
                .map_err(|_| format!("RANCHER_UPGRADE_HOST{index}_ADDR={address} is no IPv4"))?,
        })
    }

    /// `ruhostK`.
    pub fn name(&self) -> String {
        format!("ruhost{}", self.index)
    }

    /// A docker command on this node's engine.
    pub fn command(&self) -> Command {
        let mut command = Command::new("docker");
        command.env("DOCKER_HOST", &self.docker_host);
        command
    }

    /// `docker ARGS` on this node, with `env` added to the docker CLI's environment and `stdin`
    /// written to its input.
    pub fn docker_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
        let mut command = self.command();
        command
            .args(args)
            .envs(env.iter().copied())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let what = || format!("`docker {}` on {}", args.join(" "), self.name());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", what()));
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("piped stdin");
            pipe.write_all(input)
                .unwrap_or_else(|e| panic!("writing to {}: {e}", what()));
        }
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", what()))
    }

    /// `docker ARGS` on this node, success or not.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_with(args, &[], None)
    }

    /// `docker ARGS` on this node; fails the test when it fails; its trimmed stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "`docker {}` on {} failed ({}): {}",
            args.join(" "),
            self.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `GET http://127.0.0.1:PORT/PATH` inside the container, with its curl (as the tool asks
    /// /ping): the body of a 200 answer, else `None`.
    pub fn get_in(&self, container: &str, port: u16, path: &str) -> Option<String> {
        let url = format!("http://127.0.0.1:{port}{path}");
        let out = self.docker(&["exec", container, "curl", "-fsS", "--max-time", "5", &url]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// [`Node::get_in`] on the API port, 8080.
    pub fn get(&self, container: &str, path: &str) -> Option<String> {
        self.get_in(container, 8080, path)
    }

    /// Whether the container answers `pong` on /ping within `timeout`.
    pub fn wait_for_pong(&self, container: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .get(container, "/ping")
                .is_some_and(|b| b.trim() == "pong")
            {
                return true;
            }
            if Instant::now() >= deadline || !self.is_running(container) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `State.Running` of a container (false when there is none).
    pub fn is_running(&self, container: &str) -> bool {
        let out = self.docker(&["inspect", "-f", "{{.State.Running}}", container]);
        String::from_utf8_lossy(&out.stdout).trim() == "true"
    }

    /// Waits until the container has exited, [`START_TIMEOUT`] at most; its exit code. Fails
    /// the test, with the container's logs, when it still runs then.
    pub fn wait_exit(&self, container: &str) -> i64 {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let state = self.docker_ok(&[
                "inspect",
                "-f",
                "{{.State.Running}} {{.State.ExitCode}}",
                container,
            ]);
            if let Some(code) = state.strip_prefix("false ") {
                return code
                    .parse()
                    .unwrap_or_else(|_| panic!("the exit code of {container}: {state:?}"));
            }
            assert!(
                Instant::now() < deadline,
                "{container} on {} still runs after {} s; logs:\n{}",
                self.name(),
                START_TIMEOUT.as_secs(),
                self.logs(container)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The container's logs, stdout and stderr.
    pub fn logs(&self, container: &str) -> String {
        let out = self.docker(&["logs", container]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// The cluster members the server lists (`GET /v2-beta/clustermemberships`), with each
    /// member's `config` (a JSON string, as cattle gives it) parsed into `configParsed`.
    pub fn members(&self, container: &str) -> Vec<Value> {
        let body = self
            .get(container, "/v2-beta/clustermemberships")
            .unwrap_or_else(|| panic!("{container} on {} lists no members", self.name()));
        let collection: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("the members of {container} are not JSON ({e}): {body}"));
        assert_eq!(collection["type"], "collection", "{body}");
        assert_eq!(collection["resourceType"], "clusterMembership", "{body}");
        collection["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|mut m| {
                let config = m["config"].as_str().unwrap_or("{}").to_string();
                m["configParsed"] = serde_json::from_str(&config).unwrap_or(Value::Null);
                m
            })
            .collect()
    }

    /// [`Node::members`] once the server lists `count` of them: each server reads the list
    /// from the database every second, so one that just started may not list the latest yet
    /// (cattle checks in every 5 s). After `timeout`, what it lists then.
    pub fn wait_for_members(&self, container: &str, count: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let members = self.members(container);
            if members.len() == count || Instant::now() >= deadline {
                return members;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn ready(&self) -> Result<(), String> {
        let info = self.docker(&["info", "--format", "{{.ServerVersion}}"]);
        if !info.status.success() {
            return Err(format!(
                "the engine of {} ({}) does not answer: {}",
                self.name(),
                self.docker_host,
                String::from_utf8_lossy(&info.stderr).trim()
            ));
        }
        for tag in TAGS {
            let reference = image(tag);
            if self
                .docker(&["image", "inspect", "--format", "{{.Id}}", &reference])
                .status
                .success()
            {
                continue;
            }
            let pulled = self.docker(&["pull", "-q", &reference]);
            if !pulled.status.success() {
                return Err(format!(
                    "{reference} can't be pulled on {}: {}",
                    self.name(),
                    String::from_utf8_lossy(&pulled.stderr).trim()
                ));
            }
        }
        Ok(())
    }
}

/// Everything one cluster test makes: its database, and its containers on every node.
pub struct Cluster {
    /// `e2e-<test>-<pid>`: the database's name, and the start of every container's.
    pub prefix: String,
    pub nodes: Vec<Node>,
    pub db: TestDb,
}

impl Cluster {
    /// The cluster of a test, or `None` (after a skip line) when the bed has no three other
    /// hosts or no database stand-in; with `REQUIRE_DOCKER=1` that fails the test instead.
    pub fn new(test: &str) -> Option<Cluster> {
        match Cluster::ready() {
            Ok((nodes, bed)) => {
                let prefix = format!("e2e-{test}-{}", std::process::id());
                let cluster = Cluster {
                    db: TestDb::new(bed, &prefix),
                    prefix,
                    nodes,
                };
                // Leftovers of an earlier run that died before cleaning up (same pid, rare).
                cluster.remove_containers();
                Some(cluster)
            }
            Err(why) if require_docker() => panic!("REQUIRE_DOCKER=1, but {why}"),
            Err(why) => {
                eprintln!(
                    "SKIPPED e2e test {test}: {why} (set REQUIRE_DOCKER=1 to make this a failure)"
                );
                None
            }
        }
    }

    fn ready() -> Result<(Vec<Node>, DbBed), String> {
        let hosts: usize = setting("RANCHER_UPGRADE_HOSTS")?
            .parse()
            .map_err(|_| "RANCHER_UPGRADE_HOSTS is not a number".to_string())?;
        if hosts < NODES {
            return Err(format!(
                "the test bed has {hosts} other host(s), a cluster needs {NODES}"
            ));
        }
        let nodes = (1..=NODES)
            .map(Node::from_env)
            .collect::<Result<Vec<_>, _>>()?;
        let bed = DbBed::from_env()?;
        bed.check()?;
        // The nodes' checks, at the same time.
        std::thread::scope(|s| {
            let checks: Vec<_> = nodes.iter().map(|n| s.spawn(|| n.ready())).collect();
            checks
                .into_iter()
                .try_for_each(|c| c.join().expect("a node's check panicked"))
        })?;
        Ok((nodes, bed))
    }

    /// Node K (1-based).
    pub fn node(&self, k: usize) -> &Node {
        &self.nodes[k - 1]
    }

    /// `PREFIX-nK-WHAT`: a container name of this test on node K.
    pub fn name(&self, node: &Node, what: &str) -> String {
        format!("{}-n{}-{what}", self.prefix, node.index)
    }

    /// `docker run -d` of a stand-in server of `tag` on the node, as Rancher's HA docs start
    /// one: `-p 8080:8080 -p 9345:9345 IMAGE --db-... --advertise-address NODE`, plus `extra`
    /// after that. What the engine said, success or not.
    pub fn run_server(&self, node: &Node, name: &str, tag: &str, extra: &[&str]) -> Output {
        let reference = image(tag);
        let advertise = node.address.to_string();
        let db_args = self.db.server_args();
        let mut args = vec![
            "run",
            "-d",
            "--name",
            name,
            "-p",
            "8080:8080",
            "-p",
            "9345:9345",
            &reference,
        ];
        args.extend(db_args.iter().map(String::as_str));
        args.extend(["--advertise-address", &advertise]);
        args.extend(extra);
        node.docker(&args)
    }

    /// [`Cluster::run_server`], and its wait for /ping; fails the test, with the server's
    /// logs, when it does not start or answer.
    pub fn start_server(&self, node: &Node, name: &str, tag: &str) {
        let out = self.run_server(node, name, tag, &[]);
        assert!(
            out.status.success(),
            "starting {name} ({tag}) on {} failed: {}",
            node.name(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        self.expect_pong(node, name);
    }

    /// Fails the test, with the server's logs, unless it answers /ping.
    pub fn expect_pong(&self, node: &Node, name: &str) {
        assert!(
            node.wait_for_pong(name, START_TIMEOUT),
            "{name} on {} did not answer /ping within {} s; logs:\n{}",
            node.name(),
            START_TIMEOUT.as_secs(),
            node.logs(name)
        );
    }

    /// The names of this test's containers on a node.
    pub fn containers_on(&self, node: &Node) -> Vec<String> {
        let out = node.docker(&["ps", "-a", "--format", "{{.Names}}"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|n| {
                *n == self.prefix
                    || n.strip_prefix(&self.prefix)
                        .is_some_and(|rest| rest.starts_with('-'))
            })
            .map(str::to_string)
            .collect()
    }

    /// Removes this test's containers, with their volumes, on every node at once.
    fn remove_containers(&self) {
        std::thread::scope(|s| {
            for node in &self.nodes {
                s.spawn(move || {
                    let names = self.containers_on(node);
                    if !names.is_empty() {
                        let mut args = vec!["rm", "-f", "-v"];
                        args.extend(names.iter().map(String::as_str));
                        let _ = node.docker(&args);
                    }
                });
            }
        });
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.remove_containers();
        for node in &self.nodes {
            let left = self.containers_on(node);
            if !left.is_empty() {
                eprintln!(
                    "e2e cleanup: could not remove {left:?} on {}; remove them with docker rm -f -v",
                    node.name()
                );
            }
        }
        // The database goes with `self.db`.
    }
}
