//! Running the plan against the fake docker: what runs is what the plan shows, a failure at any
//! step stops there with the right report, and nothing that holds data is ever removed.

mod common;

use common::{FakeDocker, pong_server, report_section, upgrade_args};
use serde_json::Value;

/// The docker commands the dry-run shows, secrets revealed, in order, without the program name.
fn planned_commands(fake: &FakeDocker, args: &[String]) -> Vec<Vec<String>> {
    let output = fake
        .command()
        .args(args)
        .args(["--dry-run", "--format", "json", "--show-secrets"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["skipped"].is_null())
        .filter_map(|s| {
            let argv: Vec<String> = serde_json::from_value(s["argv"].clone()).unwrap();
            (!argv.is_empty()).then(|| argv[1..].to_vec())
        })
        .collect()
}

fn assert_no_data_was_removed(fake: &FakeDocker) {
    for call in fake.mutating_calls() {
        assert!(
            !(call[0] == "rm"
                && call
                    .iter()
                    .any(|a| a == "-v" || a == "--volumes" || a == "-f")),
            "a removal that takes data or forces: {call:?}"
        );
        assert!(!call.iter().any(|a| a == "prune"), "{call:?}");
    }
    assert!(
        !fake
            .mutating_calls()
            .iter()
            .any(|c| c[0] == "rm" && c.iter().any(|a| a == "rancher-data")),
        "the data container is never removed"
    );
}

#[test]
fn the_executed_commands_are_exactly_the_planned_ones_embedded() {
    let fake = FakeDocker::new("embedded");
    let args = upgrade_args(&pong_server());
    let planned = planned_commands(&fake, &args);
    fake.command().args(&args).arg("--yes").assert().success();
    assert_eq!(fake.mutating_calls(), planned);
    assert_eq!(
        planned.len(),
        8,
        "pull update create rename create stop start rm: {planned:?}"
    );
    assert_eq!(
        fake.container("rancher")["Config"]["Image"],
        "127.0.0.1:5599/rancher/server:v1.6.20"
    );
    assert!(fake.has_container("rancher-data"));
    assert!(
        !fake.has_container("rancher-v1.6.10"),
        "the old container is removed at the end"
    );
}

#[test]
fn the_executed_commands_are_exactly_the_planned_ones_external_db() {
    for fixture in ["external-flags", "external-env"] {
        let fake = FakeDocker::new(fixture);
        let args = upgrade_args(&pong_server());
        let planned = planned_commands(&fake, &args);
        fake.command().args(&args).arg("--yes").assert().success();
        assert_eq!(fake.mutating_calls(), planned, "{fixture}");
        assert!(
            planned
                .iter()
                .filter(|c| c[0] == "create")
                .all(|c| c[1..3] == ["--name", "rancher"]),
            "{fixture}: an external database needs no data container: {planned:?}"
        );
        assert!(!fake.has_container("rancher-data"), "{fixture}");
    }
}

/// Each docker step of the plan: the subcommand the fake fails on, which call of it, and the
/// step number.
const STEPS: [(&str, usize, usize); 8] = [
    ("pull", 1, 1),
    ("update", 1, 2),
    ("create", 1, 3),
    ("rename", 1, 4),
    ("create", 2, 5),
    ("stop", 1, 6),
    ("start", 1, 7),
    ("rm", 1, 9),
];

#[test]
fn a_failure_at_each_step_stops_there_with_a_report_and_exit_1() {
    for (subcommand, nth, number) in STEPS {
        let mut fake = FakeDocker::new("embedded");
        fake.set_env("FAKE_DOCKER_FAIL_AT", subcommand);
        fake.set_env("FAKE_DOCKER_FAIL_NTH", nth.to_string());
        let output = fake
            .command()
            .args(upgrade_args(&pong_server()))
            .arg("--yes")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{subcommand}: {stderr}");
        assert!(
            stderr.contains(&format!("Step {number}/9 failed")),
            "{subcommand}: the report names the step: {stderr}"
        );
        assert!(
            stderr.contains(&format!("injected failure at {subcommand}")),
            "{subcommand}: docker's own words are shown: {stderr}"
        );
        let executed = fake.mutating_calls();
        let failing = executed
            .iter()
            .filter(|c| c[0] == subcommand)
            .nth(nth - 1)
            .unwrap_or_else(|| panic!("{subcommand} #{nth} never ran: {executed:?}"));
        assert_eq!(
            executed.iter().filter(|c| *c == failing).count(),
            1,
            "{subcommand}: the failing step ran once: {executed:?}"
        );
        assert_no_data_was_removed(&fake);
        // Until the new server answers, the old one comes back by itself, under its name and
        // with its restart policy; a failed removal of the old server leaves the working new one.
        if subcommand == "rm" {
            assert!(!stderr.contains("Rolling back"), "{stderr}");
            assert!(
                stderr.contains("$ docker rm rancher-v1.6.10"),
                "finish by hand: {stderr}"
            );
            assert_eq!(
                fake.container("rancher")["Config"]["Image"],
                "127.0.0.1:5599/rancher/server:v1.6.20"
            );
        } else {
            // A failed pull or restart-policy change left nothing to undo.
            let back = if ["pull", "update"].contains(&subcommand) {
                "rancher was not touched: it runs as before."
            } else {
                "Rolled back."
            };
            assert!(stderr.contains(back), "{subcommand}: {stderr}");
            let old = fake.container("rancher");
            assert_eq!(
                old["Config"]["Image"], "127.0.0.1:5599/rancher/server:v1.6.10",
                "{subcommand}"
            );
            assert_eq!(old["State"]["Running"], true, "{subcommand}");
            assert_eq!(
                old["HostConfig"]["RestartPolicy"]["Name"], "unless-stopped",
                "{subcommand}"
            );
        }
    }
}

#[test]
fn the_printed_way_back_returns_to_the_old_server() {
    let mut fake = FakeDocker::new("embedded");
    let mut args = upgrade_args(&pong_server());
    args.push("--yes".into());
    let stderr = fake.stop_halfway_at("rename", &args);
    assert!(
        stderr.contains("NOT BACK: rancher is not back on the old server (a second Ctrl-C)"),
        "{stderr}"
    );
    let way_back: Vec<&str> = report_section(&stderr, "To return to the old server, run:")
        .unwrap_or_else(|| panic!("no way back printed: {stderr}"))
        .into_iter()
        .filter_map(|l| l.strip_prefix("$ "))
        .collect();
    // The old server still runs: it only needs its restart policy back.
    assert_eq!(way_back, ["docker update --restart=unless-stopped rancher"]);
    for line in way_back {
        let status = fake.process("sh").args(["-c", line]).status().unwrap();
        assert!(status.success(), "{line}");
    }
    let old = fake.container("rancher");
    assert_eq!(old["State"]["Running"], true);
    assert_eq!(old["HostConfig"]["RestartPolicy"]["Name"], "unless-stopped");
}

#[test]
fn without_a_terminal_and_without_yes_nothing_runs() {
    let fake = FakeDocker::new("embedded");
    let output = fake
        .command()
        .args(upgrade_args(&pong_server()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--yes") && stderr.contains("--dry-run"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(fake.mutating_calls().is_empty());
    assert!(
        fake.work_files().is_empty(),
        "no transcript, no state file: {:?}",
        fake.work_files()
    );
}

#[test]
fn rancher_upgrade_yes_in_the_environment_answers_for_the_operator() {
    let mut fake = FakeDocker::new("embedded");
    fake.set_env("RANCHER_UPGRADE_YES", "1");
    fake.command()
        .args(upgrade_args(&pong_server()))
        .assert()
        .success();
    assert_eq!(fake.mutating_calls().len(), 8);
}

#[test]
fn the_transcript_holds_every_command_with_secrets_masked() {
    let fake = FakeDocker::new("embedded");
    let args = upgrade_args(&pong_server());
    fake.command()
        .args(&args)
        .args(["--yes", "--log", "transcript.log"])
        .assert()
        .success();
    let transcript = std::fs::read_to_string(fake.work_dir().join("transcript.log")).unwrap();
    assert!(!transcript.contains("tok-MARKER"), "{transcript}");
    assert!(
        transcript.contains("API_TOKEN='********' docker create"),
        "{transcript}"
    );
    for call in fake.mutating_calls() {
        let subcommand = format!("$ docker {}", call[0]);
        assert!(
            transcript.contains(&subcommand),
            "{subcommand} is missing: {transcript}"
        );
    }
    assert!(transcript.contains("exit: exit status: 0"));
    let live_env = fake.container("rancher")["Config"]["Env"].to_string();
    assert!(
        live_env.contains("API_TOKEN=tok-MARKER"),
        "the new server still gets the real value"
    );
}

#[test]
fn a_new_server_that_exits_is_a_failure_at_once_and_rolls_back() {
    let mut fake = FakeDocker::new("embedded");
    fake.set_env("FAKE_DOCKER_RUN_EXITS", "3");
    let started = std::time::Instant::now();
    let output = fake
        .command()
        .args(upgrade_args(&pong_server()))
        .args(["--yes", "--health-timeout", "600"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        started.elapsed().as_secs() < 60,
        "not after the 600 s timeout"
    );
    assert!(stderr.contains("exit code 3"), "{stderr}");
    assert!(
        stderr.contains("FATAL: migration failed"),
        "the log tail is shown: {stderr}"
    );
    assert!(stderr.contains("Rolled back."), "{stderr}");
    assert_eq!(
        fake.container("rancher")["Config"]["Image"],
        "127.0.0.1:5599/rancher/server:v1.6.10"
    );
    assert_no_data_was_removed(&fake);
}

#[test]
fn an_interrupted_upgrade_is_finished_only_towards_its_own_target() {
    let mut fake = FakeDocker::new("embedded");
    let health = pong_server();
    let mut args = upgrade_args(&health);
    args.push("--yes".into());
    fake.stop_halfway_at("rename", &args);
    let before = fake.mutating_calls().len();

    let mut elsewhere = upgrade_args(&health);
    elsewhere[4] = "v1.6.30".into();
    let output = fake
        .command()
        .args(&elsewhere)
        .arg("--yes")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--to 127.0.0.1:5599/rancher/server:v1.6.20"),
        "{stderr}"
    );
    assert_eq!(fake.mutating_calls().len(), before, "nothing ran");

    let output = fake
        .command()
        .args(upgrade_args(&health))
        .arg("--yes")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("Resuming the upgrade of rancher"),
        "{stderr}"
    );
    let resumed: Vec<String> = fake.mutating_calls()[before..]
        .iter()
        .map(|c| c[0].clone())
        .collect();
    assert_eq!(
        resumed,
        ["rename", "create", "stop", "start", "rm"],
        "only the steps not done run"
    );
}

#[test]
fn an_upgrade_stopped_after_the_stop_resumes_without_naming_the_container() {
    let mut fake = FakeDocker::new("embedded");
    let health = pong_server();
    let args = [
        "upgrade",
        "--to",
        "v1.6.20",
        "--yes",
        "--health-url",
        &health,
    ];
    // Stopped for good during the backup's `docker cp`: the old server is stopped and parked,
    // so no rancher/server container runs any more.
    let with_container: Vec<String> = args
        .iter()
        .chain(&["--container", "rancher"])
        .map(|a| a.to_string())
        .collect();
    fake.stop_halfway_at("cp", &with_container);
    assert_eq!(fake.container("rancher-v1.6.10")["State"]["Running"], false);

    let output = fake.command().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("rancher has an upgrade that stopped halfway"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Resuming the upgrade of rancher"),
        "{stderr}"
    );
    assert_eq!(
        fake.container("rancher")["Config"]["Image"],
        "127.0.0.1:5599/rancher/server:v1.6.20"
    );
}

#[test]
fn a_resumed_dry_run_shows_the_way_back_from_what_the_earlier_run_did() {
    let mut fake = FakeDocker::new("embedded");
    let health = pong_server();
    let args = [
        "upgrade",
        "--container",
        "rancher",
        "--to",
        "v1.6.20",
        "--health-url",
        &health,
    ];
    // Stopped for good during the backup's `docker cp`: the old server is stopped and parked.
    let unattended: Vec<String> = args
        .iter()
        .chain(&["--yes"])
        .map(|a| a.to_string())
        .collect();
    fake.stop_halfway_at("cp", &unattended);

    let output = fake
        .command()
        .args(args)
        .args(["--dry-run", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan: Value = serde_json::from_slice(&output.stdout).unwrap();
    let way_back: Vec<String> = plan["way_back"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["argv"].as_array().filter(|a| !a.is_empty()))
        .map(|argv| {
            argv.iter()
                .map(|w| w.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    // The undo of the earlier run's update, rename and stop come last, after the new server's.
    assert_eq!(
        way_back[way_back.len() - 3..],
        [
            "docker start rancher-v1.6.10",
            "docker rename rancher-v1.6.10 rancher",
            "docker update --restart=unless-stopped rancher"
        ],
        "{way_back:?}"
    );
    assert!(
        fake.mutating_calls().iter().all(|c| c[0] != "start"),
        "a dry run runs nothing"
    );
}

#[test]
fn a_record_whose_old_container_is_gone_is_refused_until_fresh_sets_it_aside() {
    let mut fake = FakeDocker::new("embedded");
    let health = pong_server();
    let mut args = upgrade_args(&health);
    args.push("--yes".into());
    fake.stop_halfway_at("rename", &args);
    // Someone re-creates the server by hand, under the same name, from the same image.
    let docker = |words: &[&str]| {
        let status = fake.process("docker").args(words).status().unwrap();
        assert!(status.success(), "docker {words:?}");
    };
    docker(&["rm", "-f", "rancher"]);
    docker(&[
        "run",
        "-d",
        "--name",
        "rancher",
        "--restart=unless-stopped",
        "127.0.0.1:5599/rancher/server:v1.6.10",
    ]);
    let before = fake.mutating_calls().len();

    let refused = fake.command().args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    for said in [
        "rancher-upgrade-rancher.state.json",
        "is gone",
        "--fresh",
        "rollback",
    ] {
        assert!(stderr.contains(said), "{said}: {stderr}");
    }
    assert_eq!(fake.mutating_calls().len(), before, "nothing ran");

    // The new server has volumes of its own: rancher-data holds the old ones (and is refused
    // for it), so the fresh upgrade gets a data container of its own.
    let fresh = fake
        .command()
        .args(&args)
        .args(["--fresh", "--data-container", "rancher-data-2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&fresh.stderr);
    assert!(fresh.status.success(), "{stderr}");
    assert!(stderr.contains("The earlier record"), "{stderr}");
    let kept: Vec<String> = fake
        .work_files()
        .into_iter()
        .filter(|f| f.starts_with("rancher-upgrade-rancher.state."))
        .collect();
    assert_eq!(
        kept.len(),
        2,
        "the new record and the one set aside: {kept:?}"
    );
    assert_eq!(
        fake.container("rancher")["Config"]["Image"],
        "127.0.0.1:5599/rancher/server:v1.6.20"
    );
}

/// The embedded server, also on a user-defined network with an alias and a static address.
fn on_a_second_network(fake: &FakeDocker) {
    let mut server = fake.container("rancher");
    server["NetworkSettings"]["Networks"]["backend"] = serde_json::json!({
        "IPAMConfig": {"IPv4Address": "172.30.0.10"},
        "Aliases": ["rancher-api", server["Id"].as_str().unwrap()[..12].to_string()],
        "Links": null,
        "DriverOpts": null
    });
    fake.put_container(&server);
}

/// The connect to the second network fails, before the stop: the way back removes the new
/// container and gives the old one its name and policy back, by itself. The same command again
/// upgrades afresh and connects once.
#[test]
fn a_failed_network_connect_is_undone_by_the_removal_and_the_next_run_connects_once() {
    let mut fake = FakeDocker::new("embedded");
    on_a_second_network(&fake);
    fake.set_env("FAKE_DOCKER_FAIL_AT", "network");
    let health = pong_server();
    let output = fake
        .command()
        .args(upgrade_args(&health))
        .arg("--yes")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Step 6/10 failed (Connect rancher to the network backend)"),
        "{stderr}"
    );
    let way_back: Vec<Vec<String>> = fake
        .mutating_calls()
        .into_iter()
        .skip_while(|c| c[0] != "network")
        .skip(1)
        .collect();
    assert_eq!(
        way_back,
        [
            vec!["rm", "rancher"],
            vec!["rename", "rancher-v1.6.10", "rancher"],
            vec!["update", "--restart=unless-stopped", "rancher"],
        ]
        .map(|c| c.into_iter().map(String::from).collect::<Vec<_>>()),
        "{stderr}"
    );
    assert_eq!(fake.container("rancher")["State"]["Running"], true);
    assert!(stderr.contains("Rolled back."), "{stderr}");

    fake.unset_env("FAKE_DOCKER_FAIL_AT");
    let before = fake.mutating_calls().len();
    let output = fake
        .command()
        .args(upgrade_args(&health))
        .arg("--yes")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let connects = fake.mutating_calls()[before..]
        .iter()
        .filter(|c| c[0] == "network")
        .count();
    assert_eq!(connects, 1, "{stderr}");
    let new = fake.container("rancher");
    assert_eq!(
        new["NetworkSettings"]["Networks"]["backend"]["Aliases"],
        serde_json::json!(["rancher-api"])
    );
}

#[test]
fn a_backup_dir_without_room_for_the_archive_stops_the_upgrade_before_anything_stops() {
    let mut fake = FakeDocker::new("embedded");
    // The engine measures the volumes at 2^40 KiB each: no test machine has that room.
    fake.set_env("FAKE_DOCKER_DU_KIB", (1u64 << 40).to_string());
    let mut args = upgrade_args(&pong_server());
    args.retain(|a| a != "--no-backup");
    let output = fake.command().args(args).arg("--yes").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let dir = std::fs::canonicalize(fake.work_dir()).unwrap();
    let refusal = stderr
        .lines()
        .find(|l| l.contains("Step 2/11 failed (Check that"))
        .unwrap_or_else(|| panic!("no refusal at step 2: {stderr}"));
    for said in [
        &format!("{} has ", dir.display()),
        " free, and the backup may take 3072.0 TiB (the data volumes, uncompressed)",
        "pass --backup-dir",
    ] {
        assert!(refusal.contains(said), "{said:?} in {refusal}");
    }
    assert!(
        stderr.contains("rancher was not touched: it runs as before."),
        "{stderr}"
    );
    let verbs: Vec<String> = fake.mutating_calls().iter().map(|c| c[0].clone()).collect();
    assert_eq!(verbs, ["pull", "run"], "only the pull and the measure ran");
    assert_eq!(fake.container("rancher")["State"]["Running"], true);
    assert!(!fake.has_container("rancher-data"));
}

/// Ctrl-C twice during the stop leaves the upgrade halfway; the record is cut back as if the run
/// had been killed before it recorded the create and the connect. The same command again sees
/// both on the engine and runs neither a second time.
#[test]
fn a_resumed_run_sees_on_the_engine_the_new_container_created_and_connected() {
    let mut fake = FakeDocker::new("embedded");
    on_a_second_network(&fake);
    let health = pong_server();
    let mut args = upgrade_args(&health);
    args.push("--yes".into());
    fake.stop_halfway_at("stop", &args);
    let state_file = fake.work_dir().join("rancher-upgrade-rancher.state.json");
    let mut state: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    state["steps_done"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s == "pull" || s == "disable-restart" || s == "create-data-container");
    std::fs::write(&state_file, state.to_string()).unwrap();

    let before = fake.mutating_calls().len();
    let output = fake.command().args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let resumed: Vec<String> = fake.mutating_calls()[before..]
        .iter()
        .map(|c| c[0].clone())
        .collect();
    assert_eq!(resumed, ["stop", "start", "rm"], "{stderr}");
}

// ---------------------------------------------------------- an external database --

/// An upgrade of `rancher` to v1.6.20 with its backup: for an external database, its dump.
fn upgrade_with_backup(health_url: &str) -> Vec<String> {
    let mut args = upgrade_args(health_url);
    args.retain(|a| a != "--no-backup");
    args
}

/// Runs the upgrade with its backup, which fails: what the tool printed.
fn failed_upgrade_with_backup(fake: &FakeDocker) -> String {
    let output = fake
        .command()
        .args(upgrade_with_backup(&pong_server()))
        .arg("--yes")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    stderr
}

/// The old server runs under its name, on its image.
fn assert_old_server_runs(fake: &FakeDocker) {
    let old = fake.container("rancher");
    assert_eq!(
        old["Config"]["Image"],
        "127.0.0.1:5599/rancher/server:v1.6.10"
    );
    assert_eq!(old["State"]["Running"], true);
}

/// Where in the docker calls the first one that starts with `words` is.
fn position_of(calls: &[Vec<String>], words: &[&str]) -> usize {
    calls
        .iter()
        .position(|c| c.starts_with(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>()))
        .unwrap_or_else(|| panic!("no {words:?} in {calls:?}"))
}

/// The docker call that runs the database client `program`, where it is in `calls`.
fn client_call(calls: &[Vec<String>], program: &str) -> usize {
    calls
        .iter()
        .position(|c| c[0] == "run" && c.windows(2).any(|w| w == ["--entrypoint", program]))
        .unwrap_or_else(|| panic!("no {program} in {calls:?}"))
}

fn sha256_of(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

#[test]
fn an_external_database_is_dumped_after_the_stop_and_before_the_start_and_recorded() {
    use std::os::unix::fs::PermissionsExt;
    for fixture in ["external-flags", "external-env"] {
        let fake = FakeDocker::new(fixture);
        let args = upgrade_with_backup(&pong_server());
        let planned = planned_commands(&fake, &args);
        fake.command().args(&args).arg("--yes").assert().success();
        let calls = fake.mutating_calls();
        assert_eq!(calls, planned, "{fixture}");
        let dump = client_call(&calls, "mysqldump");
        assert!(
            position_of(&calls, &["stop"]) < dump && dump < position_of(&calls, &["start"]),
            "{fixture}: {calls:?}"
        );

        let files = fake.work_files();
        let archive = files
            .iter()
            .find(|f| f.starts_with("rancher-db-backup-v1.6.10-") && f.ends_with(".sql.zst"))
            .unwrap_or_else(|| panic!("{fixture}: no dump in {files:?}"));
        let path = fake.work_dir().join(archive);
        let checksum = fake.work_dir().join(format!("{archive}.sha256"));
        for file in [&path, &checksum] {
            let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
        }
        let checked = std::process::Command::new("sha256sum")
            .arg("-c")
            .arg(&checksum)
            .current_dir(fake.work_dir())
            .output()
            .unwrap();
        assert!(checked.status.success(), "{checked:?}");
        let sql = std::process::Command::new("zstd")
            .args(["-q", "-dc"])
            .arg(&path)
            .output()
            .unwrap()
            .stdout;
        assert_eq!(
            fake.database_clients(),
            [("mysqldump".to_string(), sha256_of(&sql))],
            "{fixture}: the archive holds the dump the database gave"
        );
        assert!(
            String::from_utf8_lossy(&sql)
                .trim_end()
                .lines()
                .last()
                .unwrap()
                .starts_with("-- Dump completed")
        );

        let state: Value = serde_json::from_str(
            &std::fs::read_to_string(fake.work_dir().join("rancher-upgrade-rancher.state.json"))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(state["backup_archive"], path.to_str().unwrap(), "{fixture}");
        let summary = &state["backup_summary"];
        assert_eq!(summary["entries"], 1, "{fixture}: one table, `setting`");
        assert_eq!(summary["content_bytes"], sql.len(), "{fixture}");
        assert_eq!(
            summary["archive_bytes"],
            std::fs::metadata(&path).unwrap().len(),
            "{fixture}"
        );
    }
}

#[test]
fn a_dump_cut_short_is_no_backup_and_the_old_server_answers_again() {
    let mut fake = FakeDocker::new("external-flags");
    fake.set_env("FAKE_DOCKER_DUMP_CUT", "1");
    let stderr = failed_upgrade_with_backup(&fake);
    let failed = stderr
        .lines()
        .find(|l| {
            l.starts_with(
                "Stopped. Step 6/9 failed (Back up the database cattle on db.example:3306 to ",
            )
        })
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        failed.contains("exit status: 0"),
        "docker said nothing: {failed}"
    );
    assert!(
        stderr.contains("rancher-upgrade: the dump ends without mysqldump's last line (`-- Dump completed on ...`): it was cut short"),
        "{stderr}"
    );
    assert!(stderr.contains("Rolled back."), "{stderr}");
    assert!(
        !fake
            .work_files()
            .iter()
            .any(|f| f.ends_with(".sql.zst") || f.ends_with(".sha256")),
        "{:?}",
        fake.work_files()
    );
    let calls = fake.mutating_calls();
    assert!(
        !calls.contains(&vec!["start".to_string(), "rancher".to_string()]),
        "the new version never ran: {calls:?}"
    );
    assert_old_server_runs(&fake);
}

#[test]
fn a_new_version_that_dies_gets_the_dump_back_before_the_old_server_starts() {
    let mut fake = FakeDocker::new("external-env");
    fake.set_env("FAKE_DOCKER_RUN_EXITS", "3");
    let stderr = failed_upgrade_with_backup(&fake);
    assert!(
        stderr.contains("Restore the database cattle from rancher-db-backup-v1.6.10-"),
        "{stderr}"
    );
    assert!(
        stderr.contains("; rolled back to v1.6.10, data restored from ")
            && stderr.contains(".sql.zst."),
        "{stderr}"
    );
    let served = fake.database_clients();
    assert_eq!(
        served
            .iter()
            .map(|(client, _)| client.as_str())
            .collect::<Vec<_>>(),
        ["mysqldump", "mysql"]
    );
    assert_eq!(served[0].1, served[1].1, "the very dump went back");
    let calls = fake.mutating_calls();
    assert!(
        client_call(&calls, "mysql") < position_of(&calls, &["start", "rancher-v1.6.10"]),
        "the restore runs before the old server starts: {calls:?}"
    );
    assert_old_server_runs(&fake);
}

#[test]
fn a_resumed_external_database_upgrade_dumps_the_database_once() {
    let mut fake = FakeDocker::new("external-flags");
    let mut args = upgrade_with_backup(&pong_server());
    args.push("--yes".into());
    // Ctrl-C twice during the new server's start: the dump was written whole before it.
    fake.stop_halfway_at("start", &args);
    assert_eq!(fake.database_clients().len(), 1);

    let before = fake.mutating_calls().len();
    let output = fake.command().args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("Back up the database cattle on db.example:3306 to ")
            && stderr.contains("(skipped: done by the run of "),
        "{stderr}"
    );
    let resumed: Vec<String> = fake.mutating_calls()[before..]
        .iter()
        .map(|c| c[0].clone())
        .collect();
    assert_eq!(resumed, ["start", "rm"], "{stderr}");
    assert_eq!(fake.database_clients().len(), 1, "no second dump");
}
