//! The command line, and its validation into a [`Config`] before anything runs.

use crate::archive::{Archive, ArchiveFormat};
use crate::error::{EXIT_CODES, bad_input};
use crate::image::Target;
use crate::node::NodeSpec;
use crate::plan::{BackupTarget, PlanOptions};
use crate::render::Format;
use crate::status::{self, ReportFormat};
use crate::transcript::compact_utc_now;
use anyhow::Result;
use clap::builder::FalseyValueParser;
use clap::{Args, ColorChoice, CommandFactory, FromArgMatches, Parser, Subcommand};
use clap_complete::Shell;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "rancher-upgrade",
    version,
    about = "Upgrade a Docker-hosted Rancher 1.x server the documented way, without losing a byte",
    long_about = "Upgrade a Docker-hosted Rancher 1.x server the documented way, without losing a byte.

rancher-upgrade reads the server with docker inspect and renders each step of the documented upgrade as the exact docker command for this server. It shows each command, asks before running it, and runs it: it pulls first, parks the old container, backs the data volumes up before the new version starts, waits for /ping to answer, and rolls back by itself when the new version fails. It never deletes data and never prints a secret."
)]
pub struct Cli {
    /// When to colour the output: auto colours a terminal, unless NO_COLOR is set; CLICOLOR_FORCE colours a pipe too
    #[arg(long, value_name = "WHEN", global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

/// Two commands an operator can paste, with what each does, for every command: the end of
/// its `--help`, and the EXAMPLES of the manual page.
pub const EXAMPLES: [(&str, [(&str, &str); 2]); 7] = [
    (
        "rancher-upgrade",
        [
            (
                "See the plan for this server: the exact docker commands; nothing runs",
                "rancher-upgrade upgrade --container rancher --to v1.6.30 --dry-run",
            ),
            (
                "Upgrade unattended, backups in /srv/backups, and a JSON result for automation",
                "rancher-upgrade upgrade --container rancher --to v1.6.30 --backup-dir /srv/backups --yes --result result.json",
            ),
        ],
    ),
    (
        "upgrade",
        [
            (
                "Upgrade, asking before each step (y = yes, n = stop here, a = yes to all)",
                "rancher-upgrade upgrade --container rancher --to v1.6.30 --backup-dir /srv/backups",
            ),
            (
                "Unattended, with a JSON result of what ran",
                "rancher-upgrade upgrade --container rancher --to v1.6.30 --backup-dir /srv/backups --yes --result result.json",
            ),
        ],
    ),
    (
        "runbook",
        [
            (
                "A Markdown runbook to review",
                "rancher-upgrade runbook --container rancher --to v1.6.30",
            ),
            (
                "A bash script that performs the upgrade",
                "rancher-upgrade runbook --container rancher --to v1.6.30 --format shell > upgrade.sh",
            ),
        ],
    ),
    (
        "rollback",
        [
            (
                "Only show the steps back to the version before the upgrade",
                "rancher-upgrade rollback --container rancher --backup-dir /srv/backups --dry-run",
            ),
            (
                "Roll back, asking before each step",
                "rancher-upgrade rollback --container rancher --backup-dir /srv/backups",
            ),
        ],
    ),
    (
        "status",
        [
            (
                "What the upgrades in /srv/backups did, and what to run next",
                "rancher-upgrade status --backup-dir /srv/backups",
            ),
            (
                "The same as JSON, for one server",
                "rancher-upgrade status --container rancher --backup-dir /srv/backups --format json",
            ),
        ],
    ),
    (
        "completions",
        [
            (
                "Completion in bash, for every user",
                "rancher-upgrade completions bash > /usr/share/bash-completion/completions/rancher-upgrade",
            ),
            (
                "Completion in fish, for you",
                "rancher-upgrade completions fish > ~/.config/fish/completions/rancher-upgrade.fish",
            ),
        ],
    ),
    (
        "man",
        [
            ("Read the manual page", "rancher-upgrade man | man -l -"),
            (
                "Install it",
                "rancher-upgrade man | gzip > /usr/local/share/man/man1/rancher-upgrade.1.gz",
            ),
        ],
    ),
];

/// The examples of a command (`rancher-upgrade` or a subcommand's name).
pub fn examples(command: &str) -> &'static [(&'static str, &'static str); 2] {
    EXAMPLES
        .iter()
        .find(|(name, _)| *name == command)
        .map(|(_, examples)| examples)
        .unwrap_or_else(|| panic!("no examples for {command}"))
}

