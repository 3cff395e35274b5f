//! Runs one docker command of the plan through duct: output captured for errors, progress and
//! elapsed time for long steps, Ctrl-C and the per-step timeout honoured.

use crate::archive::{Archive, ArchiveSummary};
use crate::argv::{Argv, Reveal};
use crate::engine::Engine;
use crate::interrupt;
use crate::plan::Direction;
use crate::secrets::Masker;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rustix::process::{Pid, Signal, kill_process_group};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How many lines of a command's output are kept for the report and the transcript.
pub const TAIL_LINES: usize = 20;
const POLL: Duration = Duration::from_millis(100);
/// How long a command asked to stop has to finish what it is doing before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
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
    /// Everything it printed on stdout, masked (nothing for a backup: that goes to the archive).
    pub stdout: String,
    pub duration: Duration,
    /// Why the runner stopped the command itself, if it did.
    pub stopped_because: Option<String>,
    /// What a backup wrote, when the command's output was one.
    pub archive: Option<ArchiveSummary>,
}

pub struct Runner<'a> {
    pub engine: &'a Engine,
    pub masker: &'a Masker,
    pub verbose: bool,
    pub terminal: bool,
    pub step_timeout: Option<Duration>,
}

impl Runner<'_> {
    /// Runs a command whose output is text.
    pub fn run(&self, argv: &Argv, display: Display) -> Result<Outcome> {
        self.run_streaming(argv, display, None)
    }

    /// Runs a command whose output is written to `archive` (a backup), or whose input is
    /// `archive` (a restore): the archive stays on this machine, the engine may be anywhere.
    pub fn transfer(
        &self,
        argv: &Argv,
        direction: Direction,
        archive: &Archive,
    ) -> Result<Outcome> {
        self.run_streaming(argv, Display::Progress, Some((direction, archive)))
    }

    fn run_streaming(
        &self,
        argv: &Argv,
        display: Display,
        transfer: Option<(Direction, &Archive)>,
    ) -> Result<Outcome> {
        let shown = argv.display(Reveal::Masked);
        let command = self.engine.expression(argv);
        // duct applies the redirection nearest the command: only one is made.
        let (expression, feed) = match transfer {
            Some((Direction::Restore, _)) => {
                let (reader, writer) = std::io::pipe().context("could not make a pipe")?;
                (command.stdin_file(reader), Some(writer))
            }
            _ => (command.stdin_null(), None),
        };
        let handle = expression
            .stderr_capture()
            .unchecked()
            .before_spawn(|command| {
                // Its own process group: the terminal's Ctrl-C must not cut a docker
                // command short; the executor decides when to stop.
                command.process_group(0);
                Ok(())
            })
            .reader()
            .with_context(|| format!("could not start `{shown}`"))?;
        // The expression keeps a copy of the pipe's reading end; dropped, only the child's stays.
        drop(expression);
        let moved = AtomicU64::new(0);
        std::thread::scope(|scope| {
            let (lines_tx, lines) = mpsc::channel();
            let handle = &handle;
            let moved = &moved;
            let reading = scope.spawn(move || -> Result<Option<ArchiveSummary>> {
                match transfer {
                    Some((Direction::Backup, archive)) => {
                        let mut stdout = handle;
                        let written = archive.write_from(&mut stdout, moved);
                        // Whatever went wrong, the engine's stream must not block on a full pipe.
                        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
                        written.map(Some)
                    }
                    _ => {
                        for line in BufReader::new(handle).split(b'\n') {
                            let Ok(line) = line else { break };
                            if lines_tx
                                .send(String::from_utf8_lossy(&line).trim_end().to_string())
                                .is_err()
                            {
                                break;
                            }
                        }
                        Ok(None)
                    }
                }
            });
            let feeding = feed.map(|mut writer| {
                let archive = transfer.map(|(_, archive)| archive);
                scope.spawn(move || -> Result<()> {
                    match archive {
                        Some(archive) => archive.read_into(&mut writer, moved),
                        None => Ok(()),
                    }
                })
            });
            self.watch(&shown, display, lines, handle, moved, reading, feeding)
        })
    }

    /// Shows the command's progress until it ends, stopping it on a second Ctrl-C or the step
    /// timeout, and collects its outcome.
    #[allow(clippy::too_many_arguments)]
    fn watch(
        &self,
        shown: &str,
        display: Display,
        lines: mpsc::Receiver<String>,
        handle: &duct::ReaderHandle,
        moved: &AtomicU64,
        reading: thread::ScopedJoinHandle<'_, Result<Option<ArchiveSummary>>>,
        feeding: Option<thread::ScopedJoinHandle<'_, Result<()>>>,
    ) -> Result<Outcome> {
        let progress = self.progress_bar(display, shown);
        let started = Instant::now();
        let mut last_heartbeat = started;
        let mut stdout = String::new();
        let mut stopped_because = None;
        let mut stopping = Stopping::No;
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
                Err(RecvTimeoutError::Disconnected) if reading.is_finished() => break,
                Err(_) => {}
            }
            let bytes = moved.load(Ordering::Relaxed);
            if let (Some(bar), true) = (&progress, bytes > 0) {
                bar.set_message(format!("{} {}", mebibytes(bytes, started.elapsed()), shown));
            }
            if interrupt::requested() && !warned_of_interrupt {
                warned_of_interrupt = true;
                tell(
                    &progress,
                    format!(
                        "Ctrl-C: stopping once `{shown}` finishes; press Ctrl-C again to stop it now"
                    ),
                );
            }
            match stopping {
                Stopping::No => {
                    if interrupt::insisted() {
                        stopped_because = Some("stopped by a second Ctrl-C".to_string());
                    } else if let Some(limit) = self.step_timeout.filter(|l| started.elapsed() > *l)
                    {
                        stopped_because = Some(format!(
                            "no answer within {} s (--step-timeout)",
                            limit.as_secs()
                        ));
                    }
                    if let Some(why) = &stopped_because {
                        tell(
                            &progress,
                            format!(
                                "{why}: asking `{shown}` to stop; it gets {} s (a third Ctrl-C stops it at once)",
                                STOP_GRACE.as_secs()
                            ),
                        );
                        signal_group(handle, Signal::TERM);
                        stopping = Stopping::Asked(Instant::now());
                    }
                }
                Stopping::Asked(asked)
                    if asked.elapsed() > STOP_GRACE || interrupt::pressed_thrice() =>
                {
                    signal_group(handle, Signal::KILL);
                    // duct's own kill also waits for the child, so the loop sees it end.
                    handle
                        .kill()
                        .with_context(|| format!("could not stop `{shown}`"))?;
                    stopping = Stopping::Killed;
                }
                Stopping::Asked(_) | Stopping::Killed => {}
            }
            if progress.is_none()
                && display == Display::Progress
                && last_heartbeat.elapsed() >= HEARTBEAT
            {
                last_heartbeat = Instant::now();
                eprintln!(
                    "      ... still running ({} s{})",
                    started.elapsed().as_secs(),
                    match bytes {
                        0 => String::new(),
                        _ => format!(", {}", mebibytes(bytes, started.elapsed())),
                    }
                );
            }
        }
        let archive = reading
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the reader of `{shown}` panicked")));
        let fed = feeding.map(|f| {
            f.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the feeder of `{shown}` panicked")))
        });
        let output = loop {
            // The reader is done, so the command closed its output; it exits right after.
            match handle
                .try_wait()
                .with_context(|| format!("could not wait for `{shown}`"))?
            {
                Some(output) => break output.clone(),
                None => thread::sleep(POLL),
            }
        };
        if let Some(bar) = progress {
            bar.finish_and_clear();
        }
        let stderr = self.masker.mask(&String::from_utf8_lossy(&output.stderr));
        let mut tail: VecDeque<String> = stdout
            .lines()
            .chain(stderr.lines())
            .map(str::to_string)
            .collect();
        // A stream that broke on this side is the step's failure, whatever the command says.
        let mut streamed = true;
        for error in [
            archive.as_ref().err(),
            fed.as_ref().and_then(|f| f.as_ref().err()),
        ]
        .into_iter()
        .flatten()
        {
            streamed = false;
            tail.push_back(format!("rancher-upgrade: {error:#}"));
        }
        while tail.len() > TAIL_LINES {
            tail.pop_front();
        }
        if self.verbose {
            for line in stderr.lines() {
                eprintln!("      {line}");
            }
        }
        Ok(Outcome {
            success: output.status.success() && stopped_because.is_none() && streamed,
            status: output.status.to_string(),
            code: output.status.code(),
            tail: tail.into(),
            duration: started.elapsed(),
            stopped_because,
            stdout,
            archive: archive.ok().flatten(),
        })
    }

    fn progress_bar(&self, display: Display, shown: &str) -> Option<ProgressBar> {
        if !self.terminal || display != Display::Progress {
            return None;
        }
        Some(spinner(shown.to_string()))
    }
}

