use super::*;
use crate::archive::ArchiveContent;
use crate::server::fixture::{self, discovery, volumes};
use crate::server::{CreateOption, DataContainer, MountSource, NetworkAttachment, RestartPolicy};
use std::collections::BTreeMap;

fn embedded_server() -> Server {
    fixture::server(
        "127.0.0.1:5000/rancher/server:v1.6.10",
        "sha256:old",
        CarriedSettings {
            env: vec!["GREETING=hello world".into(), "API_TOKEN=tok$en".into()],
            ports: vec![PortBinding {
                container_port: "8080/tcp".into(),
                host_ip: "".into(),
                host_port: "8080".into(),
            }],
            restart: Some(RestartPolicy {
                name: "unless-stopped".into(),
                maximum_retry_count: 0,
            }),
            options: vec![CreateOption {
                flag: "--label",
                value: Some("team=ops".into()),
            }],
            ..CarriedSettings::default()
        },
    )
}

fn external_server() -> Server {
    let mut server = embedded_server();
    server.mode = DbMode::External;
    server.carried.args = [
        "--db-host",
        "db",
        "--db-user",
        "cattle",
        "--db-pass",
        "pa ss",
    ]
    .map(String::from)
    .to_vec();
    server
}

/// The way back once the new version ran, whatever holds the database: the new server stopped
/// and removed, the data back, then the old server as it was.
const WAY_BACK_ONCE_THE_NEW_VERSION_RAN: [StepId; 7] = [
    StepId::StopNew,
    StepId::RemoveNew,
    StepId::RestoreData,
    StepId::StartOld,
    StepId::UnparkOld,
    StepId::RestoreRestart,
    StepId::WaitOldHealthy,
];

fn options(to: &str) -> PlanOptions {
    super::fixture::options(to, "/backups", "20261127T000000Z")
}

/// A rancher-data on `data_mounts`, made with `--volumes-from` each of `volumes_from`.
fn rancher_data(
    data_mounts: BTreeMap<String, crate::server::MountSource>,
    volumes_from: &[&str],
) -> DataContainer {
    DataContainer {
        name: "rancher-data".into(),
        mounts: data_mounts,
        volumes_from: volumes_from.iter().map(|s| s.to_string()).collect(),
    }
}

fn commands(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .filter(|s| s.skipped.is_none())
        .filter_map(Step::argv)
        .map(|argv| argv.display(Reveal::Plain))
        .collect()
}

/// The command of the step `id`, shown plainly.
fn command_of(plan: &Plan, id: StepId) -> String {
    let step = plan.steps.iter().find(|s| s.id == id).unwrap();
    step.argv().unwrap().display(Reveal::Plain)
}

/// `create` of the new server.
fn create_new(plan: &Plan) -> String {
    command_of(plan, StepId::CreateNew)
}

fn ids(plan: &Plan) -> Vec<StepId> {
    plan.steps.iter().map(|s| s.id).collect()
}

