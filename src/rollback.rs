//! The rollback plan, for an operator who decides after a "successful" upgrade that the new
//! version misbehaves: a pure function, like the upgrade plan, from the recorded upgrade and the
//! server as it runs now.

use crate::archive::Archive;
use crate::argv::Argv;
use crate::error::Refusal;
use crate::image::ImageRef;
use crate::plan::{
    Action, Plan, PlanKind, Step, StepId, backup_content, database_restore_step, probe,
    recreate_old, recreate_steps, remove_leftovers_step, remove_new_step, restore_restart_step,
    restore_step, start_old_step, stop_new_step, unpark_step, verify_backup_step,
};
use crate::server::{DbMode, Discovery};
use crate::state::UpgradeRecord;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct RollbackOptions {
    /// The archive to restore: `--backup`, else the one the upgrade recorded.
    pub archive: Option<Archive>,
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
    let engine = &current.engine;
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
    let database = server.carried.external_database();
    let expected = backup_content(server.mode);
    let mut warnings = Vec::new();
    match &options.archive {
        None if embedded => refusals.push(format!(
            "no backup of {name} is recorded: the old version would meet the migrated schema; pass --backup FILE with the archive taken before the upgrade"
        )),
        None => warnings.push(format!(
            "no dump of the external database of {name} is recorded (an upgrade with --no-backup): the old version starts on the database as the new one left it, and may refuse a migrated schema; restore a dump taken before the upgrade first, or pass --backup FILE with it"
        )),
        Some(archive) if archive.content != expected => refusals.push(format!(
            "{} is {}, and {name} needs {}: pass --backup FILE with the one taken before the upgrade ({}*)",
            archive.path.display(),
            archive.content.describe(),
            expected.describe(),
            expected.prefix()
        )),
        Some(archive) => warnings.push(format!(
            "the data goes back to {}: changes made since the upgrade are lost",
            archive.path.display()
        )),
    }
    let stop_timeout = server
        .carried
        .stop_timeout
        .unwrap_or(options.stop_timeout_seconds)
        .to_string();

    let mut steps: Vec<Step> = remove_leftovers_step(current).into_iter().collect();
    // A bad archive must fail before the running server is stopped.
    if let Some(archive) = &options.archive {
        steps.push(verify_backup_step(archive));
    }
    steps.extend([
        stop_new_step(engine, name, &stop_timeout),
        remove_new_step(engine, name, &stop_timeout),
    ]);
    // Before the old server starts: it must meet the data as it left it.
    match (&options.archive, &database, &record.data_container) {
        (Some(archive), Some(database), _) => steps.push(database_restore_step(
            engine,
            server,
            database,
            archive,
            &record.from_image_id,
        )),
        (Some(archive), None, Some(data)) => steps.push(restore_step(
            engine,
            name,
            data,
            archive,
            &record.from_image_id,
        )),
        _ => {}
    }
    if options.old_container_exists {
        steps.push(unpark_step(engine, &record.parked_name, name));
        // An engine that can't change a restart policy never set it to `no`.
        if let Some(policy) = record
            .restart_policy
            .as_ref()
            .filter(|_| engine.kind.updates_restart_policy())
        {
            steps.push(restore_restart_step(engine, name, policy));
        }
        steps.push(start_old_step(engine, name));
    } else {
        // The secrets the old server had are the new one's: the upgrade carried them over.
        let data = record.data_container.as_deref().unwrap_or_default();
        let live: BTreeMap<String, String> = recreate_old(engine, server, data, name)
            .iter()
            .flat_map(Argv::shell_variables)
            .map(|(var, value)| (var.to_string(), value.to_string()))
            .collect();
        match record.recreate_old(&live) {
            Ok(argvs) => {
                steps.extend(recreate_steps(
                    name,
                    format!("Recreate {name} from {}", record.from_image),
                    "The old container was removed after the upgrade; it comes back with the settings the upgrade recorded.",
                    argvs,
                ));
                steps.push(start_old_step(engine, name));
            }
            Err(why) => refusals.push(why),
        }
    }
    steps.push(Step {
        id: StepId::WaitOldHealthy,
        title: format!("Wait until {name} answers /ping on {}", record.from_version),
        reason: "The old server is back only once it answers.".into(),
        action: Action::WaitHealthy(probe(
            engine,
            name,
            options.health_url.clone(),
            options.health_timeout_seconds,
        )),
        changes: false,
        skipped: None,
        undo: vec![],
        node: None,
    });
    if !refusals.is_empty() {
        return Err(Refusal::Preflight(refusals));
    }
    Ok(Plan {
        kind: PlanKind::Rollback,
        engine: engine.clone(),
        container: name.clone(),
        from: server.image.clone(),
        from_version: server.release().to_string(),
        to: old_image,
        mode: server.mode,
        data_container: record.data_container.clone(),
        backup_archive: options.archive.clone(),
        warnings,
        steps,
        done_earlier: Vec::new(),
        nodes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::argv::Reveal;
    use crate::server::fixture::{self, discovery};
    use crate::server::{CarriedSettings, PortBinding, RestartPolicy, Server};

    fn server(tag: &str, image_id: &str) -> Server {
        fixture::server(
            &format!("rancher/server:{tag}"),
            image_id,
            CarriedSettings {
                env: vec!["API_TOKEN=live-token".into()],
                ports: vec![PortBinding {
                    container_port: "8080/tcp".into(),
                    host_ip: "127.0.0.1".into(),
                    host_port: "8080".into(),
                }],
                restart: Some(RestartPolicy {
                    name: "unless-stopped".into(),
                    maximum_retry_count: 0,
                }),
                ..CarriedSettings::default()
            },
        )
    }

    /// The record the upgrade from v1.6.10 to v1.6.20 wrote.
    fn record() -> UpgradeRecord {
        let old = server("v1.6.10", "sha256:old");
        let options = crate::plan::fixture::options("v1.6.20", "/backups", "T0");
        let plan = crate::plan::plan(&discovery(old.clone()), &options).unwrap();
        UpgradeRecord::new(
            &old,
            &plan,
            &recreate_old(
                &crate::engine::fixture::docker(),
                &old,
                "rancher-data",
                &old.name,
            ),
            Some("T0".into()),
        )
    }

    fn options(old_container_exists: bool) -> RollbackOptions {
        RollbackOptions {
            archive: Some(Archive::new(
                std::path::Path::new("/backups"),
                "v1.6.10",
                "T0",
                crate::archive::ArchiveContent::DataVolumes,
                crate::archive::ArchiveFormat::Zstd,
            )),
            old_container_exists,
            health_url: None,
            health_timeout_seconds: 900,
            stop_timeout_seconds: 60,
        }
    }

    /// A rollback's steps while the old container is parked: the backup checked, the new server
    /// gone, the data back, then the old server.
    const BACK_TO_THE_PARKED_SERVER: [StepId; 8] = [
        StepId::VerifyBackup,
        StepId::StopNew,
        StepId::RemoveNew,
        StepId::RestoreData,
        StepId::UnparkOld,
        StepId::RestoreRestart,
        StepId::StartOld,
        StepId::WaitOldHealthy,
    ];

    fn ids(plan: &Plan) -> Vec<StepId> {
        plan.steps.iter().map(|s| s.id).collect()
    }

    #[test]
    fn with_the_old_container_parked_it_restores_the_data_and_unparks_it() {
        let current = discovery(server("v1.6.20", "sha256:new"));
        let plan = plan(&current, &record(), &options(true)).unwrap();
        assert_eq!(ids(&plan), BACK_TO_THE_PARKED_SERVER);
        assert_eq!(plan.kind, PlanKind::Rollback);
        assert_eq!(plan.to.to_string(), "rancher/server:v1.6.10");
        let Action::Transfer(restore) = &plan.steps[3].action else {
            panic!("the restore streams the archive: {:?}", plan.steps[3]);
        };
        let shown = restore.argv.display(Reveal::Plain);
        assert!(shown.contains("run --rm -i --label rancher-upgrade.one-shot-for=rancher --log-driver none --volumes-from rancher-data --entrypoint sh sha256:old"), "{shown}");
        assert!(shown.ends_with("tar -xf - -C /' restore"), "{shown}");
        assert_eq!(
            restore.archive.path,
            std::path::Path::new("/backups/rancher-data-backup-v1.6.10-T0.tar.zst")
        );
    }

    #[test]
    fn a_one_shot_container_an_earlier_run_left_is_removed_before_anything_else() {
        let mut current = discovery(server("v1.6.20", "sha256:new"));
        current.leftovers = vec!["0123456789ab".into()];
        let plan = plan(&current, &record(), &options(true)).unwrap();
        let ids = ids(&plan);
        assert_eq!(ids[0], StepId::RemoveLeftovers);
        assert_eq!(ids[1..], BACK_TO_THE_PARKED_SERVER);
        assert_eq!(
            plan.steps[0].argv().unwrap().display(Reveal::Plain),
            "docker rm -f -- 0123456789ab"
        );
    }

    #[test]
    fn with_the_old_container_removed_it_is_recreated_with_the_live_secrets() {
        let current = discovery(server("v1.6.20", "sha256:new"));
        let plan = plan(&current, &record(), &options(false)).unwrap();
        assert_eq!(
            ids(&plan),
            [
                StepId::VerifyBackup,
                StepId::StopNew,
                StepId::RemoveNew,
                StepId::RestoreData,
                StepId::RecreateOld,
                StepId::StartOld,
                StepId::WaitOldHealthy
            ]
        );
        let recreate = plan.steps[4].argv().unwrap();
        assert_eq!(
            recreate.display(Reveal::Plain),
            "API_TOKEN=live-token docker create --name rancher --volumes-from rancher-data \
             --restart=unless-stopped -p 127.0.0.1:8080:8080 -e API_TOKEN rancher/server:v1.6.10"
        );
        assert!(!recreate.display(Reveal::Masked).contains("live-token"));
    }

    #[test]
    fn without_an_archive_an_embedded_server_is_not_rolled_back() {
        let current = discovery(server("v1.6.20", "sha256:new"));
        let mut no_archive = options(true);
        no_archive.archive = None;
        let Err(Refusal::Preflight(reasons)) = plan(&current, &record(), &no_archive) else {
            panic!("a rollback without the data's backup must be refused");
        };
        assert!(reasons[0].contains("--backup FILE"), "{reasons:?}");
    }

    /// The upgrade of an external-database server from v1.6.10 to v1.6.20, its record, and the
    /// server running v1.6.20 now.
    fn external() -> (UpgradeRecord, Discovery) {
        let on_db = |tag: &str, id: &str| {
            let mut server = server(tag, id);
            server.mode = DbMode::External;
            server.carried.args = ["--db-host", "db", "--db-pass", "pa ss"]
                .map(String::from)
                .to_vec();
            server
        };
        let old = on_db("v1.6.10", "sha256:old");
        let options = crate::plan::fixture::options("v1.6.20", "/backups", "T0");
        let plan = crate::plan::plan(&discovery(old.clone()), &options).unwrap();
        let record = UpgradeRecord::new(
            &old,
            &plan,
            &recreate_old(
                &crate::engine::fixture::docker(),
                &old,
                "rancher-data",
                &old.name,
            ),
            Some("T0".into()),
        );
        (record, discovery(on_db("v1.6.20", "sha256:new")))
    }

    fn dump() -> Archive {
        Archive::new(
            std::path::Path::new("/backups"),
            "v1.6.10",
            "T0",
            crate::archive::ArchiveContent::DatabaseDump,
            crate::archive::ArchiveFormat::Zstd,
        )
    }

    #[test]
    fn an_external_database_gets_its_dump_back_before_the_old_server_starts() {
        let (record, current) = external();
        let with_dump = RollbackOptions {
            archive: Some(dump()),
            ..options(true)
        };
        let plan = plan(&current, &record, &with_dump).unwrap();
        assert_eq!(ids(&plan), BACK_TO_THE_PARKED_SERVER);
        let Action::Transfer(restore) = &plan.steps[3].action else {
            panic!("the restore streams the dump: {:?}", plan.steps[3]);
        };
        assert_eq!(
            restore.argv.display(Reveal::Masked),
            "MYSQL_PWD='********' docker run --rm -i --label rancher-upgrade.one-shot-for=rancher --log-driver none -e MYSQL_PWD --entrypoint mysql sha256:old -h db -P 3306 -u cattle --protocol=TCP"
        );
        assert_eq!(restore.archive, dump());
    }

    #[test]
    fn an_archive_of_the_other_kind_is_refused() {
        let (upgraded, current) = external();
        let Err(Refusal::Preflight(reasons)) = plan(&current, &upgraded, &options(true)) else {
            panic!("an archive of volumes can't restore an external database");
        };
        assert_eq!(
            reasons,
            [
                "/backups/rancher-data-backup-v1.6.10-T0.tar.zst is an archive of the data volumes, and rancher needs a dump of the external database: pass --backup FILE with the one taken before the upgrade (rancher-db-backup-*)"
            ]
        );
        let embedded = discovery(server("v1.6.20", "sha256:new"));
        let with_dump = RollbackOptions {
            archive: Some(dump()),
            ..options(true)
        };
        let Err(Refusal::Preflight(reasons)) = plan(&embedded, &record(), &with_dump) else {
            panic!("a dump can't restore data volumes");
        };
        assert!(
            reasons[0].contains("needs an archive of the data volumes"),
            "{reasons:?}"
        );
    }

    #[test]
    fn without_a_dump_an_external_database_is_left_as_it_is_and_the_warning_says_so() {
        let (record, current) = external();
        let without = RollbackOptions {
            archive: None,
            ..options(true)
        };
        let plan = plan(&current, &record, &without).unwrap();
        assert!(!ids(&plan).contains(&StepId::RestoreData));
        assert!(!ids(&plan).contains(&StepId::VerifyBackup));
        assert!(
            plan.warnings[0].starts_with("no dump of the external database of rancher is recorded"),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn a_server_already_on_the_old_release_has_nothing_to_roll_back() {
        let current = discovery(server("v1.6.10", "sha256:old"));
        let Err(Refusal::Preflight(reasons)) = plan(&current, &record(), &options(true)) else {
            panic!("rolling back onto the same image must be refused");
        };
        assert!(reasons[0].contains("nothing to roll back"), "{reasons:?}");
    }
}
