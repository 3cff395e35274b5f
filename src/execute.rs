//! Performs a plan: shows each step, asks, runs it through the runner, waits for health, and on
//! any stop prints what was done, what remains and the way back. The one place that decides
//! whether a command runs; a dry run never gets here.

use crate::argv::{Argv, Reveal};
use crate::confirm::Confirmer;
use crate::docker::Docker;
use crate::error::Interrupted;
use crate::health::{self, Verdict};
use crate::interrupt;
use crate::plan::{Action, Plan, Probe, Step, StepId};
use crate::render::{headline, probe_summary, text::step_block};
use crate::runner::{Display, Runner};
use crate::secrets::Masker;
use crate::transcript::Transcript;
use anyhow::{Result, anyhow};
use console::style;
use indicatif::{ProgressBar, ProgressStyle};
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

/// Why a run ended before its last step.
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
    docker: &'a Docker,
    runner: Runner<'a>,
    transcript: Transcript,
    terminal: bool,
    done: Vec<&'a Step>,
}

pub fn execute(plan: &Plan, docker: &Docker, options: &ExecOptions) -> Result<()> {
    let mut confirmer = Confirmer::new(options.assume_yes)?;
    interrupt::install()?;
    let masker = Masker::for_argvs(plan.steps.iter().filter_map(|s| match &s.action {
        Action::Docker(argv) => Some(argv),
        Action::WaitHealthy(_) => None,
    }));
    let transcript = Transcript::open(&options.log, masker.clone())?;
    let terminal = std::io::stderr().is_terminal();
    let mut execution = Execution {
        plan,
        docker,
        runner: Runner {
            docker,
            masker: &masker,
            verbose: options.verbose,
            terminal,
            step_timeout: options.step_timeout,
        },
        transcript,
        terminal,
        done: Vec::new(),
    };
    execution.transcript.note(&format!(
        "rancher-upgrade {}: {}",
        env!("CARGO_PKG_VERSION"),
        headline(plan)
    ));
    eprintln!("{}\n", style(headline(plan)).bold());

    let total = plan.steps.len();
    for (index, step) in plan.steps.iter().enumerate() {
        let number = index + 1;
        eprint!("{}", step_block(number, Some(total), step, Reveal::Masked));
        if step.skipped.is_some() {
            continue;
        }
        if interrupt::requested() {
            return Err(execution.stop(step, Stop::Interrupted));
        }
        if step.changes {
            let approved = match confirmer
                .approve(&format!("Run step {number}?"), step.id == StepId::RemoveOld)
            {
                Ok(approved) => approved,
                Err(_) => return Err(execution.stop(step, Stop::Interrupted)),
            };
            if !approved {
                execution
                    .transcript
                    .note(&format!("step {number} declined"));
                return Err(execution.stop(step, Stop::Declined));
            }
        }
        let result = match &step.action {
            Action::Docker(argv) => execution.run_command(step, argv),
            Action::WaitHealthy(probe) => execution.wait_healthy(probe, &mut confirmer),
        };
        match result {
            Ok(()) => execution.done.push(step),
            Err(stop) => return Err(execution.stop(step, stop)),
        }
    }
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
    eprintln!("\n{} {finished}", style("Done:").green().bold());
    Ok(())
}

impl<'a> Execution<'a> {
    fn run_command(&mut self, step: &Step, argv: &Argv) -> Result<(), Stop> {
        let display = match step.id {
            StepId::Pull | StepId::Stop => Display::Progress,
            _ => Display::Quiet,
        };
        let shown = argv.display(Reveal::Masked);
        let outcome = self.runner.run(argv, display).map_err(|e| Stop::Failed {
            what: format!("{e:#}"),
            evidence: None,
        })?;
        let status = match &outcome.stopped_because {
            Some(why) => format!("{} ({why})", outcome.status),
            None => outcome.status.clone(),
        };
        self.transcript
            .command(&shown, &status, outcome.duration, &outcome.tail);
        if outcome.success {
            eprintln!(
                "    {} {:.1} s",
                style("ok").green(),
                outcome.duration.as_secs_f64()
            );
            return Ok(());
        }
        if interrupt::insisted() {
            return Err(Stop::Interrupted);
        }
        Err(Stop::Failed {
            what: format!("`{shown}` failed ({status})"),
            evidence: Some((format!("$ {shown}\n    {status}"), outcome.tail)),
        })
    }

