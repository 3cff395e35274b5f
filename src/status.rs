//! `rancher-upgrade status`: what `--backup-dir` records (the upgrades' state files and the
//! backup archives) beside what the engine runs now, and the one command to run next. It only
//! reads: files, and the engine through discovery's `docker inspect`.

use crate::archive::{self, Checksum};
use crate::argv::{Argv, Reveal};
use crate::cli::DEFAULT_DATA_CONTAINER;
use crate::discover;
use crate::engine::Engine;
use crate::plan::StepId;
use crate::resume::container_id;
use crate::state::{self, Status, UpgradeRecord};
use anyhow::{Context, Result};
use console::style;
use indicatif::HumanBytes;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

/// What `status` was asked, validated.
#[derive(Clone, Debug)]
pub struct Query {
    pub container: Option<String>,
    /// Absolute, and a directory.
    pub backup_dir: PathBuf,
    pub format: ReportFormat,
    pub docker: Option<PathBuf>,
    pub context: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub backup_dir: PathBuf,
    pub upgrades: Vec<Upgrade>,
    /// When no upgrade is recorded (for `--container`): the server the engine runs, named by
    /// `--container` or else the one running rancher/server container.
    pub server: Option<Container>,
    pub archives: Vec<Archive>,
    /// What could not be read from the engine, in the operator's words.
    pub engine_errors: Vec<String>,
}

/// One recorded upgrade, and what the engine shows of its containers now.
#[derive(Debug, Serialize)]
pub struct Upgrade {
    pub container: String,
    /// As the state file says: in-progress, stopped, failed, completed or rolled-back.
    pub status: Status,
    pub from_image: String,
    pub from_version: String,
    pub to_image: String,
    pub old_container_id: String,
    pub steps_done: Vec<StepId>,
    pub backup_archive: Option<PathBuf>,
    pub state_file: PathBuf,
    pub updated_at: String,
    /// The container under the server's name now; `None` when there is none.
    pub server: Option<Container>,
    /// The old server under its parking name, while it is there.
    pub parked: Option<Container>,
    /// The command that carries on from here; `None` when nothing is left to do, or when
    /// `note` says what is left by hand.
    pub next: Option<Next>,
    pub note: Option<String>,
}

/// A container as the engine shows it now.
#[derive(Debug, Serialize)]
pub struct Container {
    pub name: String,
    pub id: String,
    pub image: String,
    /// The Rancher release it runs (its version env, else its image tag).
    pub version: String,
    pub running: bool,
}

