//! End-to-end tests on the real docker engine, with the stand-in `rancher/server` images of the
//! test bed (`bash scripts/testbed.sh` sets both up and prints `RANCHER_UPGRADE_REGISTRY`).
//!
//! Without an engine every test prints a skip line and passes, unless `REQUIRE_DOCKER=1`, which
//! makes that a failure. Each test names its containers `e2e-<test>-<pid>...`, publishes on a
//! free port of 127.0.0.1, keeps its files in a temporary directory, and removes all of it
//! when it ends, also when it fails. After each run it checks what the engine really holds.

#[allow(dead_code)] // this binary uses only part of the harness
#[macro_use]
#[path = "e2e/engine.rs"]
mod engine;

#[allow(dead_code)]
#[path = "e2e/db.rs"]
mod db;

use engine::{
    Before, PROBE_FILE, PortThief, Scope, Server, ServerOptions, Snapshot, archives, backups,
    data_mounts, docker_ok, env_value, exists, free_port, inspect, inspect_existing, mounts,
    now_seconds, record_before, strings, text, way_back_commands,
};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// An env value with everything a shell treats specially: spaces, both quotes, `$`.
const QUOTED: &str = r#"QUOTED=it's a "test" $HOME"#;
const GREETING: &str = "GREETING=hello world";
/// A secret env value (the name holds TOKEN): masked in output, read from the environment by
/// the shell runbook.
const TOKEN_NAME: &str = "RANCHER_API_TOKEN";
const TOKEN_VALUE: &str = r#"tok'en "Quokka77" $x"#;

// ------------------------------------------------------------------ helpers --

/// The classic single-node server of the docs, embedded database, with settings that are easy
/// to lose: quoted env, a secret env, labels, a restart policy, a port on 127.0.0.1.
fn start_classic_server(scope: &Scope) -> Server {
    scope.start_server(
        "v1.6.10",
        ServerOptions {
            port: Some(free_port()),
            env: vec![
                QUOTED.into(),
                GREETING.into(),
                format!("{TOKEN_NAME}={TOKEN_VALUE}"),
            ],
            labels: vec!["team=ops".into(), "org.example.note=two words".into()],
            restart: Some("unless-stopped".into()),
            ..ServerOptions::default()
        },
    )
}

/// The state scenario 1 (and the shell runbook) must leave: the new release under the old
/// name, on the same data, with every setting of the old container, the old one gone and the
/// data container the only other container of the test.
fn assert_upgraded_classic(
    scope: &Scope,
    server: &Server,
    before: &Before,
    to: &str,
    schema: &str,
) {
    assert_runs_classic(scope, server, before, to, schema);
    assert_eq!(
        scope.container_names(),
        vec![scope.server_name(), scope.data_name()],
        "containers left"
    );
}

/// A new container (not the one of `before`) under the server's name runs `version` on the
/// data of `before`, in the data container, with every setting of the classic server.
fn assert_runs_classic(scope: &Scope, server: &Server, before: &Before, to: &str, schema: &str) {
    let new = server.inspect();
    let name = scope.server_name();
    assert_eq!(
        text(&new, "/Config/Image"),
        engine::image(to),
        "image of {name}"
    );
    assert_ne!(
        text(&new, "/Id"),
        before.id,
        "{name} is still the old container"
    );
    assert_eq!(
        new.pointer("/State/Running"),
        Some(&serde_json::Value::Bool(true))
    );

    // The data, through the new server.
    assert!(server.answers_ping(), "{name} does not answer /ping");
    assert_eq!(server.version(), to);
    assert_eq!(server.schema(), schema);
    assert_eq!(
        server.read_data(PROBE_FILE).as_deref(),
        Some(before.probe.as_str()),
        "the data written under v1.6.10"
    );
    assert_eq!(
        server
            .read_data("schema_version")
            .map(|s| s.trim().to_string())
            .as_deref(),
        Some(schema)
    );
    assert_eq!(
        data_mounts(&new),
        before.data,
        "the new server's data volumes"
    );

    // Its settings.
    let env = strings(&new, "/Config/Env");
    for expected in [
        QUOTED.to_string(),
        GREETING.to_string(),
        format!("{TOKEN_NAME}={TOKEN_VALUE}"),
    ] {
        assert!(env.contains(&expected), "{expected:?} missing from {env:?}");
    }
    let versions: Vec<&String> = env
        .iter()
        .filter(|e| e.starts_with("CATTLE_RANCHER_SERVER_VERSION="))
        .collect();
    assert_eq!(
        versions,
        vec![&format!("CATTLE_RANCHER_SERVER_VERSION={to}")],
        "the server must carry its own image's version env, not another's: {env:?}"
    );
    assert_eq!(
        new.pointer("/HostConfig/PortBindings/8080~1tcp"),
        Some(&serde_json::json!([{"HostIp": "127.0.0.1", "HostPort": server.port.to_string()}])),
        "port bindings"
    );
    assert_eq!(
        text(&new, "/HostConfig/RestartPolicy/Name"),
        "unless-stopped"
    );
    assert_eq!(text(&new, "/Config/Labels/team"), "ops");
    assert_eq!(text(&new, "/Config/Labels/org.example.note"), "two words");
    assert_eq!(
        strings(&new, "/HostConfig/VolumesFrom"),
        vec![scope.data_name()]
    );

    // The old container is gone; the data container stays, on the same volumes.
    assert!(
        inspect(&before.id).is_none(),
        "the old container {} still exists",
        before.id
    );
    let data = inspect_existing(&scope.data_name());
    assert_eq!(
        data_mounts(&data),
        before.data,
        "the data container's volumes"
    );
    // By name it would point at the new server, which takes its volumes from it: dockerd
    // never finishes starting on such a loop (moby#38825).
    let sources = strings(&data, "/HostConfig/VolumesFrom");
    assert!(
        !sources.contains(&name),
        "{} takes its volumes from {name} by name: {sources:?}",
        scope.data_name()
    );
}

