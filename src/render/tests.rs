use super::*;
use crate::plan::{Step, plan};
use crate::server::{CarriedSettings, PortBinding, Server, fixture};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const PASSWORD: &str = "pa'ss $(touch /tmp/pwned) `id` wörd";
const TOKEN: &str = "tok;en\"x";

/// An embedded-DB server whose settings hold every character a shell treats specially.
fn hostile_plan() -> Plan {
    hostile_plan_backing_up_to("/var/backups/rancher upgrades")
}

/// The same server on an external database: its password is the dump's and the restore's.
fn hostile_external_plan() -> Plan {
    let mut server = hostile_server();
    server.mode = crate::server::DbMode::External;
    server
        .carried
        .args
        .splice(0..0, ["--db-host".into(), "db.example".into()]);
    let options = crate::plan::fixture::options("v1.6.20", "/var/backups/r u", "20261127T000000Z");
    plan(&fixture::discovery(server), &options).unwrap()
}

fn hostile_plan_backing_up_to(backup_dir: &str) -> Plan {
    let options = crate::plan::fixture::options("v1.6.20", backup_dir, "20261127T000000Z");
    plan(&fixture::discovery(hostile_server()), &options).unwrap()
}

fn hostile_server() -> Server {
    Server {
        not_carried: vec!["HostConfig.Privileged = true is not carried over".into()],
        ..fixture::server(
            "127.0.0.1:5000/rancher/server:v1.6.10",
            "sha256:old",
            CarriedSettings {
                env: vec![
                    "GREETING=it's a \"quoted\" $HOME `date` * ! héllo".into(),
                    format!("API_TOKEN={TOKEN}"),
                ],
                args: vec!["--db-pass".into(), PASSWORD.into()],
                ports: vec![PortBinding {
                    container_port: "8080/tcp".into(),
                    host_ip: "127.0.0.1".into(),
                    host_port: "18080".into(),
                }],
                ..CarriedSettings::default()
            },
        )
    }
}

/// What each docker step runs: the secrets it puts in docker's environment, as `NAME=value`
/// assignments, then its command line.
fn docker_argvs(plan: &Plan) -> Vec<Vec<String>> {
    plan.steps
        .iter()
        .filter(|s| s.skipped.is_none())
        .filter_map(Step::argv)
        .map(|argv| {
            let environment = argv
                .environment()
                .into_iter()
                .map(|(name, value)| format!("{name}={value}"));
            environment.chain(argv.real()).collect()
        })
        .collect()
}

/// The docker commands of a rendering, parsed back as a shell would, with the assignments in
/// front of them: whole lines, and the docker command inside a backup's or a restore's
/// pipeline.
fn parsed_commands(rendered: &str, prefix: &str) -> Vec<Vec<String>> {
    rendered
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix(prefix))
        .filter_map(|line| {
            let words = shell_words::split(line).ok()?;
            let docker = words.iter().position(|w| w == "docker")?;
            let assignments = words[..docker]
                .iter()
                .rev()
                // `need=$(` opens a command substitution: no assignment of the command's.
                .take_while(|w| {
                    !w.ends_with("$(")
                        && w.split_once('=')
                            .is_some_and(|(name, _)| crate::argv::is_shell_identifier(name))
                })
                .count();
            // A command with secrets in its environment starts with their assignments; a
            // pipeline's command (its assignments too) stands after its `(` and what it sets up.
            let start = match words[0] == "(" {
                true => docker - assignments,
                false => (docker == assignments).then_some(0)?,
            };
            Some((words, start))
        })
        .map(|(words, start)| {
            words[start..]
                .iter()
                .take_while(|w| !["|", ")", "&&", ">"].contains(&w.as_str()))
                .cloned()
                .collect()
        })
        .collect()
}

#[test]
fn text_with_shown_secrets_parses_back_to_the_executed_argv() {
    let plan = hostile_plan();
    let shown = render(&plan, Format::Text, true);
    let parsed = parsed_commands(&console::strip_ansi_codes(&shown), "$ ");
    // The steps first, then the way back.
    assert_eq!(parsed[..docker_argvs(&plan).len()], docker_argvs(&plan)[..]);
}

#[test]
fn markdown_with_shown_secrets_parses_back_to_the_executed_argv() {
    let plan = hostile_plan();
    let shown = render(&plan, Format::Markdown, true);
    let parsed = parsed_commands(&shown, "");
    assert_eq!(parsed[..docker_argvs(&plan).len()], docker_argvs(&plan)[..]);
    assert!(shown.contains("```bash"));
    assert!(shown.contains("## Rolling back by hand"));
    assert!(shown.contains("HostConfig.Privileged"));
}

#[test]
fn an_external_databases_dump_and_restore_parse_back_to_the_executed_argv() {
    let plan = hostile_external_plan();
    let executed = docker_argvs(&plan);
    let dump = executed
        .iter()
        .find(|argv| argv.contains(&"mysqldump".to_string()))
        .unwrap();
    assert_eq!(dump[0], format!("MYSQL_PWD={PASSWORD}"));
    for (format, prefix) in [(Format::Text, "$ "), (Format::Markdown, "")] {
        let shown = console::strip_ansi_codes(&render(&plan, format, true)).into_owned();
        let parsed = parsed_commands(&shown, prefix);
        assert_eq!(parsed[..executed.len()], executed[..], "{format:?}");
        // The way back: the restore streams the dump into the old image's mysql.
        let restore = parsed[executed.len()..]
            .iter()
            .find(|argv| argv.contains(&"mysql".to_string()))
            .unwrap_or_else(|| panic!("{format:?}: no restore in {shown}"));
        assert_eq!(restore[0], format!("MYSQL_PWD={PASSWORD}"));
        assert!(
            shown.contains("| tail -n 1 | grep '^-- Dump completed' && sha256sum "),
            "{shown}"
        );
        assert!(shown.contains("Database: external: the new server uses the same database settings; the old image's mysqldump dumps it into rancher-db-backup-v1.6.10-20261127T000000Z.sql.zst once the old server is stopped"), "{shown}");
    }
}