/// `123.4 MiB (56.7 MiB/s)`: how much a stream moved, and how fast.
fn mebibytes(bytes: u64, elapsed: Duration) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    format!(
        "{mib:.1} MiB ({:.1} MiB/s)",
        mib / elapsed.as_secs_f64().max(0.001)
    )
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

/// Where the runner is in stopping a command it must stop.
#[derive(Clone, Copy)]
enum Stopping {
    No,
    /// SIGTERM sent at that instant; a SIGKILL follows after [`STOP_GRACE`].
    Asked(Instant),
    Killed,
}

/// A note for the operator, above the progress bar when there is one.
fn tell(progress: &Option<ProgressBar>, note: String) {
    match progress {
        Some(bar) => bar.println(note),
        None => eprintln!("{note}"),
    }
}

/// Signals the command's process group (its own, see `run_streaming`), so that what the CLI
/// started (ssh) gets it too. SIGTERM first: the docker CLI ends, `run` passes it on to its
/// container, and podman finishes the container it is creating before it exits. A SIGKILL
/// there leaves a container in podman's storage that its database doesn't know, holding the
/// name (16 kills in 100 of `podman create`, against none of 100 SIGTERMs, measured).
fn signal_group(handle: &duct::ReaderHandle, signal: Signal) {
    for pid in handle.pids() {
        if let Some(group) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
            // It may have exited already: then there is nothing to stop.
            let _ = kill_process_group(group, signal);
        }
    }
}