fn refusals(result: Result<Plan, Refusal>) -> Vec<String> {
    match result {
        Err(Refusal::Preflight(reasons)) => reasons,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_data_container_names_each_volume_and_no_container() {
    let server = embedded_server();
    let plan = plan(&discovery(server.clone()), &options("v1.6.20")).unwrap();
    let create = command_of(&plan, StepId::CreateDataContainer);
    // No --volumes-from: a data container naming the server by name would point at the new
    // server, which points back at it (dockerd 20.10 deadlocks on that loop at its next start),
    // and one naming the old server could not be made when it has a tmpfs.
    assert_eq!(
        create,
        "docker create --name rancher-data -v live-var-lib-cattle:/var/lib/cattle \
         -v live-var-lib-mysql:/var/lib/mysql -v live-var-log-mysql:/var/log/mysql \
         127.0.0.1:5000/rancher/server:v1.6.10"
    );
    let step = plan
        .steps
        .iter()
        .find(|s| s.id == StepId::CreateDataContainer)
        .unwrap();
    assert!(step.reason.contains("doc step 2"), "{}", step.reason);
}

#[test]
fn one_shot_containers_an_earlier_run_left_are_removed_first_and_their_volumes_kept() {
    let mut found = discovery(embedded_server());
    found.leftovers = vec!["0123456789ab".into(), "ba9876543210".into()];
    let plan = plan(&found, &options("v1.6.20")).unwrap();
    let first = &plan.steps[0];
    assert_eq!(first.id, StepId::RemoveLeftovers);
    assert_eq!(first.title, "Remove 2 containers an earlier run left");
    assert!(first.changes && first.skipped.is_none() && first.undo.is_empty());
    assert_eq!(
        command_of(&plan, StepId::RemoveLeftovers),
        "docker rm -f -- 0123456789ab ba9876543210"
    );
    assert_eq!(plan.steps[1].id, StepId::Pull);
    // Each one-shot of the plan is labelled, so that the next run finds it if this one is cut
    // off while it starts.
    let backup = plan.steps.iter().find(|s| s.id == StepId::Backup).unwrap();
    for one_shot in [
        command_of(&plan, StepId::CheckRoom),
        backup.undo[0].argv().unwrap().display(Reveal::Plain),
    ] {
        assert!(
            one_shot.contains(" --label rancher-upgrade.one-shot-for=rancher --log-driver none "),
            "{one_shot}"
        );
    }
}

#[test]
fn embedded_upgrade_pulls_first_and_runs_the_documented_commands_in_order() {
    let plan = plan(&discovery(embedded_server()), &options("v1.6.20")).unwrap();
    // Everything that doesn't need the server down runs before the stop, the new server's
    // creation included: a setting the engine refuses fails while the old one still answers.
    assert_eq!(
        ids(&plan),
        [
            StepId::Pull,
            StepId::CheckRoom,
            StepId::DisableRestart,
            StepId::CreateDataContainer,
            StepId::ParkOld,
            StepId::CreateNew,
            StepId::Stop,
            StepId::Backup,
            StepId::RunNew,
            StepId::WaitHealthy,
            StepId::RemoveOld
        ]
    );
    assert_eq!(
        commands(&plan),
        [
            "docker pull 127.0.0.1:5000/rancher/server:v1.6.20",
            "docker run --rm --label rancher-upgrade.one-shot-for=rancher --log-driver none -v live-var-lib-cattle:/var/lib/cattle \
             -v live-var-lib-mysql:/var/lib/mysql -v live-var-log-mysql:/var/log/mysql \
             --entrypoint du 127.0.0.1:5000/rancher/server:v1.6.10 -sk /var/lib/mysql /var/lib/cattle /var/log/mysql",
            "docker update --restart=no rancher",
            "docker create --name rancher-data -v live-var-lib-cattle:/var/lib/cattle \
             -v live-var-lib-mysql:/var/lib/mysql -v live-var-log-mysql:/var/log/mysql \
             127.0.0.1:5000/rancher/server:v1.6.10",
            "docker rename rancher rancher-v1.6.10",
            "API_TOKEN='tok$en' docker create --name rancher --volumes-from rancher-data --restart=unless-stopped -p 8080:8080 \
             -e 'GREETING=hello world' -e API_TOKEN --label=team=ops 127.0.0.1:5000/rancher/server:v1.6.20",
            "docker stop -t 60 rancher-v1.6.10",
            "docker cp rancher-data:/var -",
            "docker start rancher",
            "docker rm rancher-v1.6.10",
        ]
    );
    assert_eq!(plan.data_container.as_deref(), Some("rancher-data"));
    let probe = plan.steps.iter().find_map(|s| match &s.action {
        Action::WaitHealthy(probe) => Some(probe.clone()),
        _ => None,
    });
    let probe = probe.unwrap();
    assert_eq!(
        probe.url, None,
        "asked through the engine, not on this machine"
    );
    assert_eq!(
        probe.ask.display(Reveal::Plain),
        "docker exec rancher curl -fsS --max-time 5 http://127.0.0.1:8080/ping"
    );
    let Action::Transfer(backup) = &plan.steps[7].action else {
        panic!("the backup streams through the engine: {:?}", plan.steps[7]);
    };
    assert_eq!(backup.direction, crate::plan::Direction::Backup);
    let Action::CheckRoom(room) = &plan.steps[1].action else {
        panic!(
            "the room is checked right after the pull: {:?}",
            plan.steps[1]
        );
    };
    assert_eq!(room.dir, std::path::Path::new("/backups"));
    let read_only = [StepId::CheckRoom, StepId::WaitHealthy];
    assert!(
        plan.steps
            .iter()
            .all(|s| s.changes != read_only.contains(&s.id))
    );
    assert_eq!(
        plan.backup_archive.unwrap().path,
        std::path::Path::new("/backups/rancher-data-backup-v1.6.10-20261127T000000Z.tar.zst")
    );
}

#[test]
fn no_step_removes_volumes() {
    let plan = plan(&discovery(embedded_server()), &options("v1.6.20")).unwrap();
    {
        for argv in plan.argvs() {
            let words = argv.real();
            assert!(
                !(words[1] == "rm" && words.iter().any(|w| w == "-v" || w == "--volumes")),
                "{words:?}"
            );
            assert!(
                !words.iter().any(|w| w == "prune" || w == "-f"),
                "{words:?}"
            );
        }
    }
}

#[test]
fn external_db_has_no_data_container_and_keeps_the_db_arguments_after_the_image() {
    let plan = plan(&discovery(external_server()), &options("v1.6.20")).unwrap();
    assert!(!ids(&plan).contains(&StepId::CreateDataContainer));
    assert_eq!(plan.data_container, None);
    let run = create_new(&plan);
    assert!(!run.contains("--volumes-from"), "{run}");
    assert!(
        run.ends_with("rancher/server:v1.6.20 --db-host db --db-user cattle --db-pass 'pa ss'"),
        "{run}"
    );
}

/// The dump of the external database `plan` takes, and its restore.
fn database_transfers(plan: &Plan) -> (&Step, &Transfer, &Transfer) {
    let backup = plan.steps.iter().find(|s| s.id == StepId::Backup).unwrap();
    let [restore] = &backup.undo[..] else {
        panic!("one undo, the restore: {backup:?}");
    };
    match (&backup.action, &restore.action) {
        (Action::Transfer(dump), Action::Transfer(back)) => (backup, dump, back),
        other => panic!("the dump and its restore stream: {other:?}"),
    }
}

#[test]
fn external_db_is_dumped_once_the_old_server_stopped_and_before_the_new_version_starts() {
    let plan = plan(&discovery(external_server()), &options("v1.6.20")).unwrap();
    let embedded = super::plan(&discovery(embedded_server()), &options("v1.6.20")).unwrap();
    let of_volumes = [StepId::CheckRoom, StepId::CreateDataContainer];
    assert_eq!(
        ids(&plan),
        ids(&embedded)
            .into_iter()
            .filter(|id| !of_volumes.contains(id))
            .collect::<Vec<_>>(),
        "the embedded plan without the steps of its volumes, the backup in the same place"
    );
    let (backup, dump, restore) = database_transfers(&plan);
    assert_eq!(
        backup.title,
        "Back up the database cattle on db:3306 to /backups/rancher-db-backup-v1.6.10-20261127T000000Z.sql.zst"
    );
    let archive = plan.backup_archive.as_ref().unwrap();
    assert_eq!(*archive, dump.archive);
    assert_eq!(archive.content, ArchiveContent::DatabaseDump);
    assert_eq!(
        (dump.direction, restore.direction),
        (Direction::Backup, Direction::Restore)
    );
    assert_eq!(restore.archive, dump.archive);
    assert_eq!(
        dump.argv.display(Reveal::Plain),
        "MYSQL_PWD='pa ss' docker run --rm --label rancher-upgrade.one-shot-for=rancher --log-driver none -e MYSQL_PWD --entrypoint mysqldump \
         127.0.0.1:5000/rancher/server:v1.6.10 -h db -P 3306 -u cattle --protocol=TCP \
         --single-transaction --hex-blob --add-drop-database --databases cattle"
    );
    assert_eq!(
        restore.argv.display(Reveal::Plain),
        "MYSQL_PWD='pa ss' docker run --rm -i --label rancher-upgrade.one-shot-for=rancher --log-driver none -e MYSQL_PWD --entrypoint mysql \
         127.0.0.1:5000/rancher/server:v1.6.10 -h db -P 3306 -u cattle --protocol=TCP"
    );
    for argv in [&dump.argv, &restore.argv] {
        // The password travels in docker's environment only: no command line shows it.
        assert!(!argv.real().iter().any(|w| w.contains("pa ss")), "{argv:?}");
        assert_eq!(
            argv.environment(),
            [("MYSQL_PWD".to_string(), "pa ss".to_string())]
        );
        assert!(!argv.display(Reveal::Masked).contains("pa ss"));
        // One export of the server's own variable serves the shell runbook.
        assert_eq!(
            argv.display(Reveal::ShellVariables),
            argv.display(Reveal::Plain)
                .replace("'pa ss'", "\"${RANCHER_DB_PASS}\"")
        );
    }
}

#[test]
fn the_way_back_restores_the_dump_before_the_old_server_starts_once_the_new_version_ran() {
    let plan = plan(&discovery(external_server()), &options("v1.6.20")).unwrap();
    let upto = |id: StepId| {
        let at = plan.steps.iter().position(|s| s.id == id).unwrap();
        plan.way_back(&plan.steps[..=at])
            .iter()
            .map(|s| s.id)
            .collect::<Vec<_>>()
    };
    // Until the new version ran, the database is as the old one left it.
    assert_eq!(
        upto(StepId::Backup),
        [
            StepId::StartOld,
            StepId::RemoveNew,
            StepId::UnparkOld,
            StepId::RestoreRestart,
            StepId::WaitOldHealthy
        ]
    );
    assert_eq!(upto(StepId::RunNew), WAY_BACK_ONCE_THE_NEW_VERSION_RAN);
}

#[test]
fn the_database_backup_step_is_one_a_plan_of_several_servers_can_take() {
    let server = external_server();
    let options = options("v1.6.20");
    let plan = plan(&discovery(server.clone()), &options).unwrap();
    let database = server.carried.external_database().unwrap();
    let step = database_backup_step(
        &crate::engine::fixture::docker(),
        &server,
        &database,
        options.backup.as_ref().unwrap(),
    );
    assert_eq!(
        Some(&step),
        plan.steps.iter().find(|s| s.id == StepId::Backup)
    );
}

#[test]
fn the_database_settings_come_from_the_env_where_no_flag_names_them() {
    let mut server = external_server();
    server.carried.args = vec!["--db-port=3307".into()];
    server.carried.env.extend(
        [
            "CATTLE_DB_CATTLE_MYSQL_HOST=mysql.internal",
            "CATTLE_DB_CATTLE_MYSQL_PORT=3310",
            "CATTLE_DB_CATTLE_USERNAME=rancher",
            "CATTLE_DB_CATTLE_PASSWORD=s3cr3t",
            "CATTLE_DB_CATTLE_MYSQL_NAME=rancher1",
        ]
        .map(String::from),
    );
    let plan = plan(&discovery(server), &options("v1.6.20")).unwrap();
    let (_, dump, _) = database_transfers(&plan);
    let shown = dump.argv.display(Reveal::ShellVariables);
    assert!(
        shown.starts_with(r#"MYSQL_PWD="${CATTLE_DB_CATTLE_PASSWORD}" docker run "#),
        "{shown}"
    );
    assert!(
        shown.ends_with(
            "-h mysql.internal -P 3307 -u rancher --protocol=TCP --single-transaction --hex-blob --add-drop-database --databases rancher1"
        ),
        "the flag's port, the env's other settings: {shown}"
    );
}

#[test]
fn the_entry_scripts_default_password_is_no_secret() {
    let mut server = external_server();
    server.carried.args = vec!["--db-host".into(), "db".into()];
    let plan = plan(&discovery(server), &options("v1.6.20")).unwrap();
    let (_, dump, _) = database_transfers(&plan);
    assert!(dump.argv.environment().is_empty());
    assert!(
        dump.argv
            .display(Reveal::Masked)
            .contains(" -e MYSQL_PWD=cattle --entrypoint mysqldump "),
        "{}",
        dump.argv.display(Reveal::Masked)
    );
}

#[test]
fn the_dump_reaches_the_database_the_way_the_server_does() {
    let mut server = external_server();
    server.carried.network = Some("rancher-net".into());
    server.carried.options.extend([
        CreateOption {
            flag: "--add-host",
            value: Some("db:10.0.0.5".into()),
        },
        CreateOption {
            flag: "--dns-search",
            value: Some("example.internal".into()),
        },
        CreateOption {
            flag: "--memory",
            value: Some("2g".into()),
        },
    ]);
    let plan = plan(&discovery(server), &options("v1.6.20")).unwrap();
    let (_, dump, restore) = database_transfers(&plan);
    for argv in [&dump.argv, &restore.argv] {
        let shown = argv.display(Reveal::Masked);
        assert!(
            shown.contains(
                " --log-driver none --network rancher-net --add-host=db:10.0.0.5 --dns-search=example.internal -e MYSQL_PWD "
            ),
            "{shown}"
        );
        assert!(!shown.contains("--memory"), "{shown}");
    }
}

#[test]
fn with_no_backup_an_external_db_upgrade_asks_to_confirm_a_dump_of_your_own() {
    let mut options = options("v1.6.20");
    options.backup = None;
    let plan = plan(&discovery(external_server()), &options).unwrap();
    assert!(!ids(&plan).contains(&StepId::Backup));
    assert_eq!(plan.backup_archive, None);
    let Action::Manual(instruction) = &plan.steps[1].action else {
        panic!(
            "the second step must ask for the database backup: {:?}",
            plan.steps[1]
        );
    };
    assert_eq!(
        instruction,
        "mysqldump -h db -P 3306 -u cattle -p --single-transaction --hex-blob --add-drop-database --databases cattle > rancher-db-backup.sql"
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.starts_with("--no-backup: the external database is not dumped")),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn the_database_password_is_a_secret_in_the_create_command() {
    let plan = plan(&discovery(external_server()), &options("v1.6.20")).unwrap();
    let run = plan
        .steps
        .iter()
        .find(|s| s.id == StepId::CreateNew)
        .unwrap();
    let Action::Docker(argv) = &run.action else {
        unreachable!()
    };
    let masked = argv.display(Reveal::Masked);
    assert!(
        !masked.contains("pa ss") && !masked.contains("tok$en"),
        "{masked}"
    );
    assert!(masked.contains("--db-pass '********'"), "{masked}");
    assert!(argv.real().contains(&"pa ss".to_string()));
    let vars: Vec<_> = argv.shell_variables().map(|(var, _)| var).collect();
    assert_eq!(vars, ["API_TOKEN", "RANCHER_DB_PASS"]);
    // The token travels in docker's environment; the password, an argument of the server's
    // command, can't, and the plan says so.
    assert!(!argv.real().iter().any(|w| w.contains("tok$en")));
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("--db-pass") && w.contains("CATTLE_DB_CATTLE_PASSWORD")),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn a_data_container_holding_the_same_volumes_is_reused() {
    let mut found = discovery(embedded_server());
    found.data_container = Some(rancher_data(volumes("live"), &["id-of-the-first-server"]));
    let plan = plan(&found, &options("v1.6.20")).unwrap();
    let create = plan
        .steps
        .iter()
        .find(|s| s.id == StepId::CreateDataContainer)
        .unwrap();
    assert!(
        create
            .skipped
            .as_deref()
            .unwrap()
            .contains("already exists")
    );
    assert!(
        !commands(&plan)
            .iter()
            .any(|c| c.starts_with("docker create"))
    );
}

#[test]
fn a_data_container_naming_the_server_by_name_is_refused_as_a_loop() {
    for source in ["rancher", "rancher:ro", "rancher:rw"] {
        let mut found = discovery(embedded_server());
        found.data_container = Some(rancher_data(volumes("live"), &[source]));
        let reasons = refusals(plan(&found, &options("v1.6.20")));
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("moby#38825"), "{}", reasons[0]);
        assert!(
            reasons[0].contains("--data-container rancher-data-v1.6.10"),
            "{}",
            reasons[0]
        );
    }
    // A name that only starts like the server's is another container.
    let mut found = discovery(embedded_server());
    found.data_container = Some(rancher_data(volumes("live"), &["rancher-old"]));
    assert!(plan(&found, &options("v1.6.20")).is_ok());
}

#[test]
fn a_data_container_holding_other_volumes_is_refused() {
    let mut found = discovery(embedded_server());
    found.data_container = Some(rancher_data(volumes("stale"), &["id-of-the-first-server"]));
    let reasons = refusals(plan(&found, &options("v1.6.20")));
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("holds other volumes"), "{}", reasons[0]);
    assert!(
        reasons[0].contains("volume stale-var-lib-mysql"),
        "{}",
        reasons[0]
    );
}

#[test]
fn the_second_upgrade_replaces_volumes_from_instead_of_doubling_it() {
    let mut server = embedded_server();
    server.carried.volumes_from = vec!["rancher-data".into()];
    let mut found = discovery(server);
    found.data_container = Some(rancher_data(volumes("live"), &["id-of-the-first-server"]));
    let plan = plan(&found, &options("v1.6.30")).unwrap();
    let run = create_new(&plan);
    assert_eq!(run.matches("--volumes-from").count(), 1, "{run}");
}

#[test]
fn a_bind_mounted_database_is_in_the_data_container_and_on_the_new_server_alike() {
    let mut server = embedded_server();
    server.data_mounts.insert(
        "/var/lib/mysql".into(),
        MountSource::Bind {
            source: "/srv/mysql".into(),
        },
    );
    server.carried.options = ["/srv/mysql:/var/lib/mysql", "/etc/ssl/ca.pem:/ca.pem:ro"]
        .map(|bind| CreateOption {
            flag: "--volume",
            value: Some(bind.into()),
        })
        .to_vec();
    let plan = plan(&discovery(server), &options("v1.6.20")).unwrap();
    let data = command_of(&plan, StepId::CreateDataContainer);
    assert!(data.contains(" -v /srv/mysql:/var/lib/mysql "), "{data}");
    // The new server's own bind wins over the data container's at the same path: the same
    // directory, and the old server's very Binds.
    let run = create_new(&plan);
    assert!(
        run.contains(" --volume=/srv/mysql:/var/lib/mysql "),
        "{run}"
    );
    assert!(
        run.contains(" --volume=/etc/ssl/ca.pem:/ca.pem:ro "),
        "{run}"
    );
}

#[test]
fn a_downgrade_is_refused_unless_allowed() {
    let reasons = refusals(plan(&discovery(embedded_server()), &options("v1.6.9")));
    assert!(reasons[0].contains("older than the running v1.6.10"));
    let mut allowed = options("v1.6.9");
    allowed.allow_downgrade = true;
    assert!(plan(&discovery(embedded_server()), &allowed).is_ok());
}

#[test]
fn a_target_pinned_by_digest_is_refused() {
    let reasons = refusals(plan(
        &discovery(embedded_server()),
        &options("rancher/server:v1.6.20@sha256:0123"),
    ));
    assert!(reasons[0].contains("pinned by digest"), "{reasons:?}");
}

#[test]
fn a_server_of_another_image_is_refused_unless_forced() {
    let mut server = embedded_server();
    server.image = ImageRef::parse("nginx:1.25").unwrap();
    let reasons = refusals(plan(
        &discovery(server.clone()),
        &options("rancher/server:v1.6.20"),
    ));
    assert!(
        reasons[0].contains("not a rancher/server image"),
        "{reasons:?}"
    );
    let mut forced = options("rancher/server:v1.6.20");
    forced.force = true;
    assert!(plan(&discovery(server), &forced).is_ok());
}

#[test]
fn every_refusal_is_listed_at_once() {
    let mut found = discovery(embedded_server());
    found.parked_name_taken = true;
    found.data_container = Some(rancher_data(volumes("stale"), &["id-of-the-first-server"]));
    let reasons = refusals(plan(&found, &options("v1.6.9")));
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("rancher-v1.6.10 already exists"))
    );
}

