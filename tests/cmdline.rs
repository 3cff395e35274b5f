//! No secret on a command line: while a real upgrade runs, every process's `/proc/PID/cmdline`
//! (what `ps` shows any user) is read over and over, and none may hold a secret value of the
//! server. The secret env vars reach docker in its environment (`-e NAME`), which only its
//! owner can read. The sampling must also see the new server's `docker create` go by, or it
//! proved nothing.
//!
//! Skipped without an engine unless `REQUIRE_DOCKER=1`, like every end-to-end test.

// The harness serves every end-to-end suite; this one uses a part of it.
#[allow(dead_code)]
#[macro_use]
#[path = "e2e/engine.rs"]
mod engine;

use engine::{ServerOptions, command_lines, free_port};
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn no_secret_env_value_is_on_any_command_line_while_the_upgrade_runs() {
    let scope = scope!("cmdline");
    // Values no other process on this machine has any reason to show.
    let token = format!("tok-{}-{}", std::process::id(), engine::now_seconds());
    let password = format!("pw-{}-{}", std::process::id(), engine::now_seconds());
    scope.start_server(
        "v1.6.10",
        ServerOptions {
            port: Some(free_port()),
            env: vec![
                format!("API_TOKEN={token}"),
                format!("CATTLE_DB_CATTLE_PASSWORD={password}"),
                "GREETING=hello".into(),
            ],
            restart: Some("unless-stopped".into()),
            ..ServerOptions::default()
        },
    );
    let (args, transcript) = scope.upgrade_args("v1.6.20", &[]);
    let mut upgrade = scope.spawn_tool(&args, Some(&transcript));
    let mut samples = 0_u64;
    let mut seen = BTreeSet::new();
    let mut leaks = Vec::new();
    let create = format!("create --name {}", scope.server_name());
    while upgrade.is_running() {
        for (pid, line) in command_lines() {
            if line.contains(&token) || line.contains(&password) {
                leaks.push(format!("{pid}: {line}"));
            }
            if line.contains(&create) {
                seen.insert(line);
            }
        }
        samples += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    let run = upgrade.wait();
    run.expect_code(0);
    eprintln!(
        "cmdline: {samples} samples of every process's command line, the new server's create seen as {seen:?}"
    );
    assert!(
        leaks.is_empty(),
        "a secret on a command line:\n{}",
        leaks.join("\n")
    );
    assert!(
        seen.iter().any(|l| l.contains("-e API_TOKEN ")),
        "the sampling never saw the new server's `docker create` ({samples} samples)"
    );
    let new = engine::inspect_existing(&scope.server_name());
    let env = engine::strings(&new, "/Config/Env");
    for secret in [
        format!("API_TOKEN={token}"),
        format!("CATTLE_DB_CATTLE_PASSWORD={password}"),
    ] {
        assert!(
            env.contains(&secret),
            "the new server lacks {secret}: {env:?}"
        );
    }
}
