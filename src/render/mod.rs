//! Showing a plan: as text for a terminal, a Markdown runbook, a shell script, or JSON.
//! Nothing here runs a command.

mod json;
mod markdown;
mod shell;
pub mod text;

use crate::archive::{Archive, ArchiveContent};
use crate::argv::{Reveal, quote};
use crate::plan::{Action, Direction, Expect, Plan, PlanKind, Probe, Step, StepId, Transfer};
use crate::room::RoomCheck;
use crate::server::DbMode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Shell,
    Json,
}

/// Renders the plan. `show_secrets` reveals secret values; otherwise they are masked, and the
/// shell format reads them from variables the script checks.
pub fn render(plan: &Plan, format: Format, show_secrets: bool) -> String {
    let reveal = match (show_secrets, format) {
        (true, _) => Reveal::Plain,
        (false, Format::Shell) => Reveal::ShellVariables,
        (false, _) => Reveal::Masked,
    };
    match format {
        Format::Text => text::render(plan, reveal),
        Format::Markdown => markdown::render(plan, reveal),
        Format::Shell => shell::render(plan, reveal),
        Format::Json => json::render(plan, reveal),
    }
}

/// One line: what is upgraded, from what, to what.
pub fn headline(plan: &Plan) -> String {
    let verb = match plan.kind {
        PlanKind::Upgrade => "Upgrade",
        PlanKind::Rollback => "Roll back",
    };
    let what = match plan.nodes.len() {
        0 => format!("Rancher server {}", plan.container),
        nodes => format!("the Rancher HA cluster of {nodes} nodes"),
    };
    format!(
        "{verb} {what} from {} ({}) to {}",
        plan.from_version, plan.from, plan.to
    )
}

/// Where the commands go: the engine, or each node of a cluster with its server.
pub fn engines_line(plan: &Plan) -> String {
    if plan.nodes.is_empty() {
        return plan.engine.describe();
    }
    plan.nodes
        .iter()
        .enumerate()
        .map(|(i, node)| format!("{}. {} ({})", i + 1, node.name, node.container))
        .collect::<Vec<_>>()
        .join(", ")
}

fn database_line(plan: &Plan) -> String {
    match (plan.mode, &plan.data_container) {
        (DbMode::Embedded, Some(data)) => {
            format!("embedded, kept in the data container {data}")
        }
        _ => match (&plan.backup_archive, plan.kind) {
            (Some(archive), PlanKind::Upgrade) => format!(
                "external: the new server uses the same database settings; the old image's mysqldump dumps it into {} once the old server is stopped",
                archive.file_name()
            ),
            (Some(archive), PlanKind::Rollback) => format!(
                "external: restored from {} by the old image's mysql before the old server starts",
                archive.file_name()
            ),
            (None, _) => "external: the new server uses the same database settings".to_string(),
        },
    }
}

/// The step number as the operator sees it: 1-based, counting skipped steps.
fn numbered(plan: &Plan) -> impl Iterator<Item = (usize, &Step)> {
    plan.steps.iter().enumerate().map(|(i, s)| (i + 1, s))
}

fn step_number(plan: &Plan, id: StepId) -> usize {
    numbered(plan)
        .find(|(_, s)| s.id == id)
        .map_or(0, |(n, _)| n)
}

/// The downtime note: pulling first is what keeps the download out of it.
fn downtime_note(plan: &Plan) -> Option<String> {
    let created = match removes_parked(plan) {
        None => "and the new server's creation with its networks, so a setting the engine refuses fails before anything is down.".to_string(),
        Some(removal) => format!(
            "but not the new server's creation: it comes after the stop, right before step {removal} removes the stopped old container, because podman-restart.service starts every created container whose policy is always at boot, beside the old one."
        ),
    };
    (plan.kind == PlanKind::Upgrade).then(|| format!(
        "Rancher is unreachable from step {} (stop) until step {} sees /ping answer. Every step before the stop runs while the old server still answers: the pull (the documented procedure pulls after stopping, so its downtime includes the download), the restart policy, the data container, the rename, {created}",
        step_number(plan, StepId::Stop),
        step_number(plan, StepId::WaitHealthy),
    ))
}

