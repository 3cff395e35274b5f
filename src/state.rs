//! The record of an upgrade, beside the backups: what it did, so `rollback` and a resumed run
//! need no guesswork. It holds no secret value: a secret word is kept as the name of its
//! variable, and its value is read from the live container when it is needed.

use crate::archive::ArchiveSummary;
use crate::argv::{Argv, Embedded, Secret, Word};
use crate::plan::{Plan, StepId};
use crate::server::Server;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Running, or ended without a word (a killed terminal): resumable.
    InProgress,
    /// Stopped before the new version ran (declined, interrupted, failed): resumable.
    Stopped,
    /// The new version failed and the way back did not finish: `rollback` is next.
    Failed,
    Completed,
    RolledBack,
    /// Stopped before anything was changed that would need undoing: nothing to resume.
    Untouched,
}

impl Status {
    pub fn is_resumable(self) -> bool {
        matches!(self, Status::InProgress | Status::Stopped)
    }
}

/// One word of a recorded command: the text, or for a secret the visible part and the
/// variable that stands for the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedWord {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_var: Option<String>,
    /// The secret travels in the command's environment (see [`Secret::via_environment`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub via_environment: bool,
    /// The word holds secret values without being a secret word ([`Embedded`]): `text` has
    /// each as the name of its variable between two NULs, which no command word can hold.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub embedded: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpgradeRecord {
    pub container: String,
    pub old_container_id: String,
    pub parked_name: String,
    pub data_container: Option<String>,
    pub from_image: String,
    pub from_image_id: String,
    pub from_version: String,
    pub to_image: String,
    /// The old container's restart policy (`docker update --restart` value), before the upgrade.
    pub restart_policy: Option<String>,
    pub backup_archive: Option<PathBuf>,
    /// What the backup holds, as it was checked while it was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_summary: Option<ArchiveSummary>,
    /// The UTC time that names the archive, so a resumed run finds the one it wrote.
    pub backup_stamp: Option<String>,
    /// `create` of the old server on the data container, for a rollback after removal (from
    /// a run before networks were carried: its `run -d`).
    pub recreate_old: Vec<RecordedWord>,
    /// Then `network connect` to each of its other networks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reconnect_old: Vec<Vec<RecordedWord>>,
    pub steps_done: Vec<StepId>,
    pub status: Status,
    pub updated_at: String,
    /// A cluster's upgrade: each node's own record, for a rollback of the cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeRecord>,
}

/// What a cluster's upgrade recorded of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// How `--node` named its engine.
    pub name: String,
    pub record: UpgradeRecord,
}

/// `rancher-upgrade-NAME.state.json` in the backup directory.
pub fn record_path(backup_dir: &Path, container: &str) -> PathBuf {
    backup_dir.join(format!("rancher-upgrade-{container}.state.json"))
}

/// A word with its embedded secrets as `\0VAR\0`.
fn embedded_text(word: &Word) -> String {
    word.embedded()
        .iter()
        .fold(word.value().to_string(), |text, e| {
            text.replace(&e.value, &format!("\0{}\0", e.shell_var))
        })
}

fn record_words(argv: &Argv) -> Vec<RecordedWord> {
    argv.words()
        .iter()
        .map(|word| match word.secret() {
            Some(secret) => RecordedWord {
                text: word.visible_prefix().to_string(),
                secret_var: Some(secret.shell_var.clone()),
                via_environment: secret.via_environment,
                embedded: false,
            },
            None if !word.embedded().is_empty() => RecordedWord {
                text: embedded_text(word),
                secret_var: None,
                via_environment: false,
                embedded: true,
            },
            None => RecordedWord {
                text: word.value().to_string(),
                secret_var: None,
                via_environment: false,
                embedded: false,
            },
        })
        .collect()
}

impl UpgradeRecord {
    /// Whether the upgrade removed the stopped old container (podman's way to keep an `always`
    /// server down): it can't be resumed from that container, only rolled back from the record.
    pub fn removed_old_container(&self) -> bool {
        self.steps_done.contains(&StepId::RemoveParked)
    }

    /// `recreate_old`: the commands that make the old server again ([`crate::plan::recreate_old`]).
    pub fn new(
        server: &Server,
        plan: &Plan,
        recreate_old: &[Argv],
        backup_stamp: Option<String>,
    ) -> UpgradeRecord {
        UpgradeRecord {
            container: plan.container.clone(),
            old_container_id: server.id.clone(),
            parked_name: server.parked_name(),
            data_container: plan.data_container.clone(),
            from_image: plan.from.to_string(),
            from_image_id: server.image_id.clone(),
            from_version: plan.from_version.clone(),
            to_image: plan.to.to_string(),
            restart_policy: server.carried.restart.as_ref().map(|r| r.flag_value()),
            backup_archive: plan.backup_archive.as_ref().map(|a| a.path.clone()),
            backup_summary: None,
            backup_stamp,
            recreate_old: recreate_old.first().map(record_words).unwrap_or_default(),
            reconnect_old: recreate_old.iter().skip(1).map(record_words).collect(),
            steps_done: Vec::new(),
            status: Status::InProgress,
            updated_at: now(),
            nodes: Vec::new(),
        }
    }

