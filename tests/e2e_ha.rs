//! End-to-end tests of an HA cluster's upgrade: three stand-in servers on the test bed's three
//! other hosts (each its own network and mount namespaces and its own dockerd) on one database
//! of the bed's database stand-in, started as Rancher's HA docs start them. The tool reaches the
//! nodes three ways at once: node 1 by its unix socket, node 2 over ssh, node 3 by tcp.
//!
//! The database stand-in keeps a forward-only schema (an old release refuses a newer one) and
//! logs every connection, so a test can tell that no old release ran beside a new one.
//!
//! Without the test bed every test prints a skip line and passes, unless `REQUIRE_DOCKER=1`.

#[allow(dead_code, unused_macros)] // this binary uses only part of the harness
#[path = "e2e/engine.rs"]
mod engine;

#[allow(dead_code)]
#[path = "e2e/db.rs"]
mod db;

#[allow(dead_code)]
#[macro_use]
#[path = "e2e/cluster.rs"]
mod cluster;

use cluster::{Cluster, Node};
use db::overlapping_servers;
use engine::{TOOL, image};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// How the tool is told to reach node K: 1 by its unix socket, 2 over ssh, 3 by tcp.
fn address_of(node: &Node) -> String {
    match node.index {
        1 => node.docker_host.clone(),
        2 => format!("ssh://root@{}", node.address),
        _ => format!("tcp://{}:2375", node.address),
    }
}

/// The test's cluster, its server named `<prefix>` on each node, and a directory of its own
/// for the backups, the state file and the transcript.
struct Bed {
    cluster: Cluster,
    dir: tempfile::TempDir,
}

impl Bed {
    fn new(cluster: Cluster) -> Bed {
        Bed {
            cluster,
            dir: tempfile::Builder::new()
                .prefix("rancher-upgrade-e2e-ha-")
                .tempdir()
                .unwrap(),
        }
    }

    fn server(&self) -> &str {
        &self.cluster.prefix
    }

    /// `tag` on every node as the docs start it (`--restart=unless-stopped -p 8080:8080 -p
    /// 9345:9345 IMAGE --db-... --advertise-address NODE`), each answering; `advertise` gives
    /// what a node advertises instead of its own address.
    fn start(&self, tag: &str, advertise: impl Fn(&Node) -> Option<String>) {
        let cluster = &self.cluster;
        for node in &cluster.nodes {
            let (http, port) = (cluster.http_port, cluster.cluster_port);
            let address = advertise(node).unwrap_or_else(|| cluster.advertise_address(node));
            let mut args: Vec<String> = [
                "run",
                "-d",
                "--name",
                self.server(),
                "--restart=unless-stopped",
                "-p",
                &format!("{http}:8080"),
                "-p",
                &format!("{port}:9345"),
                &image(tag),
            ]
            .map(String::from)
            .to_vec();
            args.extend(cluster.db.server_args());
            args.extend(["--advertise-address".into(), address]);
            if http != 8080 {
                args.extend(["--advertise-http-port".into(), http.to_string()]);
            }
            let words: Vec<&str> = args.iter().map(String::as_str).collect();
            node.docker_ok(&words);
        }
        for node in &cluster.nodes {
            cluster.expect_pong(node, self.server());
        }
    }

    /// `rancher-upgrade ARGS --yes` with every node, its transcript appended.
    fn tool(&self, args: &[&str]) -> Output {
        let mut command = Command::new(TOOL);
        command.args(args).arg("--yes");
        for node in &self.cluster.nodes {
            command.args(["--node", &format!("{}={}", address_of(node), self.server())]);
        }
        command
            .args(["--health-timeout", "60", "--backup-dir"])
            .arg(self.dir.path())
            .arg("--log")
            .arg(self.transcript())
            .stdin(Stdio::null())
            .output()
            .expect("the tool runs")
    }

    fn upgrade(&self, tag: &str) -> Output {
        self.tool(&["upgrade", "--to", tag, "--settle", "1"])
    }

    fn transcript(&self) -> PathBuf {
        self.dir.path().join("transcript.log")
    }

    /// (id, image, running, restart policy) of the server on each node.
    fn servers(&self) -> Vec<(String, String, bool, String)> {
        self.cluster
            .nodes
            .iter()
            .map(|node| {
                let out = node.docker_ok(&[
                    "inspect",
                    "--type",
                    "container",
                    "--format",
                    "{{.Id}} {{.Config.Image}} {{.State.Running}} {{.HostConfig.RestartPolicy.Name}}",
                    self.server(),
                ]);
                let words: Vec<&str> = out.split(' ').collect();
                (
                    words[0].to_string(),
                    words[1].to_string(),
                    words[2] == "true",
                    words[3].to_string(),
                )
            })
            .collect()
    }

    /// Each node runs `tag` under the server's name, answering, with its restart policy, and
    /// holds no other container of the test.
    fn assert_every_node_answers_on(&self, tag: &str) {
        for (node, (_, image_now, running, policy)) in self.cluster.nodes.iter().zip(self.servers())
        {
            assert_eq!(image_now, image(tag), "{}", node.name());
            assert!(running, "{} runs", node.name());
            self.cluster.expect_pong(node, self.server());
            assert_eq!(policy, "unless-stopped", "{}", node.name());
            assert_eq!(
                self.cluster.containers_on(node),
                [self.server()],
                "one container on {}",
                node.name()
            );
        }
    }

