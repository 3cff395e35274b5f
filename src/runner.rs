//! Runs one docker command of the plan through duct: output captured for errors, progress and
//! elapsed time for long steps, Ctrl-C and the per-step timeout honoured.

use crate::argv::{Argv, Reveal};
use crate::docker::Docker;
use crate::interrupt;
use crate::secrets::Masker;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How many lines of a command's output are kept for the report and the transcript.
pub const TAIL_LINES: usize = 20;
const POLL: Duration = Duration::from_millis(100);
/// Without a terminal, a long step says it is still running this often.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// How a step's output reaches the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// Nothing unless it fails (or `--verbose`).
    Quiet,
    /// A spinner with the latest line and the elapsed time on a terminal, plain lines otherwise.
    Progress,
}

#[derive(Debug)]
pub struct Outcome {
    pub success: bool,
    /// `exit status: 1`, `signal: 9 (SIGKILL)`, ...
    pub status: String,
    /// The exit code, when the command exited by itself.
    pub code: Option<i32>,
    /// The last lines of stdout and stderr, masked.
    pub tail: Vec<String>,
    pub duration: Duration,
    /// Why the runner stopped the command itself, if it did.
    pub stopped_because: Option<String>,
}

pub struct Runner<'a> {
    pub docker: &'a Docker,
    pub masker: &'a Masker,
    pub verbose: bool,
    pub terminal: bool,
    pub step_timeout: Option<Duration>,
}

impl Runner<'_> {
    pub fn run(&self, argv: &Argv, display: Display) -> Result<Outcome> {
        let shown = argv.display(Reveal::Masked);
        let handle = Arc::new(
            self.docker
                .expression(argv)
                .stdin_null()
                .stderr_capture()
                .unchecked()
                .before_spawn(|command| {
                    // Its own process group: the terminal's Ctrl-C must not cut a docker
                    // command short; the executor decides when to stop.
                    command.process_group(0);
                    Ok(())
                })
                .reader()
                .with_context(|| format!("could not start `{shown}`"))?,
        );
        let (lines_tx, lines) = mpsc::channel();
        let reader = Arc::clone(&handle);
        let reading = thread::spawn(move || {
            for line in BufReader::new(&*reader).split(b'\n') {
                let Ok(line) = line else { break };
                if lines_tx
                    .send(String::from_utf8_lossy(&line).trim_end().to_string())
                    .is_err()
                {
                    break;
                }
            }
        });

        let progress = self.progress_bar(display, &shown);
        let started = Instant::now();
        let mut last_heartbeat = started;
        let mut stdout = String::new();
        let mut stopped_because = None;
        let mut warned_of_interrupt = false;
        loop {
            match lines.recv_timeout(POLL) {
                Ok(line) => {
                    let line = self.masker.mask(&line);
                    stdout.push_str(&line);
                    stdout.push('\n');
                    match (&progress, self.verbose, display) {
                        (Some(bar), _, Display::Progress) => bar.set_message(line),
                        (Some(bar), true, _) => bar.println(format!("      {line}")),
                        (None, true, _) | (None, _, Display::Progress) => {
                            eprintln!("      {line}")
                        }
                        _ => {}
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if interrupt::requested() && !warned_of_interrupt {
                warned_of_interrupt = true;
                let note = format!(
                    "Ctrl-C: stopping once `{shown}` finishes; press Ctrl-C again to stop it now"
                );
                match &progress {
                    Some(bar) => bar.println(note),
                    None => eprintln!("{note}"),
                }
            }
            if stopped_because.is_none() {
                if interrupt::insisted() {
                    stopped_because = Some("stopped by a second Ctrl-C".to_string());
                } else if let Some(limit) = self.step_timeout.filter(|l| started.elapsed() > *l) {
                    stopped_because = Some(format!(
                        "no answer within {} s (--step-timeout)",
                        limit.as_secs()
                    ));
                }
                if stopped_because.is_some() {
                    handle
                        .kill()
                        .with_context(|| format!("could not stop `{shown}`"))?;
                }
            }
            if progress.is_none()
                && display == Display::Progress
                && last_heartbeat.elapsed() >= HEARTBEAT
            {
                last_heartbeat = Instant::now();
                eprintln!(
                    "      ... still running ({} s)",
                    started.elapsed().as_secs()
                );
            }
        }
        let _ = reading.join();
        let output = handle
            .try_wait()
            .with_context(|| format!("could not wait for `{shown}`"))?
            .cloned()
            .with_context(|| format!("`{shown}` closed its output but did not exit"))?;
        if let Some(bar) = progress {
            bar.finish_and_clear();
        }
        let stderr = self.masker.mask(&String::from_utf8_lossy(&output.stderr));
        let mut tail: VecDeque<String> = stdout
            .lines()
            .chain(stderr.lines())
            .map(str::to_string)
            .collect();
        while tail.len() > TAIL_LINES {
            tail.pop_front();
        }
        if self.verbose {
            for line in stderr.lines() {
                eprintln!("      {line}");
            }
        }
        Ok(Outcome {
            success: output.status.success() && stopped_because.is_none(),
            status: output.status.to_string(),
            code: output.status.code(),
            tail: tail.into(),
            duration: started.elapsed(),
            stopped_because,
        })
    }

    fn progress_bar(&self, display: Display, shown: &str) -> Option<ProgressBar> {
        if !self.terminal || display != Display::Progress {
            return None;
        }
        Some(spinner(shown.to_string()))
    }
}

/// A spinner with the elapsed time and `message`, for a long step on a terminal.
pub fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("      {spinner} [{elapsed}] {msg}")
            .expect("the template is valid"),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}
