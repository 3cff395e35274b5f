//! Read-only discovery: `docker inspect` of the server, its image and the names the plan uses,
//! turned into a [`Discovery`]. Four typed inspects in two rounds of two at a time, whatever the
//! server looks like.

use crate::engine::Engine;
use crate::error::bad_input;
use crate::image::ImageRef;
use crate::server::{
    CarriedSettings, DATA_PATHS, DataContainer, DbMode, Discovery, LogConfig, MountSource,
    PortBinding, RestartPolicy, Server,
};
use anyhow::{Context, Result, anyhow};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const DB_HOST_FLAG: &str = "--db-host";
const DB_HOST_ENV: &str = "CATTLE_DB_CATTLE_MYSQL_HOST";
const VERSION_ENV: &str = "CATTLE_RANCHER_SERVER_VERSION";

/// HostConfig keys whose values are carried over, or read for the plan.
const CARRIED_HOST_CONFIG: [&str; 7] = [
    "Binds",
    "PortBindings",
    "PublishAllPorts",
    "RestartPolicy",
    "VolumesFrom",
    "LogConfig",
    "NetworkMode",
];

/// Config keys whose values are carried over, or that every container has.
const CARRIED_CONFIG: [&str; 11] = [
    "Env",
    "Cmd",
    "Image",
    "Labels",
    "Hostname",
    "StopTimeout",
    "StopSignal",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ExposedPorts",
];

/// The one running container of a `rancher/server` image, for when `--container` is left out.
pub fn find_server_container(engine: &Engine) -> Result<String> {
    let listing = engine.read_ok(&engine.command().args([
        "ps",
        "--no-trunc",
        "--format",
        "{{.Names}}\t{{.Image}}",
    ]))?;
    let candidates: Vec<&str> = listing
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(_, image)| ImageRef::parse(image).is_ok_and(|i| i.is_rancher_server()))
        .map(|(name, _)| name)
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(bad_input(
            "no running container uses a rancher/server image; name the server with --container NAME",
        )),
        many => Err(bad_input(format!(
            "{} running containers use a rancher/server image ({}); choose one with --container NAME",
            many.len(),
            many.join(", ")
        ))),
    }
}

/// Inspects the server, its image, the data container and the parking name. `known_as` names
/// the server when `container` is another handle for it (its id, while it is parked).
pub fn discover(
    engine: &Engine,
    container: &str,
    data_container: &str,
    known_as: Option<&str>,
) -> Result<Discovery> {
    // Four typed inspects, two at a time: an untyped inspect of a name that does not exist asks
    // the engine about every kind of object, which takes longer than both rounds together.
    let (inspected, data) = both(
        || engine.read(&inspect_as("container", engine, container)),
        || engine.read(&inspect_as("container", engine, data_container)),
    );
    let inspected = inspected?;
    if !inspected.success {
        let why = inspected.stderr.trim();
        if why.to_lowercase().contains("no such") {
            return Err(bad_input(format!(
                "no container named {container:?}; `docker ps -a` lists them, then pass the server's name with --container"
            )));
        }
        return Err(anyhow!(
            "`docker inspect {container}` failed ({}): {why}",
            inspected.status
        ));
    }
    let mut container_json = first_object(&inspected.stdout)
        .with_context(|| format!("reading `docker inspect {container}`"))?;
    if let Some(name) = known_as {
        container_json["Name"] = Value::String(format!("/{name}"));
    }
    let image_id = str_at(&container_json, &["Image"]).unwrap_or_default();
    let parked_name = provisional_parked_name(&container_json);
    let (image, parked) = both(
        || engine.read(&inspect_as("image", engine, image_id)),
        || engine.read(&inspect_as("container", engine, &parked_name)),
    );
    let image = image?;
    let image_json = first_object(&image.stdout).map_err(|_| {
        anyhow!(
            "`docker inspect {image_id}` (the image of {container}) found nothing: {}",
            image.stderr.trim()
        )
    })?;
    // A name that is not there is an answer: docker names it on stderr and prints `[]`.
    let found = |finished: Result<crate::engine::Finished>| -> Result<Option<Value>> {
        Ok(first_object(&finished?.stdout).ok())
    };
    let data_json = found(data)?;
    let parked_json = found(parked)?;
    let server = describe_server(&container_json, &image_json)?;
    Ok(Discovery {
        engine: engine.target().clone(),
        data_container: data_json.as_ref().map(describe_data_container),
        // A parked server does not stand in its own way.
        parked_name_taken: parked_json
            .as_ref()
            .is_some_and(|o| str_at(o, &["Id"]) != Some(server.id.as_str())),
        server,
    })
}

