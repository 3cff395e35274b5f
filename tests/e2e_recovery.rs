//! End-to-end recovery tests on the real docker engine: an upgrade cut short (a failed step, a
//! real Ctrl-C) and run again, the backup archive putting files back byte for byte after a
//! crashing release, a registry that is down at the pull, and a docker daemon restarted between
//! stopping the old server and starting the new one.
//!
//! None of them disrupts the shared engine or the test bed, so they take no lock and run in
//! parallel like the tests of `tests/e2e.rs`: the registry that goes down is one the test
//! starts for itself (the test bed's registry stays up), and the daemon that restarts is a
//! private `dockerd` the test starts beside the shared one, with its own data root, exec root,
//! socket and bridge, reached through `DOCKER_HOST`. Killing the shared dockerd would stop
//! every container of everyone else on the engine. Every private process, tag, interface and
//! mount is removed by a guard, also when the test fails.
//!
//! Without an engine every test prints a skip line and passes, unless `REQUIRE_DOCKER=1`.

#[allow(dead_code)] // this binary uses only part of the harness
#[macro_use]
#[path = "e2e/engine.rs"]
mod engine;

use engine::{
    DATA_PATHS, PROBE_FILE, Scope, archives, assert_upgraded, backups, count, data_mounts, docker,
    docker_failing_once, docker_ok, find_on_path, free_port, http_get, inspect, is_running,
    real_docker, record_before, server_options, sh_quote, state, strings, text, way_back_commands,
    write_script,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ helpers --

/// `upgrade --to TO` through [`docker_failing_once`]: it stops at that `docker VERB` with
/// exit 1 and the wrapper's message.
fn upgrade_failing_once(scope: &Scope, to: &str, verb: &str) -> engine::Run {
    let wrapper = docker_failing_once(scope, verb);
    let run = scope.upgrade(to, &["--docker", &wrapper.display().to_string()]);
    run.expect_code(1)
        .expect_mention(&[&format!("docker {verb} refused once")]);
    run
}

fn on_path(program: &str) -> bool {
    find_on_path(program).is_some()
}

/// Whether the test has what it needs beyond the engine (`missing` says what it lacks): else
/// a skip line, or a failure with REQUIRE_DOCKER=1, as for the engine itself.
fn has_what_it_needs(test: &str, missing: Option<String>) -> bool {
    let Some(why) = missing else {
        return true;
    };
    if std::env::var("REQUIRE_DOCKER").is_ok_and(|v| v.trim() == "1") {
        panic!("REQUIRE_DOCKER=1, but {why} (scripts/testbed.sh sets the test bed up, as root)");
    }
    eprintln!("SKIPPED e2e test {test}: {why} (set REQUIRE_DOCKER=1 to make this a failure)");
    false
}

// ------------------------------------------------------- 1. resume the upgrade --

/// Scenario 1a: a step fails (the engine refuses `docker VERB` once): the backup after the stop,
/// the data container, or the stop itself. The tool returns to the old server by itself: under
/// its own name, with its restart policy, answering on its data; the record says so and is not
/// resumable. The same command again upgrades, reusing the data container it made.
fn a_failing_step_returns_to_the_old_server_then_the_same_command_upgrades(test: &str, verb: &str) {
    let scope = scope!(test);
    let server = scope.start_server("v1.6.10", server_options());
    let before = record_before(&scope, &server);

    upgrade_failing_once(&scope, "v1.6.20", verb).expect_mention(&["Rolled back."]);
    let old = server.inspect();
    assert_eq!(text(&old, "/Id"), before.id, "the old container is back");
    assert!(is_running(&old), "the old server runs again");
    assert_eq!(
        text(&old, "/HostConfig/RestartPolicy/Name"),
        "unless-stopped"
    );
    assert!(server.answers_ping(), "the old server answers");
    assert_eq!(
        server.read_data(PROBE_FILE).as_deref(),
        Some(before.probe.as_str())
    );
    assert!(archives(&scope).is_empty(), "no archive of a failed backup");
    assert_eq!(text(&state(&scope), "/status"), "rolled-back");

    let second = scope.upgrade("v1.6.20", &[]);
    second.expect_code(0);
    assert!(
        !second.stderr.contains("Resuming"),
        "a run that went back is not resumed:\n{}",
        second.output()
    );
    assert_upgraded(&scope, &server, &before, "v1.6.20", "20");
}

#[test]
fn the_backup_failing_after_the_stop_returns_to_the_old_server() {
    a_failing_step_returns_to_the_old_server_then_the_same_command_upgrades("backupfail", "cp");
}

#[test]
fn the_data_container_failing_returns_to_the_old_server() {
    a_failing_step_returns_to_the_old_server_then_the_same_command_upgrades("createfail", "create");
}

#[test]
fn the_stop_failing_returns_to_the_old_server() {
    a_failing_step_returns_to_the_old_server_then_the_same_command_upgrades("stopfail", "stop");
}

/// Scenario 1b: a real Ctrl-C pressed twice (SIGINT to the tool) once the old server has stopped:
/// the tool stops the running docker command and leaves at once, exit 130, without going back.
/// The very same command again finishes the upgrade, with one data container and one archive
/// over both runs.
#[test]
fn ctrl_c_twice_after_the_stop_then_the_same_command_resumes_and_finishes() {
    let scope = scope!("resumeint");
    let server = scope.start_server("v1.6.10", server_options());
    let before = record_before(&scope, &server);
    let (args, transcript) = scope.upgrade_args("v1.6.20", &[]);

    // By id: the old server may already be parked under another name.
    let first = scope.stop_halfway(&args, Some(&transcript), || {
        inspect(&before.id).is_some_and(|c| !is_running(&c))
    });
    first.expect_mention(&["Interrupted at step", "NOT BACK:"]);
    assert_eq!(text(&state(&scope), "/status"), "stopped");
    // The new container is created before the stop; it must not have started.
    assert!(
        inspect(&scope.server_name()).is_none_or(|c| text(&c, "/Id") == before.id
            || text(&c, "/State/StartedAt").starts_with("0001-01-01")),
        "the new server started although the run was interrupted:\n{}",
        first.output()
    );

    let second = scope.spawn_tool(&args, Some(&transcript)).wait();
    scope.remember_volumes();
    second
        .expect_code(0)
        .expect_mention(&["Resuming the upgrade"]);
    // The transcript holds both runs (the same --log, appended).
    let both = second.transcript.as_deref().unwrap_or_default();
    assert_eq!(
        count(
            both,
            &format!("$ docker create --name {} ", scope.data_name())
        ),
        1,
        "data containers created over both runs:\n{both}"
    );
    assert_upgraded(&scope, &server, &before, "v1.6.20", "20");
    let partial: Vec<_> = std::fs::read_dir(backups(&scope))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(
        partial.is_empty(),
        "a cut backup's partial file is left: {partial:?}"
    );
}

/// Scenario 1c: an upgrade stopped for good (Ctrl-C twice) before the backup: the resumed run
/// takes the backup. Its state file must name that archive, so that
/// `rollback` later restores it and brings the old release back on the data from before.
#[test]
fn rollback_after_a_resumed_upgrade_restores_the_backup_the_resumed_run_took() {
    let scope = scope!("resumeroll");
    let server = scope.start_server("v1.6.10", server_options());
    let before = record_before(&scope, &server);

    // Stopped for good (Ctrl-C twice) once the data container is made, before the stop.
    let (args, transcript) = scope.upgrade_args("v1.6.20", &[]);
    scope.stop_halfway(&args, Some(&transcript), || {
        engine::exists(&scope.data_name())
    });
    assert!(archives(&scope).is_empty(), "a backup before the failure");
    // An operator resumes minutes later; the archive is named by the UTC second.
    std::thread::sleep(Duration::from_millis(1100));

    scope
        .upgrade("v1.6.20", &[])
        .expect_code(0)
        .expect_mention(&["Resuming the upgrade"]);
    assert_upgraded(&scope, &server, &before, "v1.6.20", "20");
    let archive = archives(&scope).remove(0);
    assert_eq!(
        text(&state(&scope), "/backup_archive"),
        archive.display().to_string(),
        "the state file names another archive than the one on disk"
    );

    server.write_data("cattle/after.txt", "written under v1.6.20\n");
    let run = scope.rollback(&[]);
    run.expect_code(0);
    let old = server.inspect();
    assert_eq!(text(&old, "/Config/Image"), engine::image("v1.6.10"));
    engine::assert_back_on_the_data_from_before(&server, &before);
}

/// Scenario 1d: the first run is stopped for good before the backup; a second, resumed run a
/// second later takes the backup under the name the record gave it and starts `v1.6.31-crash`, which migrates
/// and dies. The automatic rollback restores that backup, the record names it, and the old
/// release answers on the data from before.
#[test]
fn resumed_upgrade_of_a_crashing_release_rolls_back_to_the_backup_it_took() {
    let scope = scope!("resumecrash");
    let server = scope.start_server("v1.6.10", server_options());
    let before = record_before(&scope, &server);

    // Stopped for good (Ctrl-C twice) once the data container is made, before the stop.
    let (args, transcript) = scope.upgrade_args("v1.6.31-crash", &[]);
    scope.stop_halfway(&args, Some(&transcript), || {
        engine::exists(&scope.data_name())
    });
    assert!(archives(&scope).is_empty(), "no backup before the stop");
    // An operator resumes later; the archive is named by the UTC second.
    std::thread::sleep(Duration::from_millis(1100));

    let run = scope.upgrade("v1.6.31-crash", &[]);
    run.expect_code(1)
        .expect_mention(&["Resuming the upgrade"])
        .expect_mention(&["Rolled back."]);
    assert!(
        !run.output().contains("rollback stopped"),
        "the rollback stopped:\n{}",
        run.output()
    );
    let taken = archives(&scope);
    assert_eq!(taken.len(), 1, "archives: {taken:?}");
    let recorded = state(&scope);
    assert!(
        std::path::Path::new(text(&recorded, "/backup_archive")) == taken[0],
        "the record names the archive taken: {} vs {taken:?}",
        text(&recorded, "/backup_archive")
    );
    assert_eq!(text(&server.inspect(), "/Id"), before.id);
    assert!(server.answers_ping(), "the old server is not back");
    assert_eq!(server.version(), "v1.6.10");
    assert_eq!(server.schema(), "10");
    assert_eq!(
        server.read_data(PROBE_FILE).as_deref(),
        Some(before.probe.as_str())
    );
}

// ------------------------------------------- 2. the archive restores the bytes --

/// Files written into the data volumes: (path, content, mode). Random bytes, a dotfile, a
/// `..` file (the restore's third glob), nested directories, names with spaces, an empty file.
fn seed_files() -> Vec<(&'static str, Vec<u8>, u32)> {
    let random = |len: usize| {
        let mut bytes = vec![0u8; len];
        std::io::Read::read_exact(
            &mut std::fs::File::open("/dev/urandom").expect("/dev/urandom"),
            &mut bytes,
        )
        .expect("reading /dev/urandom");
        bytes
    };
    vec![
        ("var/lib/mysql/ibdata1", random(256 * 1024), 0o660),
        ("var/lib/mysql/cattle/host.ibd", random(65_536 + 7), 0o660),
        (
            "var/lib/mysql/.my.cnf",
            b"[client]\nuser=cattle\n".to_vec(),
            0o600,
        ),
        ("var/lib/mysql/..double-dot", random(100), 0o644),
        (
            "var/lib/mysql/sub dir/deeper/file with space.bin",
            random(40_000),
            0o644,
        ),
        ("var/lib/mysql/empty", Vec::new(), 0o644),
        ("var/lib/cattle/.hidden-key", random(32), 0o600),
        (
            "var/lib/cattle/logs/name with  two spaces.txt",
            b"two  spaces\n".to_vec(),
            0o644,
        ),
        ("var/lib/cattle/nested/a/b/c.bin", random(10_000), 0o755),
        (
            "var/log/mysql/slow query.log",
            b"# Time: 2026-11-27T09:00:00Z\n".to_vec(),
            0o640,
        ),
    ]
}

/// Every entry under the data paths of a running container: `f MODE SHA256 PATH` for a
/// file, `d MODE PATH` for a directory, `l TARGET PATH` for a link; keyed by path.
fn tree(container: &str) -> BTreeMap<String, String> {
    let script = r#"cd / && find var/lib/mysql var/lib/cattle var/log/mysql | sort | while IFS= read -r p; do
  if [ -L "$p" ]; then echo "l $(readlink "$p") $p"
  elif [ -f "$p" ]; then echo "f $(stat -c %a "$p") $(sha256sum < "$p" | cut -d' ' -f1) $p"
  elif [ -d "$p" ]; then echo "d $(stat -c %a "$p") $p"
  else echo "? $p"
  fi
done"#;
    let out = docker(&["exec", container, "sh", "-c", script]);
    assert!(
        out.status.success(),
        "listing the data of {container}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let fields = match line.chars().next() {
                Some('f') => 3,
                Some('d' | 'l') => 2,
                _ => 1,
            };
            let path = line.splitn(fields + 1, ' ').nth(fields).unwrap_or_default();
            (path.to_string(), line.to_string())
        })
        .collect()
}

