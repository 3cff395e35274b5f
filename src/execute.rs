//! Performs a plan: shows each step, asks, runs it through the runner, waits for health. When
//! the new version fails, it goes back to the old one by the plan's own way back (restoring the
//! backup), asked like any step. The one place that decides whether a command runs; a dry run
//! never gets here.

use crate::archive::Archive;
use crate::argv::{Argv, Reveal};
use crate::confirm::Confirmer;
use crate::engine::Engine;
use crate::error::Interrupted;
use crate::health::{self, Verdict};
use crate::interrupt;
use crate::plan::{Action, Plan, PlanKind, Probe, Step, StepId, Transfer};
use crate::render::{action_line, headline, text::step_block};
use crate::runner::{self, Display, HEARTBEAT, Runner};
use crate::secrets::Masker;
use crate::state::{Journal, Status, UpgradeRecord};
use crate::transcript::Transcript;
use anyhow::{Result, anyhow};
use console::style;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct ExecOptions {
    pub assume_yes: bool,
    pub verbose: bool,
    pub log: PathBuf,
    pub step_timeout: Option<Duration>,
}

/// Why a run of steps ended before its last one.
#[derive(Debug)]
enum Stop {
    Declined,
    Interrupted,
    Failed {
        what: String,
        /// What shows the failure: the failing command (masked) and its exit status, or the
        /// new server's log; then the last lines of output.
        evidence: Option<(String, Vec<String>)>,
    },
}

struct Execution<'a> {
    plan: &'a Plan,
    engine: &'a Engine,
    runner: Runner<'a>,
    transcript: Transcript,
    journal: Journal,
    confirmer: Confirmer,
    terminal: bool,
    /// The archives checked against their checksums in this run.
    verified: Vec<PathBuf>,
}

/// A failure with no more evidence than its description.
fn failed(what: String) -> Stop {
    Stop::Failed {
        what,
        evidence: None,
    }
}

/// Where a run of steps stopped: the step's index in the list it ran, and why.
type Stopped = (usize, Stop);

/// Runs `plan`; the steps an earlier, interrupted run finished (`Plan::done_earlier`) don't run
/// again, but their way back counts. The journal records each step and the end.
pub fn execute(
    plan: &Plan,
    engine: &Engine,
    options: &ExecOptions,
    (record_path, record): (PathBuf, UpgradeRecord),
) -> Result<()> {
    // Refused without a terminal before anything is written or run.
    let confirmer = Confirmer::new(options.assume_yes)?;
    interrupt::install()?;
    let masker = Masker::for_argvs(plan.argvs());
    let transcript = Transcript::open(&options.log, masker.clone())?;
    let journal = Journal::start(record_path, record)?;
    let terminal = std::io::stderr().is_terminal();
    let mut execution = Execution {
        plan,
        engine,
        runner: Runner {
            engine,
            masker: &masker,
            verbose: options.verbose,
            terminal,
            step_timeout: options.step_timeout,
        },
        transcript,
        journal,
        confirmer,
        terminal,
        verified: Vec::new(),
    };
    execution.transcript.note(&format!(
        "rancher-upgrade {}: {}",
        env!("CARGO_PKG_VERSION"),
        headline(plan)
    ));
    eprintln!("{}", style(headline(plan)).bold());
    for warning in &plan.warnings {
        eprintln!("  {} {warning}", style("!").yellow());
        execution.transcript.note(&format!("warning: {warning}"));
    }
    eprintln!();

    let mut done = plan.done_earlier.clone();
    let Err((index, stop)) = execution.run_steps(&plan.steps, &mut done) else {
        let finished = format!(
            "{} now runs {}; the data is in {}. Transcript: {}",
            plan.container,
            plan.to,
            plan.data_container
                .as_deref()
                .unwrap_or("the external database"),
            execution.transcript.path().display()
        );
        execution.transcript.note(&finished);
        execution.record_end(match plan.kind {
            PlanKind::Upgrade => Status::Completed,
            PlanKind::Rollback => Status::RolledBack,
        })?;
        eprintln!("\n{} {finished}", style("Done:").green().bold());
        return Ok(());
    };
    let at = &plan.steps[index];
    // From the new server's start on, a failure of the new version rolls back by itself: it may have
    // touched the data. Before it, the old server's data is as it was, and the way back is
    // printed. Once the new server answered, a failed removal of the old one is no reason to
    // undo a working upgrade: the report says how to finish by hand.
    let rolls_back = matches!(stop, Stop::Failed { .. })
        && plan.steps[..=index].iter().any(|s| s.id == StepId::RunNew)
        && at.id != StepId::RemoveOld;
    let error = execution.report_stop(&plan.steps, index, &stop, &done, !rolls_back);
    // A `create` or start of the new server that failed but left its container (a killed
    // CLI, a start refused after the create): the way back removes it, and after a start,
    // which may have run the new version on the data, restores the data too.
    if matches!(at.id, StepId::CreateNew | StepId::RunNew) && execution.new_container_exists() {
        done.push(index);
    }
    let way_back = plan.way_back(done.iter().map(|&i| &plan.steps[i]));

    if rolls_back {
        let rolled_back = execution.roll_back(&way_back, &stop);
        execution.record_end(match rolled_back {
            Ok(()) => Status::RolledBack,
            Err(_) => Status::Failed,
        })?;
        rolled_back?;
        return Err(error);
    }
    match plan.kind {
        PlanKind::Upgrade => {
            execution.print_way_back(&way_back);
            execution.record_end(Status::Stopped)?;
        }
        PlanKind::Rollback => {
            eprintln!("\nThe rollback stopped: the commands above under \"Not done\" finish it.");
            execution.record_end(Status::Failed)?;
        }
    }
    Err(error)
}