/// Fails when a tool run showed `secret` anywhere: stdout, stderr, the transcript file, or
/// any other file it wrote beside its backups (the state file); archives of the data aside.
fn assert_never_shown(scope: &Scope, run: &engine::Run, secret: &str) {
    assert!(
        run.transcript.is_some(),
        "`{}` wrote no transcript to its --log file",
        run.what
    );
    let shown = run.everything_shown();
    assert!(
        !shown.contains(secret),
        "`{}` showed the secret {secret:?}:\n{shown}",
        run.what
    );
    for (path, content) in scope.files_written() {
        assert!(
            !content.contains(secret),
            "`{}` wrote the secret {secret:?} into {}:\n{content}",
            run.what,
            path.display()
        );
    }
}

fn assert_unchanged(before: &Snapshot, after: &Snapshot, what: &str) {
    assert_eq!(
        before.containers, after.containers,
        "{what} changed the containers"
    );
    assert_eq!(before.images, after.images, "{what} changed the images");
    assert_eq!(before.volumes, after.volumes, "{what} changed the volumes");
}

/// Writes the shell runbook for an upgrade to `to` into the test's directory.
fn shell_runbook(scope: &Scope, to: &str) -> std::path::PathBuf {
    let mut args = vec!["runbook".to_string(), "--format".into(), "shell".into()];
    args.extend(scope.selection(to));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = scope.tool(&refs);
    run.expect_code(0);
    assert!(
        !run.stdout.contains("Quokka77"),
        "the shell runbook holds the secret value:\n{}",
        run.stdout
    );
    let path = scope.dir().join("upgrade.sh");
    std::fs::write(&path, &run.stdout).expect("writing the runbook");
    path
}

// ---------------------------------------------------------------- scenarios --

/// Scenario 1: embedded database, `upgrade --yes` from v1.6.10 to v1.6.20.
#[test]
fn embedded_upgrade_keeps_the_data_the_name_and_every_setting() {
    let scope = scope!("embedded");
    let server = start_classic_server(&scope);
    let before = record_before(&scope, &server);

    let run = scope.upgrade("v1.6.20", &[]);
    run.expect_code(0);
    assert_never_shown(&scope, &run, "Quokka77");

    assert_upgraded_classic(&scope, &server, &before, "v1.6.20", "20");
}

/// Scenario 6: the shell runbook, run with bash, performs the same upgrade as scenario 1.
#[test]
fn shell_runbook_performs_the_same_upgrade() {
    let scope = scope!("shell");
    let server = start_classic_server(&scope);
    let before = record_before(&scope, &server);
    let script = shell_runbook(&scope, "v1.6.20");

    // Without the secret in its environment the script refuses to start, and changes nothing.
    let untouched = scope.snapshot();
    let refused = scope.bash(&script, &[]);
    assert_ne!(
        refused.code,
        Some(0),
        "the runbook ran without {TOKEN_NAME}:\n{}",
        refused.output()
    );
    refused.expect_mention(&[TOKEN_NAME]);
    assert_unchanged(
        &untouched,
        &scope.snapshot(),
        "the runbook without its secret",
    );
    assert!(server.answers_ping());

    let run = scope.bash(&script, &[(TOKEN_NAME, TOKEN_VALUE)]);
    run.expect_code(0);
    assert!(
        !run.output().contains("Quokka77"),
        "the runbook printed the secret:\n{}",
        run.output()
    );

    assert_upgraded_classic(&scope, &server, &before, "v1.6.20", "20");
}

/// Scenario 2: a second upgrade reuses the data container of the first, and keeps the data.
#[test]
fn second_upgrade_reuses_the_data_container() {
    let scope = scope!("second");
    let server = start_classic_server(&scope);
    let before = record_before(&scope, &server);

    scope.upgrade("v1.6.20", &[]).expect_code(0);
    let data = inspect_existing(&scope.data_name());
    let data_id = text(&data, "/Id").to_string();
    assert_eq!(data_mounts(&data), before.data);

    let run = scope.upgrade("v1.6.30", &[]);
    run.expect_code(0);

    assert_eq!(server.version(), "v1.6.30");
    assert_eq!(server.schema(), "30");
    assert_eq!(
        server.read_data(PROBE_FILE).as_deref(),
        Some(before.probe.as_str())
    );
    let data = inspect_existing(&scope.data_name());
    assert_eq!(
        text(&data, "/Id"),
        data_id,
        "the data container was replaced"
    );
    assert_eq!(
        data_mounts(&data),
        before.data,
        "the data container's volumes"
    );
    let new = server.inspect();
    assert_eq!(data_mounts(&new), before.data, "the new server's volumes");
    assert_eq!(
        strings(&new, "/HostConfig/VolumesFrom"),
        vec![scope.data_name()],
        "exactly one --volumes-from, the data container"
    );
    assert_eq!(
        env_value(&new, "CATTLE_RANCHER_SERVER_VERSION").as_deref(),
        Some("v1.6.30")
    );
    assert_eq!(
        scope.container_names(),
        vec![scope.server_name(), scope.data_name()],
        "exactly the server and one data container are left"
    );
}

