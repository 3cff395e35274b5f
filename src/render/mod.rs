//! Showing a plan: as text for a terminal, a Markdown runbook, a shell script, or JSON.
//! Nothing here runs a command.

mod json;
mod markdown;
mod shell;
pub mod text;

use crate::argv::{Reveal, quote};
use crate::plan::{Action, Plan, PlanKind, Probe, Step, StepId};
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
    format!(
        "{verb} Rancher server {} from {} ({}) to {}",
        plan.container, plan.from_version, plan.from, plan.to
    )
}

fn database_line(plan: &Plan) -> String {
    match (plan.mode, &plan.data_container) {
        (DbMode::Embedded, Some(data)) => {
            format!("embedded, kept in the data container {data}")
        }
        _ => "external: the new server uses the same database settings".to_string(),
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
    (plan.kind == PlanKind::Upgrade).then(|| format!(
        "Rancher is unreachable from step {} (stop) until step {} sees /ping answer. Every step before the stop runs while the old server still answers: the pull (the documented procedure pulls after stopping, so its downtime includes the download), the restart policy, the data container and the rename.",
        step_number(plan, StepId::Stop),
        step_number(plan, StepId::WaitHealthy),
    ))
}

pub fn way_back(plan: &Plan) -> Vec<Step> {
    plan.way_back(plan.steps_before_removal())
}

/// The way back by hand, for an upgrade; a rollback is the way back itself.
fn way_back_note(plan: &Plan) -> Option<String> {
    (plan.kind == PlanKind::Upgrade).then(|| format!(
        "Until step {} removes the old container, these commands return to the old server from a finished run (from an interrupted run, the ones that undo the steps done). {}",
        step_number(plan, StepId::RemoveOld),
        match &plan.backup_archive {
            Some(archive) => format!(
                "They restore the data from {}: the old version can't read a schema the new one migrated. Changes made since the upgrade are lost.",
                archive.display()
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
        Action::WaitHealthy(probe) => format!("~ {}", probe_summary(probe)),
        Action::Manual(instruction) => format!("? by hand, then confirm: {instruction}"),
    }
}

/// A step's action as bash, for the shell script and the Markdown runbook.
fn action_script(step: &Step, reveal: Reveal) -> String {
    match &step.action {
        Action::Docker(argv) => argv.display(reveal),
        Action::WaitHealthy(probe) => probe_script(probe, "docker"),
        Action::Manual(instruction) => format!(
            "echo {}\n{{ read -r -p 'Press Enter once it is done (Ctrl-C stops here): ' _ </dev/tty; }} 2>/dev/null || echo 'no terminal to confirm on: going on' >&2",
            quote(&format!("By hand: {instruction}"))
        ),
    }
}

/// The probe in words, for a reader.
pub fn probe_summary(probe: &Probe) -> String {
    match &probe.url {
        Some(url) => format!(
            "wait until {url} answers pong (up to {} s); stop if {} exits",
            probe.timeout_seconds, probe.container
        ),
        None => format!(
            "no host port is published for 8080 and no --health-url was given: check by hand that {} works before going on",
            probe.container
        ),
    }
}

/// The probe as bash, for the shell script and for pasting from the Markdown runbook. It runs
/// in a subshell, so a failure pasted into an interactive shell does not close it.
fn probe_script(probe: &Probe, docker: &str) -> String {
    let container = quote(&probe.container);
    match &probe.url {
        Some(url) => {
            let url = quote(url);
            format!(
                r#"(
  deadline=$((SECONDS + {timeout}))
  until [ "$(curl -fsS --max-time 5 {url} 2>/dev/null)" = pong ]; do
    if [ "$({docker} inspect --format '{{{{.State.Running}}}}' {container} 2>/dev/null)" != true ]; then
      echo "{container} is not running; see: docker logs {container}" >&2; exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "{container} did not answer /ping within {timeout} s" >&2; exit 1
    fi
    sleep 2
  done
)"#,
                timeout = probe.timeout_seconds,
            )
        }
        None => format!(
            "read -r -p 'Check by hand that {} works, then press Enter (Ctrl-C stops here): ' _ </dev/tty",
            probe.container.replace('\'', "")
        ),
    }
}

#[cfg(test)]
mod tests;
