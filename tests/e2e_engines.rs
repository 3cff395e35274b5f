//! End-to-end tests on the engines that are not this machine's dockerd, where nothing may
//! assume that the engine shares the tool's filesystem or network:
//!
//! - the test bed's other host, through its unix socket (`DOCKER_HOST=unix://…`): its own
//!   network namespace (it publishes ports on 10.231.0.11, not on this machine's 127.0.0.1)
//!   and its own /tmp and /srv (the tool's `--backup-dir` does not exist there);
//! - the same host over ssh (`DOCKER_HOST=ssh://root@…`);
//! - rootful podman on this machine (`--docker podman`).
//!
//! On each: an upgrade keeps the data, the crashing release rolls back with the restore,
//! `rollback` after a good upgrade, Ctrl-C going back by itself, a resume after Ctrl-C pressed
//! twice, and the removal of a one-shot container a cut-off run left. On the other host also the
//! decoy: a `pong` answered on this machine's 127.0.0.1 at the server's port must not make a
//! crashed upgrade there look healthy. On podman also: an `always` server kept down by its
//! removal (through a reboot, on the way back, and in runs killed around the removal), a
//! container in storage alone that holds a name, and a crash-looping new server that its
//! restart policy starts again right after the way back's stop.
//!
//! Without the engines every test prints a skip line and passes, unless `REQUIRE_DOCKER=1`.

#[allow(dead_code)] // this binary uses only part of the harness
#[macro_use]
#[path = "e2e/engine.rs"]
mod engine;

use engine::{
    PROBE_FILE, Scope, TestEngine, archives, assert_upgraded, inspect, is_running, record_before,
    server_options, state, text,
};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};

/// Every scenario on every engine it runs on: one test each, named `SCENARIO_on_ENGINE`.
macro_rules! on_engines {
    ($scenario:ident: $($test:ident => $engine:expr),+ $(,)?) => {
        $(
            #[test]
            fn $test() {
                $scenario(stringify!($test), $engine);
            }
        )+
    };
}

// --------------------------------------------------------------------- scenarios --