/// Scenario 3a: external database given by `--db-*` arguments: the test bed's database
/// stand-in, with a user of its own whose password holds what a shell treats specially.
#[test]
fn external_db_arguments_are_carried_and_the_password_never_shown() {
    let scope = scope!("extargs");
    let Some(db) = db::TestDb::for_test(&scope.prefix) else {
        return;
    };
    let password = r#"Zebra42Quux p@ss'w"rd $x"#;
    db.grant("rancher", password);
    let server = scope.start_server(
        "v1.6.10",
        ServerOptions {
            port: Some(free_port()),
            restart: Some("always".into()),
            args: database_args(&db, "rancher", Some(password)),
            ..ServerOptions::default()
        },
    );
    let (old, new) = upgrade_external_db(&scope, &db, &server, "Zebra42Quux");

    assert_eq!(text(&new, "/Config/Image"), engine::image("v1.6.20"));
    assert_eq!(
        strings(&new, "/Config/Cmd"),
        strings(&old, "/Config/Cmd"),
        "the new server's arguments"
    );
    assert!(strings(&new, "/Config/Cmd").contains(&password.to_string()));
    assert_eq!(text(&new, "/HostConfig/RestartPolicy/Name"), "always");
}

/// The `--db-*` arguments of a server on `db` as `user`, with `--db-pass` when `password` is
/// given (else the server takes it from its env).
fn database_args(db: &db::TestDb, user: &str, password: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "--db-host".to_string(),
        db.bed.host.clone(),
        "--db-port".into(),
        db.bed.port.to_string(),
        "--db-user".into(),
        user.into(),
        "--db-name".into(),
        db.name.clone(),
    ];
    if let Some(password) = password {
        args.extend(["--db-pass".into(), password.into()]);
    }
    args
}

/// Scenario 3b: external database given by `CATTLE_DB_*` env (the test bed's database
/// stand-in, where the user `cattle` has a password of its own on the test's database).
#[test]
fn external_db_env_is_carried_and_the_password_never_shown() {
    let scope = scope!("extenv");
    let Some(db) = db::TestDb::for_test(&scope.prefix) else {
        return;
    };
    let password = r#"Yak93Zorro it's "secret" $HOME"#;
    db.grant("cattle", password);
    let env = vec![
        format!("CATTLE_DB_CATTLE_MYSQL_HOST={}", db.bed.host),
        format!("CATTLE_DB_CATTLE_MYSQL_PORT={}", db.bed.port),
        "CATTLE_DB_CATTLE_USERNAME=cattle".into(),
        format!("CATTLE_DB_CATTLE_PASSWORD={password}"),
        format!("CATTLE_DB_CATTLE_MYSQL_NAME={}", db.name),
    ];
    let server = scope.start_server(
        "v1.6.10",
        ServerOptions {
            port: Some(free_port()),
            env: env.clone(),
            ..ServerOptions::default()
        },
    );
    let (_, new) = upgrade_external_db(&scope, &db, &server, "Yak93Zorro");

    let new_env = strings(&new, "/Config/Env");
    for expected in &env {
        assert!(
            new_env.contains(expected),
            "{expected:?} missing from {new_env:?}"
        );
    }
    assert_eq!(
        env_value(&new, "CATTLE_RANCHER_SERVER_VERSION").as_deref(),
        Some("v1.6.20")
    );
}

/// Upgrades an external-database server to v1.6.20, and checks what both ways of giving the
/// database have in common: no output shows the password (of which `marker` is a part), the new
/// server runs on the same database settings (host, port, user, name, password hash) and
/// migrated it, the old one was gone from the database before the new one came, the old
/// container is gone and there is no data container. Returns the old and the new container.
fn upgrade_external_db(
    scope: &Scope,
    db: &db::TestDb,
    server: &Server,
    marker: &str,
) -> (serde_json::Value, serde_json::Value) {
    assert_eq!(server.get("/mode").as_deref(), Some("external"));
    assert_eq!(db.schema(), Some(10));
    let db_before = server.get("/db").expect("the old server answers /db");
    let old = server.inspect();

    let run = scope.upgrade("v1.6.20", &[]);
    run.expect_code(0);
    assert_never_shown(scope, &run, marker);

    let new = server.inspect();
    assert_eq!(server.version(), "v1.6.20");
    assert_eq!(server.get("/mode").as_deref(), Some("external"));
    assert_eq!(
        server.get("/db").as_deref(),
        Some(db_before.as_str()),
        "the new server's database settings"
    );
    assert_eq!(db.schema(), Some(20), "the schema after the upgrade");
    let servers: Vec<_> = db
        .connections()
        .into_iter()
        .filter(|c| c.is_server())
        .collect();
    let versions: Vec<_> = servers.iter().map(|c| c.version.clone()).collect();
    assert_eq!(
        versions,
        [Some("v1.6.10".to_string()), Some("v1.6.20".to_string())],
        "the servers that used the database"
    );
    assert!(
        !servers[0].overlaps(&servers[1]),
        "the old server was still connected when the new one came: {servers:?}"
    );
    assert!(
        inspect(text(&old, "/Id")).is_none(),
        "the old container still exists"
    );
    assert_eq!(
        scope.container_names(),
        vec![scope.server_name()],
        "containers left"
    );
    (old, new)
}

