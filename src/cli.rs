//! The command line, and its validation into a [`Config`] before anything runs.

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
}

#[derive(Debug, Args)]
struct Selection {
    /// The Rancher server container [default: the one running rancher/server container]
    #[arg(long, value_name = "NAME")]
    container: Option<String>,
    /// The release to upgrade to: a tag (v1.6.30) or a full image reference
    #[arg(long, value_name = "TARGET")]
    to: String,
    /// The container that keeps the database volumes between versions
    #[arg(long, value_name = "NAME", default_value = "rancher-data")]
    data_container: String,
    /// Show secret values (database password, *PASS*/*SECRET*/*TOKEN*/*KEY* env) instead of masking them
    #[arg(long)]
    show_secrets: bool,
    /// The docker binary [default: docker on PATH]
    #[arg(long, value_name = "PATH", env = "RANCHER_UPGRADE_DOCKER")]
    docker: Option<PathBuf>,
    /// Allow a target older than the running release (migrations are forward-only: have a backup)
    #[arg(long)]
    allow_downgrade: bool,
    /// Accept a server or target whose image is not rancher/server
    #[arg(long)]
    force: bool,
    /// Where the new server answers `pong` [default: /ping on the host port bound to 8080]
    #[arg(long, value_name = "URL")]
    health_url: Option<String>,
    /// How long to wait for the new server to answer /ping (migrations can be slow)
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    health_timeout: u64,
    /// How long `docker stop` lets the old server shut down, unless the container sets its own
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    stop_timeout: u64,
    /// Where backups, the state file and the transcript go
    #[arg(long, value_name = "DIR", default_value = ".")]
    backup_dir: PathBuf,
    /// Skip the backup of the data volumes (then no rollback can restore them)
    #[arg(long)]
    no_backup: bool,
}

#[derive(Debug, Args)]
struct UpgradeArgs {
    #[command(flatten)]
    selection: Selection,
    /// Only print the commands; run nothing that changes anything
    #[arg(long)]
    dry_run: bool,
    /// How to print the plan
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
struct RunbookArgs {
    #[command(flatten)]
    selection: Selection,
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    format: Format,
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

/// The validated command line.
#[derive(Clone, Debug)]
pub struct Config {
    pub action: Action,
    pub container: Option<String>,
    pub docker: Option<PathBuf>,
    pub show_secrets: bool,
    pub backup_dir: PathBuf,
    pub plan: PlanOptions,
}

impl Config {
    pub fn from_cli(cli: Cli) -> Result<Config> {
        let (selection, action) = match cli.command {
            Command::Upgrade(args) => {
                let action = if args.dry_run {
                    Action::Show(args.format)
                } else {
                    Action::Execute(Execution {
                        assume_yes: args.yes,
                        verbose: args.verbose,
                        log: args.log,
                        step_timeout: (args.step_timeout > 0)
                            .then(|| Duration::from_secs(args.step_timeout)),
                    })
                };
                (args.selection, action)
            }
            Command::Runbook(args) => (args.selection, Action::Show(args.format)),
        };
        if let Some(name) = &selection.container {
            check_container_name("--container", name)?;
        }
        check_container_name("--data-container", &selection.data_container)?;
        if selection.container.as_deref() == Some(selection.data_container.as_str()) {
            return Err(bad_input(format!(
                "--data-container {0} is the server itself; the data container needs a name of its own (the doc's is rancher-data)",
                selection.data_container
            )));
        }
        let target = Target::parse(&selection.to).map_err(bad_input)?;
        if let Some(url) = &selection.health_url {
            check_health_url(url)?;
        }
        if selection.health_timeout == 0 {
            return Err(bad_input(
                "--health-timeout 0 would never let the new server answer; give seconds, for example 900",
            ));
        }
        let backup_dir = std::fs::canonicalize(&selection.backup_dir).map_err(|error| {
            bad_input(format!(
                "--backup-dir {}: {error}; create it, or choose another directory",
                selection.backup_dir.display()
            ))
        })?;
        Ok(Config {
            action,
            container: selection.container,
            docker: selection.docker,
            show_secrets: selection.show_secrets,
            backup_dir: backup_dir.clone(),
            plan: PlanOptions {
                target,
                data_container: selection.data_container,
                allow_downgrade: selection.allow_downgrade,
                force: selection.force,
                health_url: selection.health_url,
                health_timeout_seconds: selection.health_timeout,
                stop_timeout_seconds: selection.stop_timeout,
                backup: (!selection.no_backup).then(|| BackupTarget {
                    dir: backup_dir,
                    stamp: compact_utc_now(),
                }),
            },
        })
    }
}

/// Docker's own rule for names, so a bad one fails here and not halfway through.
fn check_container_name(option: &str, name: &str) -> Result<()> {
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