#[test]
fn control_characters_are_refused_and_the_secret_stays_masked() {
    let mut server = embedded_server();
    server.carried.env.push("DB_PASSWORD=line\nbreak".into());
    let reasons = refusals(plan(&discovery(server), &options("v1.6.20")));
    assert!(reasons[0].contains("control character"), "{reasons:?}");
    assert!(!reasons[0].contains("line"), "{reasons:?}");
}

#[test]
fn latest_is_warned_about() {
    let plan = plan(&discovery(embedded_server()), &options("latest")).unwrap();
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("development build"))
    );
}

#[test]
fn a_server_without_restart_policy_skips_the_update() {
    let mut server = embedded_server();
    server.carried.restart = None;
    let plan = plan(&discovery(server), &options("v1.6.20")).unwrap();
    let update = plan
        .steps
        .iter()
        .find(|s| s.id == StepId::DisableRestart)
        .unwrap();
    assert!(update.skipped.is_some());
    assert!(!commands(&plan).iter().any(|c| c.contains("--restart")));
}

#[test]
fn the_way_back_undoes_the_done_steps_in_reverse_and_each_only_once() {
    let plan = plan(&discovery(embedded_server()), &options("v1.6.20")).unwrap();
    let way_back = plan.way_back(plan.steps_before_removal());
    // The new server's creation and its start both end in its removal: done once, right after
    // its stop, before anything gives the old one its data back.
    assert_eq!(
        way_back.iter().map(|s| s.id).collect::<Vec<_>>(),
        WAY_BACK_ONCE_THE_NEW_VERSION_RAN
    );
    let commands: Vec<String> = way_back
        .iter()
        .filter_map(Step::argv)
        .map(|a| a.display(Reveal::Plain))
        .collect();
    assert_eq!(
        commands[..2],
        ["docker stop -t 60 rancher", "docker rm rancher"]
    );
    assert!(commands[2].starts_with("docker run --rm -i --label rancher-upgrade.one-shot-for=rancher --log-driver none --volumes-from rancher-data --entrypoint sh 127.0.0.1:5000/rancher/server:v1.6.10 -c "), "{}", commands[2]);
    assert!(
        commands[2].ends_with("tar -xf - -C /' restore"),
        "{}",
        commands[2]
    );
    assert_eq!(
        commands[3..],
        [
            "docker start rancher-v1.6.10",
            "docker rename rancher-v1.6.10 rancher",
            "docker update --restart=unless-stopped rancher"
        ]
    );

    // Created, stopped and parked, before the new version ran: remove the new one, start the
    // old one, give it its name and policy back.
    let after_stop = plan.way_back(plan.steps.iter().take(7));
    assert_eq!(
        after_stop.iter().map(|s| s.id).collect::<Vec<_>>(),
        [
            StepId::StartOld,
            StepId::RemoveNew,
            StepId::UnparkOld,
            StepId::RestoreRestart,
            StepId::WaitOldHealthy
        ]
    );
}

