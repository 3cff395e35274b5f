//! The upgrade plan: a pure function from what discovery found and what the operator asked
//! for to the ordered steps that renderers show and the executor runs.

use crate::archive::{Archive, ArchiveContent, ArchiveFormat};
use crate::argv::{Argv, Reveal};
use crate::engine::EngineTarget;
use crate::error::Refusal;
use crate::image::{ImageRef, Target, Version};
use crate::room::RoomCheck;
use crate::secrets::{
    CLIENT_PASSWORD_ENV, DB_PASSWORD_FLAG, Masker, client_password_secret, db_password_secret,
    env_assignment_secret, inline_flag_secret, option_value_secret, password_in_arguments,
};
use crate::server::{
    CarriedSettings, DATA_PARENT, DATA_PATHS, DbMode, Discovery, ExternalDatabase,
    NetworkAttachment, ONE_SHOT_LABEL, PortBinding, Server, data_paths_relative,
};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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
    /// Where the backup goes before the new version starts (the data volumes, or the external
    /// database's dump); `None` skips it.
    pub backup: Option<BackupTarget>,
}

/// Where a backup goes: an absolute directory on this machine, the UTC time that names the
/// archive, and how it is compressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupTarget {
    pub dir: PathBuf,
    pub stamp: String,
    pub format: ArchiveFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepId {
    /// `rm -f` of the containers an earlier, cut-off run left.
    RemoveLeftovers,
    Pull,
    CheckRoom,
    ConfirmDatabaseBackup,
    Stop,
    DisableRestart,
    CreateDataContainer,
    Backup,
    VerifyBackup,
    ParkOld,
    /// `create` of the new server, while the old one still runs.
    CreateNew,
    /// `network connect` of the new server to the old one's networks past the first, by
    /// their order in [`CarriedSettings::networks`].
    ConnectNetwork(usize),
    /// The new server's start: from here on a failure may have touched the data.
    RunNew,
    WaitHealthy,
    /// In a cluster: the wait until a node that answers is in its own HA list.
    WaitMember,
    /// In a cluster: the pause after a node answers, before the next one starts.
    Settle,
    RemoveOld,
    /// On an engine that can't change a restart policy, once the old server has stopped: its
    /// removal keeps it down after a reboot, and its undo makes it again.
    RemoveParked,
    // The way back, step by step.
    StopNew,
    RemoveNew,
    RestoreData,
    UnparkOld,
    RestoreRestart,
    StartOld,
    WaitOldHealthy,
    /// Rollback after the old container was removed, or the way back after
    /// [`StepId::RemoveParked`]: it is created again.
    RecreateOld,
}

impl StepId {
    /// The step of the upgrade a step of the way back takes back, when it takes one back whole.
    pub fn undoes(self) -> Option<StepId> {
        match self {
            StepId::StartOld => Some(StepId::Stop),
            StepId::UnparkOld => Some(StepId::ParkOld),
            StepId::RestoreRestart => Some(StepId::DisableRestart),
            StepId::RemoveNew => Some(StepId::RunNew),
            _ => None,
        }
    }
}

/// How to tell that the new server works: `/ping` answers `pong`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// The engine the container runs on.
    pub engine: EngineTarget,
    pub container: String,
    /// Asks `/ping` inside the container, through the engine: it reaches the server wherever
    /// the engine runs, and no other service on this machine can answer for it.
    pub ask: Argv,
    /// `--health-url`: asked from this machine instead.
    pub url: Option<String>,
    /// Prints `true` while the container runs, for a runbook's wait.
    pub running: Argv,
    pub timeout_seconds: u64,
    /// What the answer must be.
    pub expect: Expect,
}

impl Probe {
    /// What the probe asks inside the container, in the operator's words.
    pub fn target(&self) -> String {
        match &self.expect {
            Expect::Pong => format!("/ping inside {}", self.container),
            Expect::Member(address) => format!(
                "the HA list inside {} (/v2-beta/clustermemberships, as {address})",
                self.container
            ),
        }
    }
}

/// The answer a [`Probe`] waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// `/ping` answers `pong`.
    Pong,
    /// The server's HA list (`/v2-beta/clustermemberships`, Admin → High Availability) holds a
    /// member that advertises this address.
    Member(String),
}

impl Expect {
    pub fn accepts(&self, answer: &str) -> bool {
        match self {
            Expect::Pong => answer.trim_end() == "pong",
            Expect::Member(address) => {
                let advertised = |member: &serde_json::Value| {
                    member["config"]
                        .as_str()
                        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
                        .is_some_and(|c| c["advertiseAddress"] == address.as_str())
                };
                serde_json::from_str::<serde_json::Value>(answer).is_ok_and(|list| {
                    list["data"]
                        .as_array()
                        .is_some_and(|members| members.iter().any(advertised))
                })
            }
        }
    }
}

/// Which way an archive crosses the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// The command's output is written to the archive.
    Backup,
    /// The archive is the command's input.
    Restore,
}

/// A command whose output becomes an archive on this machine, or whose input is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub argv: Argv,
    pub direction: Direction,
    pub archive: Archive,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Docker(Argv),
    /// Commands that run at once, each to its own engine: the pulls of a cluster's nodes.
    Parallel(Vec<Argv>),
    Transfer(Transfer),
    /// Check an archive on this machine against its checksum.
    VerifyArchive(Archive),
    /// Check that the backup directory has room for the archive.
    CheckRoom(RoomCheck),
    WaitHealthy(Probe),
    /// Let a node of a cluster settle before the next one starts: this many seconds.
    Settle(u64),
    /// Something only the operator can do; the run asks before going on.
    Manual(String),
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
    pub undo: Vec<Step>,
    /// In a cluster's plan: the node it runs on, by its place in [`Plan::nodes`].
    pub node: Option<usize>,
}