/// `inspect --type KIND -- NAME`.
fn inspect_as(kind: &str, engine: &Engine, name: &str) -> crate::argv::Argv {
    engine
        .command()
        .args(["inspect", "--type", kind, "--"])
        .arg(name)
}

/// Runs `first` and `second` at the same time.
fn both<A: Send, B: Send>(
    first: impl FnOnce() -> A + Send,
    second: impl FnOnce() -> B + Send,
) -> (A, B) {
    std::thread::scope(|scope| {
        let second = scope.spawn(second);
        let first = first();
        (first, second.join().expect("an inspect thread panicked"))
    })
}

/// The parking name, before the image is inspected: it depends on the container alone.
fn provisional_parked_name(container: &Value) -> String {
    describe_server(container, &Value::Null)
        .map(|s| s.parked_name())
        .unwrap_or_default()
}

fn first_object(json: &str) -> Result<Value> {
    let mut array: Vec<Value> = serde_json::from_str(json.trim())?;
    if array.is_empty() {
        return Err(anyhow!("docker inspect printed no object"));
    }
    Ok(array.swap_remove(0))
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
}

fn strings_at(value: &Value, path: &[&str]) -> Vec<String> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn string_map_at(value: &Value, path: &[&str]) -> BTreeMap<String, String> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn container_name(container: &Value) -> &str {
    let name = str_at(container, &["Name"]).unwrap_or_default();
    name.strip_prefix('/').unwrap_or(name)
}

/// Null, false, zero, "" and empty collections: what docker reports for a setting nobody set.
fn is_unset(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.iter().all(is_unset),
        Value::Object(o) => o.values().all(is_unset),
    }
}

/// Values the daemon fills in by itself, so they say nothing about what the operator chose.
fn is_daemon_default(key: &str, value: &Value) -> bool {
    match key {
        "MaskedPaths" | "ReadonlyPaths" => true,
        "IpcMode" => matches!(value.as_str(), Some("private" | "shareable")),
        "CgroupnsMode" => matches!(value.as_str(), Some("host" | "private")),
        "ShmSize" => value.as_u64() == Some(64 * 1024 * 1024),
        "Runtime" => value.as_str() == Some("runc"),
        "Isolation" => value.as_str() == Some("default"),
        "MemorySwappiness" | "PidsLimit" => value.as_i64() == Some(-1),
        _ => false,
    }
}

/// A short rendering of a setting's value for a warning.
fn brief(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}...", text.chars().take(77).collect::<String>())
    } else {
        text
    }
}

fn data_mounts(container: &Value) -> BTreeMap<String, MountSource> {
    let mut found = BTreeMap::new();
    for mount in container
        .get("Mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let destination = str_at(mount, &["Destination"]).unwrap_or_default();
        if !DATA_PATHS.contains(&destination) {
            continue;
        }
        let source = match str_at(mount, &["Type"]) {
            Some("bind") => MountSource::Bind {
                source: str_at(mount, &["Source"]).unwrap_or_default().to_string(),
            },
            _ => MountSource::Volume {
                name: str_at(mount, &["Name"]).unwrap_or_default().to_string(),
            },
        };
        found.insert(destination.to_string(), source);
    }
    found
}

fn describe_data_container(container: &Value) -> DataContainer {
    DataContainer {
        name: container_name(container).to_string(),
        data_mounts: data_mounts(container),
        volumes_from: strings_at(container, &["HostConfig", "VolumesFrom"]),
    }
}