#[test]
fn a_server_on_two_networks_is_created_on_the_first_and_connected_to_the_second() {
    let mut server = embedded_server();
    server.carried.network = Some("front".into());
    server.carried.networks = vec![
        NetworkAttachment {
            name: "front".into(),
            aliases: vec!["rancher-a".into()],
            ipv4: Some("172.20.0.10".into()),
            ..NetworkAttachment::default()
        },
        NetworkAttachment {
            name: "back".into(),
            aliases: vec!["rancher-b".into(), "api".into()],
            ipv4: Some("172.21.0.10".into()),
            ipv6: Some("fd00::10".into()),
            ..NetworkAttachment::default()
        },
    ];
    let plan = plan(&discovery(server), &options("v1.6.20")).unwrap();
    let create = create_new(&plan);
    assert!(
        create.contains(" --network front --network-alias rancher-a --ip 172.20.0.10 "),
        "{create}"
    );
    assert!(!create.contains("back"), "{create}");
    let connect = command_of(&plan, StepId::ConnectNetwork(0));
    assert_eq!(
        connect,
        "docker network connect --alias rancher-b --alias api --ip 172.21.0.10 --ip6 fd00::10 back rancher"
    );
    // Connected while the old server still runs, and undone by removing the new container.
    let at = |id: StepId| plan.steps.iter().position(|s| s.id == id).unwrap();
    assert!(at(StepId::CreateNew) < at(StepId::ConnectNetwork(0)));
    assert!(at(StepId::ConnectNetwork(0)) < at(StepId::Stop));
    let way_back = plan.way_back(plan.steps.iter().take(at(StepId::ConnectNetwork(0)) + 1));
    assert_eq!(
        way_back.iter().map(|s| s.id).collect::<Vec<_>>(),
        [
            StepId::RemoveNew,
            StepId::UnparkOld,
            StepId::RestoreRestart,
            StepId::WaitOldHealthy
        ]
    );
}