/// Scenario 3c: the external database's dump and its restore. A v1.6.10 server on the test
/// bed's database stand-in is upgraded to v1.6.20, the old image's mysqldump dumping the
/// database once the old server has left it; then the crash release (v1.6.31-crash migrates
/// the schema to 31 and exits 3) rolls back by itself, the old image's mysql restoring its
/// dump before v1.6.20, which refuses a newer schema, starts again and answers. While both
/// run, no process's command line shows the password.
#[test]
fn external_db_is_dumped_and_restored_before_the_old_server_starts_again() {
    let scope = scope!("extdump");
    let Some(db) = db::TestDb::for_test(&scope.prefix) else {
        return;
    };
    // Unique, so that no other process on this machine shows it; in the environment, where
    // the docs' --db-pass would show on the new server's `docker create` (the plan warns).
    let password = format!("Quagga{}-{} it's $HOME", std::process::id(), now_seconds());
    db.grant("rancher", &password);
    let server = scope.start_server(
        "v1.6.10",
        ServerOptions {
            port: Some(free_port()),
            restart: Some("unless-stopped".into()),
            env: vec![format!("CATTLE_DB_CATTLE_PASSWORD={password}")],
            args: database_args(&db, "rancher", None),
            ..ServerOptions::default()
        },
    );
    assert_eq!(db.schema(), Some(10));
    // Rows enough for a dump of some size, of hex digits that compress as little as real data
    // would: what each restore must bring back.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let rows: Vec<String> = (0..DUMP_ROWS)
        .map(|i| {
            let value: String = (0..6)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    format!("{seed:016x}")
                })
                .collect();
            format!(
                "({},{})",
                db::sql_string(&format!("row-{i}")),
                db::sql_string(&value)
            )
        })
        .collect();
    db.exec(&format!(
        "INSERT INTO `setting` VALUES {};\n",
        rows.join(",")
    ));

    let (upgrade, result) = run_watching_command_lines(&scope, "v1.6.20", &password, "mysqldump");
    upgrade.expect_code(0);
    assert_never_shown(&scope, &upgrade, &password);
    assert_eq!(server.version(), "v1.6.20");
    assert_eq!(db.schema(), Some(20));
    let dump = dump_taken(&scope, &db, "v1.6.10", 10);
    assert_eq!(dump.content_bytes, dump.sql.len() as u64);
    assert_dump_between_the_servers(&db, "v1.6.10", "v1.6.20");
    let _ = writeln!(
        std::io::stderr(),
        "external database dump: {} bytes of SQL ({} tables, {DUMP_ROWS} rows added) into {} bytes of {} in {:.2} s",
        dump.sql.len(),
        dump.tables,
        dump.archive_bytes,
        dump.path.file_name().unwrap().to_string_lossy(),
        step_seconds(&result, "backup"),
    );

    // Written on v1.6.20: the next dump holds it, and its restore brings it back.
    db.put_setting("written-on", "v1.6.20");
    let settings = db.settings();
    let (crash, result) = run_watching_command_lines(&scope, "v1.6.31-crash", &password, "mysql");
    crash
        .expect_code(1)
        .expect_mention(&["exit code 3", "Rolled back.", "data restored from "]);
    assert_never_shown(&scope, &crash, &password);
    assert_eq!(server.version(), "v1.6.20", "the old server answers again");
    assert_eq!(db.schema(), Some(20), "the migrated schema is gone");
    assert_eq!(
        db.settings(),
        settings,
        "every row as it was before the crash release"
    );
    let restores = db.events_of("exec");
    let restore = restores.last().expect("the restore changed the database");
    assert_eq!(
        (
            &restore["kind"],
            &restore["schema_before"],
            &restore["schema_after"]
        ),
        (&"mysql".into(), &31.into(), &20.into()),
        "{restore}"
    );
    let crashed = dump_taken(&scope, &db, "v1.6.20", 20);
    assert_dump_between_the_servers(&db, "v1.6.20", "v1.6.31-crash");
    // The restore came after the crash release left, and before v1.6.20 came back.
    let connections = db.connections();
    let at = |kind: &str, version: Option<&str>| {
        connections
            .iter()
            .rposition(|c| c.kind == kind && c.version.as_deref() == version)
            .unwrap_or_else(|| panic!("no {kind} {version:?} in {connections:?}"))
    };
    let (crash_server, mysql, back) = (
        &connections[at("server", Some("v1.6.31-crash"))],
        &connections[at("mysql", None)],
        &connections[at("server", Some("v1.6.20"))],
    );
    assert!(
        crash_server.disconnected_at.unwrap() <= mysql.connected_at
            && mysql.disconnected_at.unwrap() <= back.connected_at,
        "crash release {crash_server:?}, restore {mysql:?}, v1.6.20 again {back:?}"
    );
    assert!(
        db::overlapping_servers(&connections).is_empty(),
        "two servers on the database at once: {:?}",
        db::overlapping_servers(&connections)
    );
    let _ = writeln!(
        std::io::stderr(),
        "external database dump before the crash release: {} bytes of SQL into {} bytes in {:.2} s; restored in {:.2} s",
        crashed.sql.len(),
        crashed.archive_bytes,
        step_seconds(&result, "backup"),
        step_seconds(&result, "restore-data"),
    );
}

