//! The rollback plan, for an operator who decides after a "successful" upgrade that the new
//! version misbehaves: a pure function, like the upgrade plan, from the recorded upgrade and the
//! server as it runs now.

use crate::error::Refusal;
use crate::image::ImageRef;
use crate::plan::{
    Action, Plan, PlanKind, Probe, Step, StepId, docker, recreate_old, restore_step, step,
};
use crate::server::{DbMode, Discovery};
use crate::state::UpgradeRecord;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct RollbackOptions {
    /// The archive to restore: `--backup`, else the one the upgrade recorded.
    pub archive: Option<PathBuf>,
    /// Whether the old container still exists, parked under its recorded name.
    pub old_container_exists: bool,
    pub health_url: Option<String>,
    pub health_timeout_seconds: u64,
    pub stop_timeout_seconds: u64,
}

pub fn plan(
    current: &Discovery,
    record: &UpgradeRecord,
    options: &RollbackOptions,
) -> Result<Plan, Refusal> {
    let server = &current.server;
    let name = &record.container;
    let mut refusals = Vec::new();
    if server.image_id == record.from_image_id {
        refusals.push(format!(
            "{name} already runs {} ({}): there is nothing to roll back",
            record.from_version, record.from_image
        ));
    }
    let old_image = ImageRef::parse(&record.from_image)
        .map_err(|why| Refusal::Preflight(vec![format!("the recorded old image: {why}")]))?;
    let embedded = server.mode == DbMode::Embedded;
    if embedded && options.archive.is_none() {
        refusals.push(format!(
            "no backup of {name} is recorded: the old version would meet the migrated schema; pass --backup FILE with the archive taken before the upgrade"
        ));
    }
    let stop_timeout = server
        .carried
        .stop_timeout
        .unwrap_or(options.stop_timeout_seconds)
        .to_string();

    let mut steps = vec![
        step(
            StepId::StopNew,
            format!("Stop the new {name}"),
            "The new version must let go of the data before the old one gets it back.",
            docker().args(["stop", "-t"]).arg(&stop_timeout).arg(name),
        ),
        step(
            StepId::RemoveNew,
            format!("Remove the new {name}"),
            "It frees the name; its data lives in the data volumes, which stay.",
            docker().arg("rm").arg(name),
        ),
    ];
    if let (true, Some(archive), Some(data)) = (embedded, &options.archive, &record.data_container)
    {
        steps.push(restore_step(data, archive, &record.from_image_id));
    }
    if options.old_container_exists {
        steps.push(step(
            StepId::UnparkOld,
            format!("Rename {} back to {name}", record.parked_name),
            "The old server gets its name back.",
            docker().arg("rename").arg(&record.parked_name).arg(name),
        ));
        if let Some(policy) = &record.restart_policy {
            steps.push(step(
                StepId::RestoreRestart,
                format!("Restore the restart policy of {name}"),
                "The old server comes back after a reboot, as before the upgrade.",
                docker()
                    .arg("update")
                    .arg(format!("--restart={policy}"))
                    .arg(name),
            ));
        }
        steps.push(step(
            StepId::StartOld,
            format!("Start {name} again"),
            "The old server runs again on its own data.",
            docker().arg("start").arg(name),
        ));
    } else {
        // The secrets the old server had are the new one's: the upgrade carried them over.
        let data = record.data_container.as_deref().unwrap_or_default();
        let live: BTreeMap<String, String> = recreate_old(server, data)
            .shell_variables()
            .map(|(var, value)| (var.to_string(), value.to_string()))
            .collect();
        match record.recreate_old(&live) {
            Ok(argv) => steps.push(step(
                StepId::RecreateOld,
                format!("Recreate {name} on {}", record.from_image),
                "The old container was removed after the upgrade; it comes back with the settings the upgrade recorded.",
                argv,
            )),
            Err(why) => refusals.push(why),
        }
    }
    steps.push(Step {
        id: StepId::WaitOldHealthy,
        title: format!("Wait until {name} answers /ping on {}", record.from_version),
        reason: "The old server is back only once it answers.".into(),
        action: Action::WaitHealthy(Probe {
            container: name.clone(),
            url: options.health_url.clone().or_else(|| server.ping_url()),
            timeout_seconds: options.health_timeout_seconds,
        }),
        changes: false,
        skipped: None,
        undo: vec![],
    });
    if !refusals.is_empty() {
        return Err(Refusal::Preflight(refusals));
    }
    Ok(Plan {
        kind: PlanKind::Rollback,
        container: name.clone(),
        from: server.image.clone(),
        from_version: server.release().to_string(),
        to: old_image,
        mode: server.mode,
        data_container: record.data_container.clone(),
        backup_archive: options.archive.clone(),
        warnings: options
            .archive
            .iter()
            .map(|archive| {
                format!(
                    "the data goes back to {}: changes made since the upgrade are lost",
                    archive.display()
                )
            })
            .collect(),
        steps,
    })
}
