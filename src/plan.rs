//! The upgrade plan: a pure function from what discovery found and what the operator asked
//! for to the ordered steps that renderers show and the executor runs.

use crate::argv::{Argv, Reveal};
use crate::error::Refusal;
use crate::image::{ImageRef, Target, Version};
use crate::secrets::{
    DB_PASSWORD_FLAG, db_password_secret, env_assignment_secret, inline_flag_secret,
};
use crate::server::{CarriedSettings, DATA_PATHS, DbMode, Discovery, PortBinding, Server};
use serde::Serialize;

/// What the operator asked for, validated.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub target: Target,
    pub data_container: String,
    pub allow_downgrade: bool,
    /// Accept a server whose image is not `rancher/server`.
    pub force: bool,
    pub health_url: Option<String>,
    pub health_timeout_seconds: u64,
    /// How long `docker stop` waits when the container sets no stop timeout of its own.
    pub stop_timeout_seconds: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepId {
    Pull,
    Stop,
    DisableRestart,
    CreateDataContainer,
    ParkOld,
    RunNew,
    WaitHealthy,
    RemoveOld,
}

/// How to tell that the new server works: `/ping` answers `pong`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub container: String,
    /// `None` when no host port is published for 8080 and no `--health-url` was given.
    pub url: Option<String>,
    pub timeout_seconds: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Docker(Argv),
    WaitHealthy(Probe),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub id: StepId,
    pub title: String,
    /// Why the step is there, in one sentence.
    pub reason: String,
    pub action: Action,
    /// Whether running it changes anything on the host.
    pub changes: bool,
    /// Why it won't run, when it won't.
    pub skipped: Option<String>,
    /// What undoes it, once it has run, on the way back to the old server.
    pub undo: Vec<Argv>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub container: String,
    pub from: ImageRef,
    pub from_version: String,
    pub to: ImageRef,
    pub mode: DbMode,
    /// Set in embedded mode: the container that holds the data volumes.
    pub data_container: Option<String>,
    pub warnings: Vec<String>,
    pub steps: Vec<Step>,
}

impl Plan {
    /// The commands that return to the old server once `done` steps have run, in order.
    pub fn way_back<'a>(&self, done: impl IntoIterator<Item = &'a Step>) -> Vec<Argv> {
        let done: Vec<&Step> = done.into_iter().collect();
        done.iter()
            .rev()
            .flat_map(|step| step.undo.iter().cloned())
            .collect()
    }

    /// Every step before removing the old container: the way back from a finished new server.
    pub fn steps_before_removal(&self) -> impl Iterator<Item = &Step> {
        self.steps
            .iter()
            .take_while(|s| s.id != StepId::RemoveOld)
            .filter(|s| s.skipped.is_none())
    }
}

fn docker() -> Argv {
    Argv::new("docker")
}