/// The number of the step that removes the stopped old server to keep it down after a reboot,
/// when the plan has one (podman, policy `always`).
fn removes_parked(plan: &Plan) -> Option<usize> {
    numbered(plan)
        .find(|(_, s)| s.id == StepId::RemoveParked)
        .map(|(n, _)| n)
}

pub fn way_back(plan: &Plan) -> Vec<Step> {
    plan.way_back(plan.steps_before_removal())
}

/// The way back by hand, for an upgrade; a rollback is the way back itself.
fn way_back_note(plan: &Plan) -> Option<String> {
    let until = match removes_parked(plan) {
        None => format!(
            "Until step {} removes the old container, these commands",
            step_number(plan, StepId::RemoveOld)
        ),
        Some(removal) => format!(
            "Step {removal} removes the stopped old container to keep it down after a reboot; these commands make it again from its settings and"
        ),
    };
    (plan.kind == PlanKind::Upgrade).then(|| format!(
        "{until} return to the old server from a finished run (from an interrupted run, the ones that undo the steps done). {}",
        match &plan.backup_archive {
            Some(archive) => format!(
                "They restore the data from {}: the old version can't read a schema the new one migrated. Changes made since the upgrade are lost.",
                archive.path.display()
            ),
            None => "Without a backup, the old version may refuse a schema the new one migrated."
                .to_string(),
        }
    ))
}

/// A step's action as one line for a reader: `$ command`, `~ wait ...`, `? by hand ...`.
pub fn action_line(step: &Step, reveal: Reveal) -> String {
    match &step.action {
        Action::Docker(argv) => format!("$ {}", argv.display(reveal)),
        // Each on a line of its own, as a step's command line is indented.
        Action::Parallel(argvs) => argvs
            .iter()
            .map(|argv| format!("$ {} &", argv.display(reveal)))
            .collect::<Vec<_>>()
            .join("\n    "),
        Action::Transfer(transfer) => format!("$ {}", transfer_script(transfer, reveal)),
        Action::VerifyArchive(archive) => format!("$ {}", verify_script(archive)),
        Action::CheckRoom(check) => format!("$ {}", room_script(check, reveal)),
        Action::WaitHealthy(probe) => format!("~ {}", probe_summary(probe)),
        Action::Settle(seconds) => format!("~ wait {seconds} s"),
        Action::Manual(instruction) => format!("? by hand, then confirm: {instruction}"),
    }
}

/// A step's action as bash, for the shell script and the Markdown runbook.
fn action_script(step: &Step, reveal: Reveal) -> String {
    match &step.action {
        Action::Docker(argv) => argv.display(reveal),
        // All at once, and the step fails when any of them does.
        Action::Parallel(argvs) => {
            let mut script = String::new();
            for (i, argv) in argvs.iter().enumerate() {
                script.push_str(&format!("{} & pid{i}=$!\n", argv.display(reveal)));
            }
            // One wait a line: `set -e` stops at each one that fails, not in an `&&` list.
            let waits: Vec<String> = (0..argvs.len())
                .map(|i| format!("wait \"$pid{i}\""))
                .collect();
            script.push_str(&waits.join("\n"));
            script
        }
        Action::Transfer(transfer) => transfer_script(transfer, reveal),
        Action::VerifyArchive(archive) => verify_script(archive),
        Action::CheckRoom(check) => room_script(check, reveal),
        Action::WaitHealthy(probe) => probe_script(probe),
        Action::Settle(seconds) => format!("sleep {seconds}"),
        Action::Manual(instruction) => format!(
            "echo {}\n{{ read -r -p 'Press Enter once it is done (Ctrl-C stops here): ' _ </dev/tty; }} 2>/dev/null || echo 'no terminal to confirm on: going on' >&2",
            quote(&format!("By hand: {instruction}"))
        ),
    }
}

