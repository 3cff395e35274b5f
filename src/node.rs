//! The nodes of a Rancher HA cluster (`--node ENGINE[=CONTAINER]`): each an engine reached the
//! way docker reaches one, found with the same read-only discovery as a single server, then
//! checked together before anything anywhere changes.

use crate::discover::{discover, find_server_container};
use crate::engine::{Engine, EngineTarget};
use crate::error::bad_input;
use crate::server::{DbMode, Discovery, Server};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// One `--node`, as the operator gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// A docker context (podman: connection) name, or an address (`unix://`, `tcp://`, `ssh://`).
    pub engine: String,
    /// The server container there; `None`: the one running rancher/server container.
    pub container: Option<String>,
}

/// The address schemes the docker and podman CLIs take for an engine.
const SCHEMES: [&str; 3] = ["unix://", "tcp://", "ssh://"];

impl NodeSpec {
    /// `ENGINE[=CONTAINER]`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<NodeSpec, String> {
        // Neither a container name nor a context name holds `=`; an address may, in a query.
        let (engine, container) = match text.rsplit_once('=') {
            Some((engine, container)) if !container.contains('/') => {
                (engine, Some(container.to_string()))
            }
            _ => (text, None),
        };
        if engine.is_empty() || engine.chars().any(char::is_control) {
            return Err(format!(
                "--node {text:?}: name the engine as a docker context or an address (ssh://root@10.0.0.11, tcp://10.0.0.11:2376, unix:///run/docker.sock), then =CONTAINER if the server is not the one rancher/server container there"
            ));
        }
        if engine.contains("://") && !SCHEMES.iter().any(|s| engine.starts_with(s)) {
            return Err(format!(
                "--node {text:?}: the engine's address starts with unix://, tcp:// or ssh://"
            ));
        }
        Ok(NodeSpec {
            engine: engine.to_string(),
            container,
        })
    }
}

/// A node as discovery found it.
#[derive(Clone, Debug)]
pub struct Node {
    /// How `--node` named its engine: what every message about it says.
    pub name: String,
    pub discovery: Discovery,
}

impl Node {
    pub fn server(&self) -> &Server {
        &self.discovery.server
    }

    pub fn engine(&self) -> &EngineTarget {
        &self.discovery.engine
    }
}

/// Discovers every node at once, read-only. A node that can't be reached, or has no server,
/// is an error that names it.
pub fn discover_nodes(
    engine: &Engine,
    specs: &[NodeSpec],
    data_container: &str,
) -> Result<Vec<Node>> {
    std::thread::scope(|scope| {
        let found: Vec<_> = specs
            .iter()
            .map(|spec| {
                scope.spawn(move || -> Result<Node> {
                    let on = engine.addressing(&spec.engine);
                    let named = || format!("node {}", spec.engine);
                    let container = match &spec.container {
                        Some(name) => name.clone(),
                        None => find_server_container(&on, "--node ENGINE=CONTAINER")
                            .with_context(named)?,
                    };
                    let discovery =
                        discover(&on, &container, data_container, None).with_context(named)?;
                    Ok(Node {
                        name: spec.engine.clone(),
                        discovery,
                    })
                })
            })
            .collect();
        found
            .into_iter()
            .map(|handle| handle.join().expect("a node's discovery panicked"))
            .collect()
    })
}

/// Where a server's database is (host, port, name): what every node of one cluster shares.
fn database_address(server: &Server) -> Option<(String, String, String)> {
    server
        .carried
        .external_database()
        .map(|db| (db.host, db.port, db.name))
}

/// The address a node tells the others it is at.
pub fn advertise_address(server: &Server) -> Option<String> {
    server
        .carried
        .setting("--advertise-address", "CATTLE_CLUSTER_ADVERTISE_ADDRESS")
}