/// Checks everything before any step runs, and plans the upgrade. Every reason to refuse is
/// listed at once, so the operator fixes them all in one go.
pub fn plan(discovery: &Discovery, options: &PlanOptions) -> Result<Plan, Refusal> {
    let server = &discovery.server;
    let target = options.target.resolve(&server.image);
    let mut refusals = Vec::new();
    let mut warnings = Vec::new();

    if target.digest.is_some() {
        refusals.push(format!(
            "--to {target} is pinned by digest; name the release by tag (for example v1.6.30)"
        ));
    }
    if !options.force {
        if !server.image.is_rancher_server() {
            refusals.push(format!(
                "container {} runs {}, not a rancher/server image; pass --force if it is a Rancher server under another name",
                server.name, server.image
            ));
        }
        if !target.is_rancher_server() {
            refusals.push(format!(
                "--to {target} is not a rancher/server image; pass --force if it is a Rancher server under another name"
            ));
        }
    }
    check_version_order(server, &target, options, &mut refusals, &mut warnings);
    if target.effective_tag() == "latest" {
        warnings.push(
            "`latest` is Rancher's development build from 1.2 on; `stable` is the production one"
                .to_string(),
        );
    }
    if !server.running {
        warnings.push(format!(
            "container {} is not running; the upgrade goes on from its recorded settings",
            server.name
        ));
    }

    let parked = server.parked_name();
    if discovery.parked_name_taken {
        refusals.push(format!(
            "a container named {parked} already exists, and the old server must be parked under that name; rename or remove {parked} first"
        ));
    }

    let reuse_data_container = match server.mode {
        DbMode::External => {
            warnings.push(
                "external database: back it up before upgrading (mysqldump -h HOST -u USER -p DATABASE > backup.sql); the new version migrates it in place"
                    .to_string(),
            );
            false
        }
        DbMode::Embedded => check_data_container(discovery, options, &mut refusals),
    };
    warnings.extend(server.not_carried.iter().cloned());

    let steps = build_steps(server, &target, options, reuse_data_container);
    for step in &steps {
        if let Action::Docker(argv) = &step.action
            && let Some(word) = argv.first_control_character()
        {
            refusals.push(format!(
                "step {:?} would pass {:?}, which holds a control character no pasted command can carry; remove it from the settings of {}",
                step.title,
                word.shown(Reveal::Masked),
                server.name
            ));
        }
    }

    if !refusals.is_empty() {
        return Err(Refusal::Preflight(refusals));
    }
    Ok(Plan {
        container: server.name.clone(),
        from: server.image.clone(),
        from_version: server.release().to_string(),
        to: target,
        mode: server.mode,
        data_container: (server.mode == DbMode::Embedded).then(|| options.data_container.clone()),
        warnings,
        steps,
    })
}

fn check_version_order(
    server: &Server,
    target: &ImageRef,
    options: &PlanOptions,
    refusals: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    let from = server.release();
    let to = target.effective_tag();
    match (Version::parse(from), Version::parse(to)) {
        (Some(old), Some(new)) if new < old && !options.allow_downgrade => refusals.push(format!(
            "{to} is older than the running {from}: Rancher's migrations only go forward; pass --allow-downgrade only with a backup taken before {from}"
        )),
        (Some(old), Some(new)) if new == old => warnings.push(format!(
            "{} already runs {from}; the upgrade recreates it on the same release",
            server.name
        )),
        (Some(_), Some(_)) => {}
        _ => warnings.push(format!(
            "can't tell whether {to} is newer than {from}; make sure it is not a downgrade"
        )),
    }
}

/// Whether an existing data container is the server's own (reuse it), after refusing one
/// that holds other volumes: a server on those would start on an empty or foreign database.
fn check_data_container(
    discovery: &Discovery,
    options: &PlanOptions,
    refusals: &mut Vec<String>,
) -> bool {
    let server = &discovery.server;
    let name = &options.data_container;
    if *name == server.name || *name == server.parked_name() {
        refusals.push(format!(
            "--data-container {name} is the server's own name; choose another (the doc's is rancher-data)"
        ));
        return false;
    }
    if !server.data_mounts.contains_key(DATA_PATHS[0]) {
        refusals.push(format!(
            "container {} has no volume at {}, so there is no embedded database to carry over; if it uses an external database, start it with --db-host or CATTLE_DB_CATTLE_MYSQL_HOST",
            server.name, DATA_PATHS[0]
        ));
        return false;
    }
    let Some(existing) = &discovery.data_container else {
        return false;
    };
    if existing.data_mounts == server.data_mounts {
        return true;
    }
    let differences: Vec<String> = DATA_PATHS
        .iter()
        .filter(|path| existing.data_mounts.get(**path) != server.data_mounts.get(**path))
        .map(|path| {
            format!(
                "{path}: {} has {}, {} has {}",
                server.name,
                describe_mount(server.data_mounts.get(*path)),
                name,
                describe_mount(existing.data_mounts.get(*path)),
            )
        })
        .collect();
    refusals.push(format!(
        "data container {name} exists but holds other volumes than {} ({}); a new server on it would start on an empty or different database. Pass --data-container with a new name, or check {name} and move it aside",
        server.name,
        differences.join("; ")
    ));
    false
}

