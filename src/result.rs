//! The machine-readable result of a real run (`--result FILE`), for automation: the outcome,
//! each step run with its masked command, duration and exit status, the archive, the
//! transcript and the way back. The executor tells it what happens through a few calls; the
//! file is written whole at the start, after each step and at the end, so a run that is cut
//! off still leaves what it did. It holds no secret: commands are masked, free text too.

use crate::argv::Reveal;
use crate::error::bad_input;
use crate::plan::{Plan, PlanKind, Step, StepId};
use crate::render::action_line;
use crate::runner::Outcome;
use crate::secrets::Masker;
use crate::state::Status;
use anyhow::{Context, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Names the shape of the document; a change that breaks a reader changes the number.
pub const FORMAT: &str = "rancher-upgrade-result/1";

/// Why a run of steps ended before its last one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    Declined,
    Interrupted,
    Failed,
}

/// Which steps were running: the plan's own, or the way back after the new version failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Phase {
    Plan,
    WayBack,
}

#[derive(Debug, Serialize)]
struct Document {
    format: &'static str,
    tool_version: &'static str,
    kind: PlanKind,
    container: String,
    from: String,
    from_version: String,
    to: String,
    /// As the state file says; `in-progress` until the run ends.
    outcome: Status,
    started_at: String,
    finished_at: Option<String>,
    steps: Vec<StepRun>,
    stops: Vec<StopRecord>,
    archive: Option<ArchiveRecord>,
    transcript: PathBuf,
    state_file: PathBuf,
    way_back: Vec<StepRecord>,
}

/// A step as the report shows it.
#[derive(Debug, Serialize)]
struct StepRecord {
    id: StepId,
    title: String,
    /// The docker command, masked; `None` for a wait or a step done by hand.
    command: Option<String>,
    /// The step's line in the report: `$ command`, `~ wait ...` or `? by hand ...`.
    action: String,
}

#[derive(Debug, Serialize)]
struct StepRun {
    #[serde(flatten)]
    step: StepRecord,
    phase: Phase,
    started_at: String,
    duration_seconds: f64,
    /// How the docker command ended (`exit status: 0`, `signal: 9 (SIGKILL)`, ...).
    exit_status: Option<String>,
    exit_code: Option<i32>,
    ok: bool,
}

#[derive(Debug, Serialize)]
struct StopRecord {
    phase: Phase,
    step: StepId,
    title: String,
    reason: StopReason,
    message: String,
}

#[derive(Debug, Serialize)]
struct ArchiveRecord {
    path: PathBuf,
    /// Its size once the run ended; `None` while it is not written.
    bytes: Option<u64>,
}

/// The exit of the docker command the current step ran, as the runner saw it.
struct Exit {
    status: String,
    code: Option<i32>,
    duration: Duration,
}

pub struct RunResult {
    file: Option<PathBuf>,
    masker: Masker,
    document: Document,
    phase: Phase,
    exit: Option<Exit>,
}

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn record(step: &Step, masker: &Masker) -> StepRecord {
    StepRecord {
        id: step.id,
        title: masker.mask(&step.title),
        command: step.argv().map(|argv| argv.display(Reveal::Masked)),
        action: masker.mask(&action_line(step, Reveal::Masked)),
    }
}

impl RunResult {
    /// Starts the document of a run of `plan` and writes it to `file`, if there is one; a file
    /// that can't be written is refused before any step runs.
    pub fn start(
        file: Option<PathBuf>,
        plan: &Plan,
        masker: Masker,
        transcript: &Path,
        state_file: &Path,
    ) -> Result<RunResult> {
        let result = RunResult {
            document: Document {
                format: FORMAT,
                tool_version: env!("CARGO_PKG_VERSION"),
                kind: plan.kind,
                container: plan.container.clone(),
                from: plan.from.to_string(),
                from_version: plan.from_version.clone(),
                to: plan.to.to_string(),
                outcome: Status::InProgress,
                started_at: now(),
                finished_at: None,
                steps: Vec::new(),
                stops: Vec::new(),
                archive: plan.backup_archive.clone().map(|archive| ArchiveRecord {
                    path: archive.path,
                    bytes: None,
                }),
                transcript: transcript.to_path_buf(),
                state_file: state_file.to_path_buf(),
                way_back: Vec::new(),
            },
            file,
            masker,
            phase: Phase::Plan,
            exit: None,
        };
        result.write().map_err(|error| {
            bad_input(format!("{error:#}; choose another file with --result FILE"))
        })?;
        Ok(result)
    }

    /// The docker command of the step that is running exited so.
    pub fn command_exited(&mut self, outcome: &Outcome) {
        self.exit = Some(Exit {
            status: match &outcome.stopped_because {
                Some(why) => format!("{} ({why})", outcome.status),
                None => outcome.status.clone(),
            },
            code: outcome.code,
            duration: outcome.duration,
        });
    }

    /// A step ran, and went well or not; it took `took`, or, when it ran a docker command, as
    /// long as the runner says the command took.
    pub fn step_ran(&mut self, step: &Step, started_at: SystemTime, took: Duration, ok: bool) {
        let exit = self.exit.take();
        self.document.steps.push(StepRun {
            step: record(step, &self.masker),
            phase: self.phase,
            started_at: humantime::format_rfc3339_millis(started_at).to_string(),
            duration_seconds: exit.as_ref().map_or(took, |e| e.duration).as_secs_f64(),
            exit_status: exit.as_ref().map(|e| e.status.clone()),
            exit_code: exit.and_then(|e| e.code),
            ok,
        });
        // A result that can't be written now must not stop the run halfway: the end says so.
        let _ = self.write();
    }

