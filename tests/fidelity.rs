//! The fidelity check, on the real engines: a server started with every kind of setting `run`
//! gives (`tests/fixtures/wide.options`, the fixture the unit tests read too), on two networks
//! with an alias and static addresses on each, is upgraded; then the new container's `inspect`
//! is compared with the old one's, field by field. Every difference must be on [`ALLOWED`],
//! each entry with its reason; any other fails the test, which lists them all.
//!
//! Both sides are first put in the same terms: each container's own id (and short id) becomes
//! a placeholder, and each image's own defaults (its env, labels, volumes, exposed ports, and
//! the command, entrypoint, healthcheck, workdir, user and stop signal where the container kept
//! the image's) are taken out, the old image's from the old container, the new image's from the
//! new one. Lists whose order means nothing to the engine (env, mounts, binds) are compared as
//! sets.
//!
//! On docker and on podman (`--docker podman`), each skipped without its engine unless
//! `REQUIRE_DOCKER=1`.

// The harness serves every end-to-end suite; this one uses a part of it.
#[allow(dead_code)]
#[macro_use]
#[path = "e2e/engine.rs"]
mod engine;

use engine::{Attachment, ServerOptions, TestEngine, docker_ok, free_port, image};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What may differ between the old container and the new one, and why: a JSON pointer into
/// `inspect`, where `*` stands for any one key or index, and everything under it.
const ALLOWED: &[(&str, &str)] = &[
    ("/Image", "the new image: the point of the upgrade"),
    ("/Created", "when the new container was made"),
    ("/Config/Image", "the new image: the point of the upgrade"),
    (
        "/State",
        "the container's run (when it started, its pid, its health so far), not a setting",
    ),
    (
        "/GraphDriver",
        "the layers of another image under a new container's own",
    ),
    (
        "/NetworkSettings/SandboxID",
        "a new container's own network namespace",
    ),
    (
        "/NetworkSettings/SandboxKey",
        "a new container's own network namespace",
    ),
    (
        "/NetworkSettings/Networks/*/EndpointID",
        "a new container's own endpoint on each network",
    ),
    (
        "/HostConfig/VolumesFrom",
        "the new server takes its volumes from the data container, which holds the old one's (doc steps 2 and 4)",
    ),
    (
        "/Config/Annotations/io.podman.annotations.volumes-from",
        "podman's record of --volumes-from: the data container, as /HostConfig/VolumesFrom",
    ),
    (
        "/NetworkSettings/Networks/*/MacAddress",
        "a MAC address the engine assigned: podman picks one at random (docker derives it from the address, the same)",
    ),
    (
        "/Config/AttachStdin",
        "the streams the CLI meant to attach: `docker run -d` records none, `docker create` (which the upgrade runs, to connect every network before the start) all; no option of create sets them",
    ),
    (
        "/Config/AttachStdout",
        "as /Config/AttachStdin: `docker create` records it, `docker run -d` not",
    ),
    (
        "/Config/AttachStderr",
        "as /Config/AttachStdin: `docker create` records it, `docker run -d` not",
    ),
    (
        "/Config/StdinOnce",
        "with -i, `docker create` also closes stdin after the first attach, `docker run -d` does not; no option sets it",
    ),
    // podman's own records.
    (
        "/Config/CreateCommand",
        "podman's record of the command that made the container",
    ),
    (
        "/Config/Annotations/io.kubernetes.cri-o.Created",
        "podman's record of when the container was made",
    ),
    ("/ImageDigest", "podman: the new image's digest"),
    ("/ImageName", "podman: the new image's name"),
];