/// The sha256 of a host file, by the host's sha256sum.
fn host_sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Scenario 2: the new release migrates and dies (`v1.6.31-crash`); the tool rolls back by itself
/// and restores the archive. Every file under the data paths is then byte for byte (and mode for
/// mode) what it was before the upgrade, except the two the old release itself rewrites as it
/// starts again; the archive is private, lists with the host's tar, and holds the same bytes.
#[test]
fn crash_rollback_restores_every_file_byte_for_byte() {
    let scope = scope!("restorebytes");
    let server = scope.start_server("v1.6.10", server_options());
    let before_id = server.id();

    let seed = scope.subdir("seed");
    let files = seed_files();
    for (path, content, mode) in &files {
        let file = seed.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).expect("creating a seed directory");
        std::fs::write(&file, content).expect("writing a seed file");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(*mode))
            .expect("setting a seed file's mode");
    }
    for data in DATA_PATHS {
        let from = seed.join(data.trim_start_matches('/')).join(".");
        docker_ok(&[
            "cp",
            &from.display().to_string(),
            &format!("{}:{data}", server.name),
        ]);
    }
    let before = tree(&server.name);
    for (path, _, mode) in &files {
        let line = before
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is not in the volumes: {before:#?}"));
        let expected = format!("f {mode:o} {} {path}", host_sha256(&seed.join(path)));
        assert_eq!(line, &expected, "{path} as written");
    }
    let log_before = docker_ok(&["exec", &server.name, "cat", "/var/log/mysql/mysql.log"]);

    let run = scope.upgrade("v1.6.31-crash", &[]);
    run.expect_code(1).expect_mention(&["Rolled back"]);

    let old = server.inspect();
    assert_eq!(text(&old, "/Id"), before_id, "not the old container");
    assert!(server.answers_ping(), "the old server is not back");
    assert_eq!(server.version(), "v1.6.10");
    assert_eq!(server.schema(), "10");

    // The stand-in v1.6.10 rewrites exactly two files each time it starts: it appends a line
    // to /var/log/mysql/mysql.log and writes its version to /var/lib/cattle/server-version
    // (its schema_version stays: the schema is already 10). Those two are left out of the
    // byte-for-byte comparison and checked for what they must hold instead.
    const REWRITTEN_AT_START: [&str; 2] =
        ["var/log/mysql/mysql.log", "var/lib/cattle/server-version"];
    let after = tree(&server.name);
    let compared = |tree: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        tree.iter()
            .filter(|(path, _)| !REWRITTEN_AT_START.contains(&path.as_str()))
            .map(|(p, l)| (p.clone(), l.clone()))
            .collect()
    };
    assert_eq!(
        compared(&after),
        compared(&before),
        "the data after the rollback"
    );
    // The crashed release's start is gone from the log with the rest of its writes: the log is
    // the one from before, plus the line of the old release's start after the restore.
    let log_after = docker_ok(&["exec", &server.name, "cat", "/var/log/mysql/mysql.log"]);
    let appended = log_after
        .strip_prefix(log_before.as_str())
        .unwrap_or_else(|| panic!("mysql.log lost its lines:\n{log_before}\n---\n{log_after}"));
    let appended: Vec<&str> = appended.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(appended.len(), 1, "mysql.log gained {appended:?}");
    assert!(
        appended[0].contains("rancher v1.6.10 started"),
        "{appended:?}"
    );
    let version = docker_ok(&[
        "exec",
        &server.name,
        "cat",
        "/var/lib/cattle/server-version",
    ]);
    assert_eq!(version, "v1.6.10");

    // The archive: one, private, read by the host's tar (which finds zstd by itself), holding
    // the very bytes, and matching its checksum as sha256sum reads it.
    let found = archives(&scope);
    assert_eq!(found.len(), 1, "archives: {found:?}");
    let archive = &found[0];
    let mode = std::fs::metadata(archive).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode of {}", archive.display());
    let checked = Command::new("sha256sum")
        .arg("-c")
        .arg(format!("{}.sha256", archive.display()))
        .current_dir(archive.parent().unwrap())
        .output()
        .expect("sha256sum");
    assert!(checked.status.success(), "sha256sum -c: {checked:?}");
    let listed = Command::new("tar")
        .arg("-tf")
        .arg(archive)
        .output()
        .expect("tar");
    assert!(listed.status.success(), "tar -tf {}", archive.display());
    let listed = String::from_utf8_lossy(&listed.stdout);
    let unpacked = scope.subdir("unpacked");
    let extracted = Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .expect("tar");
    assert!(extracted.success(), "tar -xf {}", archive.display());
    for (path, content, _) in &files {
        assert!(
            listed.lines().any(|l| l == *path),
            "{path} is not in the archive:\n{listed}"
        );
        assert_eq!(
            &std::fs::read(unpacked.join(path)).expect("a file from the archive"),
            content,
            "{path} in the archive"
        );
    }
}