/// The typed description of a server from its `docker inspect` and its image's.
pub fn describe_server(container: &Value, image: &Value) -> Result<Server> {
    let name = container_name(container).to_string();
    let id = str_at(container, &["Id"]).unwrap_or_default().to_string();
    let image_text = str_at(container, &["Config", "Image"]).unwrap_or_default();
    let image_ref = ImageRef::parse(image_text)
        .map_err(|why| anyhow!("container {name} runs image {image_text:?}: {why}"))?;
    let env = strings_at(container, &["Config", "Env"]);
    let image_env: BTreeSet<String> = strings_at(image, &["Config", "Env"]).into_iter().collect();
    let env_value = |key: &str| {
        env.iter()
            .find_map(|e| e.strip_prefix(&format!("{key}=")).map(str::to_string))
    };

    let cmd = strings_at(container, &["Config", "Cmd"]);
    let args = if cmd == strings_at(image, &["Config", "Cmd"]) {
        Vec::new()
    } else {
        cmd
    };
    let mode = if args
        .iter()
        .any(|a| a == DB_HOST_FLAG || a.starts_with(&format!("{DB_HOST_FLAG}=")))
        || env_value(DB_HOST_ENV).is_some()
    {
        DbMode::External
    } else {
        DbMode::Embedded
    };

    let host_config = container.get("HostConfig").cloned().unwrap_or(Value::Null);
    let mut ports: Vec<PortBinding> = host_config
        .get("PortBindings")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .flat_map(|(container_port, bindings)| {
            bindings
                .as_array()
                .into_iter()
                .flatten()
                .map(move |b| PortBinding {
                    container_port: container_port.clone(),
                    host_ip: str_at(b, &["HostIp"]).unwrap_or_default().to_string(),
                    host_port: str_at(b, &["HostPort"]).unwrap_or_default().to_string(),
                })
        })
        .collect();
    ports.sort_by_key(|p| {
        let number: u32 = p
            .container_port
            .split('/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(u32::MAX);
        (number, p.container_port.clone(), p.host_ip.clone())
    });
    let restart = RestartPolicy {
        name: str_at(&host_config, &["RestartPolicy", "Name"])
            .unwrap_or_default()
            .to_string(),
        maximum_retry_count: host_config
            .pointer("/RestartPolicy/MaximumRetryCount")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    };
    let network = str_at(&host_config, &["NetworkMode"])
        .filter(|mode| !matches!(*mode, "" | "default" | "bridge"))
        .map(str::to_string);
    let log = {
        let driver = str_at(&host_config, &["LogConfig", "Type"]).unwrap_or_default();
        let options = string_map_at(&host_config, &["LogConfig", "Config"]);
        (!(driver.is_empty() || driver == "json-file") || !options.is_empty()).then(|| LogConfig {
            driver: driver.to_string(),
            options,
        })
    };
    let image_labels = string_map_at(image, &["Config", "Labels"]);
    let labels = string_map_at(container, &["Config", "Labels"])
        .into_iter()
        .filter(|(k, v)| image_labels.get(k) != Some(v))
        .collect();
    let hostname = str_at(container, &["Config", "Hostname"])
        .filter(|h| !h.is_empty() && !id.starts_with(h))
        .map(str::to_string);
    let stop_signal = str_at(container, &["Config", "StopSignal"])
        .filter(|s| Some(*s) != str_at(image, &["Config", "StopSignal"]))
        .map(str::to_string);

    let carried = CarriedSettings {
        env: env
            .iter()
            .filter(|e| !image_env.contains(*e))
            .cloned()
            .collect(),
        publish_all_ports: host_config
            .get("PublishAllPorts")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        restart: (!restart.is_none()).then_some(restart),
        args,
        binds: strings_at(&host_config, &["Binds"]),
        volumes_from: strings_at(&host_config, &["VolumesFrom"]),
        labels,
        network,
        log,
        stop_timeout: container
            .pointer("/Config/StopTimeout")
            .and_then(Value::as_u64),
        stop_signal,
        hostname,
        ports,
    };

    Ok(Server {
        running: container.pointer("/State/Running").and_then(Value::as_bool) == Some(true),
        image: image_ref,
        image_id: str_at(container, &["Image"])
            .unwrap_or_default()
            .to_string(),
        version: env_value(VERSION_ENV),
        mode,
        data_mounts: data_mounts(container),
        not_carried: not_carried(container, image, &carried),
        carried,
        name,
        id,
    })
}

/// Every setting the new container would silently lack: listed so the operator decides.
fn not_carried(container: &Value, image: &Value, carried: &CarriedSettings) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(host_config) = container.get("HostConfig").and_then(Value::as_object) {
        for (key, value) in host_config {
            if CARRIED_HOST_CONFIG.contains(&key.as_str())
                || is_unset(value)
                || is_daemon_default(key, value)
            {
                continue;
            }
            warnings.push(format!(
                "HostConfig.{key} = {} is not carried over",
                brief(value)
            ));
        }
    }
    let image_config = image.get("Config").cloned().unwrap_or(Value::Null);
    if let Some(config) = container.get("Config").and_then(Value::as_object) {
        for (key, value) in config {
            let image_value = image_config.get(key).unwrap_or(&Value::Null);
            if CARRIED_CONFIG.contains(&key.as_str())
                || value == image_value
                || (is_unset(value) && is_unset(image_value))
            {
                continue;
            }
            warnings.push(format!(
                "Config.{key} = {} is not carried over",
                brief(value)
            ));
        }
        let published: BTreeSet<&str> = carried
            .ports
            .iter()
            .map(|p| p.container_port.as_str())
            .collect();
        let image_exposed = image_config.get("ExposedPorts").and_then(Value::as_object);
        for port in config
            .get("ExposedPorts")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|ports| ports.keys())
        {
            if !published.contains(port.as_str())
                && !image_exposed.is_some_and(|exposed| exposed.contains_key(port))
            {
                warnings.push(format!("--expose {port} is not carried over"));
            }
        }
    }
    if let Some(networks) = container
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object)
    {
        let primary = carried.network.as_deref().unwrap_or("bridge");
        for extra in networks.keys().filter(|n| n.as_str() != primary) {
            warnings.push(format!(
                "network {extra} is not carried over; connect the new container with `docker network connect {extra} NAME`"
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const IMAGE_ID: &str = "sha256:1111";

    fn image() -> Value {
        json!({
            "Id": IMAGE_ID,
            "Config": {
                "Env": ["PATH=/usr/bin:/bin", "CATTLE_RANCHER_SERVER_VERSION=v1.6.10",
                        "CATTLE_HOME=/var/lib/cattle"],
                "Cmd": ["/usr/bin/s6-svscan", "/service"],
                "Entrypoint": ["/usr/bin/entry"],
                "ExposedPorts": {"8080/tcp": {}, "3306/tcp": {}},
                "Labels": {"io.rancher.image": "server"},
                "Volumes": {"/var/lib/mysql": {}, "/var/lib/cattle": {}, "/var/log/mysql": {}}
            }
        })
    }

    fn embedded_server() -> Value {
        json!({
            "Id": "abcdef1234567890",
            "Name": "/rancher-server",
            "Image": IMAGE_ID,
            "State": {"Running": true},
            "Config": {
                "Hostname": "abcdef123456",
                "Image": "127.0.0.1:5000/rancher/server:v1.6.10",
                "Env": ["GREETING=hello world", "PATH=/usr/bin:/bin",
                        "CATTLE_RANCHER_SERVER_VERSION=v1.6.10", "CATTLE_HOME=/var/lib/cattle"],
                "Cmd": ["/usr/bin/s6-svscan", "/service"],
                "Entrypoint": ["/usr/bin/entry"],
                "ExposedPorts": {"8080/tcp": {}, "3306/tcp": {}},
                "Labels": {"io.rancher.image": "server", "team": "ops"},
                "Volumes": {"/var/lib/mysql": {}, "/var/lib/cattle": {}, "/var/log/mysql": {}},
                "AttachStdout": false
            },
            "HostConfig": {
                "PortBindings": {"8080/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
                "NetworkMode": "default",
                "LogConfig": {"Type": "json-file", "Config": {}},
                "IpcMode": "private",
                "ShmSize": 67108864,
                "MaskedPaths": ["/proc/kcore"],
                "Privileged": false,
                "Binds": null,
                "VolumesFrom": null
            },
            "Mounts": [
                {"Type": "volume", "Name": "v-mysql", "Source": "/x/v-mysql", "Destination": "/var/lib/mysql"},
                {"Type": "volume", "Name": "v-cattle", "Source": "/x/v-cattle", "Destination": "/var/lib/cattle"},
                {"Type": "volume", "Name": "v-log", "Source": "/x/v-log", "Destination": "/var/log/mysql"}
            ],
            "NetworkSettings": {"Networks": {"bridge": {}}}
        })
    }

    #[test]
    fn an_embedded_server_carries_only_what_the_operator_set() {
        let server = describe_server(&embedded_server(), &image()).unwrap();
        assert_eq!(server.name, "rancher-server");
        assert_eq!(server.version.as_deref(), Some("v1.6.10"));
        assert_eq!(server.mode, DbMode::Embedded);
        assert_eq!(server.carried.env, vec!["GREETING=hello world"]);
        assert!(
            server.carried.args.is_empty(),
            "image CMD must not be carried"
        );
        assert_eq!(
            server.carried.labels,
            BTreeMap::from([("team".to_string(), "ops".to_string())])
        );
        assert_eq!(
            server.carried.restart.as_ref().unwrap().flag_value(),
            "unless-stopped"
        );
        assert_eq!(server.carried.hostname, None);
        assert_eq!(server.carried.log, None);
        assert_eq!(server.parked_name(), "rancher-server-v1.6.10");
        assert_eq!(server.not_carried, Vec::<String>::new());
        assert_eq!(
            server.data_mounts["/var/lib/mysql"],
            MountSource::Volume {
                name: "v-mysql".into()
            }
        );
    }

    #[test]
    fn external_db_is_found_from_the_db_host_argument() {
        let mut container = embedded_server();
        container["Config"]["Cmd"] = json!([
            "--db-host",
            "db.example",
            "--db-pass",
            "s3cret",
            "--advertise-address",
            "eth0"
        ]);
        let server = describe_server(&container, &image()).unwrap();
        assert_eq!(server.mode, DbMode::External);
        assert_eq!(server.carried.args[..2], ["--db-host", "db.example"]);
    }

    #[test]
    fn external_db_is_found_from_the_env() {
        let mut container = embedded_server();
        container["Config"]["Env"].as_array_mut().unwrap().extend([
            json!("CATTLE_DB_CATTLE_MYSQL_HOST=db"),
            json!("CATTLE_DB_CATTLE_PASSWORD=pw"),
        ]);
        let server = describe_server(&container, &image()).unwrap();
        assert_eq!(server.mode, DbMode::External);
        assert!(
            server
                .carried
                .env
                .contains(&"CATTLE_DB_CATTLE_PASSWORD=pw".to_string())
        );
    }

    #[test]
    fn a_bind_mounted_database_is_described_as_a_host_directory() {
        let mut container = embedded_server();
        container["HostConfig"]["Binds"] = json!(["/srv/mysql:/var/lib/mysql"]);
        container["Mounts"][0] =
            json!({"Type": "bind", "Source": "/srv/mysql", "Destination": "/var/lib/mysql"});
        let server = describe_server(&container, &image()).unwrap();
        assert_eq!(server.carried.binds, vec!["/srv/mysql:/var/lib/mysql"]);
        assert_eq!(
            server.data_mounts["/var/lib/mysql"],
            MountSource::Bind {
                source: "/srv/mysql".into()
            }
        );
    }

    #[test]
    fn a_second_upgrade_sees_the_data_container_in_volumes_from() {
        let mut container = embedded_server();
        container["HostConfig"]["VolumesFrom"] = json!(["rancher-data"]);
        let server = describe_server(&container, &image()).unwrap();
        assert_eq!(server.carried.volumes_from, vec!["rancher-data"]);
    }

    #[test]
    fn settings_that_are_not_carried_are_each_named() {
        let mut container = embedded_server();
        container["HostConfig"]["Privileged"] = json!(true);
        container["HostConfig"]["Dns"] = json!(["1.1.1.1"]);
        container["Config"]["User"] = json!("mysql");
        container["Config"]["ExposedPorts"]["9999/tcp"] = json!({});
        container["NetworkSettings"]["Networks"]["backend"] = json!({});
        let warnings = describe_server(&container, &image()).unwrap().not_carried;
        for expected in [
            "HostConfig.Privileged",
            "HostConfig.Dns",
            "Config.User",
            "--expose 9999/tcp",
            "network backend",
        ] {
            assert!(
                warnings.iter().any(|w| w.contains(expected)),
                "no warning names {expected}: {warnings:?}"
            );
        }
        assert_eq!(warnings.len(), 5, "{warnings:?}");
    }

    #[test]
    fn user_set_hostname_log_driver_and_stop_timeout_are_carried() {
        let mut container = embedded_server();
        container["Config"]["Hostname"] = json!("rancher.example");
        container["Config"]["StopTimeout"] = json!(120);
        container["HostConfig"]["LogConfig"] =
            json!({"Type": "json-file", "Config": {"max-size": "10m"}});
        let server = describe_server(&container, &image()).unwrap();
        assert_eq!(server.carried.hostname.as_deref(), Some("rancher.example"));
        assert_eq!(server.carried.stop_timeout, Some(120));
        assert_eq!(server.carried.log.unwrap().options["max-size"], "10m");
    }

    #[test]
    fn published_ports_keep_their_host_addresses_in_port_order() {
        let mut container = embedded_server();
        container["HostConfig"]["PortBindings"] = json!({
            "9345/tcp": [{"HostIp": "10.0.0.5", "HostPort": "9345"}],
            "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]
        });
        let server = describe_server(&container, &image()).unwrap();
        let ports: Vec<_> = server
            .carried
            .ports
            .iter()
            .map(|p| p.container_port.as_str())
            .collect();
        assert_eq!(ports, ["8080/tcp", "9345/tcp"]);
    }
}