/// The end of a command's `--help`: the exit codes, then its two examples.
fn help_footer(command: &str) -> String {
    let exit_codes: Vec<String> = EXIT_CODES
        .iter()
        .map(|(code, meaning)| format!("  {code:<4} {meaning}"))
        .collect();
    let examples: Vec<String> = examples(command)
        .iter()
        .map(|(what, example)| format!("  # {what}\n  {example}"))
        .collect();
    format!(
        "Exit codes:\n{}\n\nExamples:\n{}",
        exit_codes.join("\n"),
        examples.join("\n\n")
    )
}

/// The command line as clap parses it, each `--help` ending in the exit codes and two
/// examples; the manual page and the completion scripts are generated from it.
pub fn command() -> clap::Command {
    let command = Cli::command();
    let footer = help_footer(command.get_name());
    command.after_help(footer).mut_subcommands(|sub| {
        let footer = help_footer(sub.get_name());
        sub.after_help(footer)
    })
}

impl Cli {
    /// Parses the process's arguments; bad ones end the process with clap's message (exit 2).
    pub fn from_args() -> Cli {
        let matches = command().get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Upgrade the server: show each step, ask, and run it (or only print with --dry-run).
    Upgrade(UpgradeArgs),
    /// Print the upgrade runbook for this server (Markdown by default). Changes nothing.
    Runbook(RunbookArgs),
    /// Return to the version before the last upgrade, restoring its backup.
    Rollback(RollbackArgs),
    /// Show what --backup-dir records and what the engine runs now, and the command to run next. Changes nothing.
    Status(StatusArgs),
    /// Print a completion script for a shell (see the README for where it goes).
    Completions {
        /// The shell to complete in
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the manual page, rancher-upgrade(1), as roff (`rancher-upgrade man | man -l -`).
    Man,
}

/// The data container an upgrade uses when `--data-container` names none: the documentation's.
pub const DEFAULT_DATA_CONTAINER: &str = "rancher-data";

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
        default_value = DEFAULT_DATA_CONTAINER,
        allow_hyphen_values = true
    )]
    data_container: String,
    /// Show secret values (database password, *PASS*/*SECRET*/*TOKEN*/*KEY* env) instead of masking them
    #[arg(long)]
    show_secrets: bool,
    /// The docker or podman binary [default: docker on PATH, else podman]
    #[arg(long, value_name = "PATH", env = "RANCHER_UPGRADE_DOCKER")]
    docker: Option<PathBuf>,
    /// The docker context (podman: connection) of the engine the server runs on; every command gets it [default: the CLI's own, or DOCKER_HOST]
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
    /// A node of an HA cluster: a docker context or an engine address (ssh://, tcp://, unix://), then =CONTAINER if its server is not the one rancher/server container there; once per node, in the order they start [default: one server, --container]
    #[arg(long = "node", value_name = "ENGINE[=CONTAINER]")]
    nodes: Vec<String>,
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
    /// Skip the backup of the data volumes or the dump of the external database (then no rollback can restore them; an external database's upgrade asks you to confirm a dump of your own)
    #[arg(long)]
    no_backup: bool,
    /// How the backup is compressed: zstd (fast, `.tar.zst`, a dump `.sql.zst`) or gzip (Rancher's docs' `.tar.gz`, `.sql.gz`)
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = ArchiveFormat::Zstd)]
    backup_format: ArchiveFormat,
    /// With --node: how long a node that answers settles before the next one starts
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    settle: u64,
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
    /// Answer yes to every question
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
    /// Write what the run did to this file as JSON, however it ends (see the README for the schema) [default: none]
    #[arg(long, value_name = "FILE", conflicts_with = "dry_run")]
    result: Option<PathBuf>,
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
    /// How to print the runbook
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    format: Format,
}