impl Step {
    /// The docker command it runs, if it runs one.
    pub fn argv(&self) -> Option<&Argv> {
        match &self.action {
            Action::Docker(argv)
            | Action::Transfer(Transfer { argv, .. })
            | Action::CheckRoom(RoomCheck { measure: argv, .. }) => Some(argv),
            _ => None,
        }
    }

    /// Every docker command it runs: its one, or each of a parallel step's.
    pub fn commands(&self) -> Vec<&Argv> {
        match &self.action {
            Action::Parallel(argvs) => argvs.iter().collect(),
            _ => self.argv().into_iter().collect(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanKind {
    Upgrade,
    Rollback,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub kind: PlanKind,
    /// The engine every command addresses.
    pub engine: EngineTarget,
    pub container: String,
    pub from: ImageRef,
    pub from_version: String,
    pub to: ImageRef,
    pub mode: DbMode,
    /// Set in embedded mode: the container that holds the data volumes.
    pub data_container: Option<String>,
    /// The backup the upgrade writes (or the rollback restores): the archive of the data
    /// volumes, or the dump of the external database.
    pub backup_archive: Option<Archive>,
    pub warnings: Vec<String>,
    pub steps: Vec<Step>,
    /// The indexes of steps an earlier, interrupted run finished: shown as done, not run again,
    /// and their way back still counts.
    pub done_earlier: Vec<usize>,
    /// A cluster's nodes, in the order they start; empty for one server.
    pub nodes: Vec<PlanNode>,
}

/// A node of a cluster, as its steps address it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlanNode {
    /// How `--node` named its engine.
    pub name: String,
    pub engine: EngineTarget,
    pub container: String,
}

impl Plan {
    /// The steps that return to the old server once `done` steps have run, in order: each
    /// done step's undo, last first, then the wait for the old server to answer.
    pub fn way_back<'a>(&self, done: impl IntoIterator<Item = &'a Step>) -> Vec<Step> {
        let done: Vec<&Step> = done.into_iter().collect();
        // Until the new version ran, the data is as the old one left it: nothing to restore.
        let data_touched = done.iter().any(|s| s.id == StepId::RunNew);
        let mut steps: Vec<Step> = Vec::new();
        for undo in done.iter().rev().flat_map(|step| step.undo.iter()) {
            // Two steps can have the same undo (the new server's start and its creation both
            // end in its removal): once done, the second would find nothing to undo.
            let repeated = steps.iter().any(|s| s.action == undo.action);
            if !repeated && (data_touched || undo.id != StepId::RestoreData) {
                steps.push(undo.clone());
            }
        }
        // Back means answering: also when the old server only got its name or policy back.
        // In a cluster, each node the way back touched.
        let waits: Vec<Step> = self
            .steps
            .iter()
            .filter(|s| s.id == StepId::WaitHealthy)
            .filter(|wait| steps.iter().any(|undo| undo.node == wait.node))
            .map(|wait| Step {
                id: StepId::WaitOldHealthy,
                // The new server's wait, already named for its node.
                title: format!("{} again", wait.title),
                reason: format!(
                    "The old server is back only once it answers on the data it ran on ({}).",
                    self.from_version
                ),
                changes: false,
                skipped: None,
                undo: vec![],
                ..wait.clone()
            })
            .collect();
        steps.extend(waits);
        steps
    }

    /// Every step before removing the old container: the way back from a finished new server.
    pub fn steps_before_removal(&self) -> impl Iterator<Item = &Step> {
        self.steps
            .iter()
            .enumerate()
            .take_while(|(_, s)| s.id != StepId::RemoveOld)
            .filter(|(i, s)| s.skipped.is_none() || self.done_earlier.contains(i))
            .map(|(_, s)| s)
    }

    /// Every docker command of the plan and of its way back.
    pub fn argvs(&self) -> impl Iterator<Item = &Argv> {
        self.steps
            .iter()
            .flat_map(|s| std::iter::once(s).chain(s.undo.iter()))
            .flat_map(Step::commands)
    }
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
        DbMode::External => false,
        DbMode::Embedded => check_data_container(discovery, options, &mut refusals),
    };
    if options.backup.is_none() {
        warnings.push(match server.mode {
            DbMode::Embedded => "--no-backup: if the new version fails after migrating the database, the old one may refuse it, and there is no archive to restore".to_string(),
            DbMode::External => "--no-backup: the external database is not dumped, and the new version migrates it in place; if it fails, the old one may refuse the migrated schema. The upgrade asks you to confirm a dump of your own first".to_string(),
        });
    }
    warnings.extend(server.not_carried.iter().cloned());
    if password_in_arguments(&server.carried.args) {
        warnings.push(format!(
            "{DB_PASSWORD_FLAG} is an argument of the server's own command, which docker takes on its command line only: its value shows in `ps` while `{} create` runs (secret env vars travel in docker's environment instead). Start the server with -e CATTLE_DB_CATTLE_PASSWORD (the entry script reads it) in place of {DB_PASSWORD_FLAG} to keep it off every command line",
            discovery.engine.program
        ));
    }

    let steps: Vec<Step> = remove_leftovers_step(discovery)
        .into_iter()
        .chain(build_steps(
            &discovery.engine,
            server,
            &target,
            options,
            reuse_data_container,
        ))
        .collect();
    // A value several steps pass (the password: the create's argument, the dump's and the
    // restore's environment) is named once, at its first step.
    let mut refused_values = BTreeSet::new();
    for step in steps.iter().flat_map(|s| std::iter::once(s).chain(&s.undo)) {
        if let Some(word) = step.argv().and_then(Argv::first_control_character)
            && refused_values.insert(&word.value()[word.visible_prefix().len()..])
        {
            refusals.push(format!(
                "step {:?} would pass {:?}, which holds a control character no pasted command can carry; remove it from the settings of {}",
                step.title,
                word.shown(Reveal::Masked),
                server.name
            ));
        }
    }

    if server.release().chars().any(char::is_control) {
        refusals.push(format!(
            "the version of {} ({:?}) holds a control character; check the container's CATTLE_RANCHER_SERVER_VERSION",
            server.name,
            server.release()
        ));
    }
    if !refusals.is_empty() {
        return Err(Refusal::Preflight(refusals));
    }
    // A setting shown in a warning may hold a secret value the plan masks elsewhere.
    let masker = Masker::for_argvs(
        steps
            .iter()
            .flat_map(|s| std::iter::once(s).chain(&s.undo))
            .filter_map(Step::argv),
    );
    let warnings = warnings.iter().map(|w| masker.mask(w)).collect();
    Ok(Plan {
        kind: PlanKind::Upgrade,
        engine: discovery.engine.clone(),
        container: server.name.clone(),
        from: server.image.clone(),
        from_version: server.release().to_string(),
        to: target,
        mode: server.mode,
        data_container: (server.mode == DbMode::Embedded).then(|| options.data_container.clone()),
        backup_archive: options
            .backup
            .as_ref()
            .map(|backup| backup_archive(server, backup, backup_content(server.mode))),
        warnings,
        steps,
        done_earlier: Vec::new(),
        nodes: Vec::new(),
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
    // Every path the server keeps there: the data paths, and its anonymous volumes.
    let paths: BTreeSet<&str> = DATA_PATHS
        .iter()
        .copied()
        .chain(server.data_mounts.keys().map(String::as_str))
        .collect();
    let differences: Vec<String> = paths
        .into_iter()
        .filter(|path| existing.mounts.get(*path) != server.data_mounts.get(*path))
        .map(|path| {
            format!(
                "{path}: {} has {}, {} has {}",
                server.name,
                describe_mount(server.data_mounts.get(path)),
                name,
                describe_mount(existing.mounts.get(path)),
            )
        })
        .collect();
    if differences.is_empty() {
        if existing.takes_volumes_from(&server.name) {
            refusals.push(format!(
                "data container {name} takes its volumes from {server_name} by name, and {server_name} (the new server as well) takes its volumes from {name}: dockerd never finishes starting on such a loop (moby#38825). Pass --data-container {name}-{tag}: the upgrade creates it with the very volumes of {server_name}, named one by one, and the loop is gone once the old container is removed",
                server_name = server.name,
                tag = server.image.effective_tag(),
            ));
            return false;
        }
        return true;
    }
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

/// A step that runs `argv`, changes something, is not skipped, and has no way back of its own.
pub(crate) fn step(id: StepId, title: String, reason: impl Into<String>, argv: Argv) -> Step {
    step_doing(id, title, reason, Action::Docker(argv))
}

/// Like [`step`], for any action.
fn step_doing(id: StepId, title: String, reason: impl Into<String>, action: Action) -> Step {
    Step {
        id,
        title,
        reason: reason.into(),
        action,
        changes: true,
        skipped: None,
        undo: vec![],
        node: None,
    }
}

/// The names and paths every step of one plan shares.
struct Names<'a> {
    engine: &'a EngineTarget,
    server: &'a Server,
    name: &'a str,
    parked: String,
    data: &'a str,
    stop_timeout: String,
}

impl Names<'_> {
    fn stop(&self, container: &str) -> Argv {
        self.engine
            .command()
            .args(["stop", "-t"])
            .arg(&self.stop_timeout)
            .arg(container)
    }
}

fn build_steps(
    engine: &EngineTarget,
    server: &Server,
    target: &ImageRef,
    options: &PlanOptions,
    reuse_data_container: bool,
) -> Vec<Step> {
    let names = Names {
        engine,
        server,
        name: &server.name,
        parked: server.parked_name(),
        data: &options.data_container,
        stop_timeout: server
            .carried
            .stop_timeout
            .unwrap_or(options.stop_timeout_seconds)
            .to_string(),
    };
    let name = names.name;
    let embedded = server.mode == DbMode::Embedded;

    let mut steps = vec![step(
        StepId::Pull,
        format!("Pull {target}"),
        "The doc pulls after stopping; pulling first keeps the download out of the downtime, and a missing tag fails before anything stops.",
        engine.command().arg("pull").arg(target.to_string()),
    )];
    if let (true, Some(backup)) = (embedded, &options.backup) {
        steps.push(room_step(engine, server, &backup.dir));
    }
    let database = server.carried.external_database();
    if let (Some(database), None) = (&database, &options.backup) {
        steps.push(Step {
            id: StepId::ConfirmDatabaseBackup,
            title: "Back up the external database".into(),
            reason: "The new version migrates the database in place, no volume of this host holds it, and --no-backup takes no dump of it.".into(),
            action: Action::Manual(mysqldump_line(database)),
            changes: false,
            skipped: None,
            undo: vec![],
            node: None,
        });
    }
    let restart = server.carried.restart.as_ref();
    let removed_to_keep_down = removal_keeps_down(engine, server);
    let keep_down_skipped = match restart {
        None => Some(format!("{name} has no restart policy")),
        Some(_) if removed_to_keep_down => Some(format!(
            "{} can't change a restart policy; once stopped, {} is removed instead, at step \"{}\"",
            engine.program,
            names.parked,
            remove_parked_title(&names.parked)
        )),
        Some(_) if !engine.kind.updates_restart_policy() => Some(format!(
            "{} can't change a restart policy; it starts a stopped container at boot only through podman-restart.service, and only one whose policy is always",
            engine.program
        )),
        Some(_) => None,
    };
    steps.push(Step {
        skipped: keep_down_skipped,
        undo: restart
            .map(|policy| {
                restore_restart_step(engine, name, &policy.flag_value())
            })
            .into_iter()
            .collect(),
        ..step(
            StepId::DisableRestart,
            format!("Keep {name} down after a reboot"),
            "With its restart policy the old server would come back after a reboot and run the old version on the data (rancher#3519).",
            engine.command().args(["update", "--restart=no"]).arg(name),
        )
    });
    if embedded {
        steps.push(Step {
            skipped: reuse_data_container
                .then(|| format!("{} already exists and holds the volumes {name} uses", names.data)),
            ..step(
                StepId::CreateDataContainer,
                format!("Create the data container {}", names.data),
                format!(
                    "The data container holds the database volumes, so every later server starts with --volumes-from it (doc step 2). The doc makes it with --volumes-from {name}; it names each volume instead (-v VOLUME:PATH), so it refers to no container: no loop with the new server, which takes the name {name} and --volumes-from it, can hang dockerd at its next start (moby#38825), and no other setting of {name} (a tmpfs, a --mount, a device) can keep it from being made."
                ),
                create_data_container(engine, server, names.data),
            )
        });
    }
    steps.push(Step {
        undo: vec![unpark_step(engine, &names.parked, name)],
        ..step(
            StepId::ParkOld,
            format!("Rename {name} to {}", names.parked),
            format!(
                "The new server takes the name {name}, which scripts and monitoring use; the old one waits under {} until the new one works.",
                names.parked
            ),
            engine.command().arg("rename").arg(name).arg(&names.parked),
        )
    });
    let data_reason = if embedded {
        format!("the data of {}", names.data)
    } else {
        "the same external database".to_string()
    };
    let when_made = match removed_to_keep_down {
        false => "It is made while the old one still runs: a setting the engine refuses stops the upgrade before any downtime.".to_string(),
        true => format!(
            "It is made only once {} has stopped, right before that container's removal: podman-restart.service starts every created container whose policy is always at boot, and at every moment one of the two holds every setting.",
            names.parked
        ),
    };
    let mut create_steps = vec![Step {
        undo: vec![remove_new_step(engine, name, &names.stop_timeout)],
        ..step(
            StepId::CreateNew,
            format!("Create {name} from {target}"),
            format!(
                "The new server gets every setting of the old one and {data_reason} (doc step 4). {when_made}"
            ),
            create_new(engine, server, name, target, embedded.then_some(names.data)),
        )
    }];
    for (index, network) in server.carried.connected_networks().enumerate() {
        create_steps.push(step(
            StepId::ConnectNetwork(index),
            format!("Connect {name} to the network {}", network.name),
            format!(
                "`create` joins one network; {name} was on {} as well, with what it had there. Removing the new container, on the way back, disconnects it.",
                network.name
            ),
            connect_network(engine, network, name),
        ));
    }
    if !removed_to_keep_down {
        steps.append(&mut create_steps);
    }
    // Only now does the server go down: everything above runs while it still answers.
    steps.push(Step {
        undo: vec![start_old_step(engine, &names.parked)],
        ..step(
            StepId::Stop,
            format!("Stop {}", names.parked),
            match database {
                None => format!(
                    "The database must be quiet before its volumes move to the new server; {} s lets MySQL shut down cleanly.",
                    names.stop_timeout
                ),
                Some(_) => format!(
                    "Every write of the old server must be in the database before the new version migrates it (and before its dump); {} s lets it shut down cleanly.",
                    names.stop_timeout
                ),
            },
            names.stop(&names.parked),
        )
    });
    match (&database, &options.backup) {
        (None, Some(backup)) => steps.push(backup_step(&names, backup)),
        (Some(database), Some(backup)) => {
            steps.push(database_backup_step(engine, server, database, backup))
        }
        (_, None) => {}
    }
    if removed_to_keep_down {
        steps.append(&mut create_steps);
        steps.push(remove_parked_step(&names));
    }
    steps.push(Step {
        undo: vec![
            stop_new_step(engine, name, &names.stop_timeout),
            remove_new_step(engine, name, &names.stop_timeout),
        ],
        ..step(
            StepId::RunNew,
            format!("Start {name} ({target})"),
            format!("The new server runs on {data_reason}, with every setting of the old one (doc step 4)."),
            engine.command().arg("start").arg(name),
        )
    });
    steps.push(Step {
        id: StepId::WaitHealthy,
        title: format!("Wait until {name} answers /ping"),
        reason: "The old container goes only once the new server answers; migrations can take many minutes.".into(),
        action: Action::WaitHealthy(probe(
            engine,
            name,
            options.health_url.clone(),
            options.health_timeout_seconds,
        )),
        changes: false,
        skipped: None,
        undo: vec![],
        node: None,
    });
    steps.push(Step {
        skipped: removed_to_keep_down.then(|| {
            format!(
                "{} is gone already, since step \"{}\"",
                names.parked,
                remove_parked_title(&names.parked)
            )
        }),
        ..step(
            StepId::RemoveOld,
            format!("Remove the old container {}", names.parked),
            "A stopped old server with a restart policy comes back after a reboot (doc step 5); its volumes stay, without -v.",
            engine.command().arg("rm").arg(&names.parked),
        )
    });
    steps
}

/// Whether the old server is kept down after a reboot by its removal, once stopped: on an
/// engine that can't change a restart policy (podman 4.3), when the policy is `always`, the one
/// podman-restart.service starts at boot.
fn removal_keeps_down(engine: &EngineTarget, server: &Server) -> bool {
    !engine.kind.updates_restart_policy()
        && server
            .carried
            .restart
            .as_ref()
            .is_some_and(|policy| policy.name == "always")
}

fn remove_parked_title(parked: &str) -> String {
    format!("Remove the stopped {parked}, to keep it down after a reboot")
}

/// `rm` of the stopped old server (its volumes stay), whose undo creates it again under the
/// parked name, with every setting, on the same data.
fn remove_parked_step(names: &Names) -> Step {
    let engine = names.engine;
    let undo = recreate_steps(
        &names.parked,
        format!("Create {} again", names.parked),
        "The way back needs the old server, removed to keep it down after a reboot: it comes back with every setting, on the same data.",
        recreate_old(engine, names.server, names.data, &names.parked),
    );
    Step {
        undo,
        ..step(
            StepId::RemoveParked,
            remove_parked_title(&names.parked),
            format!(
                "{} can't change a restart policy, and podman-restart.service starts every container whose policy is always at boot, which would run the old version on the data. Its volumes stay (no -v); the way back creates it again.",
                engine.program
            ),
            engine.command().arg("rm").arg(&names.parked),
        )
    }
}

/// `rm -f` of the containers an earlier run left for the server, when there are any: a one-shot
/// cut off between its create and its start still holds the data volumes, and a create killed
/// halfway on podman holds its name in storage.
pub fn remove_leftovers_step(discovery: &Discovery) -> Option<Step> {
    let leftovers = &discovery.leftovers;
    (!leftovers.is_empty()).then(|| {
        step(
            StepId::RemoveLeftovers,
            format!(
                "Remove {} container{} an earlier run left",
                leftovers.len(),
                if leftovers.len() == 1 { "" } else { "s" }
            ),
            format!(
                "A run cut off while a backup, restore or check of {} was starting leaves that one-shot container on the data volumes, and one cut off in a podman create leaves a container in storage that holds the name; the volumes stay (no -v).",
                discovery.server.name
            ),
            discovery
                .engine
                .command()
                .args(["rm", "-f", "--"])
                .args(leftovers),
        )
    })
}

// The steps of a way back to the old server: an upgrade's undo, and the rollback plan.

pub fn stop_new_step(engine: &EngineTarget, name: &str, stop_timeout: &str) -> Step {
    step(
        StepId::StopNew,
        format!("Stop the new {name}"),
        "The new version must let go of the data before the old one gets it back.",
        engine
            .command()
            .args(["stop", "-t", stop_timeout])
            .arg(name),
    )
}

/// Without `-v`: the data stays where it is, in the data volumes or the external database.
pub fn remove_new_step(engine: &EngineTarget, name: &str, stop_timeout: &str) -> Step {
    let (remove, why) = match engine.kind.stop_holds_against_restarts() {
        true => (engine.command().arg("rm"), String::new()),
        false => (
            engine
                .command()
                .args(["rm", "--force", "--time", stop_timeout]),
            format!(
                " --force --time {stop_timeout}: {}'s restart policy (always as much as unless-stopped) can start a crash-looping server again right after its stop; this stops it again as gently, and removes it under one lock.",
                engine.program
            ),
        ),
    };
    step(
        StepId::RemoveNew,
        format!("Remove the new {name}"),
        format!("It frees the name for the old server; the data stays where it is.{why}"),
        remove.arg(name),
    )
}

pub fn unpark_step(engine: &EngineTarget, parked: &str, name: &str) -> Step {
    step(
        StepId::UnparkOld,
        format!("Rename {parked} back to {name}"),
        "The old server gets its name back.",
        engine.command().arg("rename").arg(parked).arg(name),
    )
}

/// `policy` as `docker update --restart` takes it.
pub fn restore_restart_step(engine: &EngineTarget, name: &str, policy: &str) -> Step {
    step(
        StepId::RestoreRestart,
        format!("Restore the restart policy of {name}"),
        "The old server comes back after a reboot, as before the upgrade.",
        engine
            .command()
            .arg("update")
            .arg(format!("--restart={policy}"))
            .arg(name),
    )
}

pub fn start_old_step(engine: &EngineTarget, container: &str) -> Step {
    step(
        StepId::StartOld,
        format!("Start {container} again"),
        "The old server runs again on its own data.",
        engine.command().arg("start").arg(container),
    )
}

/// Empties the data volumes and unpacks the tar stream on stdin into them. The tool has checked
/// the archive's checksum before it starts this, so no damaged archive empties a volume (an
/// empty /var/lib/mysql becomes a fresh database).
fn restore_script() -> String {
    format!(
        "set -e; for d in {}; do rm -rf \"$d\"/* \"$d\"/.[!.]* \"$d\"/..?*; done; tar -xf - -C /",
        DATA_PATHS.join(" ")
    )
}

/// `run` of a one-shot container for the server `server_name`, labelled so that a later run
/// finds it if this one is cut off before it is gone, with no log: the json-file driver would
/// copy the whole stream. `stdin`: it reads the tool's stream. Its program is the old image's
/// own (the image is on the engine's host already), so no other image is needed.
fn one_shot(engine: &EngineTarget, server_name: &str, stdin: bool) -> Argv {
    let argv = engine.command().args(["run", "--rm"]);
    let argv = if stdin { argv.arg("-i") } else { argv };
    argv.arg("--label")
        .arg(format!("{ONE_SHOT_LABEL}={server_name}"))
        .args(["--log-driver", "none"])
}

/// A one-shot container for the server `server_name` on the volumes of `holder`, running
/// `program` of `image`.
fn on_data_volumes(
    engine: &EngineTarget,
    server_name: &str,
    holder: &str,
    image: &str,
    program: &str,
    stdin: bool,
) -> Argv {
    one_shot(engine, server_name, stdin)
        .arg("--volumes-from")
        .arg(holder)
        .arg("--entrypoint")
        .arg(program)
        .arg(image)
}

/// The engine's tar stream of the data volumes: `docker cp` of the data container's
/// [`DATA_PARENT`], the engine's own copy with no container to start (faster than a stream out
/// of a container, BENCHMARKS.md part 3; the archive keeps only the data paths of it). Where
/// the engine's `cp` loses the owners (podman), the old image's own tar in a one-shot container.
fn volumes_stream(
    engine: &EngineTarget,
    server_name: &str,
    data_container: &str,
    image: &str,
) -> Argv {
    if engine.kind.copies_with_owners() {
        return engine
            .command()
            .arg("cp")
            .arg(format!("{data_container}:{DATA_PARENT}"))
            .arg("-");
    }
    on_data_volumes(engine, server_name, data_container, image, "tar", false)
        .args(["-cf", "-", "-C", "/"])
        .args(data_paths_relative())
}

/// Streams the data volumes out of the engine into an archive on this machine, checked as it
/// is written, and knows how to put it back.
fn backup_step(names: &Names, backup: &BackupTarget) -> Step {
    let archive = backup_archive(names.server, backup, ArchiveContent::DataVolumes);
    let old_image = old_image(names.server);
    let restore = restore_step(names.engine, names.name, names.data, &archive, &old_image);
    let title = format!("Back up the data volumes to {}", archive.path.display());
    Step {
        undo: vec![restore],
        ..step_doing(
            StepId::Backup,
            title,
            "Rancher's migrations only go forward: the way back after the new version starts is this archive. The engine streams the volumes to this machine, which keeps the data paths, compresses and checks them as they arrive.",
            Action::Transfer(Transfer {
                argv: volumes_stream(names.engine, names.name, names.data, &old_image),
                direction: Direction::Backup,
                archive,
            }),
        )
    }
}

/// Measures the data volumes of `server` (named one by one: the data container may not exist
/// yet) in a one-shot container, so that an upgrade whose archive can't fit stops before
/// anything does.
fn room_step(engine: &EngineTarget, server: &Server, dir: &Path) -> Step {
    Step {
        changes: false,
        ..step_doing(
            StepId::CheckRoom,
            format!("Check that {} has room for the backup", dir.display()),
            "A backup that runs out of room fails while the server is down; the data's size, uncompressed, is what the archive may take at most.",
            Action::CheckRoom(RoomCheck {
                measure: with_data_mounts(one_shot(engine, &server.name, false), server)
                    .args(["--entrypoint", "du"])
                    .arg(old_image(server))
                    .arg("-sk")
                    .args(DATA_PATHS),
                dir: dir.to_path_buf(),
            }),
        )
    }
}

/// Checks `archive` against its checksum on this machine: read-only, and a damaged archive
/// fails here, before anything depends on it.
pub fn verify_backup_step(archive: &Archive) -> Step {
    Step {
        changes: false,
        ..step_doing(
            StepId::VerifyBackup,
            format!("Check {} against its checksum", archive.file_name()),
            "A backup that can't be read is no way back: this stops here if it doesn't match.",
            Action::VerifyArchive(archive.clone()),
        )
    }
}

/// Empties the data volumes of `data_container` and streams `archive` back into them through
/// the engine, with `image`'s shell and tar, in a one-shot container for `server_name`.
pub fn restore_step(
    engine: &EngineTarget,
    server_name: &str,
    data_container: &str,
    archive: &Archive,
    image: &str,
) -> Step {
    step_doing(
        StepId::RestoreData,
        format!("Restore the data from {}", archive.file_name()),
        "The old version can't read a schema the new one migrated: the data goes back to what it was before the upgrade (changes made since are lost).",
        Action::Transfer(Transfer {
            argv: on_data_volumes(engine, server_name, data_container, image, "sh", true)
                .arg("-c")
                .arg(restore_script())
                .arg("restore"),
            direction: Direction::Restore,
            archive: archive.clone(),
        }),
    )
}

/// The options of a server's `create` that say how it finds hosts by name: a one-shot client
/// gets them too, so that it reaches the database the server reaches.
const NAME_RESOLUTION: [&str; 4] = ["--add-host", "--dns", "--dns-option", "--dns-search"];

/// What `mysqldump` writes, in a form every client from 5.5 on reads back: one consistent
/// snapshot without locking tables, binary columns as hex (no character set can mangle
/// them), and the database itself named, dropped and created again before its tables, so that
/// the restore needs no database name and leaves no table the new version added.
const DUMP_OPTIONS: [&str; 4] = [
    "--single-transaction",
    "--hex-blob",
    "--add-drop-database",
    "--databases",
];

/// A one-shot container of `image` running its MySQL client `program` against `database`:
/// on the network of `server`, with its name resolution; the password in docker's
/// environment (`-e MYSQL_PWD`), on no command line; over TCP, as the server's own driver
/// connects (the client would take `localhost` for a socket in the one-shot container).
fn database_client(
    engine: &EngineTarget,
    server: &Server,
    database: &ExternalDatabase,
    image: &str,
    program: &str,
    stdin: bool,
) -> Argv {
    let mut argv = one_shot(engine, &server.name, stdin);
    if let Some(network) = &server.carried.network {
        argv = argv.arg("--network").arg(network);
    }
    for option in &server.carried.options {
        if NAME_RESOLUTION.contains(&option.flag) {
            argv = argv.arg(option.word());
        }
    }
    let password = format!("{CLIENT_PASSWORD_ENV}={}", database.password);
    argv = match &database.password_secret {
        Some(secret) => argv
            .arg("-e")
            .secret_arg(password, client_password_secret(secret)),
        None => argv.arg("-e").arg(password),
    };
    argv.arg("--entrypoint")
        .arg(program)
        .arg(image)
        .args(["-h", &database.host, "-P", &database.port, "-u"])
        .arg(&database.user)
        .arg("--protocol=TCP")
}

/// Dumps the external database through the engine, with the old image's own `mysqldump`, into
/// an archive on this machine, checked as it is written; its undo is the restore. It belongs
/// after every server on the database is stopped, so that the dump holds every write, and
/// before the new version starts: a plan of several servers on one database has one.
pub fn database_backup_step(
    engine: &EngineTarget,
    server: &Server,
    database: &ExternalDatabase,
    backup: &BackupTarget,
) -> Step {
    let archive = backup_archive(server, backup, ArchiveContent::DatabaseDump);
    let image = old_image(server);
    let restore = database_restore_step(engine, server, database, &archive, &image);
    Step {
        undo: vec![restore],
        ..step_doing(
            StepId::Backup,
            format!(
                "Back up the database {} on {}:{} to {}",
                database.name,
                database.host,
                database.port,
                archive.path.display()
            ),
            "Rancher's migrations only go forward: the way back after the new version starts is this dump, taken with no server on the database, so it holds every write. The old image's mysqldump streams it to this machine, which compresses it and checks that it is whole.",
            Action::Transfer(Transfer {
                argv: database_client(engine, server, database, &image, "mysqldump", false)
                    .args(DUMP_OPTIONS)
                    .arg(&database.name),
                direction: Direction::Backup,
                archive,
            }),
        )
    }
}

/// Streams the dump `archive` back into the external database with `image`'s `mysql`: the dump
/// drops the database and creates it again as it was (it names it, so `mysql` needs no name).
pub fn database_restore_step(
    engine: &EngineTarget,
    server: &Server,
    database: &ExternalDatabase,
    archive: &Archive,
    image: &str,
) -> Step {
    step_doing(
        StepId::RestoreData,
        format!(
            "Restore the database {} from {}",
            database.name,
            archive.file_name()
        ),
        "The old version can't read a schema the new one migrated: the database goes back to the dump taken before the upgrade (changes made since are lost), before any old server starts on it.",
        Action::Transfer(Transfer {
            argv: database_client(engine, server, database, image, "mysql", true),
            direction: Direction::Restore,
            archive: archive.clone(),
        }),
    )
}

/// How a plan asks whether `container` answers: inside it, through the engine, unless
/// `--health-url` names a URL to ask from here.
pub fn probe(
    engine: &EngineTarget,
    container: &str,
    url: Option<String>,
    timeout_seconds: u64,
) -> Probe {
    Probe {
        engine: engine.clone(),
        container: container.to_string(),
        ask: engine.command().arg("exec").arg(container).args([
            "curl",
            "-fsS",
            "--max-time",
            "5",
            PING_INSIDE,
        ]),
        url,
        running: engine.inspect_container_field("{{.State.Running}}", container),
        timeout_seconds,
        expect: Expect::Pong,
    }
}

/// How a cluster's plan asks whether `container` is in its own HA list, advertising
/// `address`: through the engine, like `/ping`.
pub fn member_probe(
    engine: &EngineTarget,
    container: &str,
    address: &str,
    timeout_seconds: u64,
) -> Probe {
    Probe {
        ask: engine.command().arg("exec").arg(container).args([
            "curl",
            "-fsS",
            "--max-time",
            "5",
            MEMBERS_INSIDE,
        ]),
        expect: Expect::Member(address.to_string()),
        ..probe(engine, container, None, timeout_seconds)
    }
}

/// Where the server lists the nodes of its cluster, inside its own container.
const MEMBERS_INSIDE: &str = "http://127.0.0.1:8080/v2-beta/clustermemberships";

/// Where the server answers inside its own container.
const PING_INSIDE: &str = "http://127.0.0.1:8080/ping";

/// What the backup of a server in `mode` holds.
pub fn backup_content(mode: DbMode) -> ArchiveContent {
    match mode {
        DbMode::Embedded => ArchiveContent::DataVolumes,
        DbMode::External => ArchiveContent::DatabaseDump,
    }
}

/// `DIR/rancher-data-backup-<old version>-<UTC time>.tar.zst` (or `.tar.gz`), or for the
/// external database's dump `DIR/rancher-db-backup-<old version>-<UTC time>.sql.zst`.
fn backup_archive(server: &Server, backup: &BackupTarget, content: ArchiveContent) -> Archive {
    let version: String = server
        .release()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    Archive::new(&backup.dir, &version, &backup.stamp, content, backup.format)
}

/// The mysqldump line an operator runs by hand, for this server's database, with the options
/// the tool's own dump takes; `-p` asks for the password.
fn mysqldump_line(database: &ExternalDatabase) -> String {
    let dump = Argv::new("mysqldump")
        .args(["-h", &database.host, "-P", &database.port, "-u"])
        .arg(&database.user)
        .arg("-p")
        .args(DUMP_OPTIONS)
        .arg(&database.name);
    format!("{} > rancher-db-backup.sql", dump.display(Reveal::Plain))
}

/// What a rollback runs when the old container is gone: `create` of the old server as it was,
/// named `name`, on the data container, then a `network connect` for each of its other
/// networks. A release tag names the image; a moving tag (`stable`) would name another release
/// by then, so the image id does.
pub fn recreate_old(
    engine: &EngineTarget,
    server: &Server,
    data_container: &str,
    name: &str,
) -> Vec<Argv> {
    let image = ImageRef::parse(&old_image(server)).unwrap_or_else(|_| server.image.clone());
    let data = (server.mode == DbMode::Embedded).then_some(data_container);
    std::iter::once(create_new(engine, server, name, &image, data))
        .chain(
            server
                .carried
                .connected_networks()
                .map(|network| connect_network(engine, network, name)),
        )
        .collect()
}

/// The steps that make the old server `container` again from `argvs`, its `create` (under
/// `title`, for `reason`) and then a `network connect` to each of its other networks.
pub fn recreate_steps(container: &str, title: String, reason: &str, argvs: Vec<Argv>) -> Vec<Step> {
    let mut argvs = argvs.into_iter();
    let create = argvs
        .next()
        .map(|create| step(StepId::RecreateOld, title, reason, create));
    let connects = argvs.enumerate().map(|(index, connect)| {
        // `network connect ... NETWORK CONTAINER`.
        let network = connect
            .real()
            .iter()
            .rev()
            .nth(1)
            .cloned()
            .unwrap_or_default();
        step(
            StepId::ConnectNetwork(index),
            format!("Connect {container} to the network {network}"),
            "The old server was on this network as well, with what it had there.",
            connect,
        )
    });
    create.into_iter().chain(connects).collect()
}

/// The old server's image, named so that it stays that image: by its release tag when it has
/// one, else (`stable`, `latest`: the upgrade may move them) by its id.
fn old_image(server: &Server) -> String {
    match Version::parse(server.image.effective_tag()) {
        Some(_) if server.image.digest.is_none() => server.image.to_string(),
        _ => server.image_id.clone(),
    }
}

/// `create` of the data container: every volume and directory it must hold for the server,
/// each named (`-v SOURCE:PATH`, with the options the server had it with), on the old image,
/// never started.
fn create_data_container(engine: &EngineTarget, server: &Server, name: &str) -> Argv {
    let argv = engine.command().args(["create", "--name"]).arg(name);
    with_data_mounts(argv, server).arg(server.image.to_string())
}

/// `-v SOURCE:PATH[:OPTIONS]` for every volume or directory the server keeps data in, each
/// named: no reference to the server itself, so none of its other settings (a tmpfs, a
/// `--mount`) is taken along.
fn with_data_mounts(mut argv: Argv, server: &Server) -> Argv {
    for (path, source) in &server.data_mounts {
        let mount = match server.data_mount_options.get(path) {
            Some(options) => format!("{}:{path}:{options}", source.source()),
            None => format!("{}:{path}", source.source()),
        };
        argv = argv.arg("-v").arg(mount);
    }
    argv
}

/// `create` of a server named `name` on `target`: the old one's settings, the data container in
/// place of its own `--volumes-from`, its first network, and its arguments after the image.
fn create_new(
    engine: &EngineTarget,
    server: &Server,
    name: &str,
    target: &ImageRef,
    data_container: Option<&str>,
) -> Argv {
    let carried: &CarriedSettings = &server.carried;
    let mut argv = engine.command().args(["create", "--name"]).arg(name);
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
    for assignment in &carried.env {
        argv = argv.arg("-e");
        argv = match env_assignment_secret(assignment) {
            Some(secret) => argv.secret_arg(assignment, secret),
            None => argv.arg(assignment),
        };
    }
    if let Some(network) = &carried.network {
        argv = argv.arg("--network").arg(network);
    }
    if let Some(network) = carried.created_on() {
        for alias in &network.aliases {
            argv = argv.arg("--network-alias").arg(alias);
        }
        argv = addresses(argv, network, "--ip");
    }
    if let Some(timeout) = carried.stop_timeout {
        argv = argv.arg("--stop-timeout").arg(timeout.to_string());
    }
    for option in &carried.options {
        let word = option.word();
        argv = match option_value_secret(&word) {
            Some(secret) => argv.secret_arg(word, secret),
            None => argv.arg(word),
        };
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
    // A secret may stand in another setting too (a token in the healthcheck's command).
    let secrets: Vec<(String, String)> = argv
        .shell_variables()
        .map(|(var, value)| (var.to_string(), value.to_string()))
        .collect();
    argv.conceal(&secrets)
}

/// `--ip`, `--ip6` and `--link-local-ip` of a network: `ip_flag` is `create`'s `--ip` or
/// `network connect`'s, the same word.
fn addresses(mut argv: Argv, network: &NetworkAttachment, ip_flag: &str) -> Argv {
    if let Some(ip) = &network.ipv4 {
        argv = argv.arg(ip_flag).arg(ip);
    }
    if let Some(ip) = &network.ipv6 {
        argv = argv.arg(format!("{ip_flag}6")).arg(ip);
    }
    for ip in &network.link_local_ips {
        argv = argv.arg("--link-local-ip").arg(ip);
    }
    argv
}

/// `network connect` of `container` to `network`, with its aliases, addresses and links there.
fn connect_network(engine: &EngineTarget, network: &NetworkAttachment, container: &str) -> Argv {
    let mut argv = engine.command().args(["network", "connect"]);
    for alias in &network.aliases {
        argv = argv.arg("--alias").arg(alias);
    }
    argv = addresses(argv, network, "--ip");
    for link in &network.links {
        argv = argv.arg("--link").arg(link);
    }
    for (key, value) in &network.driver_options {
        argv = argv.arg("--driver-opt").arg(format!("{key}={value}"));
    }
    argv.arg(&network.name).arg(container)
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

/// Plan options for the unit tests of the plans and the renderers.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;

    /// An upgrade to `to` into rancher-data, with the defaults of the command line and a
    /// backup into `backup_dir` stamped `stamp`.
    pub fn options(to: &str, backup_dir: &str, stamp: &str) -> PlanOptions {
        PlanOptions {
            target: Target::parse(to).unwrap(),
            data_container: "rancher-data".into(),
            allow_downgrade: false,
            force: false,
            health_url: None,
            health_timeout_seconds: 900,
            stop_timeout_seconds: 60,
            backup: Some(BackupTarget {
                dir: backup_dir.into(),
                stamp: stamp.into(),
                format: ArchiveFormat::Zstd,
            }),
        }
    }
}

#[cfg(test)]
mod tests;