/// Runs the upgrade of a wide server on `on` and checks the new container against the old.
/// `subnets` are the first three octets of the server's two networks (IPv4 /24s; the second
/// network gets an IPv6 /64 of the same digits).
fn check_fidelity(on: TestEngine, test: &str, subnets: [&str; 2]) {
    let scope = scope!(test, on);
    let conf = scope.subdir("conf");
    let [a, b] = subnets;
    let ipv6 = |prefix: &str, host: &str| format!("fd00:{}::{host}", prefix.replace('.', ":"));
    let net_a = scope.network("a", &[&format!("{a}.0/24")]);
    let net_b = scope.network("b", &[&format!("{b}.0/24"), &ipv6(b, "/64")]);
    let server = scope.start_server(
        "v1.6.10",
        ServerOptions {
            port: Some(free_port()),
            raw: wide_options(on, &scope.prefix, &conf),
            networks: vec![
                Attachment {
                    network: net_a,
                    alias: "rancher-a".into(),
                    ip: format!("{a}.10"),
                    ip6: None,
                },
                Attachment {
                    network: net_b,
                    alias: "rancher-b".into(),
                    ip: format!("{b}.10"),
                    ip6: Some(ipv6(b, "10")),
                },
            ],
            ..ServerOptions::default()
        },
    );
    let old = server.inspect();
    let started = std::time::Instant::now();
    scope.upgrade("v1.6.20", &[]).expect_code(0);
    eprintln!(
        "{test}: the upgrade took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let new = server.inspect();
    assert!(server.answers_ping(), "the new server answers /ping");

    let image_of = |tag: &str| {
        let out = docker_ok(&["image", "inspect", &image(tag)]);
        let mut all: Vec<Value> = serde_json::from_str(&out).unwrap();
        all.swap_remove(0)
    };
    let old_fields = comparable(&old, &image_of("v1.6.10"));
    let new_fields = comparable(&new, &image_of("v1.6.20"));
    let paths: BTreeSet<&String> = old_fields.keys().chain(new_fields.keys()).collect();
    let mut allowed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unexpected = Vec::new();
    for path in paths {
        let (was, is) = (old_fields.get(path), new_fields.get(path));
        if was == is {
            continue;
        }
        match ALLOWED.iter().find(|(pattern, _)| covers(pattern, path)) {
            Some((pattern, _)) => *allowed.entry(pattern).or_default() += 1,
            None => unexpected.push((path.clone(), was.cloned(), is.cloned())),
        }
    }
    eprintln!(
        "{test}: {} fields compared, {} differences on the allow-list ({}), {} others",
        old_fields.len().max(new_fields.len()),
        allowed.values().sum::<usize>(),
        allowed
            .iter()
            .map(|(p, n)| format!("{p}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        unexpected.len()
    );
    let listed: Vec<String> = unexpected
        .iter()
        .map(|(path, was, is)| format!("  {path}: {} -> {}", shown(was), shown(is)))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} differences outside the allow-list:\n{}",
        unexpected.len(),
        listed.join("\n")
    );
}

#[test]
fn the_new_docker_container_has_every_setting_of_the_old_one() {
    check_fidelity(TestEngine::Local, "fidelity", ["172.31.230", "172.31.231"]);
}

#[test]
fn the_new_podman_container_has_every_setting_of_the_old_one() {
    check_fidelity(
        TestEngine::Podman,
        "fidelity-podman",
        ["172.31.232", "172.31.233"],
    );
}

// ------------------------------------------------------------------ the fixture --

/// The options of `tests/fixtures/wide.options` for `on`, one word a word, with `$PREFIX`
/// and `$CONF` filled in (podman leaves out the lines marked `[docker]`).
fn wide_options(on: TestEngine, prefix: &str, conf: &Path) -> Vec<String> {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wide.options");
    let text = std::fs::read_to_string(file).unwrap();
    let mut words = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let line = match line.strip_suffix(" [docker]") {
            Some(_) if on == TestEngine::Podman => continue,
            Some(docker_only) => docker_only,
            None => line,
        };
        let line = line
            .replace("$PREFIX", prefix)
            .replace("$CONF", &conf.display().to_string());
        match line.split_once(' ') {
            Some((flag, value)) => words.extend([flag.to_string(), value.to_string()]),
            None => words.push(line),
        }
    }
    words
}

