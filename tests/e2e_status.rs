//! End-to-end tests of `status` and `--result` on the real docker engine: after a finished
//! upgrade, after one that stopped before the new version ran, and after one whose way back
//! failed. Each time `status` must say where the upgrade stands, what the engine runs now, and
//! the command that carries on; that command is then run, and `status` asked again.
//!
//! Without an engine every test prints a skip line and passes, unless `REQUIRE_DOCKER=1`.

#[allow(dead_code)] // this binary uses only part of the harness
#[macro_use]
#[path = "e2e/engine.rs"]
mod engine;

use engine::{Scope, ServerOptions, backups, docker_failing_once, free_port, image, inspect};
use serde_json::Value;
/// A server with a secret in its env, which neither `status` nor the result may show.
fn server_options() -> ServerOptions {
    ServerOptions {
        port: Some(free_port()),
        env: vec!["API_TOKEN=e2e-token-value".into()],
        restart: Some("unless-stopped".into()),
        ..ServerOptions::default()
    }
}

/// `status --container NAME --backup-dir DIR` in `format`: its output, which must come with exit 0.
fn status(scope: &Scope, format: &str) -> String {
    let backups = backups(scope).display().to_string();
    let run = scope.tool(&[
        "status",
        "--container",
        &scope.server_name(),
        "--backup-dir",
        &backups,
        "--format",
        format,
    ]);
    run.expect_code(0);
    assert!(
        !run.stdout.contains("e2e-token-value"),
        "status shows the secret:\n{}",
        run.stdout
    );
    run.stdout.clone()
}

/// The one upgrade `status --format json` reports.
fn recorded(scope: &Scope) -> Value {
    let report: Value = serde_json::from_str(&status(scope, "json")).expect("status prints JSON");
    assert_eq!(report["engine_errors"], serde_json::json!([]), "{report:#}");
    let upgrades = report["upgrades"].as_array().expect("upgrades");
    assert_eq!(upgrades.len(), 1, "{report:#}");
    let mut upgrade = upgrades[0].clone();
    upgrade["archives"] = report["archives"].clone();
    upgrade
}

/// Fails unless the report names `rancher-upgrade VERB ... --backup-dir DIR` with the test's
/// server as the next command, `extra` in between.
#[track_caller]
fn expect_next(scope: &Scope, upgrade: &Value, verb: &str, extra: &str) {
    assert_eq!(
        upgrade["next"]["command"].as_str(),
        Some(
            format!(
                "rancher-upgrade {verb} --container {}{extra} --backup-dir {}",
                scope.server_name(),
                backups(scope).display()
            )
            .as_str()
        ),
        "{upgrade:#}"
    );
}

/// Runs the next command a report names, unattended, with the test's short health timeout.
fn run_next(scope: &Scope, upgrade: &Value) -> engine::Run {
    let mut args: Vec<String> =
        serde_json::from_value(upgrade["next"]["argv"].clone()).expect("the next command's argv");
    assert_eq!(args.remove(0), "rancher-upgrade");
    args.extend(["--yes", "--health-timeout", "60"].map(String::from));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    scope.tool(&refs)
}