#[derive(Debug, Serialize)]
pub struct Next {
    /// The command as it is shown, ready to paste.
    pub command: String,
    pub argv: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Archive {
    pub path: PathBuf,
    pub bytes: Option<u64>,
    /// The SHA-256 its checksum file (`ARCHIVE.sha256`) holds.
    pub sha256: Option<String>,
    /// Whether the archive is the one its checksum file describes; `None` when the archive
    /// can't be read.
    pub checksum: Option<ChecksumState>,
    /// Why the archive can't be read, or its checksum file.
    pub error: Option<String>,
    /// The containers whose recorded upgrade names this archive.
    pub recorded_by: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChecksumState {
    Matches,
    /// No checksum file beside the archive (or one that can't be read).
    Missing,
    /// The archive is not the one its checksum file describes: damaged, truncated or replaced.
    DoesNotMatch,
}

/// Reads the records, the archives and the engine. Nothing is changed.
pub fn report(query: &Query, engine: &Engine) -> Result<Report> {
    let records: Vec<UpgradeRecord> = state::records_in(&query.backup_dir)?
        .into_iter()
        .filter(|r| query.container.as_ref().is_none_or(|c| *c == r.container))
        .collect();
    let mut engine_errors = Vec::new();
    let upgrades: Vec<Upgrade> = records
        .iter()
        .map(|record| {
            let data = record.data_container.as_deref();
            let server = noted(inspect(engine, &record.container, data), &mut engine_errors);
            let parked = noted(
                inspect(engine, &record.parked_name, data),
                &mut engine_errors,
            )
            .filter(|parked| parked.id == record.old_container_id);
            upgrade(record, &query.backup_dir, server, parked)
        })
        .collect();
    let server = if upgrades.is_empty() {
        let name = match &query.container {
            Some(name) => Some(name.clone()),
            None => noted(
                discover::find_server_container(engine, "--container NAME").map(Some),
                &mut engine_errors,
            ),
        };
        name.and_then(|name| noted(inspect(engine, &name, None), &mut engine_errors))
    } else {
        None
    };
    Ok(Report {
        archives: archives(&query.backup_dir, &records)?,
        backup_dir: query.backup_dir.clone(),
        upgrades,
        server,
        engine_errors,
    })
}

/// A recorded upgrade, beside what the engine shows of its containers now.
fn upgrade(
    record: &UpgradeRecord,
    backup_dir: &Path,
    server: Option<Container>,
    parked: Option<Container>,
) -> Upgrade {
    // A way back that gave the old server its name back has nothing left for `rollback` to
    // undo (it refuses a server on the old image): the rest is by hand.
    let old_server_back = record.status == Status::Failed
        && server
            .as_ref()
            .is_some_and(|s| s.id == record.old_container_id);
    let state_file = state::record_path(backup_dir, &record.container);
    let note = old_server_back.then(|| {
        format!(
            "the old server has its name back, so rollback has nothing left to undo; run the commands the transcript lists under \"Not done\" (start {} and wait for /ping), then move {} aside",
            record.container,
            state_file.display()
        )
    });
    Upgrade {
        container: record.container.clone(),
        status: record.status,
        from_image: record.from_image.clone(),
        from_version: record.from_version.clone(),
        to_image: record.to_image.clone(),
        old_container_id: record.old_container_id.clone(),
        steps_done: record.steps_done.clone(),
        backup_archive: record.backup_archive.clone(),
        state_file,
        updated_at: record.updated_at.clone(),
        server,
        parked,
        next: next_command(record, backup_dir)
            .filter(|_| !old_server_back)
            .map(|argv| Next {
                command: argv.display(Reveal::Plain),
                argv: argv.real(),
            }),
        note,
    }
}

/// What a look at the engine found; a failure is noted in `errors` and counts as nothing found.
fn noted<T>(found: Result<Option<T>>, errors: &mut Vec<String>) -> Option<T> {
    found.unwrap_or_else(|error| {
        errors.push(format!("{error:#}"));
        None
    })
}

/// The container named `name` as the engine shows it, or `None` when there is none.
fn inspect(engine: &Engine, name: &str, data_container: Option<&str>) -> Result<Option<Container>> {
    if container_id(engine, name)?.is_none() {
        return Ok(None);
    }
    let data_container = data_container.unwrap_or(DEFAULT_DATA_CONTAINER);
    let server = discover::discover(engine, name, data_container, None)?.server;
    Ok(Some(Container {
        version: server.release().to_string(),
        name: server.name,
        id: server.id,
        image: server.image.to_string(),
        running: server.running,
    }))
}

/// What carries a recorded upgrade on: the same upgrade again for one that stopped halfway,
/// `rollback` for one whose way back did not finish or that removed its old container, nothing
/// for one that ended.
pub fn next_command(record: &UpgradeRecord, backup_dir: &Path) -> Option<Argv> {
    let tool = Argv::new("rancher-upgrade");
    let argv = match record.status {
        Status::Completed | Status::RolledBack | Status::Untouched => return None,
        Status::InProgress | Status::Stopped if !record.removed_old_container() => {
            let mut argv = tool
                .args(["upgrade", "--container"])
                .arg(&record.container)
                .arg("--to")
                .arg(&record.to_image);
            if let Some(data) = record
                .data_container
                .as_deref()
                .filter(|data| *data != DEFAULT_DATA_CONTAINER)
            {
                argv = argv.arg("--data-container").arg(data);
            }
            // A run that took no backup was given --no-backup: the same command says it again.
            if record.backup_stamp.is_none() {
                argv = argv.arg("--no-backup");
            }
            argv
        }
        Status::InProgress | Status::Stopped | Status::Failed => tool
            .args(["rollback", "--container"])
            .arg(&record.container),
    };
    Some(
        argv.arg("--backup-dir")
            .arg(backup_dir.display().to_string()),
    )
}

/// The backup archives in `dir`, of the data volumes and of external databases (not their
/// checksum files, nor what an interrupted backup left), in name order, with their sizes and what their checksum files say of them.
fn archives(dir: &Path, records: &[UpgradeRecord]) -> Result<Vec<Archive>> {
    let mut found: Vec<archive::Archive> = std::fs::read_dir(dir)
        .with_context(|| format!("can't read {}", dir.display()))?
        .flatten()
        .filter_map(|entry| archive::Archive::backup_named(entry.path()))
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found
        .into_iter()
        .map(|file| {
            let recorded_by = records
                .iter()
                .filter(|r| r.backup_archive.as_deref() == Some(file.path.as_path()))
                .map(|r| r.container.clone())
                .collect();
            let measured = std::fs::metadata(&file.path)
                .map_err(anyhow::Error::from)
                .and_then(|meta| Ok((meta.len(), file.checksum()?)));
            let (bytes, sha256, checksum, error) = match measured {
                Ok((bytes, Checksum::Matches(sha256))) => (
                    Some(bytes),
                    Some(sha256),
                    Some(ChecksumState::Matches),
                    None,
                ),
                Ok((bytes, Checksum::Mismatch { expected, .. })) => (
                    Some(bytes),
                    Some(expected),
                    Some(ChecksumState::DoesNotMatch),
                    None,
                ),
                Ok((bytes, Checksum::Missing(error))) => (
                    Some(bytes),
                    None,
                    Some(ChecksumState::Missing),
                    (error.kind() != std::io::ErrorKind::NotFound)
                        .then(|| format!("{}: {error}", file.checksum_path().display())),
                ),
                Err(error) => (None, None, None, Some(format!("{error:#}"))),
            };
            Archive {
                path: file.path,
                bytes,
                sha256,
                checksum,
                error,
                recorded_by,
            }
        })
        .collect())
}

pub fn render(report: &Report, format: ReportFormat) -> String {
    match format {
        ReportFormat::Json => {
            serde_json::to_string_pretty(report).expect("a report always serializes") + "\n"
        }
        ReportFormat::Text => text(report),
    }
}

/// What a status means for the operator.
fn meaning(status: Status) -> String {
    match status {
        Status::Completed => style("done").green().to_string(),
        Status::RolledBack => style("rolled back").green().to_string(),
        Status::Untouched => style("stopped before it changed anything")
            .green()
            .to_string(),
        Status::Stopped => format!(
            "{}: the same command resumes it",
            style("stopped halfway").yellow()
        ),
        Status::InProgress => format!(
            "{}: once no run goes on, the same command resumes it",
            style("in progress, or cut off without a word").yellow()
        ),
        Status::Failed => style("failed, and its way back did not finish")
            .red()
            .to_string(),
    }
}

fn describe(container: &Container) -> String {
    let state = if container.running {
        "runs"
    } else {
        "is stopped; its image is"
    };
    format!(
        "{} {state} {} ({})",
        container.name, container.image, container.version
    )
}

fn text(report: &Report) -> String {
    let mut out = String::new();
    let dir = report.backup_dir.display();
    if report.upgrades.is_empty() {
        let _ = writeln!(out, "No upgrade is recorded in {dir}.");
    }
    if let Some(server) = &report.server {
        let _ = writeln!(out, "Now: {}", describe(server));
    }
    for upgrade in &report.upgrades {
        let _ = writeln!(
            out,
            "{}: {}",
            style(&upgrade.container).bold(),
            meaning(upgrade.status)
        );
        let _ = writeln!(
            out,
            "    upgrade from {} ({}) to {}",
            upgrade.from_version, upgrade.from_image, upgrade.to_image
        );
        // The steps by the names the state file gives them.
        let steps = serde_json::to_value(&upgrade.steps_done).expect("step ids serialize");
        let steps: Vec<&str> = steps
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_str)
            .collect();
        let _ = writeln!(
            out,
            "    recorded {} in {}; steps done: {}",
            upgrade.updated_at,
            upgrade.state_file.display(),
            if steps.is_empty() {
                "none".to_string()
            } else {
                steps.join(", ")
            }
        );
        let archive = match &upgrade.backup_archive {
            Some(path) if path.exists() => path.display().to_string(),
            Some(path) => format!("{} (not written)", path.display()),
            None => "none".to_string(),
        };
        let _ = writeln!(out, "    archive: {archive}");
        let mut now = match &upgrade.server {
            Some(server) if server.id == upgrade.old_container_id => {
                format!("{}, the old server", describe(server))
            }
            Some(server) => describe(server),
            None => format!("no container {}", upgrade.container),
        };
        if let Some(parked) = &upgrade.parked {
            let _ = write!(now, "; the old server is parked: {}", describe(parked));
        }
        let _ = writeln!(out, "    now: {now}");
        match (&upgrade.next, &upgrade.note) {
            (Some(next), _) => {
                let _ = writeln!(out, "    next: {}", style(&next.command).bold());
            }
            (None, Some(note)) => {
                let _ = writeln!(out, "    next, by hand: {note}");
            }
            (None, None) => {
                let _ = writeln!(out, "    next: nothing to do");
            }
        }
    }
    for error in &report.engine_errors {
        let _ = writeln!(
            out,
            "{} {error}",
            style("The engine did not tell:").yellow()
        );
    }
    if report.archives.is_empty() {
        let _ = writeln!(out, "\nNo archive in {dir}.");
    } else {
        let _ = writeln!(out, "\nArchives in {dir}:");
    }
    for archive in &report.archives {
        let name = archive
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let size = archive
            .bytes
            .map(|bytes| format!("{} ({bytes} bytes)", HumanBytes(bytes)));
        let measured = match (size, archive.checksum, &archive.sha256) {
            (Some(size), Some(ChecksumState::Matches), Some(sha256)) => {
                format!("{size}, sha256 {sha256}")
            }
            (Some(size), Some(ChecksumState::DoesNotMatch), _) => format!(
                "{size}, {}",
                style(format!("does not match its checksum file {name}.sha256 (damaged, truncated or replaced)")).red()
            ),
            (Some(size), Some(ChecksumState::Missing), _) => format!(
                "{size}, {}",
                style(match &archive.error {
                    Some(error) => format!("checksum file unreadable: {error}"),
                    None => format!("checksum file missing ({name}.sha256)"),
                })
                .yellow()
            ),
            _ => format!(
                "unreadable: {}",
                archive.error.as_deref().unwrap_or_default()
            ),
        };
        let owner = if archive.recorded_by.is_empty() {
            String::new()
        } else {
            format!(
                ", taken by the upgrade of {}",
                archive.recorded_by.join(", ")
            )
        };
        let _ = writeln!(out, "    {name}: {measured}{owner}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::fixture::record;

    fn recorded(status: Status) -> UpgradeRecord {
        let mut record = record(&Argv::new("docker").args(["run", "-d"]));
        record.status = status;
        record.backup_stamp = Some("T0".into());
        record
    }

    fn shown(argv: Option<Argv>) -> Option<String> {
        argv.map(|argv| argv.display(Reveal::Plain))
    }

    #[test]
    fn an_upgrade_that_stopped_halfway_goes_on_with_the_same_command() {
        for status in [Status::Stopped, Status::InProgress] {
            assert_eq!(
                shown(next_command(&recorded(status), Path::new("/srv/backups"))).as_deref(),
                Some(
                    "rancher-upgrade upgrade --container rancher --to rancher/server:v1.6.20 --backup-dir /srv/backups"
                )
            );
        }
        let mut other = recorded(Status::Stopped);
        other.data_container = Some("rancher-data-2".into());
        other.backup_stamp = None;
        assert_eq!(
            shown(next_command(&other, Path::new("/srv/my backups"))).as_deref(),
            Some(
                "rancher-upgrade upgrade --container rancher --to rancher/server:v1.6.20 --data-container rancher-data-2 --no-backup --backup-dir '/srv/my backups'"
            )
        );
    }

    #[test]
    fn an_upgrade_that_removed_its_old_container_goes_on_with_rollback() {
        let mut removed = recorded(Status::Stopped);
        removed.steps_done.push(StepId::RemoveParked);
        assert_eq!(
            shown(next_command(&removed, Path::new("/b"))).as_deref(),
            Some("rancher-upgrade rollback --container rancher --backup-dir /b")
        );
    }

    #[test]
    fn a_failed_way_back_is_finished_by_rollback_and_an_ended_upgrade_needs_nothing() {
        assert_eq!(
            shown(next_command(&recorded(Status::Failed), Path::new("/b"))).as_deref(),
            Some("rancher-upgrade rollback --container rancher --backup-dir /b")
        );
        for ended in [Status::Completed, Status::RolledBack] {
            assert_eq!(next_command(&recorded(ended), Path::new("/b")), None);
        }
    }

    #[test]
    fn archives_are_listed_with_what_their_checksum_files_say() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, content: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            path
        };
        // sha256sum of "abc".
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let taken = file("rancher-data-backup-v1.6.10-T0.tar.zst", "abc");
        file(
            "rancher-data-backup-v1.6.10-T0.tar.zst.sha256",
            &format!("{abc}  rancher-data-backup-v1.6.10-T0.tar.zst\n"),
        );
        file("rancher-data-backup-v1.6.20-T1.tar.zst.partial", "cut off");
        file("rancher-data-backup-v1.6.8-T2.tar.gz", "abd");
        file(
            "rancher-data-backup-v1.6.8-T2.tar.gz.sha256",
            &format!("{abc}  rancher-data-backup-v1.6.8-T2.tar.gz\n"),
        );
        file("rancher-data-backup-v1.6.9-T3.tar.gz", "");
        file("notes.txt", "not an archive");
        file("other-T4.tar.zst", "not the tool's");
        let mut record = recorded(Status::Completed);
        record.backup_archive = Some(taken.clone());
        let found = archives(dir.path(), &[record]).unwrap();
        let names: Vec<String> = found
            .iter()
            .map(|a| a.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "rancher-data-backup-v1.6.10-T0.tar.zst",
                "rancher-data-backup-v1.6.8-T2.tar.gz",
                "rancher-data-backup-v1.6.9-T3.tar.gz"
            ]
        );
        assert_eq!(found[0].bytes, Some(3));
        assert_eq!(found[0].sha256.as_deref(), Some(abc));
        assert_eq!(found[0].checksum, Some(ChecksumState::Matches));
        assert_eq!(found[0].recorded_by, ["rancher"]);
        assert_eq!(found[1].checksum, Some(ChecksumState::DoesNotMatch));
        assert_eq!(found[1].sha256.as_deref(), Some(abc), "what the file says");
        assert!(found[1].recorded_by.is_empty());
        assert_eq!(found[2].checksum, Some(ChecksumState::Missing));
        assert_eq!(found[2].sha256, None);
        assert_eq!(found[2].error, None);

