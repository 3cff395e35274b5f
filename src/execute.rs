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
use crate::result::{RunResult, StopReason};
use crate::room::RoomCheck;
use crate::runner::{self, Display, HEARTBEAT, Runner};
use crate::secrets::Masker;
use crate::state::{Journal, Status, UpgradeRecord};
use crate::transcript::Transcript;
use anyhow::{Result, anyhow};
use console::style;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

#[derive(Clone, Debug)]
pub struct ExecOptions {
    pub assume_yes: bool,
    pub verbose: bool,
    pub log: PathBuf,
    pub step_timeout: Option<Duration>,
    /// `--result`: where the machine-readable result goes.
    pub result: Option<PathBuf>,
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

impl Stop {
    fn reason(&self) -> StopReason {
        match self {
            Stop::Declined => StopReason::Declined,
            Stop::Interrupted => StopReason::Interrupted,
            Stop::Failed { .. } => StopReason::Failed,
        }
    }
}

struct Execution<'a> {
    plan: &'a Plan,
    engine: &'a Engine,
    runner: Runner<'a>,
    transcript: Transcript,
    journal: Journal,
    result: RunResult,
    confirmer: Confirmer,
    terminal: bool,
    /// The archives checked against their checksums in this run.
    verified: Vec<PathBuf>,
}