#[derive(Debug, Args)]
struct RollbackArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    run: RunArgs,
    /// The archive or the database dump to restore [default: the backup the last upgrade recorded]
    #[arg(long, value_name = "FILE")]
    backup: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct StatusArgs {
    /// The server whose upgrades to show [default: every upgrade recorded in --backup-dir]
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    container: Option<String>,
    /// Where the upgrades wrote their backups and state files
    #[arg(long, value_name = "DIR", default_value = ".")]
    backup_dir: PathBuf,
    /// How to print the report
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    /// The docker or podman binary that shows what runs now [default: docker on PATH, else podman]
    #[arg(long, value_name = "PATH", env = "RANCHER_UPGRADE_DOCKER")]
    docker: Option<PathBuf>,
    /// The docker context (podman: connection) of the engine the server runs on [default: the CLI's own, or DOCKER_HOST]
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    context: Option<String>,
}

/// What the command line asks for, validated.
#[derive(Clone, Debug)]
pub enum Request {
    /// `upgrade`, `runbook` or `rollback`: make a plan, then show or run it.
    Plan(Box<Config>),
    Status(status::Query),
    Completions(Shell),
    Manual,
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
    pub result: Option<PathBuf>,
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
    /// `--node`, in the order the nodes start: two or more make a cluster.
    pub nodes: Vec<NodeSpec>,
    /// `--settle`: the pause between two nodes' starts.
    pub settle_seconds: u64,
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
            result: self.result,
        })
    }
}

impl Cli {
    /// When to colour, and what the command line asks for, validated: bad input is an error
    /// that names it, before anything runs.
    pub fn request(self) -> Result<(ColorChoice, Request)> {
        let request = match self.command {
            Command::Upgrade(args) => Request::Plan(Box::new(
                Config::new(args.server, Some(args.target), args.run.action(), None)?
                    .fresh(args.fresh),
            )),
            Command::Runbook(args) => Request::Plan(Box::new(Config::new(
                args.server,
                Some(args.target),
                Action::Show(args.format),
                None,
            )?)),
            Command::Rollback(args) => Request::Plan(Box::new(Config::new(
                args.server,
                None,
                args.run.action(),
                args.backup,
            )?)),
            Command::Status(args) => {
                if let Some(name) = &args.container {
                    check_container_name("--container", name)?;
                }
                check_context(args.context.as_deref())?;
                Request::Status(status::Query {
                    container: args.container,
                    backup_dir: backup_dir(&args.backup_dir)?,
                    format: args.format,
                    docker: args.docker,
                    context: args.context,
                })
            }
            Command::Completions { shell } => Request::Completions(shell),
            Command::Man => Request::Manual,
        };
        Ok((self.color, request))
    }
}

impl Config {
    /// `upgrade --fresh`.
    fn fresh(self, fresh: bool) -> Config {
        Config { fresh, ..self }
    }