    /// The pairs of server releases that were connected to the database at the same time.
    fn releases_side_by_side(&self) -> Vec<(String, String)> {
        overlapping_servers(&self.cluster.db.connections())
            .into_iter()
            .map(|(a, b)| (release(&a), release(&b)))
            .filter(|(a, b)| a != b)
            .collect()
    }
}

/// `v1.6.20` of `v1.6.20@10.231.0.11`.
fn release(label: &str) -> String {
    label.split('@').next().unwrap_or(label).to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The archives in `dir` whose name starts with `prefix`.
fn archives(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(".sql.zst")
        })
        .collect()
}

#[test]
fn three_nodes_are_upgraded_one_after_the_other_then_rolled_back_together() {
    let bed = Bed::new(cluster!("ha-upgrade"));
    bed.start("v1.6.10", |_| None);

    let run = bed.upgrade("v1.6.20");
    assert!(run.status.success(), "{}", stderr(&run));
    bed.assert_every_node_answers_on("v1.6.20");
    assert_eq!(bed.cluster.db.schema(), Some(20));
    assert_eq!(
        bed.releases_side_by_side(),
        Vec::<(String, String)>::new(),
        "an old release ran beside the new one"
    );
    assert_eq!(
        archives(bed.dir.path(), "rancher-db-backup-v1.6.10-").len(),
        1,
        "one dump of the database"
    );
    // The docs' order: every node stopped before the first starts, each in the HA list before
    // the next one starts.
    let transcript = std::fs::read_to_string(bed.transcript()).unwrap();
    let at = |needle: String| {
        transcript
            .find(&needle)
            .unwrap_or_else(|| panic!("{needle} not in the transcript:\n{transcript}"))
    };
    let node = |k: usize| address_of(bed.cluster.node(k));
    let stop = |k: usize| at(format!("--host {} stop ", node(k)));
    let start = |k: usize| at(format!("--host {} start {}", node(k), bed.server()));
    let listed = |k: usize| {
        let from = start(k);
        from + transcript[from..]
            .find("answers the HA list")
            .expect("the node is in the HA list")
    };
    assert!(
        stop(3) < start(1),
        "every node stops before the first starts"
    );
    assert!(listed(1) < start(2) && listed(2) < start(3));

    // Later, by decision: the whole cluster back on the old release and its data.
    let rollback = bed.tool(&["rollback"]);
    assert!(rollback.status.success(), "{}", stderr(&rollback));
    bed.assert_every_node_answers_on("v1.6.10");
    assert_eq!(bed.cluster.db.schema(), Some(10));
    assert_eq!(bed.releases_side_by_side(), Vec::<(String, String)>::new());
}

#[test]
fn the_first_node_crashing_returns_every_node_to_the_old_release_and_its_data() {
    let bed = Bed::new(cluster!("ha-crash"));
    bed.start("v1.6.10", |_| None);
    let before = bed.servers();

    let run = bed.upgrade("v1.6.31-crash");
    let said = stderr(&run);
    assert_eq!(run.status.code(), Some(1), "{said}");
    assert!(said.contains("Rolled back."), "{said}");
    assert_eq!(
        bed.servers(),
        before,
        "every node is back on its old container"
    );
    bed.assert_every_node_answers_on("v1.6.10");
    // The crash release migrated the database; the old release runs on the dump again.
    assert_eq!(bed.cluster.db.schema(), Some(10));
    assert_eq!(bed.releases_side_by_side(), Vec::<(String, String)>::new());
    // Only the first node ever started the new release.
    let transcript = std::fs::read_to_string(bed.transcript()).unwrap();
    for node in &bed.cluster.nodes {
        let started = transcript.contains(&format!(
            "--host {} start {}\n",
            address_of(node),
            bed.server()
        ));
        assert_eq!(
            started,
            node.index == 1,
            "{} started the new release",
            node.name()
        );
    }
}

#[test]
fn a_loopback_advertised_address_is_refused_before_anything_changes() {
    let bed = Bed::new(cluster!("ha-loopback"));
    bed.start("v1.6.10", |node| {
        (node.index == 2).then(|| "127.0.0.1".to_string())
    });
    let before = bed.servers();

    let run = bed.upgrade("v1.6.20");
    let said = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "{said}");
    assert_eq!(said.lines().count(), 1, "one line: {said}");
    assert!(
        said.contains(&format!(
            "node {} ({}) advertises the loopback address 127.0.0.1",
            address_of(bed.cluster.node(2)),
            bed.server()
        )),
        "{said}"
    );
    assert_eq!(bed.servers(), before, "nothing changed");
}

#[test]
fn a_node_that_cannot_be_reached_is_named_before_anything_changes() {
    let bed = Bed::new(cluster!("ha-unreachable"));
    bed.start("v1.6.10", |_| None);
    let before = bed.servers();
    let gone = "unix:///run/rancher-upgrade-e2e-no-such-engine.sock";

    let run = Command::new(TOOL)
        .args(["upgrade", "--yes", "--to", "v1.6.20"])
        .args([
            "--node",
            &format!("{}={}", address_of(bed.cluster.node(1)), bed.server()),
        ])
        .args(["--node", &format!("{gone}={}", bed.server())])
        .arg("--backup-dir")
        .arg(bed.dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("the tool runs");
    let said = stderr(&run);
    assert_ne!(run.status.code(), Some(0), "{said}");
    assert_eq!(said.lines().count(), 1, "one line: {said}");
    assert!(
        said.starts_with(&format!("rancher-upgrade: node {gone}: ")),
        "{said}"
    );
    assert_eq!(bed.servers(), before, "nothing changed");
}