    /// From here on the steps are the way back to the old server.
    pub fn rolling_back(&mut self) {
        self.phase = Phase::WayBack;
    }

    /// The steps stopped at `at`; `not_done` are the ones left. On the way back (or in a
    /// rollback) they are what still returns to the old server.
    pub fn stopped(&mut self, at: &Step, reason: StopReason, message: &str, not_done: &[&Step]) {
        self.document.stops.push(StopRecord {
            phase: self.phase,
            step: at.id,
            title: self.masker.mask(&at.title),
            reason,
            message: self.masker.mask(message),
        });
        if self.phase == Phase::WayBack || self.document.kind == PlanKind::Rollback {
            self.way_back(not_done.iter().copied());
        }
    }

    /// The commands that return to the old server, as the report prints them.
    pub fn way_back<'a>(&mut self, steps: impl IntoIterator<Item = &'a Step>) {
        self.document.way_back = steps
            .into_iter()
            .map(|step| record(step, &self.masker))
            .collect();
    }

    /// The run ended so: the document is complete, and written.
    pub fn finish(&mut self, outcome: Status) -> Result<()> {
        self.document.outcome = outcome;
        self.document.finished_at = Some(now());
        if let Some(archive) = &mut self.document.archive {
            archive.bytes = std::fs::metadata(&archive.path).ok().map(|m| m.len());
        }
        self.write()
    }

    /// Writes the document whole or not at all: a temporary file, owner-only, renamed over it.
    fn write(&self) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let dir = match file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let json = serde_json::to_string_pretty(&self.document).expect("a result serializes");
        let mut temporary = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("can't write the result {}", file.display()))?;
        temporary
            .write_all(json.as_bytes())
            .and_then(|()| temporary.write_all(b"\n"))
            .and_then(|()| temporary.as_file().sync_all())
            .with_context(|| format!("can't write the result {}", file.display()))?;
        temporary
            .persist(file)
            .with_context(|| format!("can't write the result {}", file.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::CarriedSettings;
    use crate::server::fixture::{discovery, server};
    use serde_json::Value;

    /// An upgrade plan whose new server gets the secret `API_TOKEN=t0ken`.
    fn plan() -> Plan {
        let old = server(
            "rancher/server:v1.6.10",
            "sha256:old",
            CarriedSettings {
                env: vec!["API_TOKEN=t0ken".into()],
                ..CarriedSettings::default()
            },
        );
        let options = crate::plan::fixture::options("v1.6.20", "/backups", "T0");
        crate::plan::plan(&discovery(old), &options).unwrap()
    }

    fn exited(code: i32) -> Outcome {
        Outcome {
            success: code == 0,
            status: format!("exit status: {code}"),
            code: Some(code),
            tail: vec![],
            stdout: String::new(),
            duration: Duration::from_millis(5),
            stopped_because: None,
            archive: None,
        }
    }

    fn read(file: &Path) -> Value {
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
    }

    #[test]
    fn the_document_is_written_at_the_start_after_each_step_and_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("result.json");
        let plan = plan();
        let masker = Masker::for_argvs(plan.argvs());
        let mut result = RunResult::start(
            Some(file.clone()),
            &plan,
            masker,
            Path::new("/backups/t.log"),
            Path::new("/backups/s.json"),
        )
        .unwrap();
        let started = read(&file);
        assert_eq!(started["format"], FORMAT);
        assert_eq!(started["outcome"], "in-progress");
        assert_eq!(started["steps"], serde_json::json!([]));

        let create_new = plan
            .steps
            .iter()
            .find(|s| s.id == StepId::CreateNew)
            .unwrap();
        result.command_exited(&exited(125));
        result.step_ran(
            create_new,
            SystemTime::now(),
            Duration::from_millis(7),
            false,
        );
        let after_a_step = read(&file);
        let step = &after_a_step["steps"][0];
        assert_eq!(step["id"], "create-new");
        assert_eq!(step["phase"], "plan");
        assert_eq!(step["exit_code"], 125);
        assert_eq!(step["exit_status"], "exit status: 125");
        assert_eq!(step["duration_seconds"], 0.005, "the runner's duration");
        assert_eq!(step["ok"], false);
        let command = step["command"].as_str().unwrap();
        assert!(command.contains("API_TOKEN='********'"), "{command}");

        result.rolling_back();
        let way_back: Vec<&Step> = plan.steps.iter().flat_map(|s| s.undo.iter()).collect();
        result.stopped(
            way_back[0],
            StopReason::Failed,
            "`docker create` failed: API_TOKEN=t0ken",
            &way_back,
        );
        result.finish(Status::Failed).unwrap();
        let ended = read(&file);
        assert_eq!(ended["outcome"], "failed");
        assert_eq!(ended["stops"][0]["phase"], "way-back");
        assert_eq!(ended["stops"][0]["reason"], "failed");
        assert_eq!(ended["way_back"].as_array().unwrap().len(), way_back.len());
        assert_eq!(ended["archive"]["bytes"], Value::Null, "never written");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("t0ken"), "a secret in the result:\n{text}");
    }

    #[test]
    fn without_a_file_nothing_is_written_and_an_unwritable_one_is_refused() {
        let plan = plan();
        let start = |file: Option<PathBuf>| {
            RunResult::start(
                file,
                &plan,
                Masker::default(),
                Path::new("t.log"),
                Path::new("s.json"),
            )
        };
        assert!(start(None).unwrap().finish(Status::Completed).is_ok());
        let refused = start(Some("/nonexistent/dir/result.json".into()))
            .err()
            .unwrap();
        assert!(
            format!("{refused:#}").contains("choose another file with --result FILE"),
            "{refused:#}"
        );
    }
}
