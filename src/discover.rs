//! Read-only discovery: `docker inspect` of the server, its image and the names the plan uses,
//! turned into a [`Discovery`]. Four typed inspects and a `ps` of the tool's own leftovers (on
//! podman two), in two rounds run at once, whatever the server looks like; on an engine that
//! writes settings of its own into every container (podman), a throwaway container of the old
//! image shows which those are.

use crate::engine::Engine;
use crate::error::bad_input;
use crate::image::ImageRef;
use crate::server::{
    CarriedSettings, DATA_PATHS, DataContainer, DbMode, Discovery, MountSource, ONE_SHOT_LABEL,
    PortBinding, RestartPolicy, Server,
};
use crate::settings::{self, Reference, Section, is_anonymous_volume};
use anyhow::{Context, Result, anyhow};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const VERSION_ENV: &str = "CATTLE_RANCHER_SERVER_VERSION";

/// The one running container of a `rancher/server` image, for when `--container` is left out;
/// `naming` says how the operator names one instead (`--container NAME`).
pub fn find_server_container(engine: &Engine, naming: &str) -> Result<String> {
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
        [] => Err(bad_input(format!(
            "no running container uses a rancher/server image; name the server with {naming}"
        ))),
        many => Err(bad_input(format!(
            "{} running containers use a rancher/server image ({}); choose one with {naming}",
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
    let server_name = str_at(&container_json, &["Name"])
        .unwrap_or(container)
        .trim_start_matches('/');
    let (image, (parked, (one_shots, in_storage))) = both(
        || engine.read(&inspect_as("image", engine, image_id)),
        || {
            both(
                || engine.read(&inspect_as("container", engine, &parked_name)),
                || {
                    both(
                        || engine.read_ok(&one_shots_of(engine, server_name)),
                        || storage_only(engine, &[server_name, data_container, &parked_name]),
                    )
                },
            )
        },
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
    let baseline = match engine.kind().injects_settings() {
        true => Some(baseline(engine, image_id)?),
        false => None,
    };
    let reference = Reference {
        image: &image_json,
        baseline: baseline.as_ref(),
        records_static_addresses: engine.kind().records_static_addresses(),
        program: &engine.target().program,
    };
    let server = describe_server(&container_json, &reference)?;
    Ok(Discovery {
        engine: engine.target().clone(),
        data_container: data_json.as_ref().map(describe_data_container),
        // A parked server does not stand in its own way.
        parked_name_taken: parked_json
            .as_ref()
            .is_some_and(|o| str_at(o, &["Id"]) != Some(server.id.as_str())),
        leftovers: one_shots?
            .split_whitespace()
            .map(str::to_string)
            .chain(in_storage?)
            .collect(),
        server,
    })
}

/// The ids of containers that exist only in the engine's storage and hold one of `names`: a
/// create the plan would run, or a rename, fails on them, and nothing else shows them.
fn storage_only(engine: &Engine, names: &[&str]) -> Result<Vec<String>> {
    if !engine.kind().keeps_storage_only_containers() {
        return Ok(Vec::new());
    }
    let listing = engine.read_ok(&engine.command().args([
        "ps",
        "-a",
        "--external",
        "--format",
        "{{.ID}}\t{{.Names}}\t{{.Status}}",
    ]))?;
    Ok(listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let (id, name, status) = (fields.next()?, fields.next()?, fields.next()?);
            (status == "Storage" && names.contains(&name)).then(|| id.to_string())
        })
        .collect())
}

/// `ps` of every one-shot container of the server `name`, running or not, by id.
fn one_shots_of(engine: &Engine, name: &str) -> crate::argv::Argv {
    engine
        .command()
        .args(["ps", "-a", "-q", "--filter"])
        .arg(format!("label={ONE_SHOT_LABEL}={name}"))
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

/// A container of `image` that nobody set anything on: what the engine writes into every
/// container by itself. podman writes some of it (HOME, HOSTNAME) only once the container is
/// initialized, so it is; then inspected and removed with its own fresh, empty volumes.
fn baseline(engine: &Engine, image: &str) -> Result<Value> {
    let name = format!("rancher-upgrade-baseline-{}", std::process::id());
    let remove = engine.command().args(["rm", "-f", "-v", "--"]).arg(&name);
    // A leftover of an earlier run with this process id would stand in the way.
    engine.read(&remove)?;
    let made = engine
        .read_ok(
            &engine
                .command()
                .args(["create", "--name"])
                .arg(&name)
                .arg(image),
        )
        .and_then(|_| engine.read_ok(&engine.command().arg("init").arg(&name)))
        .and_then(|_| {
            engine.read_ok(
                &engine
                    .command()
                    .args(["inspect", "--type", "container", "--"])
                    .arg(&name),
            )
        });
    let removed = engine.read_ok(&remove);
    let inspected = made.with_context(|| {
        format!("making {name}, a container of the old image that shows the engine's own settings")
    })?;
    removed.with_context(|| format!("removing {name}"))?;
    first_object(&inspected).with_context(|| format!("reading the inspect of {name}"))
}

/// The parking name, before the image is inspected: it depends on the container alone.
fn provisional_parked_name(container: &Value) -> String {
    let reference = Reference {
        image: &Value::Null,
        baseline: None,
        records_static_addresses: true,
        program: "docker",
    };
    describe_server(container, &reference)
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

fn container_name(container: &Value) -> &str {
    let name = str_at(container, &["Name"]).unwrap_or_default();
    name.strip_prefix('/').unwrap_or(name)
}

/// Destination → what is mounted there, for each mount of `container` that `keep` wants
/// (tmpfs holds nothing to keep).
fn mounts_where(
    container: &Value,
    keep: impl Fn(&str, &MountSource) -> bool,
) -> BTreeMap<String, MountSource> {
    let mut found = BTreeMap::new();
    for mount in container
        .get("Mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let destination = str_at(mount, &["Destination"]).unwrap_or_default();
        let source = match str_at(mount, &["Type"]) {
            Some("bind") => MountSource::Bind {
                source: str_at(mount, &["Source"]).unwrap_or_default().to_string(),
            },
            Some("volume") => MountSource::Volume {
                name: str_at(mount, &["Name"]).unwrap_or_default().to_string(),
            },
            _ => continue,
        };
        if keep(destination, &source) {
            found.insert(destination.to_string(), source);
        }
    }
    found
}

/// What the data container must hold for the server: its data paths, whatever holds them,
/// and its anonymous volumes, which no option of the new container names.
fn data_mounts(container: &Value) -> BTreeMap<String, MountSource> {
    mounts_where(container, |destination, source| {
        DATA_PATHS.contains(&destination)
            || matches!(source, MountSource::Volume { name } if is_anonymous_volume(name))
    })
}

/// Destination → the options of the server's bind (`SOURCE:DESTINATION:OPTIONS`) at each
/// path the data container holds.
fn data_mount_options(container: &Value) -> BTreeMap<String, String> {
    let held = data_mounts(container);
    strings_at(container, &["HostConfig", "Binds"])
        .iter()
        .filter_map(|bind| {
            let mut parts = bind.splitn(3, ':');
            let (_, destination, options) = (parts.next()?, parts.next()?, parts.next()?);
            held.contains_key(destination)
                .then(|| (destination.to_string(), options.to_string()))
        })
        .collect()
}

fn describe_data_container(container: &Value) -> DataContainer {
    DataContainer {
        name: container_name(container).to_string(),
        mounts: mounts_where(container, |_, _| true),
        volumes_from: strings_at(container, &["HostConfig", "VolumesFrom"]),
    }
}

/// The typed description of a server from its `inspect`, against what a container of its
/// image gets when nobody sets anything.
pub fn describe_server(container: &Value, reference: &Reference) -> Result<Server> {
    let name = container_name(container).to_string();
    let id = str_at(container, &["Id"]).unwrap_or_default().to_string();
    let image_text = str_at(container, &["Config", "Image"]).unwrap_or_default();
    let image_ref = ImageRef::parse(image_text)
        .map_err(|why| anyhow!("container {name} runs image {image_text:?}: {why}"))?;
    let env = strings_at(container, &["Config", "Env"]);
    let env_value = |key: &str| {
        env.iter()
            .find_map(|e| e.strip_prefix(&format!("{key}=")).map(str::to_string))
    };
    let unchanged = |key: &str| {
        reference.is_default(
            Section::Config,
            key,
            container
                .pointer(&format!("/Config/{key}"))
                .unwrap_or(&Value::Null),
            &id,
        )
    };

    // With another entrypoint, docker drops the image's CMD: the arguments go along then.
    let args = if unchanged("Entrypoint") && unchanged("Cmd") {
        Vec::new()
    } else {
        strings_at(container, &["Config", "Cmd"])
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
    let reference_env: BTreeSet<String> = strings_at(
        reference.baseline.unwrap_or(reference.image),
        &["Config", "Env"],
    )
    .iter()
    .map(|e| normalized_by(reference.baseline, e))
    .collect();
    let own_env = |entry: &String| reference_env.contains(&normalized_by(Some(container), entry));
    let networks = settings::networks(container, reference);
    let translation = settings::translate(container, reference);

    let carried = CarriedSettings {
        env: env.iter().filter(|e| !own_env(e)).cloned().collect(),
        restart: (!restart.is_none()).then_some(restart),
        args,
        volumes_from: strings_at(&host_config, &["VolumesFrom"]),
        network: networks.mode,
        networks: networks.attachments,
        stop_timeout: (!unchanged("StopTimeout"))
            .then(|| {
                container
                    .pointer("/Config/StopTimeout")
                    .and_then(Value::as_u64)
            })
            .flatten(),
        options: translation.options,
        ports,
    };

    let mode = match carried.external_database() {
        Some(_) => DbMode::External,
        None => DbMode::Embedded,
    };
    Ok(Server {
        running: container.pointer("/State/Running").and_then(Value::as_bool) == Some(true),
        image: image_ref,
        image_id: str_at(container, &["Image"])
            .unwrap_or_default()
            .to_string(),
        version: env_value(VERSION_ENV),
        mode,
        data_mount_options: data_mount_options(container),
        data_mounts: data_mounts(container),
        not_carried: [translation.not_carried, networks.not_carried].concat(),
        carried,
        name,
        id,
    })
}

/// An env entry as a [`Reference`] compares it: podman writes the container's hostname into
/// `HOSTNAME`, whatever it is, so that becomes a placeholder, as the container's id does.
fn normalized_by(container: Option<&Value>, entry: &str) -> String {
    let own = |path: &[&str]| container.and_then(|c| str_at(c, path)).unwrap_or_default();
    if entry.strip_prefix("HOSTNAME=") == Some(own(&["Config", "Hostname"])) {
        return "HOSTNAME=<hostname>".to_string();
    }
    settings::normalized_text(entry, own(&["Id"]))
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

    /// The server as docker's discovery describes it: against its image.
    fn describe(container: &Value, image: &Value) -> Server {
        let reference = Reference {
            image,
            baseline: None,
            records_static_addresses: true,
            program: "docker",
        };
        describe_server(container, &reference).unwrap()
    }

    fn words(server: &Server) -> Vec<String> {
        server
            .carried
            .options
            .iter()
            .map(crate::server::CreateOption::word)
            .collect()
    }

    #[test]
    fn an_embedded_server_carries_only_what_the_operator_set() {
        let server = describe(&embedded_server(), &image());
        assert_eq!(server.name, "rancher-server");
        assert_eq!(server.version.as_deref(), Some("v1.6.10"));
        assert_eq!(server.mode, DbMode::Embedded);
        assert_eq!(server.carried.env, vec!["GREETING=hello world"]);
        assert!(
            server.carried.args.is_empty(),
            "image CMD must not be carried"
        );
        assert_eq!(
            server.carried.restart.as_ref().unwrap().flag_value(),
            "unless-stopped"
        );
        // The image's label, the generated hostname, docker's own log driver, IPC mode and
        // shm size are no settings of the operator's.
        assert_eq!(words(&server), ["--label=team=ops"]);
        assert_eq!(server.carried.network, None);
        assert!(server.carried.networks.is_empty());
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
        let server = describe(&container, &image());
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
        let server = describe(&container, &image());
        assert_eq!(server.mode, DbMode::External);
        assert!(
            server
                .carried
                .env
                .contains(&"CATTLE_DB_CATTLE_PASSWORD=pw".to_string())
        );
    }

    #[test]
    fn another_entrypoint_takes_the_arguments_along_even_the_image_default_ones() {
        let mut container = embedded_server();
        container["Config"]["Entrypoint"] = json!(["/bin/sh"]);
        let server = describe(&container, &image());
        // With --entrypoint, docker drops the image's CMD: it must be given again.
        assert_eq!(server.carried.args, ["/usr/bin/s6-svscan", "/service"]);
        assert_eq!(words(&server), ["--entrypoint=/bin/sh", "--label=team=ops"]);
    }

    #[test]
    fn a_bind_mounted_database_is_described_as_a_host_directory_and_kept_as_a_bind() {
        let mut container = embedded_server();
        container["HostConfig"]["Binds"] = json!(["/srv/mysql:/var/lib/mysql"]);
        container["Mounts"][0] =
            json!({"Type": "bind", "Source": "/srv/mysql", "Destination": "/var/lib/mysql"});
        let server = describe(&container, &image());
        assert!(words(&server).contains(&"--volume=/srv/mysql:/var/lib/mysql".to_string()));
        assert_eq!(
            server.data_mounts["/var/lib/mysql"],
            MountSource::Bind {
                source: "/srv/mysql".into()
            }
        );
    }

    #[test]
    fn the_data_container_keeps_every_anonymous_volume_and_no_tmpfs() {
        let mut container = embedded_server();
        let anonymous = "a".repeat(64);
        container["Mounts"].as_array_mut().unwrap().extend([
            json!({"Type": "volume", "Name": anonymous, "Destination": "/extra"}),
            json!({"Type": "volume", "Name": "named", "Destination": "/named"}),
            json!({"Type": "tmpfs", "Source": "", "Destination": "/cache"}),
        ]);
        let server = describe(&container, &image());
        let kept: Vec<&str> = server.data_mounts.keys().map(String::as_str).collect();
        assert_eq!(
            kept,
            [
                "/extra",
                "/var/lib/cattle",
                "/var/lib/mysql",
                "/var/log/mysql"
            ]
        );
    }

    #[test]
    fn a_second_upgrade_sees_the_data_container_in_volumes_from() {
        let mut container = embedded_server();
        container["HostConfig"]["VolumesFrom"] = json!(["rancher-data"]);
        let server = describe(&container, &image());
        assert_eq!(server.carried.volumes_from, vec!["rancher-data"]);
    }

    #[test]
    fn settings_no_option_gives_are_each_named_with_the_way_to_re_add_them() {
        let mut container = embedded_server();
        container["HostConfig"]["KernelMemoryTCP"] = json!(1024);
        container["HostConfig"]["ContainerIDFile"] = json!("/run/rancher.cid");
        container["Config"]["MacAddress"] = json!("02:42:ac:11:00:99");
        container["Config"]["Entrypoint"] = json!(["/bin/sh", "-c"]);
        let warnings = describe(&container, &image()).not_carried;
        for expected in [
            "HostConfig.KernelMemoryTCP = 1024 is not carried: no option of `create` sets it",
            "> /run/rancher.cid",
            "--mac-address 02:42:ac:11:00:99",
            "--entrypoint /bin/sh",
        ] {
            assert!(
                warnings.iter().any(|w| w.contains(expected)),
                "no warning says {expected:?}: {warnings:#?}"
            );
        }
        assert_eq!(warnings.len(), 4, "{warnings:#?}");
    }

    #[test]
    fn a_user_set_stop_timeout_is_carried_for_the_stop_step() {
        let mut container = embedded_server();
        container["Config"]["StopTimeout"] = json!(120);
        assert_eq!(
            describe(&container, &image()).carried.stop_timeout,
            Some(120)
        );
    }

    #[test]
    fn published_ports_keep_their_host_addresses_in_port_order() {
        let mut container = embedded_server();
        container["HostConfig"]["PortBindings"] = json!({
            "9345/tcp": [{"HostIp": "10.0.0.5", "HostPort": "9345"}],
            "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]
        });
        let server = describe(&container, &image());
        let ports: Vec<_> = server
            .carried
            .ports
            .iter()
            .map(|p| p.container_port.as_str())
            .collect();
        assert_eq!(ports, ["8080/tcp", "9345/tcp"]);
    }

    /// The `podman-wide` fixture against the container podman made of the bare old image.
    fn podman_wide() -> Server {
        let load = |path: &str| -> Value {
            let file = format!(
                "{}/tests/fixtures/podman-wide/{path}",
                env!("CARGO_MANIFEST_DIR")
            );
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
        };
        let reference = Reference {
            image: &load("images/rancher-server-v1.6.10.json"),
            baseline: Some(&load("containers/baseline.json")),
            records_static_addresses: false,
            program: "podman",
        };
        describe_server(&load("containers/rancher.json"), &reference).unwrap()
    }

    #[test]
    fn what_podman_writes_into_every_container_is_not_carried() {
        let server = podman_wide();
        // Not TERM, container=podman, HOME or HOSTNAME=<short id>: podman's own.
        assert_eq!(
            server.carried.env,
            ["GREETING=hello world", "API_TOKEN=tok-MARKER"]
        );
        // The operator's 30 s, not podman's 10.
        assert_eq!(server.carried.stop_timeout, Some(30));
        let words = words(&server);
        for own in [
            "--log-driver",
            "--runtime",
            "--cap-drop",
            "--pids-limit=2048",
        ] {
            assert!(
                !words.iter().any(|w| w.starts_with(own)),
                "{own} is podman's: {words:#?}"
            );
        }
        assert_eq!(server.not_carried, Vec::<String>::new());
        // podman lists the anonymous volumes among the binds, with the options it mounted
        // them with: the data container gets them again.
        assert_eq!(
            server.data_mount_options["/var/lib/mysql"],
            "rprivate,rw,nodev,exec,nosuid,rbind"
        );
        assert_eq!(
            server.data_mounts.keys().collect::<Vec<_>>(),
            [
                "/extra",
                "/var/lib/cattle",
                "/var/lib/mysql",
                "/var/log/mysql"
            ]
        );
    }
}