impl<'a> Execution<'a> {
    /// Shows, asks and runs each step in turn; the indexes of the steps that ran go to `done`.
    fn run_steps(&mut self, steps: &[Step], done: &mut Vec<usize>) -> Result<(), Stopped> {
        let total = steps.len();
        for (index, step) in steps.iter().enumerate() {
            eprint!(
                "{}",
                step_block(index + 1, Some(total), step, Reveal::Masked)
            );
            if step.skipped.is_some() {
                continue;
            }
            if interrupt::requested() {
                return Err((index, Stop::Interrupted));
            }
            if step.changes {
                match self.confirmer.approve(
                    &format!("Run step {}?", index + 1),
                    step.id == StepId::RemoveOld,
                ) {
                    Ok(true) => {}
                    Ok(false) => {
                        self.transcript.note(&format!("declined: {}", step.title));
                        return Err((index, Stop::Declined));
                    }
                    Err(_) => return Err((index, Stop::Interrupted)),
                }
            }
            let result = match &step.action {
                Action::Docker(argv) => self.run_command(step, argv),
                Action::Transfer(transfer) => self.run_transfer(step, transfer),
                Action::VerifyArchive(archive) => self.verify_archive(archive),
                Action::WaitHealthy(probe) => self.wait_healthy(probe),
                Action::Manual(instruction) => self.manual(instruction),
            };
            result.map_err(|stop| (index, stop))?;
            done.push(index);
            if self.plan.kind == PlanKind::Upgrade && std::ptr::eq(steps, &self.plan.steps[..]) {
                self.journal
                    .step_done(step.id)
                    .map_err(|e| (index, failed(format!("{e:#}"))))?;
            }
        }
        Ok(())
    }

    fn run_command(&mut self, step: &Step, argv: &Argv) -> Result<(), Stop> {
        let display = match step.id {
            StepId::Pull | StepId::Stop => Display::Progress,
            _ => Display::Quiet,
        };
        let outcome = self.runner.run(argv, display);
        self.conclude(argv, outcome).map(|_| ())
    }

    /// A backup streams out of the engine into the archive; a restore checks the archive's
    /// checksum, then streams it back.
    fn run_transfer(&mut self, step: &Step, transfer: &Transfer) -> Result<(), Stop> {
        if transfer.direction == crate::plan::Direction::Restore {
            self.verify_archive(&transfer.archive)?;
        }
        let outcome = self
            .runner
            .transfer(&transfer.argv, transfer.direction, &transfer.archive);
        let outcome = self.conclude(&transfer.argv, outcome)?;
        if let Some(summary) = outcome.archive {
            let note = format!(
                "backup: {} ({} bytes, {} entries, {} bytes of files, sha256 {})",
                transfer.archive.path.display(),
                summary.archive_bytes,
                summary.entries,
                summary.content_bytes,
                summary.sha256
            );
            eprintln!("    {note}");
            self.transcript.note(&note);
            if step.id == StepId::Backup {
                self.journal
                    .backup_written(summary)
                    .map_err(|e| failed(format!("{e:#}")))?;
            }
        }
        Ok(())
    }

