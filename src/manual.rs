//! The manual page and the shell completion scripts, generated from the command line itself
//! (clap_mangen, clap_complete), so they say what `--help` says. The page adds, in roff, what
//! clap does not know: the exit codes, the files in `--backup-dir`, the environment, examples.

use crate::cli::{self, EXAMPLES};
use crate::error::EXIT_CODES;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};
use std::io::{self, Write};

/// Variables read besides those an option names as its own (`[env: ...]`).
const ENVIRONMENT: [(&str, &str); 4] = [
    (
        "DOCKER_HOST",
        "Passed on to docker untouched: the engine the upgrade talks to.",
    ),
    ("DOCKER_CONTEXT", "Passed on to docker untouched."),
    (
        "NO_COLOR",
        "Set and not empty: no colour with --color auto (the default).",
    ),
    (
        "CLICOLOR_FORCE",
        "Set and not 0: colour with --color auto even when the output is not a terminal, unless NO_COLOR is set.",
    ),
];

/// What an upgrade writes, and where: (the file, what it holds).
const FILES: [(&str, &str); 5] = [
    (
        "BACKUP_DIR/rancher-data-backup-<old version>-<UTC time>.tar.zst",
        "The data volumes (/var/lib/mysql, /var/lib/cattle, /var/log/mysql) as they were before the new version started, as the engine copied them, checked as they arrived (.tar.gz with --backup-format gzip), its SHA-256 in a .sha256 beside it. Never overwritten; rollback restores it.",
    ),
    (
        "BACKUP_DIR/rancher-db-backup-<old version>-<UTC time>.sql.zst",
        "An external database, dumped by the old image's own mysqldump once the old server stopped and before the new version started, checked for mysqldump's last line (.sql.gz with --backup-format gzip), its SHA-256 in a .sha256 beside it. Never overwritten; rollback restores it with the old image's mysql before the old server starts.",
    ),
    (
        "BACKUP_DIR/rancher-upgrade-<NAME>.state.json",
        "What the upgrade of the container NAME did: containers, images, data container, archive, steps done, status. rollback, a resumed upgrade and status read it. It holds no secret value.",
    ),
    (
        "BACKUP_DIR/rancher-upgrade-<NAME>-<UTC time>.log",
        "The transcript (or --log FILE): every executed command, masked, with its exit status, duration and the tail of its output.",
    ),
    (
        "--result FILE",
        "The result of a real run as JSON: the outcome, each step run with its masked command, duration and exit status, the archive, the transcript and the way back (the README gives the schema).",
    ),
];

/// Prints the completion script for `shell`.
pub fn completions(shell: Shell, out: &mut dyn Write) {
    let mut command = cli::command();
    let name = command.get_name().to_string();
    clap_complete::generate(shell, &mut command, name, out);
}

/// Prints rancher-upgrade(1): every command and option, then the sections clap has no word for.
pub fn man_page(out: &mut dyn Write) -> io::Result<()> {
    let mut command = cli::command();
    command.build();
    let page = Man::new(command.clone());
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    page.render_description_section(out)?;
    page.render_options_section(out)?;
    commands_section(&command).to_writer(out)?;
    for sub in command.get_subcommands() {
        // Each command's options under a heading of its own; the global ones and --help are
        // said once, above.
        let heading = format!("{} options", sub.get_name());
        let options = sub.clone().mut_args(|arg| {
            if arg.is_global_set() || arg.get_id() == "help" {
                arg.hide(true)
            } else {
                arg.help_heading(heading.clone())
            }
        });
        Man::new(options).render_options_section(out)?;
    }
    let mut roff = Roff::new();
    definitions(
        &mut roff,
        "EXIT STATUS",
        EXIT_CODES
            .iter()
            .map(|(code, meaning)| (code.to_string(), meaning.to_string())),
    );
    definitions(
        &mut roff,
        "FILES",
        FILES
            .iter()
            .map(|(file, holds)| (file.to_string(), holds.to_string())),
    );
    definitions(&mut roff, "ENVIRONMENT", environment(&command));
    roff.control("SH", ["EXAMPLES"]);
    for (what, example) in EXAMPLES.iter().flat_map(|(_, examples)| examples) {
        roff.text([roman(*what)]);
        roff.control("RS", ["4"]);
        roff.text([bold(*example)]);
        roff.control("RE", []);
        roff.control("PP", []);
    }
    roff.to_writer(out)?;
    page.render_version_section(out)
}

/// Each command with its usage and what it does.
fn commands_section(command: &clap::Command) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for sub in command.get_subcommands() {
        let usage = sub.clone().render_usage().to_string();
        let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage);
        roff.control("TP", []);
        let name = format!("{} {}", command.get_name(), sub.get_name());
        let rest = usage.strip_prefix(&name).unwrap_or_default();
        roff.text([bold(name.as_str()), roman(rest)]);
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            roff.text([roman(about.to_string())]);
        }
    }
    roff
}

/// The options' own variables, then the ones read besides.
fn environment(command: &clap::Command) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    let arguments = command.get_arguments().chain(
        command
            .get_subcommands()
            .flat_map(|sub| sub.get_arguments()),
    );
    for arg in arguments {
        if let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) {
            let env = env.to_string_lossy().into_owned();
            if !found.iter().any(|(known, _)| *known == env) {
                found.push((
                    env,
                    format!("The value of --{long}, when the option is not given."),
                ));
            }
        }
    }
    found.extend(
        ENVIRONMENT
            .iter()
            .map(|(name, meaning)| (name.to_string(), meaning.to_string())),
    );
    found
}

/// A section of terms, each with what it means.
fn definitions(roff: &mut Roff, heading: &str, terms: impl IntoIterator<Item = (String, String)>) {
    roff.control("SH", [heading]);
    for (term, meaning) in terms {
        roff.control("TP", []);
        roff.text([bold(term)]);
        roff.text([roman(meaning)]);
    }
}