    pub fn load(path: &Path) -> Result<Option<UpgradeRecord>> {
        match fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map(Some).with_context(|| {
                format!(
                    "{} is not a rancher-upgrade state file; move it aside",
                    path.display()
                )
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error).with_context(|| format!("can't read {}", path.display())),
        }
    }

    /// Writes the record whole or not at all (a temporary file renamed over it), owner-only.
    pub fn save(&mut self, path: &Path) -> Result<()> {
        self.updated_at = now();
        let temporary = path.with_extension("json.tmp");
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("can't write {}", temporary.display()))?;
        let json = serde_json::to_string_pretty(self).expect("a record always serializes");
        file.write_all(json.as_bytes())
            .and_then(|_| file.sync_all())
            .with_context(|| format!("can't write {}", temporary.display()))?;
        fs::rename(&temporary, path).with_context(|| format!("can't write {}", path.display()))
    }

    /// The recorded commands that make the old server again, with each secret's value from
    /// `live` (variable name → value, read from the running containers).
    pub fn recreate_old(&self, live: &BTreeMap<String, String>) -> Result<Vec<Argv>, String> {
        std::iter::once(&self.recreate_old)
            .chain(&self.reconnect_old)
            .map(|words| self.rebuilt(words, live))
            .collect()
    }

    fn rebuilt(
        &self,
        words: &[RecordedWord],
        live: &BTreeMap<String, String>,
    ) -> Result<Argv, String> {
        let mut argv = Argv::default();
        for word in words {
            argv = match &word.secret_var {
                None if word.embedded => {
                    let mut value = String::new();
                    let mut embedded = Vec::new();
                    for (i, piece) in word.text.split('\0').enumerate() {
                        if i % 2 == 0 {
                            value.push_str(piece);
                            continue;
                        }
                        let secret = live.get(piece).ok_or_else(|| self.missing(piece))?;
                        value.push_str(secret);
                        embedded.push(Embedded {
                            value: secret.clone(),
                            shell_var: piece.to_string(),
                        });
                    }
                    argv.concealed_arg(value, &embedded)
                }
                None => argv.arg(&word.text),
                Some(var) => {
                    let value = live.get(var).ok_or_else(|| self.missing(var))?;
                    argv.secret_arg(
                        format!("{}{value}", word.text),
                        Secret {
                            visible_prefix: word.text.len(),
                            shell_var: var.clone(),
                            via_environment: word.via_environment,
                        },
                    )
                }
            };
        }
        Ok(argv)
    }

    fn missing(&self, var: &str) -> String {
        format!(
            "the old server's secret {var} is in no live container, so {} can't be recreated with it",
            self.container
        )
    }
}

/// The records in `dir` of upgrades that stopped halfway, for a resume that names no container.
pub fn resumable_in(dir: &Path) -> Result<Vec<UpgradeRecord>> {
    Ok(records_in(dir)?
        .into_iter()
        .filter(|record| record.status.is_resumable())
        .collect())
}

