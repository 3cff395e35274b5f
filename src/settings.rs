//! A container's settings, read from its `inspect`, as the `create` and `network connect`
//! options that give another container the same ones: the one place that knows how each field
//! of docker's (and podman's) inspect is set again on the command line.
//!
//! A field is carried when it differs from what the engine gives a container of the same image
//! that nobody set anything on (the [`Reference`]): the values an image brings are the new
//! image's business, and the values an engine fills in by itself are not the operator's.

use crate::server::{CreateOption, NetworkAttachment};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// What a container of the old image gets when nobody sets anything.
#[derive(Clone, Copy, Debug)]
pub struct Reference<'a> {
    /// `inspect` of the old image.
    pub image: &'a Value,
    /// `inspect` of a container the engine made of the old image with no options, when the
    /// engine writes settings of its own into every container (podman); without one, the
    /// image's config and docker's own defaults stand in for it.
    pub baseline: Option<&'a Value>,
    /// Whether the engine's inspect tells an address set with `--ip` from one it assigned
    /// (docker's `IPAMConfig`). Where it can't (podman 4), the container keeps its addresses.
    pub records_static_addresses: bool,
    /// The program a warning's command names: `docker` or `podman`.
    pub program: &'a str,
}

/// Which half of an inspect a field is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Config,
    HostConfig,
}

impl Section {
    fn key(self) -> &'static str {
        match self {
            Section::Config => "Config",
            Section::HostConfig => "HostConfig",
        }
    }
}