/// The probe in words, for a reader.
pub fn probe_summary(probe: &Probe) -> String {
    let through = match (&probe.engine.context, &probe.engine.url) {
        (None, None) => "the engine".to_string(),
        _ => probe.engine.command().display(Reveal::Masked),
    };
    let awaited = match (&probe.expect, &probe.url) {
        (Expect::Pong, Some(url)) => format!("{url} answers pong"),
        (Expect::Pong, None) => {
            format!("{} (asked through {through}) answers pong", probe.target())
        }
        (Expect::Member(_), _) => {
            format!(
                "{} lists this node (asked through {through})",
                probe.target()
            )
        }
    };
    format!(
        "wait until {awaited} (up to {} s); stop if {} exits",
        probe.timeout_seconds, probe.container
    )
}

/// A backup or a restore by hand: the same engine command, with Debian's compressor and
/// `sha256sum` doing what the tool does in between, in a subshell. The backup needs bash's
/// pipefail, so a failing engine command fails the line; the restore is POSIX (the way back
/// may be run by any sh): the checksum guards the decompression, and the engine command's
/// status is the pipeline's. A dump is checked for mysqldump's last line before its checksum is
/// written (grep shows the line): without it, it was cut short.
fn transfer_script(transfer: &Transfer, reveal: Reveal) -> String {
    let archive = &transfer.archive;
    let dir = quote(&archive.directory().display().to_string());
    let file = quote(&archive.file_name());
    let checksum = quote(&format!("{}.sha256", archive.file_name()));
    let command = transfer.argv.display(reveal);
    let whole = match archive.content {
        ArchiveContent::DataVolumes => String::new(),
        ArchiveContent::DatabaseDump => format!(
            " && {} {file} | tail -n 1 | grep '^-- Dump completed'",
            archive.format.decompress_command()
        ),
    };
    match transfer.direction {
        Direction::Backup => format!(
            "( set -o pipefail; umask 077; cd {dir} && {command} | {} > {file}{whole} && sha256sum {file} > {checksum} )",
            archive.format.compress_command()
        ),
        Direction::Restore => format!(
            "( cd {dir} && sha256sum -c {checksum} && {} {file} | {command} )",
            archive.format.decompress_command()
        ),
    }
}

/// The check of an archive against its checksum, by hand.
fn verify_script(archive: &Archive) -> String {
    format!(
        "( cd {} && sha256sum -c {} )",
        quote(&archive.directory().display().to_string()),
        quote(&format!("{}.sha256", archive.file_name()))
    )
}

/// The room check by hand: the engine's `du -sk` of the data volumes against `df` of the
/// directory, both in KiB. Bash's pipefail makes a failing engine command fail the line.
fn room_script(check: &RoomCheck, reveal: Reveal) -> String {
    let dir = quote(&check.dir.display().to_string());
    format!(
        "( set -o pipefail; need=$( {} | awk '{{ s += $1 }} END {{ print s }}') && free=$(df -Pk {dir} | awk 'NR == 2 {{ print $4 }}') && if [ \"$free\" -lt \"$need\" ]; then echo \"only $free KiB free in\" {dir} \"for a backup of up to $need KiB\" >&2; exit 1; fi )",
        check.measure.display(reveal)
    )
}

/// The probe as bash, for the shell script and for pasting from the Markdown runbook. It runs
/// in a subshell, so a failure pasted into an interactive shell does not close it.
fn probe_script(probe: &Probe) -> String {
    let container = probe.container.replace(['"', '\\', '$', '`'], "");
    let ask = match &probe.url {
        Some(url) => format!("curl -fsS --max-time 5 {}", quote(url)),
        None => probe.ask.display(Reveal::Plain),
    };
    let answered = match &probe.expect {
        Expect::Pong => format!("[ \"$({ask} 2>/dev/null)\" = pong ]"),
        Expect::Member(address) => format!("{ask} 2>/dev/null | grep -qF {}", quote(address)),
    };
    format!(
        r#"(
  deadline=$((SECONDS + {timeout}))
  until {answered}; do
    if [ "$({running} 2>/dev/null)" != true ]; then
      echo "{container} is not running; see its log" >&2; exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "{container} did not answer as awaited within {timeout} s" >&2; exit 1
    fi
    sleep 2
  done
)"#,
        timeout = probe.timeout_seconds,
        running = probe.running.display(Reveal::Plain),
    )
}

#[cfg(test)]
mod tests;