#[test]
fn a_server_on_a_moving_tag_is_backed_up_and_restored_with_its_image_id() {
    let mut server = embedded_server();
    server.image = ImageRef::parse("rancher/server:stable").unwrap();
    let plan = plan(&discovery(server), &options("stable")).unwrap();
    let backup = plan.steps.iter().find(|s| s.id == StepId::Backup).unwrap();
    // After the pull, `stable` names the new release: the old one is only its id.
    let restore = backup.undo[0].argv().unwrap().display(Reveal::Plain);
    assert!(restore.contains("--entrypoint sh sha256:old "), "{restore}");
    let room = plan
        .steps
        .iter()
        .find(|s| s.id == StepId::CheckRoom)
        .unwrap();
    let measure = room.argv().unwrap().display(Reveal::Plain);
    assert!(measure.contains("--entrypoint du sha256:old "), "{measure}");
}

#[test]
fn podman_streams_the_volumes_with_the_old_image_tar_because_its_cp_loses_the_owners() {
    let discovery = Discovery {
        engine: crate::engine::fixture::podman(),
        ..discovery(embedded_server())
    };
    let plan = plan(&discovery, &options("v1.6.20")).unwrap();
    let backup = plan.steps.iter().find(|s| s.id == StepId::Backup).unwrap();
    assert_eq!(
        backup.argv().unwrap().display(Reveal::Plain),
        "podman run --rm --label rancher-upgrade.one-shot-for=rancher --log-driver none --volumes-from rancher-data --entrypoint tar \
         127.0.0.1:5000/rancher/server:v1.6.10 -cf - -C / var/lib/mysql var/lib/cattle var/log/mysql"
    );
}