/// Scenario 2b: the archive can't be read when the rollback restores it (here it was moved away
/// while the crashing release ran). The restore must fail without touching the data volumes:
/// emptied, they would let the old release start on a fresh, empty database, which looks like
/// success.
#[test]

fn restore_that_cannot_read_its_archive_leaves_the_data_alone() {
    let scope = scope!("restoreunread");
    let server = scope.start_server("v1.6.10", server_options());
    let before = record_before(&scope, &server);
    let backup_dir = backups(&scope);
    let wrapper = write_script(
        &scope,
        "docker-losing-the-archive",
        &format!(
            "if [ \"$1\" = start ] && [ \"$2\" = {name} ]; then\n  for f in {dir}/*.tar.zst; do mv \"$f\" \"$f.moved\"; done\nfi\nexec {docker} \"$@\"\n",
            dir = sh_quote(&backup_dir),
            name = scope.server_name(),
            docker = sh_quote(&real_docker()),
        ),
    );

    let run = scope.upgrade(
        "v1.6.31-crash",
        &["--docker", &wrapper.display().to_string()],
    );
    run.expect_code(1).expect_mention(&["rollback stopped"]);
    assert!(
        archives(&scope).is_empty(),
        "the archive was not moved away"
    );

    let read = docker(&[
        "run",
        "--rm",
        "--volumes-from",
        &scope.data_name(),
        "--entrypoint",
        "cat",
        &engine::image("v1.6.10"),
        &format!("/var/lib/mysql/{PROBE_FILE}"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&read.stdout),
        before.probe,
        "the data volumes lost the data: {}\nthe tool said:\n{}",
        String::from_utf8_lossy(&read.stderr),
        run.output()
    );
}

// ------------------------------------------------ 3. the registry is down --

/// A `docker-registry` of the test's own on a free port of 127.0.0.1: the test bed's registry
/// stays up for everyone else. Its local tags go with it.
struct PrivateRegistry {
    child: Option<std::process::Child>,
    port: u16,
    tags: Vec<String>,
}

impl PrivateRegistry {
    fn start(scope: &Scope) -> PrivateRegistry {
        let dir = scope.subdir("registry");
        let port = free_port();
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("data").display()
            ),
        )
        .expect("writing the registry config");
        let log = std::fs::File::create(dir.join("registry.log")).expect("registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("registry log"))
            .stderr(log)
            .spawn()
            .expect("starting docker-registry (scripts/testbed.sh installs it)");
        let mut registry = PrivateRegistry {
            child: Some(child),
            port,
            tags: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !registry.answers() {
            let exited = registry
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= deadline {
                let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
                panic!(
                    "the test's registry on 127.0.0.1:{port} did not answer ({exited:?}):\n{log}"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    fn answers(&self) -> bool {
        http_get(self.port, "/v2/").is_some()
    }

    fn reference(&self, tag: &str) -> String {
        format!("127.0.0.1:{}/rancher/server:{tag}", self.port)
    }

    /// Tags `image` into this registry as `tag` and pushes it.
    fn push(&mut self, image: &str, tag: &str) {
        let reference = self.reference(tag);
        docker_ok(&["tag", image, &reference]);
        self.tags.push(reference.clone());
        docker_ok(&["push", &reference]);
    }

    /// Stops the registry process (SIGTERM, SIGKILL after 10 s) and waits for it.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for PrivateRegistry {
    fn drop(&mut self) {
        self.stop();
        for tag in &self.tags {
            // Only the tag goes: the image keeps the test bed's tags.
            let _ = docker(&["rmi", tag]);
        }
    }
}

/// Scenario 3: the registry is down when the upgrade pulls (and the target is not on the host):
/// exit 1 at the pull, and nothing changed: the old server runs on, untouched, on its data; no data
/// container, no rename, no image.
#[test]
fn registry_down_before_the_pull_fails_and_changes_nothing() {
    let scope = scope!("registrydown");
    let missing = (!on_path("docker-registry")).then(|| "no docker-registry on PATH".to_string());
    if !has_what_it_needs("registrydown", missing) {
        return;
    }
    let mut registry = PrivateRegistry::start(&scope);
    registry.push(&engine::image("v1.6.10"), "v1.6.10");
    registry.push(&engine::image("v1.6.20"), "v1.6.20");
    let server = scope.start_server_image(&registry.reference("v1.6.10"), server_options());
    let before = record_before(&scope, &server);

    registry.stop();
    assert!(!registry.answers(), "the registry still answers");
    let target = registry.reference("v1.6.20");
    docker_ok(&["rmi", &target]);
    let local = |reference: &str| docker(&["image", "inspect", reference]).status.success();
    assert!(!local(&target), "{target} is still on the host");
    let untouched = scope.snapshot();

    let run = scope.upgrade("v1.6.20", &[]);
    run.expect_code(1).expect_mention(&[&target]);
    run.expect_mention(&["Step 1/"]);
    assert!(
        run.stderr.contains(&format!("failed (Pull {target})")),
        "the pull is not the failed step:\n{}",
        run.output()
    );
    run.expect_mention(&["was not touched: it runs as before."]);

    let now = scope.snapshot();
    assert_eq!(untouched.containers, now.containers, "the containers");
    assert_eq!(untouched.volumes, now.volumes, "the volumes");
    assert_eq!(untouched.images, now.images, "the test bed's images");
    assert!(!local(&target), "{target} appeared on the host");
    assert_eq!(server.id(), before.id, "the old server was replaced");
    assert!(is_running(&server.inspect()), "the old server stopped");
    assert!(server.answers_ping(), "the old server does not answer");
    assert_eq!(server.version(), "v1.6.10");
    assert_eq!(server.schema(), "10");
    assert_eq!(
        server.read_data(PROBE_FILE).as_deref(),
        Some(before.probe.as_str())
    );
    assert_eq!(
        text(&server.inspect(), "/HostConfig/RestartPolicy/Name"),
        "unless-stopped"
    );
    assert_eq!(scope.container_names(), vec![scope.server_name()]);
    assert!(archives(&scope).is_empty(), "a backup was taken");
    // Nothing to resume: the record says the server was not touched.
    let recorded = state(&scope);
    assert_eq!(text(&recorded, "/status"), "untouched");
    assert_eq!(strings(&recorded, "/steps_done"), Vec::<String>::new());
}

// ------------------------------------------- 4. the daemon restarts midway --

/// A private docker daemon beside the shared one: its own data root, exec root, socket, pid
/// file and bridge, no iptables (ports are published by docker-proxy), reached with
/// `DOCKER_HOST`. Restarting it stops no one else's container. The guard removes its
/// containers, stops it, unmounts what it left, and deletes its bridge.
struct PrivateDaemon {
    dir: PathBuf,
    host: String,
    bridge: String,
    real_docker: PathBuf,
}

impl PrivateDaemon {
    /// The daemon, or None after a skip line (a failure with REQUIRE_DOCKER=1) when this host
    /// can't run a second dockerd.
    fn start_if_possible(scope: &Scope, test: &str) -> Option<PrivateDaemon> {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let missing = ["dockerd", "ip", "setsid"]
            .into_iter()
            .find(|program| !on_path(program))
            .map(|program| format!("no {program} on PATH for a private docker daemon"))
            .or_else(|| (!root).then(|| "a private docker daemon needs root".to_string()));
        has_what_it_needs(test, missing).then(|| PrivateDaemon::start(scope))
    }

    fn start(scope: &Scope) -> PrivateDaemon {
        // Daemons of one test binary run side by side: each gets its own bridge and subnet,
        // chosen and made under one lock so that two never pick the same free /24.
        static BRIDGES: std::sync::Mutex<u32> = std::sync::Mutex::new(0);
        let mut started = BRIDGES.lock().unwrap_or_else(|e| e.into_inner());
        *started += 1;
        let dir = scope.subdir("daemon");
        let bridge = format!("e2ebr{}x{}", std::process::id() % 1_000_000, *started);
        let daemon = PrivateDaemon {
            host: format!("unix://{}", dir.join("docker.sock").display()),
            dir,
            bridge,
            real_docker: real_docker(),
        };
        let subnet = free_subnet();
        // A bridge of this name is a leftover of an earlier run under the same pid.
        let _ = Command::new("ip")
            .args(["link", "del", &daemon.bridge])
            .output();
        for args in [
            vec!["link", "add", &daemon.bridge, "type", "bridge"],
            vec!["addr", "add", &subnet, "dev", &daemon.bridge],
            vec!["link", "set", &daemon.bridge, "up"],
        ] {
            let out = Command::new("ip").args(&args).output().expect("ip");
            assert!(
                out.status.success(),
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        drop(started);
        std::fs::write(daemon.dir.join("daemon.json"), "{}\n").expect("daemon.json");
        let d = |name: &str| sh_quote(&daemon.dir.join(name));
        std::fs::write(
            daemon.dir.join("start.sh"),
            format!(
                r#"( setsid nohup dockerd --config-file {config} --data-root {root} --exec-root {exec} --pidfile {pid} -H {host} --bridge {bridge} --iptables=false --ip-masq=false --ip-forward=false </dev/null >>{log} 2>&1 & )
# The socket accepts before the daemon serves, so each `docker info` gets its own timeout.
end=$(($(date +%s) + 30))
while [ "$(date +%s)" -lt "$end" ]; do
  DOCKER_HOST={host} timeout 5 {docker} info >/dev/null 2>&1 && exit 0
  sleep 0.1
done
echo "the private dockerd did not answer within 30 s" >&2
tail -n 20 {log} >&2
exit 1
"#,
                config = d("daemon.json"),
                root = d("root"),
                exec = d("x"),
                pid = d("dockerd.pid"),
                host = daemon.host,
                bridge = daemon.bridge,
                log = d("dockerd.log"),
                docker = sh_quote(&daemon.real_docker),
            ),
        )
        .expect("start.sh");
        // SIGTERM, as an init system stops it; SIGKILL after 30 s.
        std::fs::write(
            daemon.dir.join("stop.sh"),
            format!(
                r#"pid=$(cat {pid} 2>/dev/null) || exit 0
kill -TERM "$pid" 2>/dev/null || exit 0
i=0
while kill -0 "$pid" 2>/dev/null; do
  i=$((i + 1))
  if [ $i -eq 600 ]; then kill -KILL "$pid"; fi
  sleep 0.05
done
"#,
                pid = d("dockerd.pid"),
            ),
        )
        .expect("stop.sh");
        daemon.script("start.sh");
        daemon
    }

    /// Pulls `tags` from the test bed's registry, starts the scope's server on the first of them
    /// (unless-stopped, published on a free port, with an env and a label) and writes the probe
    /// file into its database volume. Returns the port and the probe's content.
    fn start_rancher(&self, scope: &Scope, tags: &[&str]) -> (u16, String) {
        for tag in tags {
            self.docker_ok(&["pull", "-q", &engine::image(tag)]);
        }
        let name = scope.server_name();
        let mut port = free_port();
        for attempt in 1.. {
            let published = format!("127.0.0.1:{port}:8080");
            let out = self.docker(&[
                "run",
                "-d",
                "--name",
                &name,
                "--restart=unless-stopped",
                "-p",
                &published,
                "-e",
                "GREETING=hello world",
                "--label",
                "team=ops",
                &engine::image(tags[0]),
            ]);
            if out.status.success() {
                break;
            }
            let why = String::from_utf8_lossy(&out.stderr);
            assert!(
                attempt < 5
                    && (why.contains("already in use") || why.contains("already allocated")),
                "starting {name} on the private daemon: {why}"
            );
            let _ = self.docker(&["rm", "-f", "-v", &name]);
            port = free_port();
        }
        assert!(
            engine::wait_for_pong(port, engine::START_TIMEOUT),
            "{name} does not answer on the private daemon"
        );
        let probe = format!("written under {} by {}\n", tags[0], scope.prefix);
        let mut writer = self
            .command()
            .args(["exec", "-i", &name, "sh", "-c"])
            .arg(format!("cat > /var/lib/mysql/{PROBE_FILE}"))
            .stdin(Stdio::piped())
            .spawn()
            .expect("docker exec");
        std::io::Write::write_all(&mut writer.stdin.take().unwrap(), probe.as_bytes()).unwrap();
        assert!(writer.wait().unwrap().success(), "writing the probe");
        (port, probe)
    }

    fn read_probe(&self, container: &str) -> Option<String> {
        self.read(container, &format!("/var/lib/mysql/{PROBE_FILE}"))
    }

    /// `rancher-upgrade upgrade --container NAME --no-backup --yes ARGS...` on this daemon.
    fn upgrade(&self, scope: &Scope, args: &[&str]) -> engine::Run {
        let name = scope.server_name();
        let mut all = vec!["upgrade", "--container", &name, "--no-backup", "--yes"];
        all.extend_from_slice(&["--health-timeout", "60"]);
        all.extend_from_slice(args);
        let mut command = Command::new(engine::TOOL);
        command
            .args(&all)
            .current_dir(scope.dir())
            .env("DOCKER_HOST", &self.host);
        let what = format!(
            "DOCKER_HOST={} rancher-upgrade {}",
            self.host,
            all.join(" ")
        );
        engine::run_command(command, what, None)
    }

    /// The scope's server runs `tag` and answers on `port` with the probe file in its data.
    fn assert_serves(&self, scope: &Scope, port: u16, tag: &str, probe: &str) {
        let name = scope.server_name();
        let server = self.inspect(&name).expect("the server");
        assert_eq!(text(&server, "/Config/Image"), engine::image(tag));
        assert!(
            engine::wait_for_pong(port, engine::START_TIMEOUT),
            "{name} on {tag} does not answer"
        );
        assert_eq!(http_get(port, "/version"), Some(format!("{tag}\n")));
        assert_eq!(
            self.read_probe(&name).as_deref(),
            Some(probe),
            "the data on {tag}"
        );
    }

    /// Stops the daemon as an init system does and starts it again; fails the test when it
    /// does not answer within 30 s.
    fn restart(&self) {
        self.script("stop.sh");
        self.script("start.sh");
    }

    /// Runs one of the daemon's scripts; fails the test when it fails.
    fn script(&self, name: &str) {
        let out = Command::new("sh")
            .arg(self.dir.join(name))
            .stdin(Stdio::null())
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{name} of the private daemon failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pid(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.pid"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// The real docker CLI, talking to this daemon.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.real_docker);
        command.env("DOCKER_HOST", &self.host).stdin(Stdio::null());
        command
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("docker")
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "`docker {}` on the private daemon failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn inspect(&self, name: &str) -> Option<Value> {
        let out = self.docker(&["inspect", "--type", "container", "--", name]);
        if !out.status.success() {
            return None;
        }
        let mut all: Vec<Value> = serde_json::from_slice(&out.stdout).ok()?;
        (!all.is_empty()).then(|| all.swap_remove(0))
    }

    /// The names of every container on this daemon, sorted.
    fn containers(&self) -> Vec<String> {
        let listed = self.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]);
        let mut names: Vec<String> = listed.lines().map(str::to_string).collect();
        names.sort();
        names
    }

    fn read(&self, container: &str, path: &str) -> Option<String> {
        let out = self.docker(&["exec", container, "cat", path]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for PrivateDaemon {
    fn drop(&mut self) {
        // A daemon that never finished starting would hold these calls forever.
        let docker = |args: &[&str]| {
            Command::new("timeout")
                .arg("30")
                .arg(&self.real_docker)
                .args(args)
                .env("DOCKER_HOST", &self.host)
                .stdin(Stdio::null())
                .output()
        };
        let Ok(all) = docker(&["ps", "-aq"]) else {
            return;
        };
        let ids: Vec<String> = String::from_utf8_lossy(&all.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids.iter().map(String::as_str));
            let _ = docker(&args);
        }
        let _ = Command::new("sh").arg(self.dir.join("stop.sh")).status();
        // The managed containerd goes with dockerd; after a SIGKILL it may not have.
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("x/containerd/containerd.pid")) {
            let _ = Command::new("kill").args(["-TERM", pid.trim()]).status();
        }
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let prefix = self.dir.display().to_string();
        let mut left: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        left.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in left {
            let _ = Command::new("umount").args(["-l", mount]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
    }
}

/// A /24 for the private bridge that no route of the host uses yet.
fn free_subnet() -> String {
    let routes = Command::new("ip")
        .args(["-4", "route"])
        .output()
        .expect("ip route");
    let routes = String::from_utf8_lossy(&routes.stdout).into_owned();
    let start = std::process::id() % 200;
    (0..200)
        .map(|i| (start + i) % 200 + 20)
        .find(|x| !routes.contains(&format!("10.234.{x}.")))
        .map(|x| format!("10.234.{x}.1/24"))
        .expect("a free 10.234.x.0/24")
}

/// Scenario 4: the docker daemon restarts (SIGTERM, then started again) between the stop of the old
/// server and the start of the new one: the wrapper restarts it when the tool parks the old server
/// (`docker rename`, the step before `docker run`), then runs the rename. The upgrade either
/// finishes (the new release answers on the data) or stops with a printed way back, which the test
/// runs, and the old release answers on its data.
#[test]
fn daemon_restart_between_the_stop_and_the_run_loses_nothing() {
    let scope = scope!("daemonrestart");
    let Some(daemon) = PrivateDaemon::start_if_possible(&scope, "daemonrestart") else {
        return;
    };
    let name = scope.server_name();
    let data = scope.data_name();
    let (port, probe) = daemon.start_rancher(&scope, &["v1.6.10", "v1.6.20"]);
    let old = daemon.inspect(&name).expect("the old server");
    let old_id = text(&old, "/Id").to_string();
    let old_data = data_mounts(&old);
    let pid_before = daemon.pid();

    // The wrapper also notes whether the old server came back with the daemon: its restart
    // policy was unless-stopped, which the upgrade turned to `no` before the restart.
    let marker = daemon.dir.join("restarted");
    let old_state = daemon.dir.join("old-server-after-the-restart");
    let wrapper = write_script(
        &scope,
        "docker-restarting-the-daemon",
        &format!(
            "if [ \"$1\" = rename ] && [ ! -e {marker} ]; then\n  : > {marker}\n  {{ sh {stop} && sh {start}; }} >>{log} 2>&1 || {{ echo 'e2e wrapper: restarting the daemon failed' >&2; exit 97; }}\n  {docker} inspect --format '{{{{.State.Running}}}}' {old_id} > {old_state}\nfi\nexec {docker} \"$@\"\n",
            marker = sh_quote(&marker),
            stop = sh_quote(&daemon.dir.join("stop.sh")),
            start = sh_quote(&daemon.dir.join("start.sh")),
            log = sh_quote(&daemon.dir.join("restart.log")),
            docker = sh_quote(&daemon.real_docker),
            old_state = sh_quote(&old_state),
        ),
    );
    let transcript = scope.dir().join("transcript.log");
    let backup_dir = backups(&scope).display().to_string();
    let args = [
        "upgrade",
        "--to",
        "v1.6.20",
        "--container",
        &name,
        "--data-container",
        &data,
        "--health-timeout",
        "60",
        "--backup-dir",
        &backup_dir,
        "--yes",
        "--log",
        &transcript.display().to_string(),
        "--docker",
        &wrapper.display().to_string(),
    ];
    let mut command = Command::new(engine::TOOL);
    command
        .args(args)
        .current_dir(scope.dir())
        .env("DOCKER_HOST", &daemon.host);
    let run = engine::run_command(
        command,
        format!(
            "DOCKER_HOST={} rancher-upgrade {}",
            daemon.host,
            args.join(" ")
        ),
        Some(&transcript),
    );

    assert!(
        marker.exists(),
        "the daemon was never restarted:\n{}",
        run.output()
    );
    let restart_log = std::fs::read_to_string(daemon.dir.join("restart.log")).unwrap_or_default();
    assert!(
        !daemon.pid().is_empty() && daemon.pid() != pid_before,
        "dockerd was not replaced (pid {pid_before}); restart log:\n{restart_log}"
    );
    assert_eq!(
        std::fs::read_to_string(&old_state)
            .unwrap_or_default()
            .trim(),
        "false",
        "the old server after the daemon restart (restart log:\n{restart_log})"
    );
    match run.code {
        Some(0) => {
            eprintln!("daemonrestart: the upgrade finished across the daemon restart");
            let new = daemon.inspect(&name).expect("the new server");
            assert_ne!(text(&new, "/Id"), old_id, "{name} is the old container");
            assert_eq!(text(&new, "/Config/Image"), engine::image("v1.6.20"));
            assert!(is_running(&new));
            assert!(engine::wait_for_pong(port, Duration::from_secs(5)));
            assert_eq!(http_get(port, "/version").as_deref(), Some("v1.6.20\n"));
            assert_eq!(http_get(port, "/schema").as_deref(), Some("20\n"));
            assert_eq!(daemon.read_probe(&name), Some(probe.clone()), "the data");
            assert_eq!(data_mounts(&new), old_data, "the new server's volumes");
            assert!(
                daemon.inspect(&old_id).is_none(),
                "the old container is left"
            );
            assert_eq!(daemon.containers(), vec![name.clone(), data.clone()]);
            assert_eq!(archives(&scope).len(), 1);
            assert_eq!(text(&state(&scope), "/status"), "completed");
        }
        Some(1) => {
            let commands = if run.stderr.contains("Rolled back.") {
                eprintln!("daemonrestart: the upgrade failed and rolled back by itself");
                Vec::new()
            } else {
                let commands = way_back_commands(&run.output());
                assert!(
                    !commands.is_empty(),
                    "the upgrade stopped without a way back:\n{}",
                    run.output()
                );
                eprintln!("daemonrestart: the upgrade stopped; running its way back {commands:#?}");
                commands
            };
            for line in &commands {
                let out = Command::new("bash")
                    .args(["-c", line])
                    .env("DOCKER_HOST", &daemon.host)
                    .current_dir(scope.dir())
                    .output()
                    .expect("bash");
                assert!(
                    out.status.success(),
                    "the way back failed at `{line}`: {}\nthe tool said:\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    run.output()
                );
            }
            let old = daemon
                .inspect(&name)
                .expect("the old server under its name");
            assert_eq!(text(&old, "/Id"), old_id, "{name} is not the old container");
            assert!(engine::wait_for_pong(port, Duration::from_secs(30)));
            assert_eq!(http_get(port, "/version").as_deref(), Some("v1.6.10\n"));
            assert_eq!(http_get(port, "/schema").as_deref(), Some("10\n"));
            assert_eq!(daemon.read_probe(&name), Some(probe.clone()), "the data");
            assert_eq!(data_mounts(&old), old_data);
        }
        other => panic!(
            "exit {other:?}: neither finished nor stopped with a way back\n{}",
            run.output()
        ),
    }
    // Nothing on the daemon but the server and its data container holds the data volumes.
    for (destination, (_, volume)) in &old_data {
        let holders = daemon.docker_ok(&[
            "ps",
            "-a",
            "--filter",
            &format!("volume={volume}"),
            "--format",
            "{{.Names}}",
        ]);
        let mut holders: Vec<&str> = holders.lines().collect();
        holders.sort();
        assert!(
            holders.iter().all(|h| *h == name || *h == data),
            "{destination} ({volume}) is held by {holders:?}"
        );
    }
}

/// Scenario 5: the host reboots after an upgrade, twice: the first upgrade creates the data
/// container, the second reuses it. Each time the daemon comes back, and with it the new server
/// on its data. A data container that named the server (`--volumes-from NAME`) would name the
/// new server once it takes that name, while the new server takes its volumes from the data
/// container: dockerd 20.10 never finishes starting on such a loop (moby#38825).
#[test]
fn the_upgraded_server_comes_back_when_the_daemon_restarts() {
    let scope = scope!("reboot");
    let Some(daemon) = PrivateDaemon::start_if_possible(&scope, "reboot") else {
        return;
    };
    let name = scope.server_name();
    let data = scope.data_name();
    let (port, probe) = daemon.start_rancher(&scope, &["v1.6.10", "v1.6.20", "v1.6.30"]);
    for to in ["v1.6.20", "v1.6.30"] {
        daemon
            .upgrade(&scope, &["--to", to, "--data-container", &data])
            .expect_code(0);
        daemon.restart();
        daemon.assert_serves(&scope, port, to, &probe);
        assert_eq!(daemon.containers(), vec![name.clone(), data.clone()]);
    }
}

/// Scenario 6: the documented upgrade done by hand with the new server named like the old one
/// left the data container naming the server by name, and the server taking its volumes from
/// the data container. The tool refuses to reuse that data container and names a new one; with
/// it the upgrade finishes, and the daemon restarts, the loop gone.
#[test]
fn a_data_container_loop_left_by_hand_is_refused_then_ended_by_the_way_out() {
    let scope = scope!("loop");
    let Some(daemon) = PrivateDaemon::start_if_possible(&scope, "loop") else {
        return;
    };
    let name = scope.server_name();
    let data = scope.data_name();
    let (port, probe) = daemon.start_rancher(&scope, &["v1.6.10", "v1.6.20", "v1.6.30"]);
    let published = format!("127.0.0.1:{port}:8080");
    daemon.docker_ok(&["stop", &name]);
    let old_image = engine::image("v1.6.10");
    daemon.docker_ok(&[
        "create",
        "--volumes-from",
        &name,
        "--name",
        &data,
        &old_image,
    ]);
    daemon.docker_ok(&["rm", &name]);
    let new_image = engine::image("v1.6.20");
    daemon.docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--volumes-from",
        &data,
        "--restart=unless-stopped",
        "-p",
        &published,
        &new_image,
    ]);
    assert!(engine::wait_for_pong(port, engine::START_TIMEOUT));

    let refused = daemon.upgrade(&scope, &["--to", "v1.6.30", "--data-container", &data]);
    let way_out = format!("--data-container {data}-v1.6.20");
    refused
        .expect_code(2)
        .expect_mention(&["moby#38825", &way_out]);
    assert_eq!(daemon.containers(), vec![name.clone(), data.clone()]);

    let new_data = format!("{data}-v1.6.20");
    daemon
        .upgrade(&scope, &["--to", "v1.6.30", "--data-container", &new_data])
        .expect_code(0);
    daemon.restart();
    daemon.assert_serves(&scope, port, "v1.6.30", &probe);
    let mut expected = vec![name.clone(), data.clone(), new_data.clone()];
    expected.sort();
    assert_eq!(daemon.containers(), expected);
}
