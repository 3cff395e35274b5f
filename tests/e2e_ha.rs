//! End-to-end tests of an HA cluster's upgrade on the test bed's three other hosts (each its
//! own network and mount namespaces and its own dockerd), reached three ways at once: node 1 by
//! its unix socket, node 2 over ssh, node 3 by tcp. Each node runs the documented HA command:
//! `-p PORT:8080 -p PORT:9345 rancher/server --db-host … --advertise-address <node IP>`.
//!
//! Without the test bed every test prints a skip line and passes, unless `REQUIRE_DOCKER=1`.

#[allow(dead_code, unused_macros)] // this binary uses only part of the harness
#[path = "e2e/engine.rs"]
mod engine;

use engine::{TOOL, image};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// One of the test bed's other hosts.
struct Host {
    /// `unix://…/docker.sock`: how the test itself reaches it.
    unix: String,
    /// How the tool is told to reach it (`--node`).
    node: String,
    address: String,
}

/// A cluster of one test: a server named `<prefix>` on each host, removed with the scope.
struct Cluster {
    prefix: String,
    hosts: Vec<Host>,
    port: u16,
    dir: tempfile::TempDir,
}

fn setting(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The cluster of test `test` on ports `port` (8080's) and `port + 1` (9345's), or `None`
/// after a skip line. Each test has ports of its own, and each run too: the tests share the
/// hosts, and a run that was killed leaves its containers.
fn cluster(test: &str, offset: u16) -> Option<Cluster> {
    let port = 20000 + (std::process::id() % 3000) as u16 * 8 + offset;
    let hosts: Option<Vec<Host>> = (1..=3)
        .map(|k| {
            let via = match k {
                1 => "UNIX",
                2 => "SSH",
                _ => "TCP",
            };
            Some(Host {
                unix: setting(&format!("RANCHER_UPGRADE_HOST{k}_UNIX"))?,
                node: setting(&format!("RANCHER_UPGRADE_HOST{k}_{via}"))?,
                address: setting(&format!("RANCHER_UPGRADE_HOST{k}_ADDR"))?,
            })
        })
        .collect();
    let Some(hosts) = hosts else {
        let why = "the test bed's three other hosts are not set up (export the lines `bash scripts/testbed.sh` prints)";
        if setting("REQUIRE_DOCKER").as_deref() == Some("1") {
            panic!("REQUIRE_DOCKER=1, but {why}");
        }
        eprintln!("SKIPPED e2e test {test}: {why}");
        return None;
    };
    Some(Cluster {
        prefix: format!("e2e-{test}-{}", std::process::id()),
        hosts,
        port,
        dir: tempfile::Builder::new()
            .prefix(&format!("rancher-upgrade-e2e-{test}-"))
            .tempdir()
            .unwrap(),
    })
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for host in &self.hosts {
            let listed = host.docker(&["ps", "-a", "--format", "{{.Names}}"]);
            for name in String::from_utf8_lossy(&listed.stdout).lines() {
                if name.starts_with(&self.prefix) {
                    host.docker(&["rm", "-f", "-v", name]);
                }
            }
        }
    }
}

impl Host {
    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .env("DOCKER_HOST", &self.unix)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("docker runs")
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "`docker {}` on {}: {}",
            args.join(" "),
            self.unix,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn inspect(&self, name: &str) -> Option<Value> {
        let out = self.docker(&["inspect", "--type", "container", "--", name]);
        out.status
            .success()
            .then(|| serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()[0].clone())
    }

    fn answers_ping(&self, name: &str) -> bool {
        let asked = self.docker(&[
            "exec",
            name,
            "curl",
            "-fsS",
            "--max-time",
            "5",
            "http://127.0.0.1:8080/ping",
        ]);
        String::from_utf8_lossy(&asked.stdout).trim() == "pong"
    }
}