/// Rows the dump scenario adds to the `setting` table, about 110 bytes each.
const DUMP_ROWS: usize = 20_000;

/// `upgrade --yes --to TO` with its `--result`, reading every process's command line while it
/// runs: none may hold `secret`, and the sampling must see the database client `client` go by
/// (the dump's `mysqldump`, the restore's `mysql`), or it proved nothing.
fn run_watching_command_lines(
    scope: &Scope,
    to: &str,
    secret: &str,
    client: &str,
) -> (engine::Run, serde_json::Value) {
    let result = scope.dir().join(format!("result-{to}.json"));
    let result_arg = result.display().to_string();
    let (args, transcript) = scope.upgrade_args(to, &["--result", &result_arg]);
    let mut run = scope.spawn_tool(&args, Some(&transcript));
    let entrypoint = format!("--entrypoint {client} ");
    let (mut samples, mut seen, mut leaks) = (0_u64, 0_u64, Vec::new());
    while run.is_running() {
        for (pid, line) in engine::command_lines() {
            if line.contains(secret) {
                leaks.push(format!("{pid}: {line}"));
            }
            seen += u64::from(line.contains(&entrypoint));
        }
        samples += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        leaks.is_empty(),
        "the password on a command line:\n{}",
        leaks.join("\n")
    );
    assert!(seen > 0, "{samples} samples never saw `{entrypoint}` go by");
    let run = run.wait();
    let result = serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    (run, result)
}

/// How long the step `id` of a `--result` took, in the phase it ran last.
fn step_seconds(result: &serde_json::Value, id: &str) -> f64 {
    result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|s| s["id"] == id)
        .and_then(|s| s["duration_seconds"].as_f64())
        .unwrap_or_else(|| panic!("no step {id} in {result:#}"))
}

/// A dump the upgrade wrote, read back.
struct Dump {
    path: PathBuf,
    sql: String,
    tables: u64,
    content_bytes: u64,
    archive_bytes: u64,
}

/// The dump of `db` taken before the upgrade from `version` (schema `schema`): whole, private,
/// its checksum right, recorded in the state file, holding the database as that version left
/// it.
fn dump_taken(scope: &Scope, db: &db::TestDb, version: &str, schema: u32) -> Dump {
    use std::os::unix::fs::PermissionsExt;
    let backups = scope.subdir("backups");
    let prefix = format!("rancher-db-backup-{version}-");
    let dumps: Vec<PathBuf> = std::fs::read_dir(&backups)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".sql.zst")
        })
        .collect();
    let [path] = &dumps[..] else {
        panic!("one dump of {version} in {}: {dumps:?}", backups.display());
    };
    let checksum = PathBuf::from(format!("{}.sha256", path.display()));
    for file in [path, &checksum] {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    let checked = Command::new("sha256sum")
        .arg("-c")
        .arg(&checksum)
        .current_dir(&backups)
        .output()
        .unwrap();
    assert!(checked.status.success(), "sha256sum -c: {checked:?}");
    let sql = Command::new("zstd")
        .args(["-q", "-dc"])
        .arg(path)
        .output()
        .unwrap();
    assert!(sql.status.success(), "zstd -dc {}: {sql:?}", path.display());
    let sql = String::from_utf8(sql.stdout).unwrap();
    assert!(
        sql.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("-- Dump completed on "),
        "the dump is whole"
    );
    for holds in [
        format!("CREATE DATABASE /*!32312 IF NOT EXISTS*/ `{}`;", db.name),
        format!("-- Schema: {schema}"),
        format!("'row-{}'", DUMP_ROWS - 1),
    ] {
        assert!(sql.contains(&holds), "the dump lacks {holds:?}");
    }
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(backups.join(format!(
            "rancher-upgrade-{}.state.json",
            scope.server_name()
        )))
        .unwrap(),
    )
    .unwrap();
    let recorded = &state["backup_summary"];
    Dump {
        path: path.clone(),
        tables: recorded["entries"].as_u64().unwrap(),
        content_bytes: recorded["content_bytes"].as_u64().unwrap(),
        archive_bytes: std::fs::metadata(path).unwrap().len(),
        sql,
    }
}

/// The last dump of `db` ran with no server on the database: after an `old` server left it,
/// before a `new` one came.
fn assert_dump_between_the_servers(db: &db::TestDb, old: &str, new: &str) {
    let connections = db.connections();
    let dump = connections
        .iter()
        .rfind(|c| c.kind == "mysqldump")
        .unwrap_or_else(|| panic!("no dump in {connections:?}"));
    let servers = || connections.iter().filter(|c| c.is_server());
    let on_it: Vec<_> = servers().filter(|c| c.overlaps(dump)).collect();
    assert!(
        on_it.is_empty(),
        "servers on the database during the dump: {on_it:?}"
    );
    let (before, after) = (
        servers().rfind(|c| c.connected_at < dump.connected_at),
        servers().find(|c| c.connected_at > dump.connected_at),
    );
    assert_eq!(
        (
            before.and_then(|c| c.version.as_deref()),
            after.and_then(|c| c.version.as_deref())
        ),
        (Some(old), Some(new)),
        "the servers around the dump {dump:?}"
    );
}