/// The IP of an advertised address given as one, alone or with its port (`IP:PORT`); `None`
/// for an interface name (`eth0`) or a lookup (`awslocal`, `ipify`).
pub fn advertised_ip(address: &str) -> Option<IpAddr> {
    address
        .parse::<IpAddr>()
        .ok()
        .or_else(|| address.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// Whether an advertised address is this host's own loopback: the other nodes can't reach it,
/// and Rancher accepts it silently (rancher#7719).
fn is_loopback(address: &str) -> bool {
    let host = address.split(':').next().unwrap_or(address);
    host == "localhost" || host == "lo" || advertised_ip(address).is_some_and(|ip| ip.is_loopback())
}

/// Refuses a cluster the documented upgrade can't take as one, naming the node: an embedded
/// database, another database, another release, an advertised address that is missing, a
/// loopback, or another node's (nodes then hang "Waiting to become master", rancher#9623).
pub fn preflight(nodes: &[Node]) -> Result<()> {
    let first = &nodes[0];
    let mut advertised: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for node in nodes {
        let server = node.server();
        let at = format!("node {} ({})", node.name, server.name);
        if server.mode == DbMode::Embedded {
            return Err(bad_input(format!(
                "{at} keeps its database in its own volumes: an HA cluster shares one external MySQL (--db-host); upgrade a single server without --node"
            )));
        }
        let (database, expected) = (database_address(server), database_address(first.server()));
        if database != expected {
            let shown = |db: Option<(String, String, String)>| {
                db.map_or("none".into(), |(host, port, name)| {
                    format!("{host}:{port}/{name}")
                })
            };
            return Err(bad_input(format!(
                "{at} uses the database {}, node {} uses {}: the nodes of one cluster share one database; name the nodes of one cluster",
                shown(database),
                first.name,
                shown(expected)
            )));
        }
        if server.release() != first.server().release() {
            return Err(bad_input(format!(
                "{at} runs {}, node {} runs {}: upgrade the nodes to one release first, or name the nodes that run the same one",
                server.release(),
                first.name,
                first.server().release()
            )));
        }
        let Some(address) = advertise_address(server) else {
            return Err(bad_input(format!(
                "{at} has no --advertise-address: the other nodes can't reach it; start it with --advertise-address <its IP> first"
            )));
        };
        if is_loopback(&address) {
            return Err(bad_input(format!(
                "{at} advertises the loopback address {address}, which the other nodes can't reach (rancher#7719); start it with --advertise-address <its IP> first"
            )));
        }
        // An interface name (eth0) or a lookup (awslocal, ipify) differs from node to node.
        if let Some(ip) = advertised_ip(&address)
            && let Some(other) = advertised.insert(ip, &node.name)
        {
            return Err(bad_input(format!(
                "{at} advertises {address}, as node {other} does: each node needs its own address (rancher#9623)"
            )));
        }
    }
    Ok(())
}

/// Nodes for the unit tests of the preflight and of the cluster's plan.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;
    use crate::server::CarriedSettings;
    use crate::server::fixture::{discovery, server};

    /// A node `name` running `release` on the cluster's database, advertising `address`.
    pub fn node(name: &str, release: &str, address: Option<&str>) -> Node {
        let mut args: Vec<String> = [
            "--db-host",
            "db.example.net",
            "--db-port",
            "3306",
            "--db-name",
            "cattle",
        ]
        .map(String::from)
        .to_vec();
        if let Some(address) = address {
            args.extend(["--advertise-address".into(), address.into()]);
        }
        let mut server = server(
            &format!("127.0.0.1:5000/rancher/server:{release}"),
            "sha256:old",
            CarriedSettings {
                args,
                restart: Some(crate::server::RestartPolicy {
                    name: "unless-stopped".into(),
                    maximum_retry_count: 0,
                }),
                ..CarriedSettings::default()
            },
        );
        server.mode = DbMode::External;
        let mut discovery = discovery(server);
        discovery.engine = discovery.engine.addressing(name);
        Node {
            name: name.into(),
            discovery,
        }
    }

    /// Three nodes of one cluster on v1.6.10, each by ssh, advertising its own address.
    pub fn cluster() -> Vec<Node> {
        (1..=3)
            .map(|k| {
                node(
                    &format!("ssh://root@10.0.0.1{k}"),
                    "v1.6.10",
                    Some(&format!("10.0.0.1{k}")),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{cluster, node};
    use super::*;

    fn refusal(nodes: &[Node]) -> String {
        format!("{:#}", preflight(nodes).unwrap_err())
    }

    #[test]
    fn a_node_is_a_context_or_an_address_and_may_name_its_container() {
        let parsed = |text| NodeSpec::parse(text).unwrap();
        assert_eq!(
            parsed("rancher-1"),
            NodeSpec {
                engine: "rancher-1".into(),
                container: None
            }
        );
        assert_eq!(
            parsed("ssh://root@10.0.0.11=rancher"),
            NodeSpec {
                engine: "ssh://root@10.0.0.11".into(),
                container: Some("rancher".into())
            }
        );
        assert_eq!(
            parsed("unix:///run/docker.sock").engine,
            "unix:///run/docker.sock"
        );
        for bad in ["", "=rancher", "http://10.0.0.11", "ctx\u{7}"] {
            assert!(NodeSpec::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn three_nodes_on_one_database_and_one_release_with_their_own_addresses_pass() {
        preflight(&cluster()).unwrap();
    }

    #[test]
    fn a_node_on_an_embedded_database_is_refused_by_name() {
        let mut nodes = cluster();
        nodes[1].discovery.server.mode = DbMode::Embedded;
        let why = refusal(&nodes);
        assert!(
            why.contains(
                "node ssh://root@10.0.0.12 (rancher) keeps its database in its own volumes"
            ),
            "{why}"
        );
    }

    #[test]
    fn a_node_on_another_database_or_release_is_refused_by_name() {
        let mut nodes = cluster();
        nodes[2].discovery.server.carried.args[5] = "cattle2".into();
        let why = refusal(&nodes);
        assert!(
            why.contains("node ssh://root@10.0.0.13 (rancher) uses the database db.example.net:3306/cattle2, node ssh://root@10.0.0.11 uses db.example.net:3306/cattle"),
            "{why}"
        );

        let mut nodes = cluster();
        nodes[1] = node("ssh://root@10.0.0.12", "v1.6.20", Some("10.0.0.12"));
        let why = refusal(&nodes);
        assert!(
            why.contains("node ssh://root@10.0.0.12 (rancher) runs v1.6.20, node ssh://root@10.0.0.11 runs v1.6.10"),
            "{why}"
        );
    }

    #[test]
    fn a_missing_loopback_or_duplicate_advertised_address_is_refused_by_name() {
        let mut nodes = cluster();
        nodes[0] = node("ssh://root@10.0.0.11", "v1.6.10", None);
        assert!(
            refusal(&nodes)
                .contains("node ssh://root@10.0.0.11 (rancher) has no --advertise-address")
        );

        for loopback in [
            "127.0.0.1",
            "127.0.1.1",
            "::1",
            "localhost",
            "127.0.0.1:9345",
        ] {
            let mut nodes = cluster();
            nodes[1] = node("ssh://root@10.0.0.12", "v1.6.10", Some(loopback));
            let why = refusal(&nodes);
            assert!(
                why.contains(&format!(
                    "node ssh://root@10.0.0.12 (rancher) advertises the loopback address {loopback}"
                )),
                "{why}"
            );
        }

        let mut nodes = cluster();
        nodes[2] = node("ssh://root@10.0.0.13", "v1.6.10", Some("10.0.0.11:19345"));
        let why = refusal(&nodes);
        assert!(
            why.contains("node ssh://root@10.0.0.13 (rancher) advertises 10.0.0.11:19345, as node ssh://root@10.0.0.11 does"),
            "{why}"
        );

        // An interface name resolves on each node to its own address.
        let nodes: Vec<Node> = (1..=3)
            .map(|k| node(&format!("ssh://root@10.0.0.1{k}"), "v1.6.10", Some("eth0")))
            .collect();
        preflight(&nodes).unwrap();
    }
}