        let shown = render(
            &Report {
                backup_dir: dir.path().into(),
                upgrades: vec![],
                server: None,
                archives: found,
                engine_errors: vec![],
            },
            ReportFormat::Text,
        );
        let matching = format!(
            "rancher-data-backup-v1.6.10-T0.tar.zst: 3 B (3 bytes), sha256 {abc}, taken by the upgrade of rancher\n"
        );
        for line in [
            matching.as_str(),
            "rancher-data-backup-v1.6.8-T2.tar.gz: 3 B (3 bytes), does not match its checksum file rancher-data-backup-v1.6.8-T2.tar.gz.sha256",
            "rancher-data-backup-v1.6.9-T3.tar.gz: 0 B (0 bytes), checksum file missing (rancher-data-backup-v1.6.9-T3.tar.gz.sha256)\n",
        ] {
            assert!(shown.contains(line), "no {line:?} in:\n{shown}");
        }
    }

    fn container(id: &str, image: &str, running: bool) -> Container {
        Container {
            name: "rancher".into(),
            id: id.into(),
            image: image.into(),
            version: image.rsplit(':').next().unwrap().into(),
            running,
        }
    }

    fn report(upgrade: Upgrade) -> Report {
        Report {
            backup_dir: "/b".into(),
            upgrades: vec![upgrade],
            server: None,
            archives: vec![],
            engine_errors: vec![],
        }
    }

    #[test]
    fn the_text_says_the_state_what_runs_now_and_the_next_command() {
        let mut record = recorded(Status::Stopped);
        record.steps_done = vec![StepId::Pull, StepId::DisableRestart];
        let shown = render(
            &report(upgrade(
                &record,
                Path::new("/b"),
                Some(container("abc", "rancher/server:v1.6.10", true)),
                None,
            )),
            ReportFormat::Text,
        );
        for line in [
            "rancher: stopped halfway: the same command resumes it",
            "    upgrade from v1.6.10 (rancher/server:v1.6.10) to rancher/server:v1.6.20",
            "steps done: pull, disable-restart",
            "    archive: none",
            "    now: rancher runs rancher/server:v1.6.10 (v1.6.10), the old server",
            "    next: rancher-upgrade upgrade --container rancher --to rancher/server:v1.6.20 --backup-dir /b",
            "No archive in /b.",
        ] {
            assert!(shown.contains(line), "no {line:?} in:\n{shown}");
        }
        let done = render(
            &report(upgrade(
                &recorded(Status::Completed),
                Path::new("/b"),
                Some(container("new", "rancher/server:v1.6.20", true)),
                None,
            )),
            ReportFormat::Text,
        );
        assert!(done.contains("rancher: done\n"), "{done}");
        assert!(
            done.contains("    now: rancher runs rancher/server:v1.6.20 (v1.6.20)\n"),
            "{done}"
        );
        assert!(done.contains("    next: nothing to do\n"), "{done}");
    }

    #[test]
    fn a_failed_way_back_that_gave_the_old_server_its_name_back_is_finished_by_hand() {
        let record = recorded(Status::Failed);
        let old = container(&record.old_container_id, "rancher/server:v1.6.10", false);
        let shown = upgrade(&record, Path::new("/b"), Some(old), None);
        assert!(
            shown.next.is_none(),
            "rollback would refuse: {:?}",
            shown.next
        );
        let note = shown.note.unwrap();
        assert!(note.contains("\"Not done\""), "{note}");
        assert!(
            note.contains("/b/rancher-upgrade-rancher.state.json"),
            "{note}"
        );
    }

    #[test]
    fn the_json_names_the_status_as_the_state_file_does() {
        let json: serde_json::Value = serde_json::from_str(&render(
            &report(upgrade(
                &recorded(Status::Failed),
                Path::new("/b"),
                None,
                None,
            )),
            ReportFormat::Json,
        ))
        .unwrap();
        assert_eq!(json["upgrades"][0]["status"], "failed");
        assert_eq!(json["upgrades"][0]["note"], serde_json::Value::Null);
        assert_eq!(json["upgrades"][0]["server"], serde_json::Value::Null);
        assert_eq!(
            json["upgrades"][0]["next"]["argv"],
            serde_json::json!([
                "rancher-upgrade",
                "rollback",
                "--container",
                "rancher",
                "--backup-dir",
                "/b"
            ])
        );
    }
}