    fn wait_healthy(&mut self, probe: &Probe, confirmer: &mut Confirmer) -> Result<(), Stop> {
        let Some(url) = &probe.url else {
            eprintln!("    {}", probe_summary(probe));
            return match confirmer.approve("Does the new server work?", false) {
                Ok(true) => Ok(()),
                Ok(false) => Err(Stop::Declined),
                Err(_) => Err(Stop::Interrupted),
            };
        };
        let spinner = self.terminal.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("      {spinner} [{elapsed}] {msg}")
                    .expect("the template is valid"),
            );
            bar.set_message(format!("waiting for {url} to answer pong"));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let mut next_heartbeat = Duration::from_secs(15);
        let docker = self.docker;
        let verdict = health::wait_until_healthy(
            url,
            Duration::from_secs(probe.timeout_seconds),
            || health::container_state(docker, &probe.container),
            |elapsed| {
                if spinner.is_none() && elapsed >= next_heartbeat {
                    next_heartbeat += Duration::from_secs(15);
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
        let verdict = verdict.map_err(|e| Stop::Failed {
            what: format!("{e:#}"),
            evidence: None,
        })?;
        let described = verdict.describe(&probe.container, url);
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
        let argv = Argv::new("docker")
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

    /// Whether the failing `docker run` left a container under the server's name.
    fn new_container_exists(&self) -> bool {
        health::container_state(self.docker, &self.plan.container).is_ok()
    }

    /// Prints the report of a run that ended at `at`, and returns the error that ends the process.
    fn stop(&mut self, at: &Step, stop: Stop) -> anyhow::Error {
        let plan = self.plan;
        let number = plan
            .steps
            .iter()
            .position(|s| std::ptr::eq(s, at))
            .map_or(0, |i| i + 1);
        let total = plan.steps.len();
        let (headline, error) = match &stop {
            Stop::Declined => (
                format!(
                    "Stopped before step {number}/{total} ({}), as you answered.",
                    at.title
                ),
                anyhow!(
                    "upgrade of {} stopped at step {number}: declined",
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
                    "upgrade of {} failed at step {number}: {what}",
                    plan.container
                ),
            ),
        };
        eprintln!("\n{} {headline}", style("Upgrade stopped.").red().bold());
        self.transcript.note(&headline);
        if let Stop::Failed {
            evidence: Some((heading, tail)),
            ..
        } = &stop
        {
            eprintln!("    {heading}");
            for line in tail {
                eprintln!("    | {line}");
            }
        }

        eprintln!("\nDone:");
        if self.done.is_empty() {
            eprintln!("    nothing");
        }
        for step in &self.done {
            eprintln!("    {}", step.title);
        }
        let remaining: Vec<&Step> = plan
            .steps
            .iter()
            .skip(number.saturating_sub(1))
            .filter(|s| s.skipped.is_none())
            .collect();
        eprintln!("\nNot done; to finish by hand, run:");
        for step in &remaining {
            match &step.action {
                Action::Docker(argv) => eprintln!("    {}", argv.display(Reveal::ShellVariables)),
                Action::WaitHealthy(probe) => eprintln!("    # {}", probe_summary(probe)),
            }
        }
        let secret_vars: Vec<&str> = remaining
            .iter()
            .filter_map(|s| match &s.action {
                Action::Docker(argv) => Some(argv),
                Action::WaitHealthy(_) => None,
            })
            .flat_map(|argv| argv.shell_variables().map(|(var, _)| var))
            .collect();
        if !secret_vars.is_empty() {
            eprintln!(
                "    (export {} with the secret values first)",
                secret_vars.join(", ")
            );
        }

        let mut way_back = Vec::new();
        if at.id == StepId::RunNew
            && matches!(stop, Stop::Failed { .. })
            && self.new_container_exists()
        {
            way_back.extend(at.undo.iter().cloned());
        }
        way_back.extend(plan.way_back(self.done.iter().copied()));
        eprintln!("\nTo return to the old server, run:");
        if way_back.is_empty() {
            eprintln!("    nothing: the old server was not touched");
        }
        for argv in &way_back {
            eprintln!("    {}", argv.display(Reveal::Masked));
            self.transcript
                .note(&format!("way back: {}", argv.display(Reveal::Masked)));
        }
        eprintln!("\nTranscript: {}", self.transcript.path().display());
        error
    }
}
