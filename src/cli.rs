//! The command line, and its validation into a [`Config`] before anything runs.

use crate::archive::{Archive, ArchiveFormat};
use crate::error::bad_input;
use crate::image::Target;
use crate::plan::{BackupTarget, PlanOptions};
use crate::render::Format;
use crate::transcript::compact_utc_now;
use anyhow::Result;
use clap::builder::FalseyValueParser;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "rancher-upgrade",
    version,
    about = "Upgrade a Docker-hosted Rancher 1.x server the documented way, without losing a byte",
    long_about = None,
    after_help = "Exit codes: 0 done, 1 a docker command or a check failed, 2 bad input or a refused preflight, 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Upgrade the server: show each step, ask, and run it (or only print with --dry-run).
    Upgrade(UpgradeArgs),
    /// Print the upgrade runbook for this server (Markdown by default). Changes nothing.
    Runbook(RunbookArgs),
    /// Return to the version before the last upgrade, restoring its backup.
    Rollback(RollbackArgs),
}

/// Which server, and how to reach and judge it.
#[derive(Debug, Args)]
struct ServerArgs {
    /// The Rancher server container [default: the one running rancher/server container]
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    container: Option<String>,
    /// The container that keeps the database volumes between versions
    #[arg(
        long,
        value_name = "NAME",
        default_value = "rancher-data",
        allow_hyphen_values = true
    )]
    data_container: String,
    /// Show secret values (database password, *PASS*/*SECRET*/*TOKEN*/*KEY* env) instead of masking them
    #[arg(long)]
    show_secrets: bool,
    /// The docker or podman binary [default: docker on PATH, else podman]
    #[arg(long, value_name = "PATH", env = "RANCHER_UPGRADE_DOCKER")]
    docker: Option<PathBuf>,
    /// The docker context (podman: connection) of the engine the server runs on; every command gets it
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    context: Option<String>,
    /// Where the server answers `pong` [default: /ping on the host port bound to 8080]
    #[arg(long, value_name = "URL", allow_hyphen_values = true)]
    health_url: Option<String>,
    /// How long to wait for the server to answer /ping (migrations can be slow)
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    health_timeout: u64,
    /// How long `docker stop` lets a server shut down, unless the container sets its own
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    stop_timeout: u64,
    /// Where backups, the state file and the transcript go
    #[arg(long, value_name = "DIR", default_value = ".")]
    backup_dir: PathBuf,
}

/// What to upgrade to.
#[derive(Debug, Args)]
struct TargetArgs {
    /// The release to upgrade to: a tag (v1.6.30) or a full image reference
    #[arg(long, value_name = "TARGET", allow_hyphen_values = true)]
    to: String,
    /// Allow a target older than the running release (migrations are forward-only: have a backup)
    #[arg(long)]
    allow_downgrade: bool,
    /// Accept a server or target whose image is not rancher/server
    #[arg(long)]
    force: bool,
    /// Skip the backup of the data volumes (then no rollback can restore them)
    #[arg(long)]
    no_backup: bool,
    /// How the backup is compressed: zstd (fast, `.tar.zst`) or gzip (Rancher's docs' `.tar.gz`)
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = ArchiveFormat::Zstd)]
    backup_format: ArchiveFormat,
}

/// How to run, or only show, the plan.
#[derive(Debug, Args)]
struct RunArgs {
    /// Only print the commands; run nothing that changes anything
    #[arg(long)]
    dry_run: bool,
    /// How --dry-run prints the plan
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Answer yes to every question (also RANCHER_UPGRADE_YES=1)
    #[arg(long, short = 'y', env = "RANCHER_UPGRADE_YES", value_parser = FalseyValueParser::new())]
    yes: bool,
    /// Show each docker command's full output as it runs (secrets still masked)
    #[arg(long, short = 'v')]
    verbose: bool,
    /// The transcript file [default: rancher-upgrade-NAME-TIME.log in --backup-dir]
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Stop a docker command that has not finished after this many seconds (0: never)
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    step_timeout: u64,
}

#[derive(Debug, Args)]
struct UpgradeArgs {
    /// Set aside the record of an earlier upgrade in --backup-dir (kept, renamed) and plan from the engine as it is now
    #[arg(long)]
    fresh: bool,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Args)]
struct RunbookArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    target: TargetArgs,
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    format: Format,
}

#[derive(Debug, Args)]
struct RollbackArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    run: RunArgs,
    /// The archive to restore [default: the backup the last upgrade recorded]
    #[arg(long, value_name = "FILE")]
    backup: Option<PathBuf>,
}

/// What to do with the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Print it: `--dry-run` and `runbook`.
    Show(Format),
    /// Run it.
    Execute(Execution),
}

/// How to run the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    pub assume_yes: bool,
    pub verbose: bool,
    pub log: Option<PathBuf>,
    pub step_timeout: Option<Duration>,
}

/// Which plan to make.
#[derive(Clone, Debug)]
pub enum Task {
    Upgrade(PlanOptions),
    Rollback { backup: Option<Archive> },
}

/// The validated command line.
#[derive(Clone, Debug)]
pub struct Config {
    pub task: Task,
    pub action: Action,
    pub container: Option<String>,
    pub data_container: String,
    pub docker: Option<PathBuf>,
    pub context: Option<String>,
    /// `upgrade --fresh`: ignore the record of an earlier upgrade.
    pub fresh: bool,
    pub show_secrets: bool,
    pub backup_dir: PathBuf,
    pub health_url: Option<String>,
    pub health_timeout_seconds: u64,
    pub stop_timeout_seconds: u64,
}

impl RunArgs {
    fn action(self) -> Action {
        if self.dry_run {
            return Action::Show(self.format);
        }
        Action::Execute(Execution {
            assume_yes: self.yes,
            verbose: self.verbose,
            log: self.log,
            step_timeout: (self.step_timeout > 0).then(|| Duration::from_secs(self.step_timeout)),
        })
    }
}