#[test]
fn without_a_backup_there_is_no_room_to_check() {
    let mut options = options("v1.6.20");
    options.backup = None;
    let embedded = plan(&discovery(embedded_server()), &options).unwrap();
    assert!(
        !ids(&embedded).contains(&StepId::CheckRoom),
        "{:?}",
        ids(&embedded)
    );
    let external = plan(&discovery(external_server()), &options).unwrap();
    assert!(!ids(&external).contains(&StepId::CheckRoom));
}

#[test]
fn podman_which_cant_change_a_restart_policy_skips_the_step_and_its_undo() {
    let mut found = discovery(embedded_server());
    found.engine = crate::engine::fixture::podman();
    let plan = plan(&found, &options("v1.6.20")).unwrap();
    let update = plan
        .steps
        .iter()
        .find(|s| s.id == StepId::DisableRestart)
        .unwrap();
    assert_eq!(
        update.skipped.as_deref(),
        Some(
            "podman can't change a restart policy; it starts a stopped container at boot only through podman-restart.service, and only one whose policy is always"
        )
    );
    assert!(!commands(&plan).iter().any(|c| c.contains(" update ")));
    let way_back = plan.way_back(plan.steps_before_removal());
    assert!(
        !way_back.iter().any(|s| s.id == StepId::RestoreRestart),
        "{way_back:?}"
    );
}