fn sha256sum(path: &str) -> String {
    let hashed = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&hashed.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The server runs `tag`, as the engine and `status` say.
#[track_caller]
fn expect_running(scope: &Scope, upgrade: &Value, tag: &str) {
    let now = inspect(&scope.server_name()).expect("the server's container");
    assert_eq!(engine::text(&now, "/Config/Image"), image(tag));
    assert_eq!(upgrade["server"]["image"], image(tag), "{upgrade:#}");
    assert_eq!(upgrade["server"]["version"], tag, "{upgrade:#}");
    assert_eq!(upgrade["server"]["running"], true, "{upgrade:#}");
    assert_eq!(upgrade["server"]["id"], engine::text(&now, "/Id"));
}

#[test]
fn status_after_a_finished_upgrade_lists_the_archive_and_nothing_to_do() {
    let scope = scope!("statusdone");
    let server = scope.start_server("v1.6.10", server_options());
    let result = scope.dir().join("result.json");
    scope
        .upgrade("v1.6.20", &["--result", &result.display().to_string()])
        .expect_code(0);
    assert_eq!(server.version(), "v1.6.20");

    let upgrade = recorded(&scope);
    assert_eq!(upgrade["status"], "completed");
    expect_running(&scope, &upgrade, "v1.6.20");
    assert_eq!(upgrade["next"], Value::Null);
    let archive = &upgrade["archives"][0];
    let path = archive["path"].as_str().expect("an archive");
    assert_eq!(upgrade["backup_archive"], path);
    assert!(path.ends_with(".tar.zst"), "{path}");
    assert_eq!(archive["sha256"], sha256sum(path));
    assert_eq!(archive["checksum"], "matches", "{archive:#}");
    let checksum_file = std::fs::read_to_string(format!("{path}.sha256")).unwrap();
    assert_eq!(
        checksum_file.split_whitespace().next(),
        archive["sha256"].as_str(),
        "the SHA-256 is the one its .sha256 file holds"
    );
    assert_eq!(
        upgrade["archives"].as_array().unwrap().len(),
        1,
        "one archive, not its .sha256: {upgrade:#}"
    );
    assert_eq!(archive["bytes"], std::fs::metadata(path).unwrap().len());
    assert_eq!(
        archive["recorded_by"],
        serde_json::json!([scope.server_name()])
    );
    let text = status(&scope, "text");
    assert!(
        text.contains(": done\n") && text.contains("next: nothing to do"),
        "{text}"
    );

    // The run's own result says the same.
    let document: Value = serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(document["outcome"], "completed");
    assert_eq!(document["archive"]["path"], path);
    assert_eq!(document["archive"]["bytes"], archive["bytes"]);
    let steps = document["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["ok"] == true), "{document:#}");
    assert!(
        steps.iter().any(|s| s["id"] == "create-new"
            && s["exit_code"] == 0
            && s["command"]
                .as_str()
                .unwrap()
                .contains("API_TOKEN='********'")),
        "{document:#}"
    );
    assert!(
        !std::fs::read_to_string(&result)
            .unwrap()
            .contains("e2e-token-value")
    );
}

#[test]
fn status_after_an_upgrade_stopped_before_the_new_version_resumes_it() {
    let scope = scope!("statusstop");
    let server = scope.start_server("v1.6.10", server_options());
    let old_id = server.id();
    // Ctrl-C twice right after the old server stopped: the tool leaves at once.
    let (args, transcript) = scope.upgrade_args("v1.6.20", &[]);
    scope.stop_halfway(&args, Some(&transcript), || {
        engine::inspect(&old_id).is_some_and(|c| !engine::is_running(&c))
    });

    let upgrade = recorded(&scope);
    assert_eq!(upgrade["status"], "stopped");
    // The new server is made before the stop: it holds the name, never started.
    assert_eq!(upgrade["server"]["running"], false, "{upgrade:#}");
    assert_eq!(upgrade["server"]["version"], "v1.6.20", "{upgrade:#}");
    assert_eq!(upgrade["parked"]["id"], old_id.as_str(), "{upgrade:#}");
    // The first Ctrl-C starts the way back, the second leaves it: whether the old server was
    // started again by then, status says what the engine says.
    let old_runs = engine::inspect(&old_id).is_some_and(|c| engine::is_running(&c));
    assert_eq!(upgrade["parked"]["running"], old_runs, "{upgrade:#}");
    assert_eq!(upgrade["parked"]["version"], "v1.6.10");
    expect_next(
        &scope,
        &upgrade,
        "upgrade",
        &format!(
            " --to {} --data-container {}",
            image("v1.6.20"),
            scope.data_name()
        ),
    );
    let text = status(&scope, "text");
    assert!(
        text.contains("stopped halfway: the same command resumes it"),
        "{text}"
    );
    assert!(text.contains("the old server is parked"), "{text}");

    let resumed = run_next(&scope, &upgrade);
    resumed
        .expect_code(0)
        .expect_mention(&["Resuming the upgrade"]);
    let upgrade = recorded(&scope);
    assert_eq!(upgrade["status"], "completed");
    expect_running(&scope, &upgrade, "v1.6.20");
    assert_eq!(upgrade["parked"], Value::Null, "the old server was removed");
    assert_eq!(upgrade["next"], Value::Null);
    assert_eq!(server.version(), "v1.6.20");
}

#[test]
fn status_after_a_failed_way_back_names_rollback_which_finishes_it() {
    let scope = scope!("statusfail");
    let server = scope.start_server("v1.6.10", server_options());
    let old_id = server.id();
    // The new release dies after migrating; the way back then fails at removing it.
    let wrapper = docker_failing_once(&scope, "rm");
    let result = scope.dir().join("result.json");
    let failed = scope.upgrade(
        "v1.6.31-crash",
        &[
            "--docker",
            &wrapper.display().to_string(),
            "--result",
            &result.display().to_string(),
        ],
    );
    failed
        .expect_code(1)
        .expect_mention(&["rollback stopped too"]);

    let upgrade = recorded(&scope);
    assert_eq!(upgrade["status"], "failed");
    assert_eq!(
        upgrade["server"]["image"],
        image("v1.6.31-crash"),
        "{upgrade:#}"
    );
    assert_eq!(upgrade["server"]["running"], false);
    assert_eq!(upgrade["parked"]["id"], old_id.as_str(), "{upgrade:#}");
    expect_next(&scope, &upgrade, "rollback", "");
    let text = status(&scope, "text");
    assert!(
        text.contains("failed, and its way back did not finish"),
        "{text}"
    );

    // The result holds the stop of the upgrade and of its way back, and what is left of it.
    let document: Value = serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(document["outcome"], "failed");
    let phases: Vec<&str> = document["stops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["plan", "way-back"], "{document:#}");
    assert_eq!(document["stops"][1]["step"], "remove-new");
    let way_back: Vec<&str> = document["way_back"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(way_back.first(), Some(&"remove-new"), "{document:#}");

    run_next(&scope, &upgrade).expect_code(0);
    let upgrade = recorded(&scope);
    assert_eq!(upgrade["status"], "rolled-back");
    expect_running(&scope, &upgrade, "v1.6.10");
    assert_eq!(
        upgrade["server"]["id"],
        old_id.as_str(),
        "the old container is back"
    );
    assert_eq!(upgrade["next"], Value::Null);
    assert!(server.answers_ping());
    assert_eq!(server.schema(), "10", "the data from before the upgrade");
}