    /// Records how a command ended; a failure stops the run.
    fn conclude(
        &mut self,
        argv: &Argv,
        outcome: Result<runner::Outcome>,
    ) -> Result<runner::Outcome, Stop> {
        let shown = argv.display(Reveal::Masked);
        let outcome = outcome.map_err(|e| failed(format!("{e:#}")))?;
        let status = match &outcome.stopped_because {
            Some(why) => format!("{} ({why})", outcome.status),
            None => outcome.status.clone(),
        };
        self.transcript
            .command(&shown, &status, outcome.duration, &outcome.tail);
        if !outcome.success {
            if interrupt::insisted() {
                return Err(Stop::Interrupted);
            }
            return Err(Stop::Failed {
                what: format!("`{shown}` failed ({status})"),
                evidence: Some((format!("$ {shown}\n    {status}"), outcome.tail)),
            });
        }
        eprintln!(
            "    {} {:.1} s",
            style("ok").green(),
            outcome.duration.as_secs_f64()
        );
        Ok(outcome)
    }

    /// Checks an archive against its checksum, once a run: a damaged one stops here, before
    /// anything is emptied.
    fn verify_archive(&mut self, archive: &Archive) -> Result<(), Stop> {
        if self.verified.contains(&archive.path) {
            return Ok(());
        }
        let sha256 = archive.verify().map_err(|e| failed(format!("{e:#}")))?;
        let note = format!("checked: {} (sha256 {sha256})", archive.path.display());
        eprintln!("    {} {note}", style("ok").green());
        self.transcript.note(&note);
        self.verified.push(archive.path.clone());
        Ok(())
    }

    fn manual(&mut self, instruction: &str) -> Result<(), Stop> {
        eprintln!("    By hand: {instruction}");
        match self.confirmer.approve("Done, go on?", false) {
            Ok(true) => {
                self.transcript
                    .note(&format!("confirmed by hand: {instruction}"));
                Ok(())
            }
            Ok(false) => Err(Stop::Declined),
            Err(_) => Err(Stop::Interrupted),
        }
    }

    fn wait_healthy(&mut self, probe: &Probe) -> Result<(), Stop> {
        let engine = self.engine;
        let (ask, url): (Box<dyn FnMut() -> Result<String>>, String) = match &probe.url {
            Some(url) => (Box::new(health::http_asker(url)), url.clone()),
            None => (
                Box::new(health::engine_asker(engine, &probe.ask)),
                format!("/ping inside {}", probe.container),
            ),
        };
        let spinner = self
            .terminal
            .then(|| runner::spinner(format!("waiting for {url} to answer pong")));
        let mut next_heartbeat = HEARTBEAT;
        let verdict = health::wait_until_healthy(
            ask,
            Duration::from_secs(probe.timeout_seconds),
            || health::container_state(engine, &probe.container),
            |elapsed| {
                if spinner.is_none() && elapsed >= next_heartbeat {
                    next_heartbeat += HEARTBEAT;
                    eprintln!(
                        "      ... still waiting for {url} ({} s)",
                        elapsed.as_secs()
                    );
                }
            },
        );
        if let Some(bar) = spinner {
            bar.finish_and_clear();
        }
        let verdict = verdict.map_err(|e| failed(format!("{e:#}")))?;
        let described = verdict.describe(&probe.container, &url);
        self.transcript.note(&described);
        match verdict {
            Verdict::Healthy { .. } => {
                eprintln!("    {} {described}", style("ok").green());
                Ok(())
            }
            Verdict::Interrupted => Err(Stop::Interrupted),
            _ => {
                let logs = self.container_log_tail(&probe.container);
                Err(Stop::Failed {
                    what: described,
                    evidence: Some((
                        format!("The last lines of the log of {}:", probe.container),
                        logs,
                    )),
                })
            }
        }
    }

    fn container_log_tail(&mut self, container: &str) -> Vec<String> {
        let argv = self
            .engine
            .command()
            .args(["logs", "--tail", "20"])
            .arg(container);
        match self.runner.run(&argv, Display::Quiet) {
            Ok(outcome) => {
                self.transcript.command(
                    &argv.display(Reveal::Masked),
                    &outcome.status,
                    outcome.duration,
                    &outcome.tail,
                );
                outcome.tail
            }
            Err(error) => vec![format!("(no log: {error:#})")],
        }
    }

    fn record_end(&mut self, status: Status) -> Result<()> {
        self.journal.finish(status)?;
        self.transcript.note(&format!(
            "state: {status:?}, recorded in {}",
            self.journal.path().display()
        ));
        Ok(())
    }