fn describe_mount(mount: Option<&crate::server::MountSource>) -> String {
    match mount {
        None => "nothing".to_string(),
        Some(crate::server::MountSource::Volume { name }) => format!("volume {name}"),
        Some(crate::server::MountSource::Bind { source }) => format!("host directory {source}"),
    }
}

fn build_steps(
    server: &Server,
    target: &ImageRef,
    options: &PlanOptions,
    reuse_data_container: bool,
) -> Vec<Step> {
    let name = &server.name;
    let parked = server.parked_name();
    let embedded = server.mode == DbMode::Embedded;
    let data = &options.data_container;
    let restart = server.carried.restart.as_ref();
    let stop_timeout = server
        .carried
        .stop_timeout
        .unwrap_or(options.stop_timeout_seconds);

    let mut steps = vec![
        Step {
            id: StepId::Pull,
            title: format!("Pull {target}"),
            reason: "The doc pulls after stopping; pulling first keeps the download out of the downtime, and a missing tag fails before anything stops.".into(),
            action: Action::Docker(docker().arg("pull").arg(target.to_string())),
            changes: true,
            skipped: None,
            undo: vec![],
        },
        Step {
            id: StepId::Stop,
            title: format!("Stop {name}"),
            reason: format!("The database must be quiet before its volumes move to the new server; {stop_timeout} s lets MySQL shut down cleanly."),
            action: Action::Docker(docker().args(["stop", "-t"]).arg(stop_timeout.to_string()).arg(name)),
            changes: true,
            skipped: None,
            undo: vec![docker().arg("start").arg(name)],
        },
        Step {
            id: StepId::DisableRestart,
            title: format!("Keep {name} down after a reboot"),
            reason: "With its restart policy the old server would come back after a reboot and run the old version on the data (rancher#3519).".into(),
            action: Action::Docker(docker().args(["update", "--restart=no"]).arg(name)),
            changes: true,
            skipped: restart.is_none().then(|| format!("{name} has no restart policy")),
            undo: restart
                .map(|r| docker().arg("update").arg(format!("--restart={}", r.flag_value())).arg(name))
                .into_iter()
                .collect(),
        },
    ];
    if embedded {
        steps.push(Step {
            id: StepId::CreateDataContainer,
            title: format!("Create the data container {data}"),
            reason: "The data container holds the database volumes, so every later server starts with --volumes-from it (doc step 2).".into(),
            action: Action::Docker(
                docker()
                    .args(["create", "--volumes-from"])
                    .arg(name)
                    .arg("--name")
                    .arg(data)
                    .arg(server.image.to_string()),
            ),
            changes: true,
            skipped: reuse_data_container
                .then(|| format!("{data} already exists and holds the volumes {name} uses")),
            undo: vec![],
        });
    }
    steps.extend([
        Step {
            id: StepId::ParkOld,
            title: format!("Rename {name} to {parked}"),
            reason: format!("The new server takes the name {name}, which scripts and monitoring use; the old one waits under {parked} until the new one works."),
            action: Action::Docker(docker().arg("rename").arg(name).arg(&parked)),
            changes: true,
            skipped: None,
            undo: vec![docker().arg("rename").arg(&parked).arg(name)],
        },
        Step {
            id: StepId::RunNew,
            title: format!("Start {target} as {name}"),
            reason: if embedded {
                format!("The new server runs on the data of {data}, with every setting of the old one (doc step 4).")
            } else {
                "The new server runs against the same external database, with every setting of the old one.".into()
            },
            action: Action::Docker(run_new(server, target, embedded.then_some(data.as_str()))),
            changes: true,
            skipped: None,
            undo: vec![docker().args(["stop", "-t"]).arg(stop_timeout.to_string()).arg(name), docker().arg("rm").arg(name)],
        },
        Step {
            id: StepId::WaitHealthy,
            title: format!("Wait until {name} answers /ping"),
            reason: "The old container goes only once the new server answers; migrations can take many minutes.".into(),
            action: Action::WaitHealthy(Probe {
                container: name.clone(),
                url: options.health_url.clone().or_else(|| server.ping_url()),
                timeout_seconds: options.health_timeout_seconds,
            }),
            changes: false,
            skipped: None,
            undo: vec![],
        },
        Step {
            id: StepId::RemoveOld,
            title: format!("Remove the old container {parked}"),
            reason: "A stopped old server with a restart policy comes back after a reboot (doc step 5); its volumes stay, without -v.".into(),
            action: Action::Docker(docker().arg("rm").arg(&parked)),
            changes: true,
            skipped: None,
            undo: vec![],
        },
    ]);
    steps
}