    fn new(
        server: ServerArgs,
        target: Option<TargetArgs>,
        action: Action,
        rollback_backup: Option<PathBuf>,
    ) -> Result<Config> {
        let outputs = match &action {
            Action::Execute(execution) => vec![
                ("--log", "the transcript", execution.log.clone()),
                ("--result", "the result", execution.result.clone()),
            ],
            Action::Show(_) => Vec::new(),
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
        check_context(server.context.as_deref())?;
        let nodes = nodes(&server)?;
        let backup_dir = backup_dir(&server.backup_dir)?;
        for (option, what, file) in outputs {
            if let Some(file) = file {
                check_writable_file(option, what, &file)?;
            }
        }
        let settle_seconds = target.as_ref().map_or(0, |t| t.settle);
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
                        Archive::at(path).ok_or_else(|| {
                            bad_input(format!(
                                "--backup {} is neither a zstd nor a gzip archive; name the archive the upgrade wrote (rancher-data-backup-*.tar.zst or .tar.gz, or for an external database rancher-db-backup-*.sql.zst or .sql.gz)",
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
            fresh: false,
            settle_seconds,
            nodes,
            show_secrets: server.show_secrets,
            backup_dir,
            health_url: server.health_url,
            health_timeout_seconds: server.health_timeout,
            stop_timeout_seconds: server.stop_timeout,
        })
    }
}

/// `--node`, each checked, and how they go with the options that name one server.
fn nodes(server: &ServerArgs) -> Result<Vec<NodeSpec>> {
    let nodes = server
        .nodes
        .iter()
        .map(|text| NodeSpec::parse(text).map_err(bad_input))
        .collect::<Result<Vec<_>>>()?;
    for node in &nodes {
        if let Some(name) = &node.container {
            check_container_name("--node", name)?;
        }
        if nodes.iter().filter(|n| n.engine == node.engine).count() > 1 {
            return Err(bad_input(format!(
                "--node {} is given twice: name each node of the cluster once",
                node.engine
            )));
        }
    }
    if !nodes.is_empty() && server.container.is_some() {
        return Err(bad_input(
            "--container names one server, --node the servers of a cluster: name each node's server in --node ENGINE=CONTAINER instead",
        ));
    }
    if !nodes.is_empty() && server.context.is_some() {
        return Err(bad_input(
            "--context names one engine, --node the engines of a cluster: give each node's context in --node CONTEXT[=CONTAINER] instead",
        ));
    }
    Ok(nodes)
}

/// `--context`: a name `docker context ls` (or `podman system connection ls`) could list.
fn check_context(context: Option<&str>) -> Result<()> {
    match context {
        Some(context) if context.is_empty() || context.chars().any(char::is_control) => {
            Err(bad_input(
                "--context is empty or holds a control character; name a context that `docker context ls` lists",
            ))
        }
        _ => Ok(()),
    }
}

/// `--backup-dir`: an existing directory, as an absolute path.
fn backup_dir(path: &Path) -> Result<PathBuf> {
    let absolute = shown_path("--backup-dir", path)?;
    if absolute.is_dir() {
        Ok(absolute)
    } else {
        Err(bad_input(format!(
            "--backup-dir {} is not a directory; name a directory for the backups",
            path.display()
        )))
    }
}

/// A file the run writes (`--log`, `--result`): not a directory, in a directory that exists.
fn check_writable_file(option: &str, what: &str, file: &Path) -> Result<()> {
    let dir = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let why = if file.is_dir() {
        "it is a directory"
    } else if !dir.is_dir() {
        "its directory does not exist"
    } else {
        return Ok(());
    };
    Err(bad_input(format!(
        "can't write {what} {}: {why}; choose another file with {option} FILE",
        file.display()
    )))
}

/// The absolute path of an existing file or directory, as UTF-8 text a runbook shows and a
/// pasted command carries intact.
fn shown_path(option: &str, path: &Path) -> Result<PathBuf> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The root command and each of its subcommands, built as `--help` shows them.
    fn every_command() -> Vec<clap::Command> {
        let mut root = command();
        root.build();
        let mut all: Vec<clap::Command> = root.get_subcommands().cloned().collect();
        all.push(root);
        all
    }

    #[test]
    fn every_option_says_its_default_and_its_environment_variable() {
        for mut command in every_command() {
            let help = command.render_long_help().to_string();
            let name = command.get_name().to_string();
            for arg in command.get_arguments() {
                let what = format!("{name} {}", arg.get_id());
                let text = arg.get_help().map(ToString::to_string).unwrap_or_default();
                assert!(
                    !text.contains("RANCHER_UPGRADE_"),
                    "{what} names a variable in its text; give it `env =` so clap shows it"
                );
                if let Some(env) = arg.get_env() {
                    let shown = format!("[env: {}=", env.to_string_lossy());
                    assert!(help.contains(&shown), "{what}: no {shown} in\n{help}");
                }
                let optional_value = arg.get_num_args().is_some_and(|n| n.takes_values())
                    && !arg.is_required_set()
                    && !arg.is_positional();
                if !optional_value {
                    continue;
                }
                match arg.get_default_values() {
                    [] => assert!(
                        text.contains("[default: "),
                        "{what} takes a value but says no default: {text:?}"
                    ),
                    defaults => {
                        let shown = format!("[default: {}]", defaults[0].to_string_lossy());
                        assert!(help.contains(&shown), "{what}: no {shown} in\n{help}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_help_ends_with_two_examples_of_its_own_command() {
        for mut command in every_command()
            .into_iter()
            .filter(|c| c.get_name() != "help")
        {
            let help = command.render_long_help().to_string();
            let name = command.get_name().to_string();
            let [(_, first), (_, second)] = examples(&name);
            let tail = help.trim_end().rsplit_once("Examples:\n").unwrap().1;
            assert!(
                tail.lines()
                    .filter(|l| l.trim_start().starts_with("rancher-upgrade"))
                    .count()
                    == 2
                    && tail.contains(first)
                    && tail.ends_with(second),
                "{name}: --help does not end with its two examples:\n{help}"
            );
        }
    }
}