/// An embedded server with restart policy `always` on podman, which can't change it, and
/// whose podman-restart.service starts every `always` container at boot.
fn always_on_podman() -> Discovery {
    let mut server = embedded_server();
    server.carried.restart = Some(RestartPolicy {
        name: "always".into(),
        maximum_retry_count: 0,
    });
    server.carried.network = Some("frontend".into());
    server.carried.networks = vec![
        NetworkAttachment {
            name: "frontend".into(),
            ..NetworkAttachment::default()
        },
        NetworkAttachment {
            name: "backend".into(),
            ..NetworkAttachment::default()
        },
    ];
    let mut found = discovery(server);
    found.engine = crate::engine::fixture::podman();
    found
}

#[test]
fn an_always_server_on_podman_is_removed_once_stopped_and_the_new_one_made_only_then_just_before() {
    let plan = plan(&always_on_podman(), &options("v1.6.20")).unwrap();
    assert_eq!(
        ids(&plan),
        [
            StepId::Pull,
            StepId::CheckRoom,
            StepId::DisableRestart,
            StepId::CreateDataContainer,
            StepId::ParkOld,
            StepId::Stop,
            StepId::Backup,
            StepId::CreateNew,
            StepId::ConnectNetwork(0),
            StepId::RemoveParked,
            StepId::RunNew,
            StepId::WaitHealthy,
            StepId::RemoveOld
        ]
    );
    let skipped = |id| {
        plan.steps
            .iter()
            .find(|s| s.id == id)
            .unwrap()
            .skipped
            .clone()
    };
    assert!(
        skipped(StepId::DisableRestart)
            .is_some_and(|why| why.contains("rancher-v1.6.10 is removed instead")),
        "{:?}",
        skipped(StepId::DisableRestart)
    );
    assert!(skipped(StepId::RemoveOld).is_some());
    assert_eq!(
        command_of(&plan, StepId::RemoveParked),
        "podman rm rancher-v1.6.10"
    );
    // The way back from a finished run: the new server goes, the old one is made again under
    // its parked name with its own policy and networks, the data restored, then it starts and
    // gets its name back.
    let way_back = plan.way_back(plan.steps_before_removal());
    let shown: Vec<String> = way_back
        .iter()
        .filter_map(Step::argv)
        .map(|argv| argv.display(Reveal::Plain))
        .collect();
    assert_eq!(
        way_back.iter().map(|s| s.id).collect::<Vec<_>>(),
        [
            StepId::StopNew,
            StepId::RemoveNew,
            StepId::RecreateOld,
            StepId::ConnectNetwork(0),
            StepId::RestoreData,
            StepId::StartOld,
            StepId::UnparkOld,
            StepId::WaitOldHealthy
        ]
    );
    assert!(
        shown[2].starts_with(
            "API_TOKEN='tok$en' podman create --name rancher-v1.6.10 --volumes-from rancher-data --restart=always "
        ) && shown[2].contains(" --network frontend ")
            && shown[2].contains(" 127.0.0.1:5000/rancher/server:v1.6.10"),
        "{}",
        shown[2]
    );
    // Podman's restart policy can start a crash-looping new server again right after its stop.
    assert_eq!(
        shown[..2],
        [
            "podman stop -t 60 rancher",
            "podman rm --force --time 60 rancher"
        ]
    );
    assert_eq!(shown[3], "podman network connect backend rancher-v1.6.10");
    assert_eq!(shown[5], "podman start rancher-v1.6.10");
}

#[test]
fn on_docker_an_always_server_keeps_its_policy_step_and_its_container_until_the_end() {
    let mut found = always_on_podman();
    found.engine = crate::engine::fixture::docker();
    let plan = plan(&found, &options("v1.6.20")).unwrap();
    assert!(!ids(&plan).contains(&StepId::RemoveParked));
    let position = |id| ids(&plan).iter().position(|i| *i == id).unwrap();
    assert!(position(StepId::CreateNew) < position(StepId::Stop));
    assert!(plan.steps.iter().all(|s| s.skipped.is_none()));
}