// --------------------------------------------------------------- the checker --

/// `inspect` of a container as the check compares it: its id a placeholder, its image's
/// defaults taken out, its unordered lists as sets; then flattened to pointer → leaf value.
fn comparable(container: &Value, image: &Value) -> BTreeMap<String, Value> {
    let id = container["Id"].as_str().unwrap_or_default().to_string();
    let mut container = placeholders(container, &id);
    let image_config = &image["Config"];
    let config = container["Config"].as_object_mut().unwrap();
    subtract_entries(config, "Env", image_config);
    for key in ["Labels", "Volumes", "ExposedPorts"] {
        if let (Some(own), Some(theirs)) = (
            config.get_mut(key).and_then(Value::as_object_mut),
            image_config.get(key).and_then(Value::as_object),
        ) {
            own.retain(|k, v| theirs.get(k) != Some(v));
        }
    }
    for key in [
        "Cmd",
        "Entrypoint",
        "Healthcheck",
        "WorkingDir",
        "User",
        "StopSignal",
    ] {
        if config.get(key) == image_config.get(key) {
            config.remove(key);
        }
    }
    if let Some(binds) = container.pointer_mut("/HostConfig/Binds") {
        sort(binds);
    }
    if let Some(mounts) = container.get_mut("Mounts") {
        *mounts = keyed_by(mounts, "Destination");
    }
    let mut flat = BTreeMap::new();
    flatten(&container, String::new(), &mut flat);
    flat
}

/// `value` with the container's id, and its short form, as placeholders.
fn placeholders(value: &Value, id: &str) -> Value {
    let text = serde_json::to_string(value).unwrap();
    let text = if id.len() >= 12 {
        text.replace(id, "<id>").replace(&id[..12], "<short-id>")
    } else {
        text
    };
    serde_json::from_str(&text).unwrap()
}

/// Takes out of `config[key]` (a list) the entries the image's has, then sorts what is left.
fn subtract_entries(config: &mut Map<String, Value>, key: &str, image_config: &Value) {
    let theirs: Vec<Value> = image_config[key].as_array().cloned().unwrap_or_default();
    if let Some(own) = config.get_mut(key).and_then(Value::as_array_mut) {
        own.retain(|entry| !theirs.contains(entry));
    }
    if let Some(own) = config.get_mut(key) {
        sort(own);
    }
}

fn sort(list: &mut Value) {
    if let Some(items) = list.as_array_mut() {
        items.sort_by_key(|v| v.to_string());
    }
}

/// A list of objects as an object keyed by each one's `key`.
fn keyed_by(list: &Value, key: &str) -> Value {
    Value::Object(
        list.as_array()
            .into_iter()
            .flatten()
            .map(|item| {
                (
                    item[key].as_str().unwrap_or_default().to_string(),
                    item.clone(),
                )
            })
            .collect(),
    )
}

fn flatten(value: &Value, path: String, into: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                flatten(
                    item,
                    format!("{path}/{}", key.replace('~', "~0").replace('/', "~1")),
                    into,
                );
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (index, item) in items.iter().enumerate() {
                flatten(item, format!("{path}/{index}"), into);
            }
        }
        leaf => {
            into.insert(path, leaf.clone());
        }
    }
}

/// Whether the allow-list `pattern` covers `path`: the same segments (`*` matching any one),
/// and anything below them.
fn covers(pattern: &str, path: &str) -> bool {
    let mut path_segments = path.split('/');
    pattern.split('/').all(|wanted| {
        path_segments
            .next()
            .is_some_and(|got| wanted == "*" || wanted == got)
    })
}

fn shown(value: &Option<Value>) -> String {
    value
        .as_ref()
        .map_or_else(|| "(absent)".to_string(), Value::to_string)
}