/// The upgrade finishes on the data of the old server, and its backup is a file on this
/// machine that `sha256sum -c` accepts: the engine streamed it here.
fn upgrade_keeps_the_data(test: &str, engine: TestEngine) {
    let scope = scope!(&short(test), engine);
    let server = scope.start_server("v1.6.10", server_options());
    let before = record_before(&scope, &server);
    let started = Instant::now();
    scope.upgrade("v1.6.20", &[]).expect_code(0);
    eprintln!(
        "{test}: upgrade on {engine:?} took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_upgraded(&scope, &server, &before, "v1.6.20", "20");
    assert_checksum_holds(&archives(&scope)[0]);
}

/// The crashing release migrates and dies: the tool restores the archive through the engine
/// and the old release answers on the data from before, under its own name.
fn crash_rolls_back_with_the_restore(test: &str, engine: TestEngine) {
    let scope = scope!(&short(test), engine);
    let server = scope.start_server("v1.6.10", server_options());
    let before = record_before(&scope, &server);
    scope
        .upgrade("v1.6.31-crash", &[])
        .expect_code(1)
        .expect_mention(&["Rolled back", "data restored from"]);
    assert_old_release_answers(&scope, &server, &before);
    assert_eq!(text(&state(&scope), "/status"), "rolled-back");
}

/// `rollback` after a good upgrade brings the old release back on the backup's data; what the
/// new release wrote since is gone.
fn rollback_after_a_good_upgrade(test: &str, engine: TestEngine) {
    let scope = scope!(&short(test), engine);
    let server = scope.start_server("v1.6.10", server_options());
    let before = record_before(&scope, &server);
    scope.upgrade("v1.6.20", &[]).expect_code(0);
    server.write_data("cattle/after.txt", "written under v1.6.20\n");
    scope.rollback(&[]).expect_code(0);
    engine::assert_back_on_the_data_from_before(&server, &before);
}

/// Ctrl-C once the old server has stopped: the tool lets the running command finish and goes
/// back to the old server by itself (exit 130).
fn ctrl_c_goes_back_by_itself(test: &str, engine: TestEngine) {
    let scope = scope!(&short(test), engine);
    let server = scope.start_server("v1.6.10", server_options());
    let before = record_before(&scope, &server);
    let (args, transcript) = scope.upgrade_args("v1.6.20", &[]);
    let mut running = scope.spawn_tool(&args, Some(&transcript));
    let deadline = Instant::now() + Duration::from_secs(90);
    // By id: the old server may already be parked under another name.
    while inspect(&before.id).is_none_or(|c| is_running(&c)) {
        assert!(
            running.is_running() && Instant::now() < deadline,
            "the old server was not seen stopped"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = Command::new("kill")
        .args(["-INT", &running.pid().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill -INT failed");
    running
        .wait()
        .expect_code(130)
        .expect_mention(&["Interrupted at step", "Rolled back."]);
    scope.remember_volumes();
    assert_old_release_answers(&scope, &server, &before);
    assert_eq!(text(&state(&scope), "/status"), "rolled-back");
}

/// Ctrl-C twice once the old server is parked (during the stop or the backup): the tool leaves
/// at once; the same command again resumes and finishes.
fn resume_after_ctrl_c_twice(test: &str, engine: TestEngine) {
    let scope = scope!(&short(test), engine);
    let server = scope.start_server("v1.6.10", server_options());
    let before = record_before(&scope, &server);
    let (args, transcript) = scope.upgrade_args("v1.6.20", &[]);
    let parked = format!("{}-v1.6.10", scope.server_name());
    scope
        .stop_halfway(&args, Some(&transcript), || engine::exists(&parked))
        .expect_mention(&["NOT BACK:"]);
    assert_eq!(text(&state(&scope), "/status"), "stopped");
    scope
        .spawn_tool(&args, Some(&transcript))
        .wait()
        .expect_code(0)
        .expect_mention(&["Resuming the upgrade"]);
    scope.remember_volumes();
    assert_upgraded(&scope, &server, &before, "v1.6.20", "20");
}

/// A run cut off while a one-shot container was starting left it "Created" on the server's
/// data volumes (podman removes a `--rm` container only after a start). The next upgrade
/// removes it first; a one-shot left for another server stays.
fn a_one_shot_an_earlier_run_left_is_removed(test: &str, engine: TestEngine) {
    let scope = scope!(&short(test), engine);
    let server = scope.start_server("v1.6.10", server_options());
    let before = record_before(&scope, &server);
    let name = scope.server_name();
    let left_for = |server_name: &str, container: &str, holding: &str| {
        engine::docker_ok(&[
            "create",
            "--name",
            container,
            "--label",
            &format!("rancher-upgrade.one-shot-for={server_name}"),
            "--volumes-from",
            holding,
            "--entrypoint",
            "tar",
            &engine::image("v1.6.10"),
            "-cf",
            "-",
            "var/lib/mysql",
        ]);
    };
    let ours = format!("{name}-left");
    let theirs = format!("{name}-other-left");
    left_for(&name, &ours, &name);
    left_for(&format!("{name}-other"), &theirs, &name);
    scope
        .upgrade("v1.6.20", &[])
        .expect_code(0)
        .expect_mention(&["Remove 1 container an earlier run left"]);
    assert!(!engine::exists(&ours), "{ours} is left");
    assert!(
        engine::exists(&theirs),
        "the other server's one-shot was removed"
    );
    engine::docker_ok(&["rm", &theirs]);
    assert_upgraded(&scope, &server, &before, "v1.6.20", "20");
}

/// A server whose policy is `always`, on podman, which can't change a policy and whose
/// podman-restart.service starts every `always` container at boot. A "reboot" (that service's
/// own command) just before the new server's start must not start the stopped old server: it is
/// gone by then, its volumes kept.
fn an_always_server_stays_down_through_a_reboot_mid_upgrade(test: &str, engine: TestEngine) {
    let scope = scope!(&short(test), engine);
    let server = scope.start_server("v1.6.10", always_server_options());
    let before = record_before(&scope, &server);
    let rebooted = scope.dir().join("reboot.log");
    let wrapper = engine::write_script(
        &scope,
        "podman-rebooting-before-the-new-server-starts",
        &format!(
            "if [ \"$1 $2\" = 'start {name}' ] && [ ! -e {log} ]; then\n  {podman} start --all --filter restart-policy=always > {log} 2>&1\nfi\nexec {podman} \"$@\"\n",
            name = scope.server_name(),
            log = engine::sh_quote(&rebooted),
            podman = engine.program(),
        ),
    );
    let (args, transcript) = scope.upgrade_args("v1.6.20", &[]);
    let args = with_docker(args, &wrapper);
    scope
        .spawn_tool(&args, Some(&transcript))
        .wait()
        .expect_code(0);
    let started = std::fs::read_to_string(&rebooted).expect("the reboot ran");
    let parked = format!("{}-v1.6.10", scope.server_name());
    assert!(
        !started.contains(&parked) && !started.contains(&before.id[..12]),
        "the reboot started the old server: {started}"
    );
    let new = server.inspect();
    assert_ne!(text(&new, "/Id"), before.id);
    assert_eq!(text(&new, "/HostConfig/RestartPolicy/Name"), "always");
    assert_eq!(server.version(), "v1.6.20");
    assert_eq!(server.schema(), "20");
    assert_eq!(
        server.read_data(PROBE_FILE).as_deref(),
        Some(before.probe.as_str())
    );
    assert!(!engine::exists(&parked), "{parked} is left");
}

/// The crashing release dies after the old `always` server was removed: the way back makes it
/// again under its parked name with its policy, restores the data and gives it its name back.
fn the_way_back_makes_a_removed_always_server_again(test: &str, engine: TestEngine) {
    let scope = scope!(&short(test), engine);
    let server = scope.start_server("v1.6.10", always_server_options());
    let before = record_before(&scope, &server);
    scope
        .upgrade("v1.6.31-crash", &[])
        .expect_code(1)
        .expect_mention(&["Rolled back"]);
    let old = server.inspect();
    assert_ne!(text(&old, "/Id"), before.id, "made again, so a new id");
    assert_eq!(text(&old, "/HostConfig/RestartPolicy/Name"), "always");
    engine::assert_back_on_the_data_from_before(&server, &before);
    assert_eq!(text(&state(&scope), "/status"), "rolled-back");
}

/// Podman's restart policy starts the crash-looping new server again right after the way
/// back's stop returned (measured: a plain `rm` then found it running in 7 of 40 tries with
/// `unless-stopped`); a wrapper makes that moment happen every time. The removal still takes
/// it, and the old server comes back on the data from before.
fn the_way_back_removes_a_new_server_its_policy_started_again_after_the_stop(
    test: &str,
    engine: TestEngine,
) {
    let scope = scope!(&short(test), engine);
    let server = scope.start_server("v1.6.10", server_options());
    let before = record_before(&scope, &server);
    let restarted = scope.dir().join("restarted.log");
    let wrapper = engine::write_script(
        &scope,
        "podman-restarting-after-the-stop",
        &format!(
            "{podman} \"$@\" || exit\nif [ \"$1 $4\" = 'stop {name}' ] && [ ! -e {log} ]; then\n  {podman} start {name} > {log} 2>&1\nfi\n",
            name = scope.server_name(),
            log = engine::sh_quote(&restarted),
            podman = engine.program(),
        ),
    );
    let (args, transcript) = scope.upgrade_args("v1.6.31-crash", &[]);
    scope
        .spawn_tool(&with_docker(args, &wrapper), Some(&transcript))
        .wait()
        .expect_code(1)
        .expect_mention(&["Rolled back", "data restored from"]);
    // `podman start` names the container it started.
    let started = std::fs::read_to_string(&restarted).expect("the wrapper's start ran");
    assert_eq!(started.trim(), scope.server_name(), "{started}");
    assert_old_release_answers(&scope, &server, &before);
}

/// The tool is killed after it removed the stopped `always` server and created the new one,
/// as it starts it. The same command can't resume without the old container: it says so in one
/// line and changes nothing; `rollback` makes the old server again from the record.
fn a_run_killed_after_the_removal_is_refused_and_rollback_makes_the_old_server_again(
    test: &str,
    engine: TestEngine,
) {
    let scope = scope!(&short(test), engine);
    let server = scope.start_server("v1.6.10", always_server_options());
    let before = record_before(&scope, &server);
    let (args, transcript) = scope.upgrade_args("v1.6.20", &[]);
    kill_the_tool_at(
        &scope,
        engine,
        &args,
        &format!("start {}", scope.server_name()),
    );
    let parked = format!("{}-v1.6.10", scope.server_name());
    assert!(!engine::exists(&parked), "{parked} was not removed");

    let containers = scope.container_names();
    let refused = scope.spawn_tool(&args, Some(&transcript)).wait();
    refused.expect_code(2);
    let said = refused.stderr.trim();
    assert_eq!(said.lines().count(), 1, "one line: {said}");
    for needle in ["to keep it down after a reboot", "rancher-upgrade rollback"] {
        assert!(said.contains(needle), "{needle}: {said}");
    }
    assert_eq!(
        scope.container_names(),
        containers,
        "the refusal changed nothing"
    );
    let mut status = vec!["status".to_string()];
    status.extend(engine.tool_args());
    status.extend([
        "--container".into(),
        scope.server_name(),
        "--backup-dir".into(),
        scope.subdir("backups").display().to_string(),
        "--format".into(),
        "json".into(),
    ]);
    let reported = scope.spawn_tool(&status, None).wait();
    reported.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&reported.stdout).expect("status JSON");
    assert!(
        text(&report, "/upgrades/0/next/command").starts_with("rancher-upgrade rollback "),
        "status names the way on: {report:#}"
    );

    scope.rollback(&[]).expect_code(0);
    let old = server.inspect();
    assert_eq!(text(&old, "/HostConfig/RestartPolicy/Name"), "always");
    assert_ne!(text(&old, "/Id"), before.id, "made again, so a new id");
    engine::assert_back_on_the_data_from_before(&server, &before);
}

/// The tool is killed after it created the new server, as it removes the stopped `always` one:
/// both containers are there, both down. The same command resumes and finishes.
fn a_run_killed_before_the_removal_resumes(test: &str, engine: TestEngine) {
    let scope = scope!(&short(test), engine);
    let server = scope.start_server("v1.6.10", always_server_options());
    let before = record_before(&scope, &server);
    let (args, transcript) = scope.upgrade_args("v1.6.20", &[]);
    let parked = format!("{}-v1.6.10", scope.server_name());
    kill_the_tool_at(&scope, engine, &args, &format!("rm {parked}"));
    assert!(engine::exists(&parked), "{parked} was removed");
    scope
        .spawn_tool(&args, Some(&transcript))
        .wait()
        .expect_code(0)
        .expect_mention(&["Resuming the upgrade"]);
    let new = server.inspect();
    assert_ne!(text(&new, "/Id"), before.id);
    assert_eq!(text(&new, "/HostConfig/RestartPolicy/Name"), "always");
    assert_eq!(server.version(), "v1.6.20");
    assert_eq!(
        server.read_data(PROBE_FILE).as_deref(),
        Some(before.probe.as_str())
    );
    assert!(!engine::exists(&parked), "{parked} is left");
}

/// A container in podman's storage alone holds the data container's name, as a `podman create`
/// killed halfway leaves one (made here with `buildah from`): `inspect` and `ps` don't see it,
/// and the create of the data container would fail on it. The upgrade removes it first.
fn a_container_in_storage_alone_that_holds_a_name_is_removed(test: &str, engine: TestEngine) {
    let scope = scope!(&short(test), engine);
    let server = scope.start_server("v1.6.10", server_options());
    let before = record_before(&scope, &server);
    let made = Command::new("buildah")
        .args([
            "from",
            "--name",
            &scope.data_name(),
            &engine::image("v1.6.10"),
        ])
        .output()
        .expect("buildah");
    assert!(made.status.success(), "buildah from: {made:?}");
    scope
        .upgrade("v1.6.20", &[])
        .expect_code(0)
        .expect_mention(&["Remove 1 container an earlier run left"]);
    assert_upgraded(&scope, &server, &before, "v1.6.20", "20");
}

/// Something on this machine answers `pong` at 127.0.0.1:PORT, the port the server publishes
/// on its own host. The crashing release there must still fail and roll back.
fn a_pong_on_this_machine_is_not_the_remote_server(test: &str, engine: TestEngine) {
    let scope = scope!(&short(test), engine);
    let server = scope.start_server("v1.6.10", server_options());
    let before = record_before(&scope, &server);
    let decoy = Decoy::answer_pong_on(server.port);
    scope
        .upgrade("v1.6.31-crash", &[])
        .expect_code(1)
        .expect_mention(&["Rolled back"]);
    assert!(
        decoy.requests() == 0,
        "the tool asked this machine's 127.0.0.1:{} for the remote server's /ping",
        server.port
    );
    assert_old_release_answers(&scope, &server, &before);
}

on_engines!(upgrade_keeps_the_data:
    upgrade_keeps_the_data_on_another_host_by_unix_socket => TestEngine::HostUnix,
    upgrade_keeps_the_data_on_another_host_over_ssh => TestEngine::HostSsh,
    upgrade_keeps_the_data_on_podman => TestEngine::Podman,
);
on_engines!(crash_rolls_back_with_the_restore:
    crash_rolls_back_with_the_restore_on_another_host_by_unix_socket => TestEngine::HostUnix,
    crash_rolls_back_with_the_restore_on_another_host_over_ssh => TestEngine::HostSsh,
    crash_rolls_back_with_the_restore_on_podman => TestEngine::Podman,
);
on_engines!(rollback_after_a_good_upgrade:
    rollback_after_a_good_upgrade_on_another_host_by_unix_socket => TestEngine::HostUnix,
    rollback_after_a_good_upgrade_on_another_host_over_ssh => TestEngine::HostSsh,
    rollback_after_a_good_upgrade_on_podman => TestEngine::Podman,
);
on_engines!(ctrl_c_goes_back_by_itself:
    ctrl_c_goes_back_by_itself_on_another_host_by_unix_socket => TestEngine::HostUnix,
    ctrl_c_goes_back_by_itself_on_another_host_over_ssh => TestEngine::HostSsh,
    ctrl_c_goes_back_by_itself_on_podman => TestEngine::Podman,
);
// On podman, the second Ctrl-C's SIGTERM lets a `podman create` finish (a SIGKILL left a
// container in podman's storage that held the name, 16 kills in 100). One that reaches
// `podman run --rm` between its create and its start leaves that one-shot "Created" on the data
// volumes: the resumed run removes it (a_one_shot_an_earlier_run_left_is_removed).
on_engines!(resume_after_ctrl_c_twice:
    resume_after_ctrl_c_twice_on_another_host_by_unix_socket => TestEngine::HostUnix,
    resume_after_ctrl_c_twice_on_another_host_over_ssh => TestEngine::HostSsh,
    resume_after_ctrl_c_twice_on_podman => TestEngine::Podman,
);
on_engines!(a_one_shot_an_earlier_run_left_is_removed:
    a_one_shot_an_earlier_run_left_is_removed_on_another_host_by_unix_socket => TestEngine::HostUnix,
    a_one_shot_an_earlier_run_left_is_removed_on_podman => TestEngine::Podman,
);
on_engines!(an_always_server_stays_down_through_a_reboot_mid_upgrade:
    an_always_server_stays_down_through_a_reboot_mid_upgrade_on_podman => TestEngine::Podman,
);
on_engines!(the_way_back_makes_a_removed_always_server_again:
    the_way_back_makes_a_removed_always_server_again_on_podman => TestEngine::Podman,
);
on_engines!(the_way_back_removes_a_new_server_its_policy_started_again_after_the_stop:
    the_way_back_removes_a_new_server_its_policy_started_again_after_the_stop_on_podman => TestEngine::Podman,
);
on_engines!(a_run_killed_after_the_removal_is_refused_and_rollback_makes_the_old_server_again:
    a_run_killed_after_the_removal_is_refused_and_rollback_makes_the_old_server_again_on_podman => TestEngine::Podman,
);
on_engines!(a_run_killed_before_the_removal_resumes:
    a_run_killed_before_the_removal_resumes_on_podman => TestEngine::Podman,
);
on_engines!(a_container_in_storage_alone_that_holds_a_name_is_removed:
    a_container_in_storage_alone_that_holds_a_name_is_removed_on_podman => TestEngine::Podman,
);
on_engines!(a_pong_on_this_machine_is_not_the_remote_server:
    a_pong_on_this_machine_is_not_the_remote_server_by_unix_socket => TestEngine::HostUnix,
    a_pong_on_this_machine_is_not_the_remote_server_over_ssh => TestEngine::HostSsh,
);

// ----------------------------------------------------------------------- helpers --

/// The usual test server, with restart policy `always`.
fn always_server_options() -> engine::ServerOptions {
    engine::ServerOptions {
        restart: Some("always".into()),
        ..server_options()
    }
}

/// Runs the tool with `args` through a wrapper of the engine that kills it (SIGKILL, as a
/// closed terminal would) when it runs the command that starts with `words`.
fn kill_the_tool_at(scope: &Scope, engine: TestEngine, args: &[String], words: &str) {
    let wrapper = engine::write_script(
        scope,
        "engine-killing-the-tool",
        &format!(
            "case \"$*\" in\n  {pattern}) kill -KILL $PPID; exit 1;;\nesac\nexec {program} \"$@\"\n",
            pattern = engine::sh_quote(std::path::Path::new(words)).to_string() + "*",
            program = engine.program(),
        ),
    );
    let killed = scope
        .spawn_tool(&with_docker(args.to_vec(), &wrapper), None)
        .wait();
    assert_eq!(killed.code, None, "the tool was not killed at `{words}`");
}

/// `args` with the engine's binary replaced by `wrapper`.
fn with_docker(mut args: Vec<String>, wrapper: &std::path::Path) -> Vec<String> {
    let at = args
        .iter()
        .position(|a| a == "--docker")
        .expect("the engine's --docker");
    args[at + 1] = wrapper.display().to_string();
    args
}

/// A scope name from a test name: the scenario's initials and the engine, short enough for
/// container names.
fn short(test: &str) -> String {
    test.split('_').filter_map(|w| w.chars().next()).collect()
}

/// The old container is back under its name and policy, answering on the release and the
/// data from before the upgrade.
fn assert_old_release_answers(scope: &Scope, server: &engine::Server, before: &engine::Before) {
    let old = server.inspect();
    assert_eq!(text(&old, "/Id"), before.id, "the old container is back");
    assert_eq!(
        text(&old, "/HostConfig/RestartPolicy/Name"),
        "unless-stopped",
        "{}",
        scope.server_name()
    );
    engine::assert_back_on_the_data_from_before(server, before);
}

fn assert_checksum_holds(archive: &std::path::Path) {
    let checked = Command::new("sha256sum")
        .arg("-c")
        .arg(format!("{}.sha256", archive.display()))
        .current_dir(archive.parent().expect("the archive's directory"))
        .output()
        .expect("sha256sum");
    assert!(
        checked.status.success(),
        "sha256sum -c {}: {checked:?}",
        archive.display()
    );
}

/// An HTTP server on this machine's 127.0.0.1:PORT that answers `pong` to everything, and
/// counts what it was asked.
struct Decoy {
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Decoy {
    fn answer_pong_on(port: u16) -> Decoy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .unwrap_or_else(|e| panic!("the decoy can't listen on 127.0.0.1:{port}: {e}"));
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\npong\n",
                );
            }
        });
        Decoy { requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}