/// Scenario 4: /var/lib/mysql bind-mounted from the host: the host's data survives and the
/// new server migrates it in place.
#[test]
fn bind_mounted_database_survives_and_is_used() {
    let scope = scope!("bind");
    let host_dir = scope.subdir("mysql");
    let server = scope.start_server(
        "v1.6.10",
        ServerOptions {
            port: Some(free_port()),
            binds: vec![format!("{}:/var/lib/mysql", host_dir.display())],
            restart: Some("unless-stopped".into()),
            ..ServerOptions::default()
        },
    );
    let schema_file = host_dir.join("schema_version");
    assert_eq!(std::fs::read_to_string(&schema_file).unwrap().trim(), "10");
    let probe = "kept on the host\n";
    std::fs::write(host_dir.join("cattle/probe.txt"), probe).unwrap();
    let old_id = server.id();

    let run = scope.upgrade("v1.6.20", &[]);
    run.expect_code(0);

    assert_eq!(std::fs::read_to_string(&schema_file).unwrap().trim(), "20");
    assert_eq!(
        std::fs::read_to_string(host_dir.join("cattle/probe.txt")).unwrap(),
        probe
    );
    assert_eq!(server.version(), "v1.6.20");
    assert_eq!(server.schema(), "20");
    assert_eq!(server.read_data(PROBE_FILE).as_deref(), Some(probe));
    let new = server.inspect();
    assert_eq!(
        mounts(&new).get("/var/lib/mysql"),
        Some(&("bind".to_string(), host_dir.display().to_string())),
        "the new server's /var/lib/mysql"
    );
    let binds = strings(&new, "/HostConfig/Binds");
    assert!(
        binds
            .iter()
            .filter(|b| b.ends_with(":/var/lib/mysql"))
            .count()
            <= 1,
        "/var/lib/mysql mounted twice: {binds:?}"
    );
    assert!(inspect(&old_id).is_none(), "the old container still exists");
}

/// Scenario 5: `upgrade --dry-run` and `runbook`, in every format, change nothing.
#[test]
fn dry_run_and_runbooks_change_nothing() {
    let scope = scope!("dryrun");
    let server = start_classic_server(&scope);
    // `stable` is a tag no other scenario pulls, so a pull would show in the events.
    let target = "stable";
    let pulled = engine::image(target);
    let before = scope.snapshot();
    let since = now_seconds();

    for format in ["text", "markdown", "shell", "json"] {
        for command in ["upgrade", "runbook"] {
            let mut args = vec![command.to_string()];
            if command == "upgrade" {
                args.push("--dry-run".into());
            }
            args.extend(["--format".into(), format.into()]);
            args.extend(scope.selection(target));
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = scope.tool(&refs);
            run.expect_code(0);
            assert!(
                run.stdout.contains(&scope.server_name()),
                "`{}` does not name the server:\n{}",
                run.what,
                run.stdout
            );
            assert!(
                !run.output().contains("Quokka77"),
                "`{}` showed the secret",
                run.what
            );
            if format == "json" {
                serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap_or_else(|e| {
                    panic!("`{}` is not JSON ({e}):\n{}", run.what, run.stdout)
                });
            }
        }
    }

    let after = scope.snapshot();
    assert_unchanged(&before, &after, "upgrade --dry-run / runbook");
    let events = scope.events_since(since, &pulled);
    assert!(events.is_empty(), "the engine saw changes: {events:#?}");
    assert!(server.answers_ping());
    assert!(!exists(&scope.data_name()));
}

/// Scenario 7: a container under the data container's name that holds other volumes is
/// refused (exit 2), with and without --dry-run, and nothing changes.
#[test]
fn wrong_data_container_is_refused_and_nothing_changes() {
    let scope = scope!("wrongdata");
    let server = start_classic_server(&scope);
    let probe = record_before(&scope, &server).probe;
    docker_ok(&[
        "create",
        "--name",
        &scope.data_name(),
        &engine::image("v1.6.10"),
    ]);
    let before = scope.snapshot();

    let mut dry = vec!["upgrade".to_string(), "--dry-run".into()];
    dry.extend(scope.selection("v1.6.20"));
    let refs: Vec<&str> = dry.iter().map(String::as_str).collect();
    let run = scope.tool(&refs);
    run.expect_code(2).expect_mention(&[&scope.data_name()]);
    run.expect_mention(&["refus"]);

    let run = scope.upgrade("v1.6.20", &[]);
    run.expect_code(2).expect_mention(&[&scope.data_name()]);
    run.expect_mention(&["refus"]);

    assert_unchanged(&before, &scope.snapshot(), "the refused upgrade");
    assert!(server.answers_ping(), "the old server stopped answering");
    assert_eq!(server.version(), "v1.6.10");
    assert_eq!(
        server.read_data(PROBE_FILE).as_deref(),
        Some(probe.as_str())
    );
}