/// Every record in `dir`, in the order of their containers' names.
pub fn records_in(dir: &Path) -> Result<Vec<UpgradeRecord>> {
    let mut found = Vec::new();
    let entries = fs::read_dir(dir).with_context(|| format!("can't read {}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("rancher-upgrade-")
            && name.ends_with(".state.json")
            && let Some(record) = UpgradeRecord::load(&entry.path())?
        {
            found.push(record);
        }
    }
    found.sort_by(|a, b| a.container.cmp(&b.container));
    Ok(found)
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Keeps the record on disk up to date as a run goes. A new record is first written just before
/// the run changes anything, so a run that changes nothing leaves none; an earlier, finished
/// record under the same name is kept beside it, never overwritten.
pub struct Journal {
    path: PathBuf,
    pub record: UpgradeRecord,
    written: bool,
}

impl Journal {
    /// `resumed`: the record is the one on disk, carried on (written at once); else a new one.
    pub fn start(path: PathBuf, mut record: UpgradeRecord, resumed: bool) -> Result<Journal> {
        if resumed {
            record.save(&path)?;
        }
        Ok(Journal {
            path,
            record,
            written: resumed,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a new record before its run's first change, setting an earlier one aside.
    pub fn before_change(&mut self) -> Result<()> {
        if self.written {
            return Ok(());
        }
        if let Some(aside) = set_aside(&self.path)? {
            eprintln!(
                "The earlier record {} is kept as {}.",
                self.path.display(),
                aside.display()
            );
        }
        self.written = true;
        self.record.save(&self.path)
    }

    pub fn step_done(&mut self, id: StepId) -> Result<()> {
        if !self.record.steps_done.contains(&id) {
            self.record.steps_done.push(id);
        }
        self.save()
    }

    pub fn step_undone(&mut self, id: StepId) -> Result<()> {
        self.record.steps_done.retain(|done| *done != id);
        self.save()
    }

    pub fn backup_written(&mut self, summary: ArchiveSummary) -> Result<()> {
        self.record.backup_summary = Some(summary);
        self.save()
    }

    pub fn finish(&mut self, status: Status) -> Result<()> {
        self.record.status = status;
        self.save()
    }

    fn save(&mut self) -> Result<()> {
        if self.written {
            self.record.save(&self.path)
        } else {
            Ok(())
        }
    }
}

/// Moves the record at `path` aside, to `rancher-upgrade-NAME.state.TIME.json` (TIME: when it
/// was set aside); returns where, or `None` when there is none.
pub fn set_aside(path: &Path) -> Result<Option<PathBuf>> {
    if !path.exists() {
        return Ok(None);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".json").unwrap_or(&name);
    let aside = path.with_file_name(format!(
        "{stem}.{}.json",
        crate::transcript::compact_utc_now()
    ));
    // A hard link fails where the name is taken: no record replaces another.
    fs::hard_link(path, &aside)
        .and_then(|()| fs::remove_file(path))
        .with_context(|| format!("can't set {} aside as {}", path.display(), aside.display()))?;
    Ok(Some(aside))
}

/// A record, for the unit tests of what reads records.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;

    /// The upgrade of `rancher` from v1.6.10 to v1.6.20, into rancher-data, under way.
    pub fn record(recreate: &Argv) -> UpgradeRecord {
        UpgradeRecord {
            container: "rancher".into(),
            old_container_id: "abc".into(),
            parked_name: "rancher-v1.6.10".into(),
            data_container: Some("rancher-data".into()),
            from_image: "rancher/server:v1.6.10".into(),
            from_image_id: "sha256:old".into(),
            from_version: "v1.6.10".into(),
            to_image: "rancher/server:v1.6.20".into(),
            restart_policy: Some("unless-stopped".into()),
            backup_archive: None,
            backup_summary: None,
            backup_stamp: None,
            recreate_old: record_words(recreate),
            reconnect_old: vec![],
            steps_done: vec![],
            status: Status::InProgress,
            updated_at: now(),
            nodes: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::record;
    use super::*;
    use crate::secrets::{db_password_secret, env_assignment_secret};

    fn recreate_with_secrets() -> Argv {
        Argv::new("docker")
            .args(["create", "-e"])
            .secret_arg(
                "API_TOKEN=t0ken",
                env_assignment_secret("API_TOKEN=t0ken").unwrap(),
            )
            .arg("--health-cmd=curl -H 'X-Token: t0ken' localhost")
            .arg("rancher/server:v1.6.10")
            .arg("--db-pass")
            .secret_arg("pa55", db_password_secret())
            .conceal(&[("API_TOKEN".into(), "t0ken".into())])
    }

    #[test]
    fn the_saved_record_holds_no_secret_value_and_only_its_owner_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = record_path(dir.path(), "rancher");
        let mut saved = record(&recreate_with_secrets());
        saved.save(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("t0ken") && !text.contains("pa55"), "{text}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(UpgradeRecord::load(&path).unwrap().unwrap(), saved);
    }

    #[test]
    fn recreating_the_old_server_takes_secrets_from_the_live_containers() {
        let recorded = record(&recreate_with_secrets());
        let live = BTreeMap::from([
            ("API_TOKEN".to_string(), "t0ken".to_string()),
            ("RANCHER_DB_PASS".to_string(), "pa55".to_string()),
        ]);
        assert_eq!(
            recorded.recreate_old(&live).unwrap(),
            [recreate_with_secrets()]
        );
        let missing = recorded.recreate_old(&BTreeMap::new()).unwrap_err();
        assert!(missing.contains("API_TOKEN"), "{missing}");
    }

    #[test]
    fn a_missing_record_is_none_and_a_foreign_file_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = record_path(dir.path(), "rancher");
        assert_eq!(UpgradeRecord::load(&path).unwrap(), None);
        fs::write(&path, "{}").unwrap();
        assert!(UpgradeRecord::load(&path).is_err());
    }
}
