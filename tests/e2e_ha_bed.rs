//! The test bed's stand-ins for Rancher 1.6 HA, tested themselves, before any tool runs on
//! them: three stand-in servers on the bed's other hosts (one engine each) on one database of
//! the database stand-in, as the HA docs start them (`-p 8080:8080 -p 9345:9345 ... --db-...
//! --advertise-address NODE`); the HA list; a new release that migrates and an old one that
//! then refuses to start; the old image's mysqldump and mysql, with the password in the
//! environment only, bringing the schema back; and the connection log, which tells which
//! releases were connected at the same time. Also the crash release on an external database
//! and a wrong password.
//!
//! Without the other hosts or the database stand-in every test prints a skip line and passes,
//! unless `REQUIRE_DOCKER=1`.

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
use engine::image;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The advertised addresses the members of a server's HA list show, sorted, once it lists
/// `count` of them (or after 5 s).
fn member_addresses(node: &Node, container: &str, count: usize) -> Vec<String> {
    let mut found: Vec<String> = node
        .wait_for_members(container, count, Duration::from_secs(5))
        .iter()
        .map(|m| {
            assert_eq!(m["type"], "clusterMembership", "{m}");
            assert_eq!(m["clustered"], true, "{m}");
            assert_eq!(m["configParsed"]["httpPort"], 8080, "{m}");
            assert_eq!(m["uuid"], m["configParsed"]["advertiseAddress"], "{m}");
            m["configParsed"]["advertiseAddress"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    found.sort();
    found
}

fn stop(node: &Node, container: &str) {
    node.docker_ok(&["stop", container]);
}

/// `docker run --rm` of the old image's mysqldump or mysql on the node, with `MYSQL_PWD` in the
/// docker CLI's environment and `-e MYSQL_PWD` (no value) passing it on: the password is in
/// no argv. Returns stdout; fails the test when it fails.
fn mysql_client(
    cluster: &Cluster,
    node: &Node,
    program: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> String {
    let reference = image("v1.6.20");
    let bed = &cluster.db.bed;
    let port = bed.port.to_string();
    let mut argv = vec!["run", "--rm"];
    if stdin.is_some() {
        argv.push("-i");
    }
    argv.extend(["-e", "MYSQL_PWD", "--entrypoint", program, &reference]);
    argv.extend(["-h", &bed.host, "-P", &port, "-u", &bed.user]);
    argv.extend(args);
    assert!(
        !argv.iter().any(|a| a.contains(&bed.password)),
        "the password is in the argv: {argv:?}"
    );
    let out = node.docker_with(&argv, &[("MYSQL_PWD", &bed.password)], stdin);
    assert!(
        out.status.success(),
        "{program} on {} failed ({}): {}",
        node.name(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8(out.stdout).expect("the client prints text")
}

#[test]
fn three_servers_share_the_database_and_a_restore_brings_the_old_release_back() {
    let started = Instant::now();
    let cluster = cluster!("habed");
    let nodes: Vec<Node> = cluster.nodes.clone();
    let old: Vec<String> = nodes.iter().map(|n| cluster.name(n, "v1.6.20")).collect();
    let addresses: Vec<String> = nodes
        .iter()
        .map(|n| format!("{}:9345", n.address))
        .collect();

    // Three v1.6.20 on one new database: the first initialises it, all answer, each lists the
    // three of them, and a node reaches another's cluster port.
    for (node, name) in nodes.iter().zip(&old) {
        let out = cluster.run_server(node, name, "v1.6.20", &[]);
        assert!(
            out.status.success(),
            "starting {name} on {}: {}",
            node.name(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (node, name) in nodes.iter().zip(&old) {
        cluster.expect_pong(node, name);
    }
    assert_eq!(cluster.db.schema(), Some(20));
    for (node, name) in nodes.iter().zip(&old) {
        assert_eq!(
            member_addresses(node, name, 3),
            addresses,
            "the HA list of {name}"
        );
    }
    let url = format!("http://{}:9345/ping", nodes[0].address);
    let across = nodes[1].docker_ok(&["exec", &old[1], "curl", "-fsS", &url]);
    assert_eq!(across, "pong", "node 2 asking node 1's cluster port");
    cluster.db.put_setting("probe", "written under v1.6.20");

    // The backup, with the old image's mysqldump; the password only in the environment.
    let dump = mysql_client(
        &cluster,
        &nodes[1],
        "mysqldump",
        &["--single-transaction", "--databases", &cluster.db.name],
        None,
    );
    assert!(
        dump.contains("INSERT INTO `schema_version` VALUES (20);"),
        "{dump}"
    );
    assert!(dump.contains("'written under v1.6.20'"), "{dump}");
    assert!(
        dump.contains(&format!("USE `{}`;", cluster.db.name)),
        "{dump}"
    );
    assert!(dump.contains("-- Dump completed on "), "{dump}");

    // v1.6.30 on node 1 while node 3's v1.6.20 still runs (what an HA upgrade must not do: the
    // log shows it), then alone: it migrates the schema and is the only member.
    stop(&nodes[0], &old[0]);
    stop(&nodes[1], &old[1]);
    let new = cluster.name(&nodes[0], "v1.6.30");
    cluster.start_server(&nodes[0], &new, "v1.6.30");
    assert_eq!(cluster.db.schema(), Some(30));
    stop(&nodes[2], &old[2]);
    assert_eq!(
        member_addresses(&nodes[0], &new, 1),
        vec![addresses[0].clone()]
    );
    cluster.db.put_setting("after", "written under v1.6.30");
    stop(&nodes[0], &new);

    // The old release refuses the newer schema, and exits.
    nodes[0].docker_ok(&["start", &old[0]]);
    assert_eq!(nodes[0].wait_exit(&old[0]), 1, "{}", nodes[0].logs(&old[0]));
    assert!(
        nodes[0]
            .logs(&old[0])
            .contains("database schema 30 is newer than this server (20); refusing to start"),
        "{}",
        nodes[0].logs(&old[0])
    );

    // The restore, with the old image's mysql: schema 20 again, the row written before the
    // backup there and the one written since gone; the three old servers start again.
    mysql_client(&cluster, &nodes[2], "mysql", &[], Some(dump.as_bytes()));
    assert_eq!(cluster.db.schema(), Some(20));
    assert_eq!(
        cluster.db.settings(),
        vec![("probe".to_string(), "written under v1.6.20".to_string())]
    );
    for (node, name) in nodes.iter().zip(&old) {
        node.docker_ok(&["start", name]);
    }
    for (node, name) in nodes.iter().zip(&old) {
        cluster.expect_pong(node, name);
    }
    assert_eq!(member_addresses(&nodes[2], &old[2], 3), addresses);
    for (node, name) in nodes.iter().zip(&old) {
        stop(node, name);
    }

    // The log: who was there when v1.6.30 migrated, which releases overlapped, and the dump
    // and the restore with no server connected but the one left running for the dump.
    let migrations = cluster.db.events_of("migrate");
    assert_eq!(migrations.len(), 1, "{migrations:#?}");
    let there: Vec<(&str, &str)> = migrations[0]["others"]
        .as_array()
        .expect("others")
        .iter()
        .map(|o| {
            (
                o["version"].as_str().unwrap_or(""),
                o["advertise_address"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let node3 = nodes[2].address.to_string();
    assert_eq!(there, vec![("v1.6.20", node3.as_str())], "{migrations:#?}");
    let refused = cluster.db.events_of("refused");
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0]["version"], "v1.6.20");
    assert_eq!(refused[0]["schema_current"], 30);
    let restores = cluster.db.events_of("exec");
    let restore = restores
        .iter()
        .find(|e| e["kind"] == "mysql")
        .expect("the restore in the log");
    assert_eq!(restore["schema_before"], 30);
    assert_eq!(restore["schema_after"], 20);
    assert_eq!(restore["others"], serde_json::json!([]), "{restore}");

    let connections = cluster.db.connections();
    for c in &connections {
        assert!(c.disconnected_at.is_some(), "{c:?} is still connected");
    }
    let servers: Vec<_> = connections.iter().filter(|c| c.is_server()).collect();
    let peers: BTreeSet<String> = servers
        .iter()
        .map(|c| c.peer.rsplit_once(':').unwrap().0.to_string())
        .collect();
    let expected_peers: BTreeSet<String> = nodes.iter().map(|n| n.address.to_string()).collect();
    assert_eq!(peers, expected_peers, "where the servers came from");
    let overlaps = overlapping_servers(&connections);
    eprintln!("habed: server connections that overlapped: {overlaps:?}");
    let (n1, n2, n3) = (
        nodes[0].address.to_string(),
        nodes[1].address.to_string(),
        nodes[2].address.to_string(),
    );
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    let mut expected = vec![
        // the first three, and the same three after the restore
        pair(&format!("v1.6.20@{n1}"), &format!("v1.6.20@{n2}")),
        pair(&format!("v1.6.20@{n1}"), &format!("v1.6.20@{n3}")),
        pair(&format!("v1.6.20@{n2}"), &format!("v1.6.20@{n3}")),
        // the upgrade done wrong on purpose
        pair(&format!("v1.6.20@{n3}"), &format!("v1.6.30@{n1}")),
    ];
    expected.extend(expected[..3].to_vec());
    expected.sort();
    assert_eq!(overlaps, expected);
    let kinds: Vec<&str> = connections
        .iter()
        .filter(|c| !c.is_server())
        .map(|c| c.kind.as_str())
        .collect();
    assert!(
        kinds.contains(&"mysqldump") && kinds.contains(&"mysql"),
        "{kinds:?}"
    );
    eprintln!("habed: took {:.1} s", started.elapsed().as_secs_f64());
}

/// `docker run -d` of a stand-in server on the node with `args` after the image, publishing
/// nothing (the first test publishes 8080 and 9345 on every node at the same time).
fn run_unpublished(node: &Node, name: &str, tag: &str, args: &[String]) {
    let reference = image(tag);
    let mut argv = vec!["run", "-d", "--name", name, &reference];
    argv.extend(args.iter().map(String::as_str));
    node.docker_ok(&argv);
}

#[test]
fn the_crash_release_migrates_the_external_database_then_exits_3() {
    let cluster = cluster!("habedcrash");
    let node = cluster.node(1);
    let old = cluster.name(node, "v1.6.20");
    run_unpublished(node, &old, "v1.6.20", &cluster.db.server_args());
    cluster.expect_pong(node, &old);
    stop(node, &old);
    assert_eq!(cluster.db.schema(), Some(20));

    let crash = cluster.name(node, "crash");
    run_unpublished(node, &crash, "v1.6.31-crash", &cluster.db.server_args());
    assert_eq!(node.wait_exit(&crash), 3, "{}", node.logs(&crash));
    let logs = node.logs(&crash);
    assert!(logs.contains("migrating schema 20 -> 31"), "{logs}");
    assert!(logs.contains("FATAL: migration failed"), "{logs}");
    assert_eq!(cluster.db.schema(), Some(31));
    let connections = cluster.db.connections();
    assert_eq!(connections.len(), 2, "{connections:?}");
    assert_eq!(connections[1].version.as_deref(), Some("v1.6.31-crash"));
    assert_eq!(connections[1].outcome.as_deref(), Some("migrated"));
    assert!(!connections[0].overlaps(&connections[1]), "{connections:?}");
    assert!(connections[1].disconnected_at.is_some(), "{connections:?}");

    // The old release refuses what the crash left.
    node.docker_ok(&["start", &old]);
    assert_eq!(node.wait_exit(&old), 1, "{}", node.logs(&old));
}

#[test]
fn a_wrong_password_is_refused_and_nothing_is_connected() {
    let cluster = cluster!("habedpw");
    let node = cluster.node(2);
    let name = cluster.name(node, "v1.6.20");
    let mut args = cluster.db.server_args();
    let pass = args.iter().position(|a| a == "--db-pass").unwrap() + 1;
    args[pass] = "not-the-password".into();
    run_unpublished(node, &name, "v1.6.20", &args);
    assert_eq!(node.wait_exit(&name), 1, "{}", node.logs(&name));
    assert!(
        node.logs(&name).contains("Access denied for user"),
        "{}",
        node.logs(&name)
    );
    assert_eq!(cluster.db.schema(), None);
    assert!(cluster.db.connections().is_empty());
    assert_eq!(cluster.db.events_of("auth-failed").len(), 1);
}