/// Scenario 8a: a container that does not exist is bad input (exit 2).
#[test]
fn missing_container_is_bad_input() {
    let scope = scope!("missing");
    let run = scope.upgrade("v1.6.20", &[]);
    run.expect_code(2).expect_mention(&["no container named"]);
    run.expect_mention(&[&scope.server_name()]);

    let mut dry = vec!["upgrade".to_string(), "--dry-run".into()];
    dry.extend(scope.selection("v1.6.20"));
    let refs: Vec<&str> = dry.iter().map(String::as_str).collect();
    scope
        .tool(&refs)
        .expect_code(2)
        .expect_mention(&["no container named"]);
    assert!(scope.containers().is_empty(), "{:?}", scope.containers());
}

/// Scenario 8b: a target tag missing from the registry fails at the pull, before anything
/// stops (exit 1); the old server runs on, untouched.
#[test]
fn missing_target_tag_fails_before_anything_stops() {
    let scope = scope!("notag");
    let server = start_classic_server(&scope);
    let probe = record_before(&scope, &server).probe;
    let before = scope.snapshot();

    let run = scope.upgrade("v9.9.9", &[]);
    run.expect_code(1).expect_mention(&["v9.9.9"]);

    assert_old_server_untouched(&scope, &server, &before, &probe, "the failed upgrade");
}

/// An upgrade that failed before the stop left the old server as it was: the engine holds what
/// it held (`before`), and the server answers on its release, schema and data (`probe`).
fn assert_old_server_untouched(
    scope: &Scope,
    server: &Server,
    before: &Snapshot,
    probe: &str,
    what: &str,
) {
    assert_unchanged(before, &scope.snapshot(), what);
    assert!(server.answers_ping(), "the old server stopped answering");
    assert_eq!(server.version(), "v1.6.10");
    assert_eq!(server.schema(), "10");
    assert_eq!(server.read_data(PROBE_FILE).as_deref(), Some(probe));
    assert!(!exists(&scope.data_name()), "a data container was created");
}

/// A small tmpfs mounted on a directory of the test, unmounted when it is dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(
            mounted.success(),
            "mount -t tmpfs on {} (as root, like the test bed)",
            dir.display()
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Issue 14: a `--backup-dir` without room for the archive (a 64 KiB tmpfs, a database of
/// 1 MiB) is refused right after the pull, before anything stops: the old server goes on
/// answering, and nothing of it changes.
#[test]
fn a_backup_dir_without_room_is_refused_before_anything_stops() {
    let scope = scope!("noroom");
    let server = start_classic_server(&scope);
    let probe = record_before(&scope, &server).probe;
    server.write_data("cattle/rows.ibd", &"row ".repeat(256 * 1024));
    let _small = Tmpfs::mount(&backups(&scope), "64k");
    let before = scope.snapshot();

    let run = scope.upgrade("v1.6.20", &[]);
    run.expect_code(1).expect_mention(&[
        "has room for the backup",
        "free, and the backup may take 1.0 MiB",
        "pass --backup-dir",
        "the old server was not touched",
    ]);
    let transcript = run.transcript.as_deref().unwrap_or_default();
    assert!(
        !transcript.contains("$ docker stop"),
        "the server was stopped:\n{transcript}"
    );
    assert_old_server_untouched(&scope, &server, &before, &probe, "the refused upgrade");
}

/// Issue 14: the archive is damaged after a good upgrade (one byte flipped). `rollback` checks
/// it against its checksum first, and refuses before it stops the new server: the new release
/// goes on running, on the data volumes as they were.
#[test]
fn rollback_refuses_a_damaged_archive_before_stopping_the_new_server() {
    let scope = scope!("rollbackdamaged");
    let server = start_classic_server(&scope);
    record_before(&scope, &server);
    scope.upgrade("v1.6.20", &[]).expect_code(0);
    server.write_data("cattle/after.txt", "written under v1.6.20\n");
    let archive = archives(&scope).pop().expect("the upgrade's archive");
    let mut bytes = std::fs::read(&archive).expect("reading the archive");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&archive, &bytes).expect("damaging the archive");
    let before = scope.snapshot();
    let upgraded_id = server.id();

    let run = scope.rollback(&[]);
    run.expect_code(1)
        .expect_mention(&["does not match its checksum"]);
    let transcript = run.transcript.as_deref().unwrap_or_default();
    assert!(
        !transcript.contains("$ docker stop"),
        "the new server was stopped:\n{transcript}"
    );
    assert_unchanged(&before, &scope.snapshot(), "the refused rollback");
    assert_eq!(server.id(), upgraded_id, "not the upgraded container");
    assert!(server.answers_ping(), "the new server stopped answering");
    assert_eq!(server.version(), "v1.6.20");
    assert_eq!(server.schema(), "20");
    assert_eq!(
        server.read_data("cattle/after.txt").as_deref(),
        Some("written under v1.6.20\n"),
        "the data volumes changed"
    );
}