#[test]
fn secrets_are_masked_in_text_markdown_and_json() {
    let plan = hostile_plan();
    for format in [Format::Text, Format::Markdown, Format::Json] {
        let shown = render(&plan, format, false);
        assert!(
            !shown.contains("pa'ss") && !shown.contains("wörd"),
            "{format:?}: {shown}"
        );
        assert!(!shown.contains("tok;en"), "{format:?}: {shown}");
        assert!(shown.contains(crate::argv::MASK), "{format:?}");
    }
}

#[test]
fn json_has_the_documented_shape() {
    let json: serde_json::Value =
        serde_json::from_str(&render(&hostile_plan(), Format::Json, false)).unwrap();
    assert_eq!(json["kind"], "upgrade");
    assert_eq!(json["container"], "rancher");
    assert_eq!(json["from"], "127.0.0.1:5000/rancher/server:v1.6.10");
    assert_eq!(json["to"], "127.0.0.1:5000/rancher/server:v1.6.20");
    assert_eq!(json["mode"], "embedded");
    assert_eq!(
        json["warnings"][0],
        "HostConfig.Privileged = true is not carried over"
    );
    let steps = json["steps"].as_array().unwrap();
    assert_eq!(steps[0]["id"], "pull");
    assert_eq!(steps[0]["argv"][0], "docker");
    assert_eq!(steps[0]["changes"], true);
    assert!(steps[0]["skipped"].is_null());
    let wait = steps.iter().find(|s| s["id"] == "wait-healthy").unwrap();
    assert!(wait["probe"]["url"].is_null());
    assert_eq!(wait["probe"]["ask"][1], "exec");
    let backup = steps.iter().find(|s| s["id"] == "backup").unwrap();
    assert_eq!(backup["transfer"]["direction"], "backup");
    assert_eq!(backup["transfer"]["archive"]["format"], "zstd");
    assert_eq!(json["engine"]["program"], "docker");
}

fn bash(script: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runbook.sh");
    std::fs::write(&path, script).unwrap();
    Command::new("/bin/bash")
        .args(args)
        .arg(&path)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn the_shell_runbook_is_valid_bash_and_holds_no_secret() {
    let script = render(&hostile_plan(), Format::Shell, false);
    let check = bash(&script, &["-n"], &[]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(script.starts_with("#!/usr/bin/env bash\n"));
    assert!(script.contains("set -euo pipefail"));
    assert!(
        !script.contains("pa'ss") && !script.contains("tok;en"),
        "{script}"
    );
    assert!(
        script.contains(r#"--db-pass "${RANCHER_DB_PASS}""#),
        "{script}"
    );
}

#[test]
fn the_shell_runbook_refuses_to_start_without_its_secrets() {
    let script = render(&hostile_plan(), Format::Shell, false);
    let run = bash(&script, &[], &[("PATH", "/nonexistent")]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("API_TOKEN"), "{stderr}");
}

/// A fake `docker` that prints each argument NUL-terminated, so the test sees exactly what
/// bash passed.
#[test]
fn the_shell_runbook_passes_the_exact_argv_with_secrets_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("rancher upgrades");
    std::fs::create_dir(&backups).unwrap();
    let plan = hostile_plan_backing_up_to(backups.to_str().unwrap());
    let mut script = render(&plan, Format::Shell, false);
    // Stop before the health wait: this test runs no server.
    let cut = script.find("\n(\n  deadline").unwrap();
    script.truncate(cut);
    let record = dir.path().join("argv");
    let fake = dir.path().join("docker");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nrun=$(mktemp)\ncase \" $* \" in *' API_TOKEN '*) printf 'API_TOKEN=%s\\0' \"$API_TOKEN\" >> \"$run\";; esac\nprintf '%s\\0' \"$(basename \"$0\")\" >> \"$run\"\nfor a in \"$@\"; do printf '%s\\0' \"$a\" >> \"$run\"; done\nprintf '\\n' >> \"$run\"\ncat \"$run\" >> '{0}'\nrm -f \"$run\"\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The backup compresses with the host's zstd: the recorder stands in for it too. The two
    // sides of that pipe run at once, so each run's record is appended whole, in one write.
    std::os::unix::fs::symlink(&fake, dir.path().join("zstd")).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap()
    );
    let run = bash(
        &script,
        &[],
        &[
            ("PATH", &path),
            ("RANCHER_DB_PASS", PASSWORD),
            ("API_TOKEN", TOKEN),
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        !stdout.contains("pa'ss"),
        "the echoed steps leak the secret: {stdout}"
    );
    let recorded = std::fs::read(&record).unwrap();
    let runs: Vec<Vec<String>> = recorded
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            line.split(|b| *b == 0)
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8(w.to_vec()).unwrap())
                .collect::<Vec<_>>()
        })
        .filter(|argv| argv.contains(&"docker".to_string()))
        .collect();
    let expected: Vec<Vec<String>> = docker_argvs(&plan)
        .into_iter()
        .filter(|argv| argv.iter().skip_while(|w| *w != "docker").nth(1) != Some(&"rm".into()))
        .collect();
    assert_eq!(runs, expected);
    assert!(!std::path::Path::new("/tmp/pwned").exists());
}