/// `docker run` for the new server: the old one's settings, the data container in place of
/// its own `--volumes-from`, and its arguments after the image.
fn run_new(server: &Server, target: &ImageRef, data_container: Option<&str>) -> Argv {
    let carried: &CarriedSettings = &server.carried;
    let mut argv = docker().args(["run", "-d", "--name"]).arg(&server.name);
    match data_container {
        Some(data) => argv = argv.arg("--volumes-from").arg(data),
        None => {
            for source in &carried.volumes_from {
                argv = argv.arg("--volumes-from").arg(source);
            }
        }
    }
    if let Some(restart) = &carried.restart {
        argv = argv.arg(format!("--restart={}", restart.flag_value()));
    }
    for port in &carried.ports {
        argv = argv.arg("-p").arg(publish_value(port));
    }
    if carried.publish_all_ports {
        argv = argv.arg("--publish-all");
    }
    for assignment in &carried.env {
        argv = argv.arg("-e");
        argv = match env_assignment_secret(assignment) {
            Some(secret) => argv.secret_arg(assignment, secret),
            None => argv.arg(assignment),
        };
    }
    for bind in &carried.binds {
        // The data container brings the data paths, bind-mounted ones included.
        if data_container.is_some() && DATA_PATHS.contains(&bind_destination(bind)) {
            continue;
        }
        argv = argv.arg("-v").arg(bind);
    }
    for (key, value) in &carried.labels {
        argv = argv.arg("--label").arg(format!("{key}={value}"));
    }
    if let Some(network) = &carried.network {
        argv = argv.arg("--network").arg(network);
    }
    if let Some(log) = &carried.log {
        argv = argv.arg("--log-driver").arg(&log.driver);
        for (key, value) in &log.options {
            argv = argv.arg("--log-opt").arg(format!("{key}={value}"));
        }
    }
    if let Some(timeout) = carried.stop_timeout {
        argv = argv.arg("--stop-timeout").arg(timeout.to_string());
    }
    if let Some(signal) = &carried.stop_signal {
        argv = argv.arg("--stop-signal").arg(signal);
    }
    if let Some(hostname) = &carried.hostname {
        argv = argv.arg("--hostname").arg(hostname);
    }
    argv = argv.arg(target.to_string());
    let mut args = carried.args.iter();
    while let Some(arg) = args.next() {
        argv = match inline_flag_secret(arg) {
            Some(secret) => argv.secret_arg(arg, secret),
            None => argv.arg(arg),
        };
        if arg == DB_PASSWORD_FLAG
            && let Some(password) = args.next()
        {
            argv = argv.secret_arg(password, db_password_secret());
        }
    }
    argv
}

/// The `-p` value docker reads back as the same binding.
fn publish_value(port: &PortBinding) -> String {
    let container_port = port
        .container_port
        .strip_suffix("/tcp")
        .unwrap_or(&port.container_port);
    let host_ip = if port.host_ip.contains(':') {
        format!("[{}]", port.host_ip)
    } else {
        port.host_ip.clone()
    };
    match (host_ip.is_empty(), port.host_port.is_empty()) {
        (true, true) => container_port.to_string(),
        (true, false) => format!("{}:{container_port}", port.host_port),
        (false, _) => format!("{host_ip}:{}:{container_port}", port.host_port),
    }
}

/// Where a `-v SOURCE:DESTINATION[:MODE]` value mounts.
fn bind_destination(bind: &str) -> &str {
    bind.split(':').nth(1).unwrap_or(bind)
}

#[cfg(test)]
mod tests;