/// Scenario 8c: another process takes the host port while the old server is down, so the new
/// server's `docker run` fails after the old one was stopped and renamed. The tool must exit 1
/// with a clear error, and either the old server runs again, or the way back the tool printed
/// brings it back. `free_port_when_renamed_back`: the other process lets go of the port once
/// the old container has its name back (so a rollback can succeed); otherwise it holds the
/// port until the tool has exited.
fn port_taken_while_down(test: &str, free_port_when_renamed_back: bool) {
    let scope = scope!(test);
    let server = start_classic_server(&scope);
    let before = record_before(&scope, &server);

    let release_when: Option<engine::ReleaseWhen> = free_port_when_renamed_back.then(|| {
        let (name, old_id) = (scope.server_name(), before.id.clone());
        let renamed_away = std::cell::Cell::new(false);
        Box::new(move || {
            let holds_the_name = inspect(&name).is_some_and(|c| text(&c, "/Id") == old_id);
            if !holds_the_name {
                renamed_away.set(true);
            }
            renamed_away.get() && holds_the_name
        }) as engine::ReleaseWhen
    });
    let thief = PortThief::lie_in_wait(server.port, Duration::from_secs(120), release_when);
    let run = scope.upgrade("v1.6.20", &[]);
    assert!(
        thief.release(),
        "the test's listener never got 127.0.0.1:{} (was the old server stopped?); the tool said:\n{}",
        server.port,
        run.output()
    );
    run.expect_code(1)
        .expect_mention(&["already in use", "already allocated"]);

    let old_is_back = inspect(&scope.server_name()).is_some_and(|c| {
        text(&c, "/Id") == before.id && c.pointer("/State/Running") == Some(&true.into())
    }) && server.answers_ping();
    if old_is_back {
        eprintln!("{test}: the tool brought the old server back by itself");
    } else {
        let commands = way_back_commands(&run.output());
        assert!(
            !commands.is_empty(),
            "the old server is not back and the report shows no way back:\n{}",
            run.output()
        );
        eprintln!("{test}: running the way back the tool printed: {commands:#?}");
        for command in &commands {
            let out = Command::new("bash")
                .args(["-c", command])
                .current_dir(scope.dir())
                .output()
                .expect("bash");
            assert!(
                out.status.success(),
                "the way back failed at `{command}`: {}\nthe tool said:\n{}",
                String::from_utf8_lossy(&out.stderr),
                run.output()
            );
        }
        assert!(
            engine::wait_for_pong(server.port, Duration::from_secs(30)),
            "the old server does not answer /ping after the way back {commands:#?}"
        );
    }
    let old = server.inspect();
    assert_eq!(
        text(&old, "/Id"),
        before.id,
        "{} is not the old container",
        scope.server_name()
    );
    assert_eq!(server.version(), "v1.6.10");
    assert_eq!(server.schema(), "10");
    assert_eq!(
        server.read_data(PROBE_FILE).as_deref(),
        Some(before.probe.as_str())
    );
    assert_eq!(
        text(&old, "/HostConfig/RestartPolicy/Name"),
        "unless-stopped"
    );
    let names = scope.container_names();
    assert!(
        !names.contains(&format!("{}-v1.6.10", scope.server_name())),
        "the parked name is still in use: {names:?}"
    );
}

#[test]
fn port_taken_for_good_fails_with_a_way_back() {
    port_taken_while_down("porttaken", false);
}

#[test]
fn port_taken_while_down_then_freed_gets_the_old_server_back() {
    port_taken_while_down("portfreed", true);
}

/// Beyond the issue's list: the new release migrates the schema forward and then dies
/// (`v1.6.31-crash`). The old release refuses the migrated schema, so only the backup gets it
/// back: the tool exits 1, and the old server runs again on the data from before the upgrade.
#[test]
fn crash_after_migrating_rolls_back_to_the_data_from_before() {
    let scope = scope!("crash");
    let server = start_classic_server(&scope);
    let before = record_before(&scope, &server);

    let run = scope.upgrade("v1.6.31-crash", &[]);
    run.expect_code(1)
        .expect_mention(&["migration failed", "exit code 3"]);
    assert_never_shown(&scope, &run, "Quokka77");

    assert!(
        server.answers_ping(),
        "the old server is not back:\n{}",
        run.output()
    );
    let old = server.inspect();
    assert_eq!(
        text(&old, "/Id"),
        before.id,
        "{} is not the old container",
        scope.server_name()
    );
    assert_eq!(server.version(), "v1.6.10");
    assert_eq!(server.schema(), "10", "the old server on a migrated schema");
    assert_eq!(
        server.read_data(PROBE_FILE).as_deref(),
        Some(before.probe.as_str())
    );
    assert_eq!(data_mounts(&old), before.data);
    assert_eq!(
        text(&old, "/HostConfig/RestartPolicy/Name"),
        "unless-stopped"
    );
    let names = scope.container_names();
    assert!(
        !names.iter().any(|n| n.ends_with("-v1.6.10")),
        "the parked name is still in use: {names:?}"
    );
}

/// Beyond the issue's list: `rollback` after a finished upgrade brings the old release back
/// under the server's name, with its settings, on the backup the upgrade took (what was
/// written under the new release is gone with it).
#[test]
fn rollback_after_an_upgrade_returns_to_the_old_release_and_its_data() {
    let scope = scope!("rollback");
    let server = start_classic_server(&scope);
    let before = record_before(&scope, &server);
    scope.upgrade("v1.6.20", &[]).expect_code(0);
    server.write_data("cattle/after.txt", "written under v1.6.20\n");
    let upgraded_id = server.id();

    let run = scope.rollback(&[]);
    run.expect_code(0);
    assert_never_shown(&scope, &run, "Quokka77");

    assert_ne!(server.id(), upgraded_id, "v1.6.20 still runs");
    assert_runs_classic(&scope, &server, &before, "v1.6.10", "10");
    assert_eq!(
        server.read_data("cattle/after.txt"),
        None,
        "the data is not the backup's"
    );
}