impl Reference<'_> {
    /// The reference value of a field.
    fn value(&self, section: Section, key: &str) -> &Value {
        let found = match (self.baseline, section) {
            (Some(baseline), _) => baseline.get(section.key()).and_then(|s| s.get(key)),
            (None, Section::Config) => self.image.get("Config").and_then(|c| c.get(key)),
            (None, Section::HostConfig) => None,
        };
        found.unwrap_or(&Value::Null)
    }

    /// The reference container's id, whose traces in its values are its own, not settings.
    fn id(&self) -> &str {
        self.baseline
            .and_then(|b| b.get("Id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// Whether `value` (of the container `id`) is what the field holds when nobody sets it.
    pub fn is_default(&self, section: Section, key: &str, value: &Value, id: &str) -> bool {
        let reference = self.value(section, key);
        if normalized(value, id) == normalized(reference, self.id())
            || (is_unset(value) && is_unset(reference))
        {
            return true;
        }
        // Without a container to compare with, docker's documented defaults stand in.
        self.baseline.is_none() && section == Section::HostConfig && is_docker_default(key, value)
    }
}

/// `value` with the container's own id (and its short form, the default hostname) replaced by
/// a placeholder: a log path or a `HOSTNAME` that names the container itself is no setting.
fn normalized(value: &Value, id: &str) -> Value {
    match value {
        Value::String(s) => Value::String(normalized_text(s, id)),
        Value::Array(items) => Value::Array(items.iter().map(|i| normalized(i, id)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalized(v, id)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// [`normalized`] for one string.
pub fn normalized_text(text: &str, id: &str) -> String {
    if id.len() < 12 {
        return text.to_string();
    }
    text.replace(id, "<id>").replace(&id[..12], "<short-id>")
}

/// Null, false, zero, "" and empty collections: what an engine reports for a setting nobody set.
/// An object of empty objects is docker's way to write a set (`{"9999/tcp": {}}`): its keys
/// are the setting.
fn is_unset(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.iter().all(is_unset),
        Value::Object(o) if o.values().all(|v| v == &Value::Object(Map::new())) => o.is_empty(),
        Value::Object(o) => o.values().all(is_unset),
    }
}

/// Values docker fills in by itself, so they say nothing about what the operator chose. Which
/// of `private` and `shareable` (`host` and `private`) is the daemon's default depends on its
/// configuration and cgroup version; either is taken for its default.
fn is_docker_default(key: &str, value: &Value) -> bool {
    match key {
        "IpcMode" => matches!(value.as_str(), Some("private" | "shareable")),
        "CgroupnsMode" => matches!(value.as_str(), Some("host" | "private")),
        "ShmSize" => value.as_u64() == Some(64 * 1024 * 1024),
        "Runtime" => value.as_str() == Some("runc"),
        "Isolation" => value.as_str() == Some("default"),
        "MemorySwappiness" | "PidsLimit" => value.as_i64() == Some(-1),
        "LogConfig" => {
            value.pointer("/Type").and_then(Value::as_str) == Some("json-file")
                && value.get("Config").is_none_or(is_unset)
        }
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

/// A volume the engine named itself (64 hex digits): an image's VOLUME, or `-v /path`. Nobody
/// names it on a command line; the data container keeps it.
pub fn is_anonymous_volume(name: &str) -> bool {
    name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit())
}

/// The options that give a new container the settings of `container`, and a warning for each
/// setting no option gives.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Translation {
    pub options: Vec<CreateOption>,
    pub not_carried: Vec<String>,
}

/// One field being translated, with what the converter may need to look at.
struct Field<'a> {
    value: &'a Value,
    reference: &'a Value,
    container: &'a Value,
    /// See [`Reference::program`].
    program: &'a str,
}

/// How a field becomes options, or why it can't.
type Converter = fn(&Field) -> Result<Vec<CreateOption>, String>;

/// The shape of a field, and the option it becomes.
#[derive(Clone, Copy)]
enum Form {
    /// A string: `--flag=VALUE`.
    Text(&'static str),
    Number(&'static str),
    /// `--flag` for true, `--flag=false` for a false that differs from the default.
    Switch(&'static str),
    /// A list: one `--flag=ITEM` per item.
    Each(&'static str),
    /// A map: one `--flag=KEY=VALUE` per entry the reference does not have so.
    Pairs(&'static str),
    /// Block-IO limits of devices: one `--flag=PATH:VALUE` per device, VALUE from its key.
    DeviceLimits(&'static str, &'static str),
    /// A CFS period or quota, unless `--cpus` computed it (podman shows both).
    CpuTime(&'static str),
    /// A field of its own kind.
    Other(Converter),
}

impl Form {
    fn convert(self, field: &Field) -> Result<Vec<CreateOption>, String> {
        match self {
            Form::Text(flag) => text(field, flag),
            Form::Number(flag) => number(field, flag),
            Form::Switch(flag) => switch(field, flag),
            Form::Each(flag) => each(field, flag),
            Form::Pairs(flag) => pairs_not_in_reference(field, flag),
            Form::DeviceLimits(flag, value_key) => device_limits(field, flag, value_key),
            Form::CpuTime(flag) => cpu_time(field, flag),
            Form::Other(convert) => convert(field),
        }
    }
}

/// The fields the plan reads itself, or the engine derives from others: never options here.
const HANDLED_ELSEWHERE: [(Section, &str); 18] = [
    (Section::Config, "Env"),
    (Section::Config, "Cmd"),
    (Section::Config, "Image"),
    (Section::Config, "StopTimeout"),
    // What the CLI attached to when it made the container, and with it whether stdin closes
    // after the first attach: `docker run -d` records false, `docker create` true.
    (Section::Config, "AttachStdin"),
    (Section::Config, "AttachStdout"),
    (Section::Config, "AttachStderr"),
    (Section::Config, "StdinOnce"),
    // podman's record of the command that made the container.
    (Section::Config, "CreateCommand"),
    (Section::HostConfig, "RestartPolicy"),
    (Section::HostConfig, "VolumesFrom"),
    (Section::HostConfig, "NetworkMode"),
    // Derived: the terminal size of whoever attached, and the paths `--privileged` or
    // `--security-opt systempaths=unconfined` unmask.
    (Section::HostConfig, "ConsoleSize"),
    (Section::HostConfig, "MaskedPaths"),
    (Section::HostConfig, "ReadonlyPaths"),
    // podman's engine-wide cgroup manager, no option of a container.
    (Section::HostConfig, "CgroupManager"),
    // Windows-only leftovers of the build.
    (Section::Config, "ArgsEscaped"),
    (Section::Config, "OnBuild"),
];

use Form::{CpuTime, DeviceLimits, Each, Number, Other, Pairs, Switch, Text};

const CONFIG: &[(&str, Form)] = &[
    ("Hostname", Other(hostname)),
    ("Domainname", Text("--domainname")),
    ("User", Text("--user")),
    ("Tty", Switch("--tty")),
    ("OpenStdin", Switch("--interactive")),
    ("ExposedPorts", Other(exposed_ports)),
    ("Volumes", Other(anonymous_volumes)),
    ("WorkingDir", Text("--workdir")),
    ("Entrypoint", Other(entrypoint)),
    ("Labels", Pairs("--label")),
    ("StopSignal", Text("--stop-signal")),
    ("Healthcheck", Other(healthcheck)),
    ("MacAddress", Other(mac_address)),
    ("Annotations", Other(annotations)),
    // podman's own options.
    ("Umask", Text("--umask")),
    ("Timeout", Number("--timeout")),
    ("Passwd", Switch("--passwd")),
    ("sdNotifyMode", Text("--sdnotify")),
    ("HealthcheckOnFailureAction", Text("--health-on-failure")),
];

const HOST_CONFIG: &[(&str, Form)] = &[
    ("Binds", Other(binds)),
    ("PortBindings", Other(exposed_only)),
    ("ContainerIDFile", Other(container_id_file)),
    ("LogConfig", Other(log_config)),
    ("AutoRemove", Switch("--rm")),
    ("VolumeDriver", Text("--volume-driver")),
    ("CapAdd", Each("--cap-add")),
    ("CapDrop", Each("--cap-drop")),
    ("CgroupnsMode", Text("--cgroupns")),
    ("CgroupMode", Text("--cgroupns")),
    ("Cgroups", Text("--cgroups")),
    ("CgroupConf", Pairs("--cgroup-conf")),
    ("Dns", Each("--dns")),
    ("DnsOptions", Each("--dns-option")),
    ("DnsSearch", Each("--dns-search")),
    ("ExtraHosts", Each("--add-host")),
    ("GroupAdd", Each("--group-add")),
    ("IpcMode", Text("--ipc")),
    ("Links", Other(links)),
    ("OomScoreAdj", Number("--oom-score-adj")),
    ("PidMode", Text("--pid")),
    ("Privileged", Switch("--privileged")),
    ("PublishAllPorts", Switch("--publish-all")),
    ("ReadonlyRootfs", Switch("--read-only")),
    ("SecurityOpt", Other(security_options)),
    ("StorageOpt", Pairs("--storage-opt")),
    ("Tmpfs", Other(tmpfs)),
    ("UTSMode", Text("--uts")),
    ("UsernsMode", Text("--userns")),
    ("ShmSize", Number("--shm-size")),
    ("Sysctls", Pairs("--sysctl")),
    ("Runtime", Text("--runtime")),
    ("Isolation", Text("--isolation")),
    ("CpuShares", Number("--cpu-shares")),
    ("Memory", Number("--memory")),
    ("NanoCpus", Other(nano_cpus)),
    ("CgroupParent", Text("--cgroup-parent")),
    ("BlkioWeight", Number("--blkio-weight")),
    (
        "BlkioWeightDevice",
        DeviceLimits("--blkio-weight-device", "Weight"),
    ),
    (
        "BlkioDeviceReadBps",
        DeviceLimits("--device-read-bps", "Rate"),
    ),
    (
        "BlkioDeviceWriteBps",
        DeviceLimits("--device-write-bps", "Rate"),
    ),
    (
        "BlkioDeviceReadIOps",
        DeviceLimits("--device-read-iops", "Rate"),
    ),
    (
        "BlkioDeviceWriteIOps",
        DeviceLimits("--device-write-iops", "Rate"),
    ),
    ("CpuPeriod", CpuTime("--cpu-period")),
    ("CpuQuota", CpuTime("--cpu-quota")),
    ("CpuRealtimePeriod", Number("--cpu-rt-period")),
    ("CpuRealtimeRuntime", Number("--cpu-rt-runtime")),
    ("CpusetCpus", Text("--cpuset-cpus")),
    ("CpusetMems", Text("--cpuset-mems")),
    ("Devices", Other(devices)),
    ("DeviceCgroupRules", Each("--device-cgroup-rule")),
    ("DeviceRequests", Other(device_requests)),
    ("KernelMemory", Number("--kernel-memory")),
    ("MemoryReservation", Number("--memory-reservation")),
    ("MemorySwap", Number("--memory-swap")),
    ("MemorySwappiness", Number("--memory-swappiness")),
    ("OomKillDisable", Switch("--oom-kill-disable")),
    ("PidsLimit", Number("--pids-limit")),
    ("Ulimits", Other(ulimits)),
    ("CpuCount", Number("--cpu-count")),
    ("CpuPercent", Number("--cpu-percent")),
    ("IOMaximumIOps", Number("--io-maxiops")),
    ("IOMaximumBandwidth", Number("--io-maxbandwidth")),
    ("Mounts", Other(mounts)),
    ("Init", Switch("--init")),
    ("Annotations", Other(annotations)),
];

/// Every setting of `container` (its `inspect`) that differs from `reference`, as options, in
/// a stable order: Config's fields, then HostConfig's, each by field name.
pub fn translate(container: &Value, reference: &Reference) -> Translation {
    let id = container
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut translation = Translation::default();
    for (section, table) in [
        (Section::Config, CONFIG),
        (Section::HostConfig, HOST_CONFIG),
    ] {
        let Some(fields) = container.get(section.key()).and_then(Value::as_object) else {
            continue;
        };
        for (key, value) in fields {
            if HANDLED_ELSEWHERE.contains(&(section, key.as_str()))
                || reference.is_default(section, key, value, id)
            {
                continue;
            }
            let field = Field {
                value,
                reference: reference.value(section, key),
                container,
                program: reference.program,
            };
            let converted = match table.iter().find(|(name, _)| name == key) {
                Some((_, form)) => form.convert(&field),
                None => Err("no option of `create` sets it".to_string()),
            };
            match converted {
                Ok(options) => translation.options.extend(options),
                Err(why) => translation.not_carried.push(format!(
                    "{}.{key} = {} is not carried: {why}",
                    section.key(),
                    brief(value)
                )),
            }
        }
    }
    translation
}

// ------------------------------------------------------------- converters --

fn option(flag: &'static str, value: impl Into<String>) -> CreateOption {
    CreateOption {
        flag,
        value: Some(value.into()),
    }
}

fn bare(flag: &'static str) -> CreateOption {
    CreateOption { flag, value: None }
}

/// A string, or a number printed as one (podman's numeric stop signal).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn text(field: &Field, flag: &'static str) -> Result<Vec<CreateOption>, String> {
    scalar(field.value)
        .map(|v| vec![option(flag, v)])
        .ok_or_else(|| format!("{flag} takes a string"))
}

fn number(field: &Field, flag: &'static str) -> Result<Vec<CreateOption>, String> {
    match field.value {
        Value::Number(n) => Ok(vec![option(flag, n.to_string())]),
        _ => Err(format!("{flag} takes a number")),
    }
}

fn switch(field: &Field, flag: &'static str) -> Result<Vec<CreateOption>, String> {
    match field.value.as_bool() {
        Some(true) => Ok(vec![bare(flag)]),
        Some(false) => Ok(vec![option(flag, "false")]),
        None => Err(format!("{flag} takes true or false")),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(scalar)
        .collect()
}

fn each(field: &Field, flag: &'static str) -> Result<Vec<CreateOption>, String> {
    Ok(strings(field.value)
        .into_iter()
        .map(|v| option(flag, v))
        .collect())
}

/// `KEY=value` for each entry the reference does not have with that very value (an image's
/// labels, a sysctl the engine sets anyway).
fn pairs_not_in_reference(field: &Field, flag: &'static str) -> Result<Vec<CreateOption>, String> {
    let empty = Map::new();
    let reference = field.reference.as_object().unwrap_or(&empty);
    Ok(field
        .value
        .as_object()
        .unwrap_or(&empty)
        .iter()
        .filter(|(k, v)| reference.get(*k) != Some(*v))
        .map(|(k, v)| option(flag, format!("{k}={}", scalar(v).unwrap_or_default())))
        .collect())
}

/// The hostname the operator set: not the short id the engine gives by default, nor what
/// another container's or the host's namespace imposes.
fn hostname(field: &Field) -> Result<Vec<CreateOption>, String> {
    let id = field
        .container
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = field.value.as_str().unwrap_or_default();
    let mode = network_mode(field.container);
    if name.is_empty() || id.starts_with(name) || mode == "host" || mode.starts_with("container:") {
        return Ok(vec![]);
    }
    Ok(vec![option("--hostname", name)])
}

fn network_mode(container: &Value) -> &str {
    container
        .pointer("/HostConfig/NetworkMode")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `--expose` for each port the image does not expose and no `-p` publishes.
fn exposed_ports(field: &Field) -> Result<Vec<CreateOption>, String> {
    let published = field
        .container
        .pointer("/HostConfig/PortBindings")
        .and_then(Value::as_object);
    Ok(keys(field.value)
        .into_iter()
        .filter(|port| !keys(field.reference).contains(port))
        .filter(|port| published.is_none_or(|p| !p.contains_key(port)))
        .map(|port| option("--expose", port))
        .collect())
}

/// `--expose` for each port that podman records among the bindings with no binding (the
/// published ones are the plan's `-p`).
fn exposed_only(field: &Field) -> Result<Vec<CreateOption>, String> {
    Ok(field
        .value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(port, bindings)| is_unset(bindings) && !keys(field.reference).contains(*port))
        .map(|(port, _)| option("--expose", port.clone()))
        .collect())
}

fn cpu_time(field: &Field, flag: &'static str) -> Result<Vec<CreateOption>, String> {
    let by_cpus = field
        .container
        .pointer("/HostConfig/NanoCpus")
        .is_some_and(|n| !is_unset(n));
    if by_cpus {
        Ok(vec![])
    } else {
        number(field, flag)
    }
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Where each `-v` and `--mount` of the container mounts.
fn named_destinations(container: &Value) -> BTreeSet<String> {
    let binds = strings(
        container
            .pointer("/HostConfig/Binds")
            .unwrap_or(&Value::Null),
    )
    .into_iter()
    .filter_map(|b| b.split(':').nth(1).map(str::to_string));
    let mounts = container
        .pointer("/HostConfig/Mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("Target").and_then(Value::as_str).map(str::to_string));
    binds.chain(mounts).collect()
}

/// `-v /path` for each anonymous volume the image does not declare. Its content stays: the
/// data container holds the old volume, and the new container's `--volumes-from` mounts it
/// there instead of a fresh one.
fn anonymous_volumes(field: &Field) -> Result<Vec<CreateOption>, String> {
    let named = named_destinations(field.container);
    Ok(keys(field.value)
        .into_iter()
        .filter(|path| !keys(field.reference).contains(path) && !named.contains(path))
        .map(|path| option("--volume", path))
        .collect())
}

/// `-v` for each bind and named volume; an engine that lists the anonymous volumes among the
/// binds (podman) leaves those to the data container.
fn binds(field: &Field) -> Result<Vec<CreateOption>, String> {
    Ok(strings(field.value)
        .into_iter()
        .filter(|bind| !is_anonymous_volume(bind.split(':').next().unwrap_or_default()))
        .map(|bind| option("--volume", bind))
        .collect())
}

fn entrypoint(field: &Field) -> Result<Vec<CreateOption>, String> {
    let words = match field.value {
        Value::String(s) => vec![s.clone()],
        other => strings(other),
    };
    match words.as_slice() {
        [] => Ok(vec![option("--entrypoint", "")]),
        [one] => Ok(vec![option("--entrypoint", one.clone())]),
        [first, rest @ ..] => Err(format!(
            "`create --entrypoint` takes one word; add `--entrypoint {first}` and put {rest:?} before the arguments after the image"
        )),
    }
}

fn healthcheck(field: &Field) -> Result<Vec<CreateOption>, String> {
    let differs = |key: &str| {
        let value = field.value.get(key).unwrap_or(&Value::Null);
        (value != field.reference.get(key).unwrap_or(&Value::Null) && !is_unset(value))
            .then_some(value)
    };
    let mut options = Vec::new();
    if let Some(test) = differs("Test") {
        match strings(test).as_slice() {
            [none] if none == "NONE" => return Ok(vec![bare("--no-healthcheck")]),
            [shell, command] if shell == "CMD-SHELL" => {
                options.push(option("--health-cmd", command.clone()))
            }
            _ => {
                return Err(format!(
                    "`--health-cmd` runs a shell command; this check runs {test} without one: `--health-cmd` with the same command as one string re-adds it"
                ));
            }
        }
    }
    for (key, flag) in [
        ("Interval", "--health-interval"),
        ("Timeout", "--health-timeout"),
        ("StartPeriod", "--health-start-period"),
        ("StartInterval", "--health-start-interval"),
    ] {
        if let Some(nanoseconds) = differs(key).and_then(Value::as_u64) {
            options.push(option(flag, duration(nanoseconds)));
        }
    }
    if let Some(retries) = differs("Retries") {
        options.push(option("--health-retries", retries.to_string()));
    }
    Ok(options)
}

/// A Go duration that parses back to exactly `nanoseconds`: `5s`, `1500ms`, `90s`.
fn duration(nanoseconds: u64) -> String {
    const UNITS: [(u64, &str); 6] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    let (size, unit) = UNITS
        .iter()
        .find(|(size, _)| nanoseconds.is_multiple_of(*size))
        .expect("every number is a whole number of nanoseconds");
    format!("{}{unit}", nanoseconds / size)
}

fn mac_address(field: &Field) -> Result<Vec<CreateOption>, String> {
    Err(format!(
        "docker CLIs 25 and later set a MAC address only through API 1.44 (Docker Engine 25) and later, and podman 4 does not report one it was given; create the new container by hand with `--mac-address {}` where the engine and CLI take it",
        field.value.as_str().unwrap_or_default()
    ))
}

fn container_id_file(field: &Field) -> Result<Vec<CreateOption>, String> {
    let file = field.value.as_str().unwrap_or_default();
    Err(format!(
        "`create --cidfile` refuses a file that exists, and {file} holds the old container's id; `{} inspect --format '{{{{.Id}}}}' NAME > {file}` writes the new one's",
        field.program
    ))
}

/// `--log-driver` and its `--log-opt`s; podman's tag, size and path are log options too.
fn log_config(field: &Field) -> Result<Vec<CreateOption>, String> {
    let mut options = Vec::new();
    if let Some(driver) = field
        .value
        .get("Type")
        .filter(|t| Some(*t) != field.reference.get("Type"))
    {
        options.push(option("--log-driver", scalar(driver).unwrap_or_default()));
    }
    let empty = Map::new();
    for (key, value) in field
        .value
        .get("Config")
        .and_then(Value::as_object)
        .unwrap_or(&empty)
    {
        options.push(option(
            "--log-opt",
            format!("{key}={}", scalar(value).unwrap_or_default()),
        ));
    }
    // podman's log file is by default under the container's own directory, named by its id.
    let own_id = field
        .container
        .get("Id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty());
    for (key, option_name) in [("Tag", "tag"), ("Size", "max-size"), ("Path", "path")] {
        let value = field.value.get(key).unwrap_or(&Value::Null);
        let reference = field.reference.get(key).unwrap_or(&Value::Null);
        let own_default = key == "Path"
            && own_id.is_some_and(|id| value.as_str().is_some_and(|path| path.contains(id)));
        if !is_unset(value) && value != reference && !own_default {
            options.push(option(
                "--log-opt",
                format!("{option_name}={}", scalar(value).unwrap_or_default()),
            ));
        }
    }
    Ok(options)
}

/// `/other:/self/alias` as docker records a link, `other:alias` as `--link` takes it.
fn links(field: &Field) -> Result<Vec<CreateOption>, String> {
    Ok(strings(field.value)
        .into_iter()
        .map(|link| {
            let (target, alias) = link.split_once(':').unwrap_or((&link, ""));
            let target = target.trim_start_matches('/');
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            match alias {
                "" => option("--link", target),
                alias => option("--link", format!("{target}:{alias}")),
            }
        })
        .collect())
}

fn security_options(field: &Field) -> Result<Vec<CreateOption>, String> {
    let options = strings(field.value);
    if let Some(profile) = options.iter().find(|o| {
        o.starts_with("seccomp=") && !matches!(o.as_str(), "seccomp=unconfined" | "seccomp=builtin")
    }) {
        return Err(format!(
            "docker records a seccomp profile's content ({}), and `--security-opt seccomp=` reads a file; save the profile and pass `--security-opt seccomp=FILE`",
            brief(&Value::String(profile.clone()))
        ));
    }
    Ok(options
        .into_iter()
        .map(|o| option("--security-opt", o))
        .collect())
}

fn tmpfs(field: &Field) -> Result<Vec<CreateOption>, String> {
    let empty = Map::new();
    Ok(field
        .value
        .as_object()
        .unwrap_or(&empty)
        .iter()
        .map(
            |(path, options)| match options.as_str().unwrap_or_default() {
                "" => option("--tmpfs", path.clone()),
                options => option("--tmpfs", format!("{path}:{options}")),
            },
        )
        .collect())
}

/// `--cpus` as a decimal: 1500000000 nano-CPUs are `1.5`.
fn nano_cpus(field: &Field) -> Result<Vec<CreateOption>, String> {
    let nanos = field.value.as_u64().ok_or("--cpus takes a number")?;
    let fraction = format!("{:09}", nanos % 1_000_000_000);
    let fraction = fraction.trim_end_matches('0');
    let whole = nanos / 1_000_000_000;
    Ok(vec![option(
        "--cpus",
        if fraction.is_empty() {
            whole.to_string()
        } else {
            format!("{whole}.{fraction}")
        },
    )])
}

fn device_limits(
    field: &Field,
    flag: &'static str,
    value_key: &str,
) -> Result<Vec<CreateOption>, String> {
    Ok(field
        .value
        .as_array()
        .into_iter()
        .flatten()
        .map(|limit| {
            let path = limit
                .get("Path")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let value = limit
                .get(value_key)
                .map(Value::to_string)
                .unwrap_or_default();
            option(flag, format!("{path}:{value}"))
        })
        .collect())
}

fn devices(field: &Field) -> Result<Vec<CreateOption>, String> {
    Ok(field
        .value
        .as_array()
        .into_iter()
        .flatten()
        .map(|device| {
            let part = |key: &str| device.get(key).and_then(Value::as_str).unwrap_or_default();
            let mut spec = format!("{}:{}", part("PathOnHost"), part("PathInContainer"));
            if !part("CgroupPermissions").is_empty() {
                spec = format!("{spec}:{}", part("CgroupPermissions"));
            }
            option("--device", spec)
        })
        .collect())
}

/// `--gpus` for each request of GPUs, `--device` for each CDI device.
fn device_requests(field: &Field) -> Result<Vec<CreateOption>, String> {
    let mut options = Vec::new();
    for request in field.value.as_array().into_iter().flatten() {
        let driver = request
            .get("Driver")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ids = strings(request.get("DeviceIDs").unwrap_or(&Value::Null));
        if driver == "cdi" {
            options.extend(ids.into_iter().map(|id| option("--device", id)));
            continue;
        }
        let capabilities: Vec<Vec<String>> = request
            .get("Capabilities")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(strings)
            .collect();
        // `--gpus` makes one set of capabilities and always adds `gpu` to it.
        let [set] = capabilities.as_slice() else {
            return Err(format!(
                "`--gpus` gives one set of capabilities, this request has {}",
                capabilities.len()
            ));
        };
        if !set.iter().any(|c| c == "gpu") {
            return Err(
                "`--gpus` always asks for the `gpu` capability, which this request does not".into(),
            );
        }
        let mut fields = Vec::new();
        if !driver.is_empty() {
            fields.push(format!("driver={driver}"));
        }
        match request.get("Count").and_then(Value::as_i64) {
            Some(-1) => fields.push("count=all".into()),
            Some(count) if ids.is_empty() => fields.push(format!("count={count}")),
            _ => {}
        }
        if !ids.is_empty() {
            fields.push(format!("device={}", ids.join(",")));
        }
        let others: Vec<&String> = set.iter().filter(|c| *c != "gpu").collect();
        if !others.is_empty() {
            let others: Vec<&str> = others.iter().map(|c| c.as_str()).collect();
            fields.push(format!("capabilities={}", others.join(",")));
        }
        let empty = Map::new();
        let request_options: Vec<String> = request
            .get("Options")
            .and_then(Value::as_object)
            .unwrap_or(&empty)
            .iter()
            .map(|(k, v)| format!("{k}={}", scalar(v).unwrap_or_default()))
            .collect();
        if !request_options.is_empty() {
            fields.push(format!("options={}", csv_field(&request_options.join(","))));
        }
        options.push(option("--gpus", csv(&fields)));
    }
    Ok(options)
}

/// `name=soft:hard`, in the lower-case names `--ulimit` takes (podman reports `RLIMIT_NOFILE`).
fn ulimits(field: &Field) -> Result<Vec<CreateOption>, String> {
    Ok(field
        .value
        .as_array()
        .into_iter()
        .flatten()
        .map(|limit| {
            let name = limit
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let name = name.strip_prefix("RLIMIT_").unwrap_or(name).to_lowercase();
            let bound = |key: &str| limit.get(key).map(Value::to_string).unwrap_or_default();
            option(
                "--ulimit",
                format!("{name}={}:{}", bound("Soft"), bound("Hard")),
            )
        })
        .collect())
}

/// `--mount` in the CSV form docker reads back as the same mount.
fn mounts(field: &Field) -> Result<Vec<CreateOption>, String> {
    let mut options = Vec::new();
    for mount in field.value.as_array().into_iter().flatten() {
        let text = |pointer: &str| {
            mount
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let flag = |pointer: &str| mount.pointer(pointer).and_then(Value::as_bool) == Some(true);
        let mut fields = vec![format!("type={}", text("/Type"))];
        if !text("/Source").is_empty() {
            fields.push(format!("source={}", text("/Source")));
        }
        fields.push(format!("target={}", text("/Target")));
        if flag("/ReadOnly") {
            fields.push("readonly".into());
        }
        if !text("/Consistency").is_empty() {
            fields.push(format!("consistency={}", text("/Consistency")));
        }
        if !text("/BindOptions/Propagation").is_empty() {
            fields.push(format!(
                "bind-propagation={}",
                text("/BindOptions/Propagation")
            ));
        }
        if flag("/BindOptions/NonRecursive") {
            fields.push("bind-nonrecursive=true".into());
        }
        if flag("/VolumeOptions/NoCopy") {
            fields.push("volume-nocopy=true".into());
        }
        if !text("/VolumeOptions/Subpath").is_empty() {
            fields.push(format!("volume-subpath={}", text("/VolumeOptions/Subpath")));
        }
        for (pointer, key) in [
            ("/VolumeOptions/Labels", "volume-label"),
            ("/VolumeOptions/DriverConfig/Options", "volume-opt"),
        ] {
            for (k, v) in mount
                .pointer(pointer)
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                fields.push(format!("{key}={k}={}", scalar(v).unwrap_or_default()));
            }
        }
        if !text("/VolumeOptions/DriverConfig/Name").is_empty() {
            fields.push(format!(
                "volume-driver={}",
                text("/VolumeOptions/DriverConfig/Name")
            ));
        }
        if let Some(size) = mount
            .pointer("/TmpfsOptions/SizeBytes")
            .and_then(Value::as_u64)
        {
            fields.push(format!("tmpfs-size={size}"));
        }
        if let Some(mode) = mount.pointer("/TmpfsOptions/Mode").and_then(Value::as_u64) {
            fields.push(format!("tmpfs-mode={mode:o}"));
        }
        let known = [
            "Type",
            "Source",
            "Target",
            "ReadOnly",
            "Consistency",
            "BindOptions",
            "VolumeOptions",
            "TmpfsOptions",
        ];
        if let Some(other) = mount
            .as_object()
            .into_iter()
            .flatten()
            .find(|(k, v)| !known.contains(&k.as_str()) && !is_unset(v))
        {
            return Err(format!(
                "`--mount` has no field for {} = {}",
                other.0,
                brief(other.1)
            ));
        }
        options.push(option("--mount", csv(&fields)));
    }
    Ok(options)
}

/// Fields joined the way Go's encoding/csv reads them back: a field with a comma or a quote
/// goes in quotes, its quotes doubled.
fn csv(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Annotations the operator set. podman records some of its own options as annotations
/// (`io.podman.annotations.*`, `io.kubernetes.cri-o.*`, the OCI stop signal): those come with
/// the options, and the one whose option no other field shows, `--init`, is given as that
/// option.
fn annotations(field: &Field) -> Result<Vec<CreateOption>, String> {
    let is_record = |key: &str| {
        key.starts_with("io.podman.annotations.")
            || key.starts_with("io.kubernetes.cri-o.")
            || key == "org.opencontainers.image.stopSignal"
    };
    let mut options: Vec<CreateOption> = pairs_not_in_reference(field, "--annotation")?
        .into_iter()
        .filter(|o| {
            let (key, _) = o
                .value
                .as_deref()
                .unwrap_or_default()
                .split_once('=')
                .unwrap_or_default();
            !is_record(key)
        })
        .collect();
    if field
        .value
        .get("io.podman.annotations.init")
        .and_then(Value::as_str)
        == Some("TRUE")
        && field.reference.get("io.podman.annotations.init")
            != field.value.get("io.podman.annotations.init")
    {
        options.push(bare("--init"));
    }
    Ok(options)
}

// --------------------------------------------------------------- networks --

/// The network the container joins when it is created (`--network`), and the networks it is
/// on with what it has on each.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Networks {
    /// `--network`: a mode (`host`, `none`, `container:ID`) or the network joined at create;
    /// `None` for the engine's default network.
    pub mode: Option<String>,
    /// Every network but the engine's default, the one named by `mode` first.
    pub attachments: Vec<NetworkAttachment>,
    /// What `create` can't give on the network it joins.
    pub not_carried: Vec<String>,
}

/// The networks of `container`, without what the engine puts there by itself: its own
/// aliases (the short id, the hostname) and the addresses it assigned.
pub fn networks(container: &Value, reference: &Reference) -> Networks {
    let mode = network_mode(container);
    let endpoints = container
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object);
    if mode == "host" || mode == "none" || mode.starts_with("container:") {
        return Networks {
            mode: Some(mode.to_string()),
            ..Networks::default()
        };
    }
    // The engine's default network: docker's `bridge`, or the one a bare container joins.
    let defaults: BTreeSet<String> = match reference.baseline {
        Some(baseline) => keys(
            baseline
                .pointer("/NetworkSettings/Networks")
                .unwrap_or(&Value::Null),
        ),
        None => BTreeSet::from(["bridge".to_string()]),
    };
    let id = container
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let hostname = container
        .pointer("/Config/Hostname")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut attachments: Vec<NetworkAttachment> = endpoints
        .into_iter()
        .flatten()
        .filter(|(name, _)| !defaults.contains(*name))
        .map(|(name, endpoint)| attachment(name, endpoint, id, hostname, reference))
        .collect();
    let on_default = endpoints.is_some_and(|e| e.keys().any(|n| defaults.contains(n)));
    // docker's NetworkMode names the network joined at create; podman's says `bridge`, and
    // a container on no default network joins one of its own networks at create.
    let joined = match attachments.iter().position(|a| a.name == mode) {
        Some(at) => Some(at),
        None if on_default || attachments.is_empty() => None,
        None => Some(0),
    };
    if let Some(at) = joined {
        let first = attachments.remove(at);
        attachments.insert(0, first);
    }
    // `--network NAME` has no driver options (its long form needs API 1.44 and no podman has it).
    let not_carried = match joined.map(|_| &attachments[0]) {
        Some(first) if !first.driver_options.is_empty() => {
            let options: Vec<String> = first
                .driver_options
                .iter()
                .map(|(k, v)| format!("--driver-opt {k}={v}"))
                .collect();
            vec![format!(
                "the driver options of network {name} are not carried: `create --network` takes none; `{program} network disconnect {name} NAME && {program} network connect {} {name} NAME` gives them, with its aliases and addresses",
                options.join(" "),
                name = first.name,
                program = reference.program
            )]
        }
        _ => vec![],
    };
    Networks {
        mode: joined.map(|_| attachments[0].name.clone()),
        attachments,
        not_carried,
    }
}

fn attachment(
    name: &str,
    endpoint: &Value,
    id: &str,
    hostname: &str,
    reference: &Reference,
) -> NetworkAttachment {
    let text = |pointer: &str| {
        endpoint
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let generated =
        |alias: &String| (alias.len() >= 12 && id.starts_with(alias.as_str())) || alias == hostname;
    let (ipv4, ipv6) = if reference.records_static_addresses {
        (
            text("/IPAMConfig/IPv4Address"),
            text("/IPAMConfig/IPv6Address"),
        )
    } else {
        (text("/IPAddress"), text("/GlobalIPv6Address"))
    };
    let empty = Map::new();
    NetworkAttachment {
        name: name.to_string(),
        aliases: strings(endpoint.get("Aliases").unwrap_or(&Value::Null))
            .into_iter()
            .filter(|a| !generated(a))
            .collect(),
        ipv4,
        ipv6,
        link_local_ips: strings(
            endpoint
                .pointer("/IPAMConfig/LinkLocalIPs")
                .unwrap_or(&Value::Null),
        ),
        links: strings(endpoint.get("Links").unwrap_or(&Value::Null)),
        driver_options: endpoint
            .get("DriverOpts")
            .and_then(Value::as_object)
            .unwrap_or(&empty)
            .iter()
            .map(|(k, v)| (k.clone(), scalar(v).unwrap_or_default()))
            .collect::<BTreeMap<_, _>>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Value {
        let file = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
    }

    fn docker_reference(image: &Value) -> Reference<'_> {
        Reference {
            image,
            baseline: None,
            records_static_addresses: true,
            program: "docker",
        }
    }

    fn words(translation: &Translation) -> Vec<String> {
        translation.options.iter().map(CreateOption::word).collect()
    }

    fn podman_reference<'a>(image: &'a Value, baseline: &'a Value) -> Reference<'a> {
        Reference {
            image,
            baseline: Some(baseline),
            records_static_addresses: false,
            program: "podman",
        }
    }

    #[test]
    fn every_setting_of_the_wide_fixture_comes_back_as_its_option() {
        let container = fixture("wide/containers/rancher.json");
        let image = fixture("wide/images/rancher-server-v1.6.10.json");
        let translation = translate(&container, &docker_reference(&image));
        // tests/fixtures/wide.options, as docker recorded each: sizes in bytes, capabilities
        // with CAP_, `--cpus` as nano-CPUs, a `--mount` with its defaults; the image's own
        // label, the env, the ports, the restart policy and the network left to the plan.
        assert_eq!(
            words(&translation),
            [
                "--domainname=example.internal",
                "--expose=9999/tcp",
                "--health-cmd=curl -fs http://127.0.0.1:8080/ping",
                "--health-interval=5s",
                "--health-timeout=2s",
                "--health-start-period=1s",
                "--health-retries=3",
                "--hostname=rancher-wide",
                "--label=team=ops",
                "--interactive",
                "--stop-signal=SIGHUP",
                "--tty",
                "--user=0:0",
                "--volume=/extra",
                "--workdir=/var/lib/cattle",
                "--volume=wide-named:/named",
                "--cap-add=CAP_NET_ADMIN",
                "--cap-drop=CAP_MKNOD",
                "--cpu-shares=512",
                "--cpuset-cpus=0",
                "--device-cgroup-rule=c 1:3 rmw",
                "--device=/dev/null:/dev/xnull:rwm",
                "--dns=10.231.0.53",
                "--dns-option=ndots:2",
                "--dns-search=example.internal",
                "--add-host=db.internal:10.1.2.3",
                "--group-add=1234",
                "--init",
                "--log-driver=json-file",
                "--log-opt=max-size=1m",
                "--memory=268435456",
                "--memory-reservation=134217728",
                "--memory-swap=536870912",
                "--memory-swappiness=10",
                "--mount=type=tmpfs,target=/cache,tmpfs-size=1048576,tmpfs-mode=1770",
                "--mount=type=bind,source=/srv/rancher-conf,target=/srv/conf,readonly",
                "--cpus=1.5",
                "--oom-kill-disable",
                "--oom-score-adj=100",
                "--pids-limit=200",
                "--read-only",
                "--security-opt=no-new-privileges",
                "--shm-size=134217728",
                "--sysctl=net.core.somaxconn=1024",
                "--tmpfs=/run/x:size=1m",
                "--tmpfs=/tmp",
                "--tmpfs=/www",
                "--ulimit=nofile=1024:2048",
                "--ulimit=nproc=32768:32768",
                "--volume-driver=local",
            ]
        );
        assert_eq!(translation.not_carried, Vec::<String>::new());
    }

    #[test]
    fn the_wide_fixture_keeps_its_networks_aliases_and_static_addresses() {
        let container = fixture("wide/containers/rancher.json");
        let image = fixture("wide/images/rancher-server-v1.6.10.json");
        let found = networks(&container, &docker_reference(&image));
        assert_eq!(found.mode.as_deref(), Some("wide-a"));
        // Without the short id and the hostname docker adds to the aliases.
        assert_eq!(
            found.attachments,
            [
                NetworkAttachment {
                    name: "wide-a".into(),
                    aliases: vec!["rancher-a".into()],
                    ipv4: Some("172.31.240.10".into()),
                    ..NetworkAttachment::default()
                },
                NetworkAttachment {
                    name: "wide-b".into(),
                    aliases: vec!["rancher-b".into()],
                    ipv4: Some("172.31.241.10".into()),
                    ipv6: Some("fd00:172:31:241::10".into()),
                    ..NetworkAttachment::default()
                },
            ]
        );
    }

    #[test]
    fn driver_options_of_the_network_joined_at_create_are_named_with_their_way_back() {
        let mut container = fixture("wide/containers/rancher.json");
        container["NetworkSettings"]["Networks"]["wide-a"]["DriverOpts"] =
            serde_json::json!({"com.example.mtu": "1400"});
        container["NetworkSettings"]["Networks"]["wide-b"]["DriverOpts"] =
            serde_json::json!({"com.example.mtu": "9000"});
        let image = fixture("wide/images/rancher-server-v1.6.10.json");
        let found = networks(&container, &docker_reference(&image));
        // The connected network takes them with `network connect --driver-opt`.
        assert_eq!(
            found.attachments[1].driver_options["com.example.mtu"],
            "9000"
        );
        assert_eq!(found.not_carried.len(), 1, "{:?}", found.not_carried);
        assert!(
            found.not_carried[0]
                .contains("docker network connect --driver-opt com.example.mtu=1400 wide-a NAME"),
            "{:?}",
            found.not_carried
        );
    }

    #[test]
    fn podman_settings_come_back_without_what_podman_adds_by_itself() {
        let container = fixture("podman-wide/containers/rancher.json");
        let image = fixture("podman-wide/images/rancher-server-v1.6.10.json");
        let baseline = fixture("podman-wide/containers/baseline.json");
        let translation = translate(&container, &podman_reference(&image, &baseline));
        // podman writes a mount's options out in full, takes `--mount type=tmpfs` for a
        // `--tmpfs`, adds /run, /tmp and /var/tmp to a read-only container, keeps `--expose`
        // among the port bindings and reports `--cpus` as a period and quota too.
        assert_eq!(
            words(&translation),
            [
                "--health-cmd=curl -fs http://127.0.0.1:8080/ping",
                "--health-interval=5s",
                "--health-timeout=2s",
                "--health-start-period=1s",
                "--health-retries=3",
                "--hostname=rancher-wide",
                "--label=team=ops",
                "--interactive",
                "--stop-signal=1",
                "--tty",
                "--user=0:0",
                "--workdir=/var/lib/cattle",
                "--volume=wide-named:/named:rw,rprivate,nosuid,nodev,rbind",
                "--volume=/srv/rancher-conf:/srv/conf:ro,rprivate,rbind",
                "--cap-add=CAP_NET_ADMIN",
                "--cpu-shares=512",
                "--cpuset-cpus=0",
                "--device=/dev/null:/dev/xnull",
                "--dns=10.231.0.53",
                "--dns-option=ndots:2",
                "--dns-search=example.internal",
                "--add-host=db.internal:10.1.2.3",
                "--group-add=1234",
                "--log-opt=max-size=1MB",
                "--memory=268435456",
                "--memory-reservation=134217728",
                "--memory-swap=536870912",
                "--memory-swappiness=10",
                "--cpus=1.5",
                "--oom-kill-disable",
                "--oom-score-adj=100",
                "--pids-limit=200",
                "--expose=9999/tcp",
                "--read-only",
                "--security-opt=no-new-privileges",
                "--shm-size=134217728",
                "--tmpfs=/cache:size=1048576,mode=1770,rw,rprivate,nosuid,nodev,tmpcopyup",
                "--tmpfs=/run:rw,rprivate,nosuid,nodev,tmpcopyup",
                "--tmpfs=/run/x:size=1m,rw,rprivate,nosuid,nodev,tmpcopyup",
                "--tmpfs=/tmp:rw,rprivate,nosuid,nodev,tmpcopyup",
                "--tmpfs=/var/tmp:rw,rprivate,nosuid,nodev,tmpcopyup",
                "--tmpfs=/www:rw,rprivate,nosuid,nodev,tmpcopyup",
                "--ulimit=nofile=1024:2048",
                "--ulimit=nproc=32768:32768",
            ]
        );
        assert_eq!(translation.not_carried, Vec::<String>::new());
        // podman can't say which addresses were given with --ip: the container keeps all of
        // those on its own networks, none on podman's default one.
        let found = networks(&container, &podman_reference(&image, &baseline));
        assert_eq!(found.mode.as_deref(), Some("wide-a"));
        let kept: Vec<_> = found
            .attachments
            .iter()
            .map(|a| {
                (
                    a.name.as_str(),
                    a.aliases.clone(),
                    a.ipv4.as_deref(),
                    a.ipv6.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            kept,
            [
                (
                    "wide-a",
                    vec!["rancher-a".to_string()],
                    Some("172.31.246.10"),
                    None
                ),
                (
                    "wide-b",
                    vec!["rancher-b".to_string()],
                    Some("172.31.247.10"),
                    Some("fd00:172:31:247::10")
                ),
            ]
        );
    }

    /// `field` of a bare docker container set to `value`, translated against an image with an
    /// entrypoint.
    fn translated(section: Section, field: &str, value: Value) -> Translation {
        let mut container = serde_json::json!({
            "Id": "0123456789ab0123456789ab0123456789ab0123456789ab0123456789abcdef",
            "Config": {}, "HostConfig": {}
        });
        container[section.key()][field] = value;
        let image = serde_json::json!({"Config": {"Entrypoint": ["/usr/bin/entry"]}});
        translate(&container, &docker_reference(&image))
    }

    #[test]
    fn a_healthcheck_docker_can_not_give_again_is_named_with_its_way_back() {
        let exec_form = translated(
            Section::Config,
            "Healthcheck",
            serde_json::json!({"Test": ["CMD", "curl", "-f", "http://x/"]}),
        );
        assert!(exec_form.options.is_empty());
        assert!(
            exec_form.not_carried[0].contains("`--health-cmd` with the same command"),
            "{exec_form:?}"
        );
        let none = translated(
            Section::Config,
            "Healthcheck",
            serde_json::json!({"Test": ["NONE"]}),
        );
        assert_eq!(words(&none), ["--no-healthcheck"]);
    }

    #[test]
    fn values_are_written_back_as_the_cli_reads_them() {
        let cases = [
            (
                Section::HostConfig,
                "NanoCpus",
                serde_json::json!(250_000_000),
                "--cpus=0.25",
            ),
            (
                Section::HostConfig,
                "NanoCpus",
                serde_json::json!(2_000_000_000),
                "--cpus=2",
            ),
            (
                Section::HostConfig,
                "Links",
                serde_json::json!(["/db:/rancher/database"]),
                "--link=db:database",
            ),
            (
                Section::HostConfig,
                "MemorySwap",
                serde_json::json!(-1),
                "--memory-swap=-1",
            ),
            (
                Section::Config,
                "Entrypoint",
                serde_json::json!([]),
                "--entrypoint=",
            ),
            (
                Section::Config,
                "Healthcheck",
                serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 90_000_000_000_u64, "Timeout": 1_500_000_000}),
                "--health-cmd=true --health-interval=90s --health-timeout=1500ms",
            ),
            (
                Section::HostConfig,
                "DeviceRequests",
                serde_json::json!([{"Driver": "", "Count": -1, "DeviceIDs": null, "Capabilities": [["gpu"]], "Options": {}},
                                   {"Driver": "nvidia", "Count": 0, "DeviceIDs": ["0", "1"], "Capabilities": [["utility", "gpu"]], "Options": {}},
                                   {"Driver": "cdi", "DeviceIDs": ["vendor.com/gpu=0"]}]),
                r#"--gpus=count=all --gpus=driver=nvidia,"device=0,1",capabilities=utility --device=vendor.com/gpu=0"#,
            ),
            (
                Section::HostConfig,
                "Mounts",
                serde_json::json!([{"Type": "volume", "Source": "cfg", "Target": "/etc/x,y", "ReadOnly": true,
                                    "VolumeOptions": {"NoCopy": true, "Labels": {"a": "b"}}}]),
                r#"--mount=type=volume,source=cfg,"target=/etc/x,y",readonly,volume-nocopy=true,volume-label=a=b"#,
            ),
        ];
        for (section, field, value, expected) in cases {
            let translation = translated(section, field, value.clone());
            assert_eq!(words(&translation).join(" "), expected, "{field} = {value}");
        }
    }

    #[test]
    fn what_no_option_gives_is_said_with_the_way_to_give_it() {
        let cidfile = translated(
            Section::HostConfig,
            "ContainerIDFile",
            serde_json::json!("/run/r.cid"),
        );
        assert!(
            cidfile.not_carried[0].contains("> /run/r.cid"),
            "{cidfile:?}"
        );
        let seccomp = translated(
            Section::HostConfig,
            "SecurityOpt",
            serde_json::json!(["seccomp={\"defaultAction\":\"SCMP_ACT_ERRNO\"}"]),
        );
        assert!(
            seccomp.not_carried[0].contains("--security-opt seccomp=FILE"),
            "{seccomp:?}"
        );
        let unknown = translated(Section::HostConfig, "KernelMemoryTCP", serde_json::json!(1));
        assert!(
            unknown.not_carried[0].contains("no option of `create` sets it"),
            "{unknown:?}"
        );
    }
}