/// Where the run's record goes, the record, and whether it is the one on disk carried on (a
/// resumed upgrade, a rollback) rather than a new one.
pub type JournalStart = (PathBuf, UpgradeRecord, bool);

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
    (record_path, record, carried_on): JournalStart,
) -> Result<()> {
    // Refused without a terminal before anything is written or run.
    let confirmer = Confirmer::new(options.assume_yes)?;
    interrupt::install()?;
    let masker = Masker::for_argvs(plan.argvs());
    let transcript = Transcript::open(&options.log, masker.clone())?;
    let result = RunResult::start(
        options.result.clone(),
        plan,
        masker.clone(),
        &options.log,
        &record_path,
    )?;
    let journal = Journal::start(record_path, record, carried_on)?;
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
        result,
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
    let Err((index, stop)) = execution.run_steps(&plan.steps, &mut done, false) else {
        let who = match plan.nodes.len() {
            0 => plan.container.clone(),
            nodes => format!("{} on each of the {nodes} nodes", plan.container),
        };
        let finished = format!(
            "{who} now runs {}; the data is in {}. Transcript: {}",
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
    // A `create` or start of the new server that failed but took effect all the same (a killed
    // CLI): the way back removes the container, and after a start, which may have run the new
    // version on the data, restores the data too.
    if execution.took_effect(at) {
        done.push(index);
    }
    // Once the new server answered, a failed removal of the old one is no reason to undo a
    // working upgrade: the report says how to finish by hand.
    let new_server_answers = done
        .iter()
        .any(|&i| plan.steps[i].id == StepId::WaitHealthy);
    let error = execution.report_stop(
        &plan.steps,
        index,
        &stop,
        &done,
        plan.kind == PlanKind::Rollback || new_server_answers,
    );
    match plan.kind {
        PlanKind::Rollback => {
            eprintln!("\nThe rollback stopped: the commands above under \"Not done\" finish it.");
            execution.record_end(Status::Failed)?;
        }
        PlanKind::Upgrade => {
            let way_back = plan.way_back(done.iter().map(|&i| &plan.steps[i]));
            if new_server_answers {
                // The new server works: going back is the operator's choice, not a repair.
                execution.print_way_back(&way_back);
                execution.record_end(Status::Stopped)?;
            } else {
                execution.return_to_the_old_server(&way_back, &stop, &done)?;
            }
        }
    }
    Err(error)
}

impl<'a> Execution<'a> {
    /// Until the new server answers, every stop of an upgrade ends on the old server: the steps
    /// done are undone, last first, and the tool waits for the old server to answer. Unattended
    /// this happens by itself; at a terminal the operator is asked once, yes by default. A second
    /// Ctrl-C, a refusal, or a way back that fails leaves the server as it is, and the last line
    /// says in which state.
    fn return_to_the_old_server(
        &mut self,
        way_back: &[Step],
        cause: &Stop,
        done: &[usize],
    ) -> Result<()> {
        if way_back.is_empty() {
            let untouched = format!(
                "{} was not touched: it runs as before.",
                self.plan.container
            );
            eprintln!("\n{untouched}");
            self.transcript.note(&untouched);
            return self.record_end(Status::Untouched);
        }
        let refused = if interrupt::insisted() {
            Some("a second Ctrl-C")
        } else {
            match self
                .confirmer
                .approve_default_yes("Return to the old server?")
            {
                Ok(true) => None,
                Ok(false) => Some("you answered no to the way back"),
                Err(_) => Some("interrupted at the question"),
            }
        };
        let (why, way_back_error) = match refused {
            None => match self.roll_back(way_back, cause) {
                Ok(()) => return self.record_end(Status::RolledBack),
                // Cut short on purpose, the upgrade can still be resumed (or rolled back).
                Err(error) if interrupt::insisted() => {
                    self.record_end(Status::Stopped)?;
                    (
                        "a second Ctrl-C during the way back".to_string(),
                        Some(error),
                    )
                }
                Err(error) => {
                    self.record_end(Status::Failed)?;
                    ("the way back failed".to_string(), Some(error))
                }
            },
            Some(why) => {
                self.print_way_back(way_back);
                self.record_end(Status::Stopped)?;
                (why.to_string(), None)
            }
        };
        let headline = format!(
            "{} is not back on the old server ({why}): {}.",
            self.plan.container,
            left_state(self.plan, done)
        );
        eprintln!("\n{} {headline}", style("NOT BACK:").red().bold());
        self.transcript.note(&headline);
        // The way back's own failure (or interruption) is what the exit code tells.
        way_back_error.map_or(Ok(()), Err)
    }

    /// Shows, asks and runs each step in turn; the indexes of the steps that ran go to `done`.
    /// `agreed`: the operator agreed to all of them at once (the way back).
    fn run_steps(
        &mut self,
        steps: &[Step],
        done: &mut Vec<usize>,
        agreed: bool,
    ) -> Result<(), Stopped> {
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
                self.journal
                    .before_change()
                    .map_err(|e| (index, failed(format!("{e:#}"))))?;
            }
            if step.changes && !agreed {
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
            let (started_at, started) = (SystemTime::now(), Instant::now());
            let result = match &step.action {
                Action::Docker(argv) => self.run_command(step, argv),
                Action::Parallel(argvs) => self.run_parallel(argvs),
                Action::Transfer(transfer) => self.run_transfer(step, transfer),
                Action::VerifyArchive(archive) => self.verify_archive(archive),
                Action::CheckRoom(check) => self.check_room(check),
                Action::WaitHealthy(probe) => self.wait_healthy(probe),
                Action::Settle(seconds) => self.settle(Duration::from_secs(*seconds)),
                Action::Manual(instruction) => self.manual(instruction),
            };
            self.result
                .step_ran(step, started_at, started.elapsed(), result.is_ok());
            result.map_err(|stop| (index, stop))?;
            done.push(index);
            // A step undone on the way back is no longer done, for a run that resumes.
            if let Some(undone) = step.id.undoes().filter(|_| agreed) {
                self.journal
                    .step_undone(undone)
                    .map_err(|e| (index, failed(format!("{e:#}"))))?;
            }
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

    /// Runs every command at once; each is then recorded, and the first failure stops the run.
    fn run_parallel(&mut self, argvs: &[Argv]) -> Result<(), Stop> {
        let runner = &self.runner;
        let outcomes: Vec<Result<runner::Outcome>> = std::thread::scope(|scope| {
            let running: Vec<_> = argvs
                .iter()
                .map(|argv| scope.spawn(move || runner.run(argv, Display::Quiet)))
                .collect();
            running
                .into_iter()
                .map(|handle| handle.join().expect("a parallel command's thread panicked"))
                .collect()
        });
        let mut first_failure = None;
        for (argv, outcome) in argvs.iter().zip(outcomes) {
            if let Err(stop) = self.conclude(argv, outcome) {
                first_failure.get_or_insert(stop);
            }
        }
        first_failure.map_or(Ok(()), Err)
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
            let note = format!("backup: {}", transfer.archive.describe(&summary));
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
        self.result.command_exited(&outcome);
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
        let started = std::time::Instant::now();
        let sha256 = archive.verify().map_err(|e| failed(format!("{e:#}")))?;
        let note = format!(
            "checked: {} (sha256 {sha256}, {:.2} s)",
            archive.path.display(),
            started.elapsed().as_secs_f64()
        );
        eprintln!("    {} {note}", style("ok").green());
        self.transcript.note(&note);
        self.verified.push(archive.path.clone());
        Ok(())
    }

    /// Measures the data volumes through the engine, and stops here if the archive can't fit.
    fn check_room(&mut self, check: &RoomCheck) -> Result<(), Stop> {
        let outcome = self.runner.run(&check.measure, Display::Quiet);
        let outcome = self.conclude(&check.measure, outcome)?;
        let note = check
            .judge(&outcome.stdout)
            .map_err(|e| failed(format!("{e:#}")))?;
        eprintln!("    {} {note}", style("ok").green());
        self.transcript.note(&note);
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
        let engine = &self.engine.on(&probe.engine);
        let (ask, url): (Box<dyn FnMut() -> Result<String>>, String) = match &probe.url {
            Some(url) => (Box::new(health::http_asker(url)), url.clone()),
            None => (
                Box::new(health::engine_asker(engine, &probe.ask)),
                probe.target(),
            ),
        };
        let spinner = self
            .terminal
            .then(|| runner::spinner(format!("waiting for {url} to answer")));
        let mut next_heartbeat = HEARTBEAT;
        let verdict = health::wait_until_healthy(
            ask,
            |answer| probe.expect.accepts(answer),
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
                let logs = self.container_log_tail(engine, &probe.container);
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

    /// A pause that Ctrl-C ends, with a spinner at a terminal.
    fn settle(&mut self, pause: Duration) -> Result<(), Stop> {
        let spinner = self
            .terminal
            .then(|| runner::spinner(format!("letting the node settle ({} s)", pause.as_secs())));
        let started = Instant::now();
        let interrupted = loop {
            if interrupt::requested() {
                break true;
            }
            let left = pause.saturating_sub(started.elapsed());
            if left.is_zero() {
                break false;
            }
            std::thread::sleep(left.min(Duration::from_millis(200)));
        };
        if let Some(bar) = spinner {
            bar.finish_and_clear();
        }
        match interrupted {
            true => Err(Stop::Interrupted),
            false => Ok(()),
        }
    }

    fn container_log_tail(&mut self, engine: &Engine, container: &str) -> Vec<String> {
        let argv = engine
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
        let result = self.result.finish(status);
        self.journal.finish(status)?;
        result?;
        self.transcript.note(&format!(
            "state: {status:?}, recorded in {}",
            self.journal.path().display()
        ));
        Ok(())
    }

    /// Whether the failing step `id`, the new server's create or start, took effect all the
    /// same: a container under the server's name, created, or started.
    fn took_effect(&self, step: &Step) -> bool {
        let (engine, container) = match step.node {
            Some(node) => {
                let node = &self.plan.nodes[node];
                (self.engine.on(&node.engine), node.container.as_str())
            }
            None => (self.engine.clone(), self.plan.container.as_str()),
        };
        let state = health::container_state(&engine, container);
        match step.id {
            StepId::CreateNew => state.is_ok(),
            StepId::RunNew => state.is_ok_and(|s| s.ever_started()),
            _ => false,
        }
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
        self.result
            .stopped(at, stop.reason(), &headline, &remaining);
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
        self.result.way_back(way_back);
    }

    /// The new version failed: back to the old one, each step shown and asked like any other.
    fn roll_back(&mut self, way_back: &[Step], cause: &Stop) -> Result<()> {
        let plan = self.plan;
        let restored = way_back
            .iter()
            .any(|s| s.id == StepId::RestoreData)
            .then_some(plan.backup_archive.as_ref())
            .flatten();
        eprintln!(
            "\n{} to {} ({}){}",
            style("Rolling back").yellow().bold(),
            plan.from_version,
            plan.from,
            match restored {
                Some(archive) => format!(", restoring the data from {}", archive.path.display()),
                None => String::new(),
            }
        );
        self.transcript.note("rolling back");
        self.result.rolling_back();
        // The Ctrl-C that stopped the run is answered by going back; only another one stops.
        interrupt::answer();
        let mut done = Vec::new();
        if let Err((index, stop)) = self.run_steps(way_back, &mut done, true) {
            let error = self.report_stop(way_back, index, &stop, &done, true);
            eprintln!(
                "\nThe rollback stopped too: the commands above under \"Not done\" finish it."
            );
            return Err(error.context(format!("upgrade of {} failed", plan.container)));
        }
        let reason = match cause {
            Stop::Failed { what, .. } => format!("failed: {what}"),
            Stop::Declined => "stopped as you answered".to_string(),
            Stop::Interrupted => "interrupted".to_string(),
        };
        let summary = format!(
            "Upgrade {reason}; rolled back to {}{}.",
            plan.from_version,
            match restored {
                Some(archive) => format!(", data restored from {}", archive.path.display()),
                None => String::new(),
            }
        );
        self.transcript.note(&summary);
        eprintln!("\n{} {summary}", style("Rolled back.").yellow().bold());
        Ok(())
    }
}

/// What the steps done left, for an operator who must finish by hand: which container runs,
/// under which name, with which restart policy.
fn left_state(plan: &Plan, done: &[usize]) -> String {
    let ran = |id: StepId| done.iter().any(|&i| plan.steps[i].id == id);
    // `rename NAME PARKED`
    let parked = plan
        .steps
        .iter()
        .find(|s| s.id == StepId::ParkOld)
        .and_then(Step::argv)
        .and_then(|argv| argv.real().last().cloned());
    let mut state = Vec::new();
    let old = match (&parked, ran(StepId::ParkOld)) {
        (Some(parked), true) => format!("the old server is parked as {parked}"),
        _ => format!("the old server is {}", plan.container),
    };
    if ran(StepId::RemoveParked) {
        state.push(format!(
            "the old server's container {} is REMOVED, its volumes kept",
            parked.unwrap_or_default()
        ));
    } else {
        state.push(format!(
            "{old}, {}",
            if ran(StepId::Stop) {
                "STOPPED"
            } else {
                "running"
            }
        ));
    }
    if ran(StepId::DisableRestart) {
        state.push("its restart policy is no".to_string());
    }
    if ran(StepId::RunNew) {
        state.push(format!(
            "the new {} runs {} and did not answer",
            plan.container, plan.to
        ));
    } else if ran(StepId::CreateNew) {
        state.push(format!(
            "the new {} ({}) is created, never started",
            plan.container, plan.to
        ));
    }
    state.join("; ")
}