impl Config {
    pub fn from_cli(cli: Cli) -> Result<Config> {
        let fresh = matches!(&cli.command, Command::Upgrade(args) if args.fresh);
        let (server, target, action, rollback_backup) = match cli.command {
            Command::Upgrade(args) => (args.server, Some(args.target), args.run.action(), None),
            Command::Runbook(args) => (
                args.server,
                Some(args.target),
                Action::Show(args.format),
                None,
            ),
            Command::Rollback(args) => (args.server, None, args.run.action(), args.backup),
        };
        let run_log = match &action {
            Action::Execute(execution) => execution.log.clone(),
            Action::Show(_) => None,
        };
        if let Some(name) = &server.container {
            check_container_name("--container", name)?;
        }
        check_container_name("--data-container", &server.data_container)?;
        if server.container.as_deref() == Some(server.data_container.as_str()) {
            return Err(bad_input(format!(
                "--data-container {0} is the server itself; the data container needs a name of its own (the doc's is rancher-data)",
                server.data_container
            )));
        }
        if let Some(url) = &server.health_url {
            check_health_url(url)?;
        }
        if server.health_timeout == 0 {
            return Err(bad_input(
                "--health-timeout 0 would never let the server answer; give seconds, for example 900",
            ));
        }
        if let Some(context) = &server.context
            && (context.is_empty() || context.chars().any(char::is_control))
        {
            return Err(bad_input(
                "--context is empty or holds a control character; name a context that `docker context ls` lists",
            ));
        }
        let backup_dir = shown_path("--backup-dir", &server.backup_dir)?;
        if !backup_dir.is_dir() {
            return Err(bad_input(format!(
                "--backup-dir {} is not a directory; name a directory for the backups",
                server.backup_dir.display()
            )));
        }
        if let Some(log) = &run_log {
            let dir = match log.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => std::path::Path::new("."),
            };
            let why = if log.is_dir() {
                Some("it is a directory")
            } else if !dir.is_dir() {
                Some("its directory does not exist")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(bad_input(format!(
                    "can't write the transcript {}: {why}; choose another file with --log FILE",
                    log.display()
                )));
            }
        }
        let task = match target {
            Some(target) => Task::Upgrade(PlanOptions {
                target: Target::parse(&target.to).map_err(bad_input)?,
                data_container: server.data_container.clone(),
                allow_downgrade: target.allow_downgrade,
                force: target.force,
                health_url: server.health_url.clone(),
                health_timeout_seconds: server.health_timeout,
                stop_timeout_seconds: server.stop_timeout,
                backup: (!target.no_backup).then(|| BackupTarget {
                    dir: backup_dir.clone(),
                    stamp: compact_utc_now(),
                    format: target.backup_format,
                }),
            }),
            None => Task::Rollback {
                backup: rollback_backup
                    .map(|file| {
                        let path = shown_path("--backup", &file)?;
                        archive_at(path).ok_or_else(|| {
                            bad_input(format!(
                                "--backup {} is neither a zstd nor a gzip archive; name the archive the upgrade wrote (rancher-data-backup-*.tar.zst or .tar.gz)",
                                file.display()
                            ))
                        })
                    })
                    .transpose()?,
            },
        };
        Ok(Config {
            task,
            action,
            container: server.container,
            data_container: server.data_container,
            docker: server.docker,
            context: server.context,
            fresh,
            show_secrets: server.show_secrets,
            backup_dir,
            health_url: server.health_url,
            health_timeout_seconds: server.health_timeout,
            stop_timeout_seconds: server.stop_timeout,
        })
    }
}

/// The absolute path of an existing file or directory, as UTF-8 text a runbook shows and a
/// pasted command carries intact.
fn shown_path(option: &str, path: &std::path::Path) -> Result<PathBuf> {
    let absolute = std::fs::canonicalize(path).map_err(|error| {
        bad_input(format!(
            "{option} {}: {error}; name an existing path",
            path.display()
        ))
    })?;
    match absolute.to_str() {
        Some(text) if !text.chars().any(char::is_control) => Ok(absolute),
        _ => Err(bad_input(format!(
            "{option} {}: a path that is not UTF-8 or holds a control character can't be shown in a runbook; choose another",
            path.display()
        ))),
    }
}

/// The archive at `path`, when it starts like one of the backups' formats: a cheap check that
/// needs no engine, so a wrong `--backup` is refused before anything runs.
pub fn archive_at(path: PathBuf) -> Option<Archive> {
    ArchiveFormat::of_file(&path).map(|format| Archive { path, format })
}

/// Longer names are refused: they end up in file names beside the backups.
const MAX_NAME_LENGTH: usize = 128;

/// Docker's own rule for names, so a bad one fails here and not halfway through.
fn check_container_name(option: &str, name: &str) -> Result<()> {
    if name.len() > MAX_NAME_LENGTH {
        return Err(bad_input(format!(
            "{option} is {} characters long; a container name here holds at most {MAX_NAME_LENGTH}",
            name.len()
        )));
    }
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(())
    } else {
        Err(bad_input(format!(
            "{option} {name:?} is not a container name: it starts with a letter or digit and holds only letters, digits, '_', '.' and '-'"
        )))
    }
}

fn check_health_url(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("http://")
        .filter(|rest| !rest.is_empty())
        .filter(|rest| !rest.chars().any(|c| c.is_whitespace() || c.is_control()));
    match rest {
        Some(_) => Ok(()),
        None => Err(bad_input(format!(
            "--health-url {url:?} is not a plain http:// URL without spaces, like http://127.0.0.1:8080/ping"
        ))),
    }
}