    /// Whether the failing step left a container under the server's name.
    fn new_container_exists(&self) -> bool {
        health::container_state(self.engine, &self.plan.container).is_ok()
    }

    /// Prints why `steps` stopped at `index`, what was done and what was not, and returns the
    /// error that ends the process.
    fn report_stop(
        &mut self,
        steps: &[Step],
        index: usize,
        stop: &Stop,
        done: &[usize],
        remaining_by_hand: bool,
    ) -> anyhow::Error {
        let plan = self.plan;
        let at = &steps[index];
        let number = index + 1;
        let total = steps.len();
        let task = match plan.kind {
            PlanKind::Upgrade => "upgrade",
            PlanKind::Rollback => "rollback",
        };
        let (headline, error) = match stop {
            Stop::Declined => (
                format!(
                    "Stopped before step {number}/{total} ({}), as you answered.",
                    at.title
                ),
                anyhow!(
                    "{task} of {} stopped at step {number}: declined",
                    plan.container
                ),
            ),
            Stop::Interrupted => (
                format!("Interrupted at step {number}/{total} ({}).", at.title),
                anyhow::Error::new(Interrupted),
            ),
            Stop::Failed { what, .. } => (
                format!("Step {number}/{total} failed ({}): {what}", at.title),
                anyhow!(
                    "{task} of {} failed at step {number}: {what}",
                    plan.container
                ),
            ),
        };
        eprintln!("\n{} {headline}", style("Stopped.").red().bold());
        self.transcript.note(&headline);
        if let Stop::Failed {
            evidence: Some((heading, tail)),
            ..
        } = stop
        {
            eprintln!("    {heading}");
            for line in tail {
                eprintln!("    | {line}");
            }
        }
        eprintln!("\nDone:");
        if done.is_empty() {
            eprintln!("    nothing");
        }
        for &i in done {
            eprintln!("    {}", steps[i].title);
        }
        let remaining: Vec<&Step> = steps[index..]
            .iter()
            .filter(|s| s.skipped.is_none() && remaining_by_hand)
            .collect();
        if !remaining.is_empty() {
            eprintln!("\nNot done; to finish by hand, run:");
        }
        for step in &remaining {
            eprintln!("    {}", action_line(step, Reveal::ShellVariables));
        }
        let secret_vars: Vec<&str> = remaining
            .iter()
            .filter_map(|s| s.argv())
            .flat_map(|argv| argv.shell_variables().map(|(var, _)| var))
            .collect();
        if !secret_vars.is_empty() {
            eprintln!(
                "    (export {} with the secret values first)",
                secret_vars.join(", ")
            );
        }
        eprintln!("\nTranscript: {}", self.transcript.path().display());
        error
    }

    fn print_way_back(&mut self, way_back: &[Step]) {
        eprintln!("\nTo return to the old server, run:");
        if way_back.is_empty() {
            eprintln!("    nothing: the old server was not touched");
        }
        for step in way_back {
            let line = action_line(step, Reveal::Masked);
            eprintln!("    {line}");
            self.transcript.note(&format!("way back: {line}"));
        }
    }

    /// The new version failed: back to the old one, each step shown and asked like any other.
    fn roll_back(&mut self, way_back: &[Step], cause: &Stop) -> Result<()> {
        let plan = self.plan;
        eprintln!(
            "\n{} to {} ({}){}",
            style("Rolling back").yellow().bold(),
            plan.from_version,
            plan.from,
            match &plan.backup_archive {
                Some(archive) => format!(", restoring the data from {}", archive.path.display()),
                None => String::new(),
            }
        );
        self.transcript.note("rolling back");
        let mut done = Vec::new();
        if let Err((index, stop)) = self.run_steps(way_back, &mut done) {
            let error = self.report_stop(way_back, index, &stop, &done, true);
            eprintln!(
                "\nThe rollback stopped too: the commands above under \"Not done\" finish it."
            );
            return Err(error.context(format!("upgrade of {} failed", plan.container)));
        }
        let reason = match cause {
            Stop::Failed { what, .. } => what.as_str(),
            _ => "stopped",
        };
        let summary = format!(
            "Upgrade failed ({reason}); rolled back to {}{}.",
            plan.from_version,
            match &plan.backup_archive {
                Some(archive) => format!(", data restored from {}", archive.path.display()),
                None => String::new(),
            }
        );
        self.transcript.note(&summary);
        eprintln!("\n{} {summary}", style("Rolled back.").yellow().bold());
        Ok(())
    }
}