impl Cluster {
    /// Starts `tag` on every host the documented way; `address(k)` is what node k advertises.
    fn start(&self, tag: &str, address: impl Fn(usize, &Host) -> String) {
        for (k, host) in self.hosts.iter().enumerate() {
            let (http, cluster) = (self.port.to_string(), (self.port + 1).to_string());
            host.docker_ok(&[
                "run",
                "-d",
                "--name",
                &self.prefix,
                "--restart=unless-stopped",
                "-p",
                &format!("{http}:8080"),
                "-p",
                &format!("{cluster}:9345"),
                &image(tag),
                "--db-host",
                "10.231.0.1",
                "--db-port",
                "3306",
                "--db-user",
                "cattle",
                "--db-name",
                &self.prefix,
                "--advertise-address",
                &address(k, host),
                "--advertise-http-port",
                &http,
            ]);
        }
        for host in &self.hosts {
            let deadline = std::time::Instant::now() + engine::START_TIMEOUT;
            while !host.answers_ping(&self.prefix) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} ({tag}) on {} did not answer",
                    self.prefix,
                    host.unix
                );
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
    }

    fn start_with_their_own_addresses(&self, tag: &str) {
        self.start(tag, |_, host| host.address.clone());
    }

    /// `rancher-upgrade upgrade --to TAG` with every node, unattended.
    fn upgrade(&self, tag: &str, extra: &[&str]) -> Output {
        self.tool(&[&["upgrade", "--to", tag, "--settle", "1"], extra].concat())
    }

    /// `rancher-upgrade ARGS --yes` with every node, unattended, its transcript appended.
    fn tool(&self, args: &[&str]) -> Output {
        let mut command = Command::new(TOOL);
        command.args(args).arg("--yes");
        for host in &self.hosts {
            command.args(["--node", &format!("{}={}", host.node, self.prefix)]);
        }
        command
            .args(["--health-timeout", "60", "--backup-dir"])
            .arg(self.dir.path())
            .args(["--log"])
            .arg(self.transcript())
            .stdin(Stdio::null())
            .output()
            .expect("the tool runs")
    }

    fn transcript(&self) -> PathBuf {
        self.dir.path().join("transcript.log")
    }

    /// (id, image, running, restart policy) of the server on each host.
    fn servers(&self) -> Vec<(String, String, bool, String)> {
        self.hosts
            .iter()
            .map(|host| {
                let c = host
                    .inspect(&self.prefix)
                    .unwrap_or_else(|| panic!("no {} on {}", self.prefix, host.unix));
                (
                    c["Id"].as_str().unwrap().to_string(),
                    c["Config"]["Image"].as_str().unwrap().to_string(),
                    c["State"]["Running"] == true,
                    c["HostConfig"]["RestartPolicy"]["Name"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect()
    }

    /// Each node runs `tag` under the server's name, answering, with its restart policy.
    fn assert_every_node_answers_on(&self, tag: &str) {
        for (host, (_, image_now, running, policy)) in self.hosts.iter().zip(self.servers()) {
            assert_eq!(image_now, image(tag), "{}", host.unix);
            assert!(running && host.answers_ping(&self.prefix), "{}", host.unix);
            assert_eq!(policy, "unless-stopped", "{}", host.unix);
        }
    }

    /// Each host holds the test's server and no other container of the test.
    fn assert_one_container_a_node(&self, why: &str) {
        for host in &self.hosts {
            let listed = host.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
            let names: Vec<&str> = listed
                .lines()
                .filter(|n| n.starts_with(&self.prefix))
                .collect();
            assert_eq!(names, [self.prefix.as_str()], "{why} on {}", host.unix);
        }
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn three_nodes_are_upgraded_one_after_the_other_then_rolled_back_together() {
    let Some(cluster) = cluster("ha-upgrade", 0) else {
        return;
    };
    cluster.start_with_their_own_addresses("v1.6.10");

    let run = cluster.upgrade("v1.6.20", &[]);
    assert!(run.status.success(), "{}", stderr(&run));
    cluster.assert_every_node_answers_on("v1.6.20");
    cluster.assert_one_container_a_node("the old containers are gone");
    // The docs' order: every node stopped before the first starts, each answering before the
    // next one starts.
    let transcript = std::fs::read_to_string(cluster.transcript()).unwrap();
    let at = |needle: String| {
        transcript
            .find(&needle)
            .unwrap_or_else(|| panic!("{needle} not in the transcript:\n{transcript}"))
    };
    let stop = |k: usize| at(format!("--host {} stop ", cluster.hosts[k].node));
    let start = |k: usize| {
        at(format!(
            "--host {} start {}",
            cluster.hosts[k].node, cluster.prefix
        ))
    };
    let answered = |k: usize| {
        let from = start(k);
        from + transcript[from..]
            .find("answers /ping")
            .expect("the node answered")
    };
    assert!(
        stop(2) < start(0),
        "every node stops before the first starts"
    );
    assert!(answered(0) < start(1) && answered(1) < start(2));

    // Later, by decision: the whole cluster back on the old release, by the upgrade's record.
    let rollback = cluster.tool(&["rollback"]);
    assert!(rollback.status.success(), "{}", stderr(&rollback));
    cluster.assert_every_node_answers_on("v1.6.10");
    cluster.assert_one_container_a_node("the new containers are gone");
}

#[test]
fn the_first_node_crashing_returns_every_node_to_the_old_release() {
    let Some(cluster) = cluster("ha-crash", 2) else {
        return;
    };
    cluster.start_with_their_own_addresses("v1.6.10");
    let before = cluster.servers();

    let run = cluster.upgrade("v1.6.31-crash", &[]);
    let said = stderr(&run);
    assert_eq!(run.status.code(), Some(1), "{said}");
    assert!(said.contains("Rolled back."), "{said}");
    let after = cluster.servers();
    assert_eq!(after, before, "every node is back on its old container");
    for host in &cluster.hosts {
        assert!(host.answers_ping(&cluster.prefix), "{}", host.unix);
    }
    cluster.assert_one_container_a_node("no new container is left");
    // Only the first node ever started the new release.
    let transcript = std::fs::read_to_string(cluster.transcript()).unwrap();
    for (k, host) in cluster.hosts.iter().enumerate() {
        let started = transcript
            .contains(&format!("--host {} start {}\n", host.node, cluster.prefix))
            || transcript.contains(&format!("--host {} start {} ", host.node, cluster.prefix));
        assert_eq!(
            started,
            k == 0,
            "node {} started the new release: {started}",
            k + 1
        );
    }
}

#[test]
fn a_loopback_advertised_address_is_refused_before_anything_changes() {
    let Some(cluster) = cluster("ha-loopback", 4) else {
        return;
    };
    cluster.start("v1.6.10", |k, host| match k {
        1 => "127.0.0.1".to_string(),
        _ => host.address.clone(),
    });
    let before = cluster.servers();

    let run = cluster.upgrade("v1.6.20", &[]);
    let said = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "{said}");
    assert_eq!(said.lines().count(), 1, "one line: {said}");
    assert!(
        said.contains(&format!(
            "node {} ({}) advertises the loopback address 127.0.0.1",
            cluster.hosts[1].node, cluster.prefix
        )),
        "{said}"
    );
    assert_eq!(cluster.servers(), before, "nothing changed");
}
