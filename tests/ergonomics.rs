//! What an operator gets around the upgrade itself, through the built binary and the fake
//! docker: the completion scripts loaded by each shell, the man page rendered by groff and man,
//! `--help`, colour, `status` after each way an upgrade ends, and the `--result` document.
//!
//! A shell or groff that is not installed skips its check with a line that says so;
//! `scripts/test.sh` installs them.

mod common;

use common::{FakeDocker, Ran, pong_server};
use rancher_upgrade::cli;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const NEW_IMAGE: &str = "127.0.0.1:5599/rancher/server:v1.6.20";

// ------------------------------------------------------------------ helpers --

fn run(fake: &FakeDocker, args: &[&str]) -> Ran {
    fake.command().args(args).output().unwrap().into()
}

/// `upgrade --container rancher --to v1.6.20 --yes` with `extra`, on the fake's host.
fn upgrade(fake: &FakeDocker, extra: &[&str]) -> Ran {
    let args = [
        &[
            "upgrade",
            "--container",
            "rancher",
            "--to",
            "v1.6.20",
            "--yes",
        ],
        extra,
    ]
    .concat();
    run(fake, &args)
}

/// Whether `program` can be run; if not, a line says the check is skipped.
fn installed(program: &str, check: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIPPED {check}: {program} is not installed (scripts/test.sh installs it)");
    }
    found
}

/// Runs a program on the host, stdin closed.
fn host(program: &str, args: &[&str]) -> Ran {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("could not start {program}: {e}"))
        .into()
}

/// What the binary prints for `args`, written to `dir/name`.
fn generated(fake: &FakeDocker, args: &[&str], name: &str) -> PathBuf {
    let out = run(fake, args).expect_code(0);
    assert!(out.stderr.is_empty(), "{args:?} said: {}", out.stderr);
    let file = fake.work_dir().join(name);
    std::fs::write(&file, out.stdout).unwrap();
    file
}

fn text(file: &Path) -> String {
    file.display().to_string()
}

// -------------------------------------------------- completions, man page --

#[test]
fn the_bash_completion_loads_and_completes_rancher_upgrade() {
    let fake = FakeDocker::empty();
    let script = generated(&fake, &["completions", "bash"], "rancher-upgrade.bash");
    host("bash", &["-n", &text(&script)]).expect_code(0);
    let loaded = host(
        "bash",
        &[
            "-c",
            &format!("source {} && complete -p rancher-upgrade", text(&script)),
        ],
    )
    .expect_code(0);
    assert!(
        loaded.stdout.starts_with("complete ")
            && loaded.stdout.trim_end().ends_with(" rancher-upgrade"),
        "{}",
        loaded.stdout
    );
    // The function it registers offers the commands that start so.
    let function = loaded
        .stdout
        .split_whitespace()
        .skip_while(|word| *word != "-F")
        .nth(1)
        .expect("complete -F FUNCTION");
    let offered = host(
        "bash",
        &[
            "-c",
            &format!(
                "source {}; COMP_WORDS=(rancher-upgrade st); COMP_CWORD=1; {function} rancher-upgrade st rancher-upgrade; echo \"${{COMPREPLY[*]}}\"",
                text(&script)
            ),
        ],
    )
    .expect_code(0);
    assert_eq!(offered.stdout.trim(), "status", "{}", offered.stderr);
}

#[test]
fn the_zsh_and_fish_completions_parse() {
    let fake = FakeDocker::empty();
    for (shell, name) in [
        ("zsh", "_rancher-upgrade"),
        ("fish", "rancher-upgrade.fish"),
    ] {
        let script = generated(&fake, &["completions", shell], name);
        if installed(shell, &format!("{shell} -n on the {shell} completion")) {
            let checked = host(shell, &["-n", &text(&script)]).expect_code(0);
            assert!(checked.stderr.is_empty(), "{shell}: {}", checked.stderr);
        }
    }
}

#[test]
fn an_unknown_shell_is_refused_with_the_ones_there_are() {
    let fake = FakeDocker::empty();
    let refused = run(&fake, &["completions", "tcsh"]).expect_code(2);
    assert!(
        refused.stderr.contains("invalid value 'tcsh'") && refused.stderr.contains("bash"),
        "{}",
        refused.stderr
    );
}

/// Every long option of every command, as the command line defines them.
fn every_long_option() -> BTreeSet<String> {
    let mut command = cli::command();
    command.build();
    std::iter::once(&command)
        .chain(command.get_subcommands())
        .flat_map(|c| c.get_arguments())
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect()
}

#[test]
fn the_man_page_renders_without_warnings_and_covers_every_command_and_option() {
    let fake = FakeDocker::empty();
    let page = generated(&fake, &["man"], "rancher-upgrade.1");
    if !installed("groff", "rendering the man page") {
        return;
    }
    // Old-style output without overstriking: the page as plain text.
    let rendered = host(
        "groff",
        &[
            "-ww",
            "-man",
            "-Tutf8",
            "-P-c",
            "-P-b",
            "-P-o",
            "-P-u",
            &text(&page),
        ],
    )
    .expect_code(0);
    assert!(
        rendered.stderr.is_empty(),
        "groff warns: {}",
        rendered.stderr
    );
    let plain: String = rendered
        .stdout
        .replace('\u{2010}', "-")
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n");
    for heading in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "EXIT STATUS",
        "FILES",
        "ENVIRONMENT",
        "EXAMPLES",
    ] {
        assert!(
            plain.contains(&format!("\n{heading}\n")),
            "no section {heading}:\n{plain}"
        );
    }
    for command in [
        "upgrade",
        "runbook",
        "rollback",
        "status",
        "completions",
        "man",
    ] {
        assert!(
            plain.contains(&format!("rancher-upgrade {command}")),
            "{command} is missing:\n{plain}"
        );
        let options = format!("{} OPTIONS", command.to_uppercase());
        assert!(
            command == "man" || plain.contains(&options),
            "no {options}:\n{plain}"
        );
    }
    // The roff source, where no line break splits an option's name.
    let source = std::fs::read_to_string(&page).unwrap().replace("\\-", "-");
    for option in every_long_option() {
        assert!(
            source.contains(&option),
            "the page does not mention {option}"
        );
    }
    for code in ["0", "1", "2", "130"] {
        assert!(
            source.contains(&format!(".TP\n\\fB{code}\\fR")),
            "exit code {code} is missing"
        );
    }
    for file in ["rancher-data-backup-", ".state.json", "--result FILE"] {
        assert!(source.contains(file), "FILES does not name {file}");
    }
    for variable in [
        "RANCHER_UPGRADE_DOCKER",
        "RANCHER_UPGRADE_YES",
        "DOCKER_HOST",
        "NO_COLOR",
        "CLICOLOR_FORCE",
    ] {
        assert!(
            source.contains(variable),
            "ENVIRONMENT does not name {variable}"
        );
    }
}

#[test]
fn man_reads_the_page_at_80_columns_without_a_warning() {
    let fake = FakeDocker::empty();
    let page = generated(&fake, &["man"], "rancher-upgrade.1");
    if !installed("man", "man -l on the page") {
        return;
    }
    let read: Ran = Command::new("man")
        .args(["-l", &text(&page)])
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env_remove("MAN_KEEP_FORMATTING")
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .into();
    let read = read.expect_code(0);
    assert!(read.stderr.is_empty(), "man warns: {}", read.stderr);
    assert!(read.stdout.contains("rancher-upgrade"), "{}", read.stdout);
    let widest = read
        .stdout
        .lines()
        .map(|l| l.chars().count())
        .max()
        .unwrap();
    assert!(widest <= 80, "a line of {widest} columns");
}

// ------------------------------------------------------------ help, errors --

#[test]
fn help_ends_with_two_examples_and_shows_defaults_and_variables() {
    let fake = FakeDocker::empty();
    let help = run(&fake, &["--help"]).expect_code(0).stdout;
    let examples: Vec<&str> = help
        .rsplit_once("Examples:\n")
        .expect("an Examples section")
        .1
        .lines()
        .filter(|l| l.trim_start().starts_with("rancher-upgrade "))
        .collect();
    assert_eq!(examples.len(), 2, "{help}");
    assert!(help.trim_end().ends_with(examples[1]), "{help}");
    let upgrade = run(&fake, &["upgrade", "--help"]).expect_code(0).stdout;
    for shown in [
        "[default: rancher-data]",
        "[default: 900]",
        "[env: RANCHER_UPGRADE_YES=]",
        "[env: RANCHER_UPGRADE_DOCKER=]",
    ] {
        assert!(upgrade.contains(shown), "no {shown} in:\n{upgrade}");
    }
    assert!(!upgrade.contains("also RANCHER_UPGRADE_YES"), "{upgrade}");
}

#[test]
fn a_typo_gets_clap_s_suggestion_and_exit_2_with_nothing_run() {
    let fake = FakeDocker::new("embedded");
    for (args, tip) in [
        (&["upgade"][..], "a similar subcommand exists: 'upgrade'"),
        (&["staus"], "a similar subcommand exists: 'status'"),
        (
            &["upgrade", "--to", "v1.6.20", "--dry-rn"],
            "a similar argument exists: '--dry-run'",
        ),
        (
            &["status", "--backup-dri", "."],
            "a similar argument exists: '--backup-dir'",
        ),
    ] {
        let refused = run(&fake, args).expect_code(2);
        assert!(refused.stderr.contains(tip), "{args:?}: {}", refused.stderr);
    }
    assert!(fake.calls().is_empty(), "docker ran: {:?}", fake.calls());
}

// ------------------------------------------------------------------ colour --

const ESCAPE: &str = "\u{1b}[";

/// `upgrade --dry-run` in text, with `env` set on top of the fake's (which sets NO_COLOR=1),
/// less `unset`; stdout is a pipe.
fn dry_run_text(
    fake: &FakeDocker,
    color: Option<&str>,
    env: &[(&str, &str)],
    unset: &[&str],
) -> String {
    let mut command = fake.command();
    command.args([
        "upgrade",
        "--container",
        "rancher",
        "--to",
        "v1.6.20",
        "--dry-run",
    ]);
    if let Some(color) = color {
        command.args(["--color", color]);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    for name in unset {
        command.env_remove(name);
    }
    Ran::from(command.output().unwrap()).expect_code(0).stdout
}

#[test]
fn colour_follows_color_then_no_color_then_clicolor_force_then_the_terminal() {
    let fake = FakeDocker::new("embedded");
    let coloured = |text: &str| text.contains(ESCAPE);
    assert!(
        coloured(&dry_run_text(&fake, Some("always"), &[], &[])),
        "always, despite NO_COLOR"
    );
    assert!(!coloured(&dry_run_text(
        &fake,
        Some("never"),
        &[("CLICOLOR_FORCE", "1")],
        &["NO_COLOR"]
    )));
    assert!(
        !coloured(&dry_run_text(&fake, None, &[], &[])),
        "auto with NO_COLOR"
    );
    assert!(
        !coloured(&dry_run_text(&fake, Some("auto"), &[], &["NO_COLOR"])),
        "auto on a pipe"
    );
    assert!(
        coloured(&dry_run_text(
            &fake,
            Some("auto"),
            &[("CLICOLOR_FORCE", "1")],
            &["NO_COLOR"]
        )),
        "CLICOLOR_FORCE colours a pipe"
    );
    assert!(
        !coloured(&dry_run_text(&fake, None, &[("CLICOLOR_FORCE", "1")], &[])),
        "NO_COLOR wins"
    );
    let refused = run(&fake, &["--color", "sometimes", "status"]).expect_code(2);
    assert!(
        refused
            .stderr
            .contains("[possible values: auto, always, never]"),
        "{}",
        refused.stderr
    );
}

// ------------------------------------------------------------------ status --

/// `status --format json` in the fake's work directory (where the runs write their records).
fn status_json(fake: &FakeDocker) -> Value {
    run(fake, &["status", "--format", "json"])
        .expect_code(0)
        .json()
}

/// The only recorded upgrade of a status report.
fn the_upgrade(report: &Value) -> &Value {
    let upgrades = report["upgrades"].as_array().unwrap();
    assert_eq!(upgrades.len(), 1, "{report:#}");
    &upgrades[0]
}

/// The next command of a report, run with `extra` (answers and a health URL the fake can give).
fn run_next(fake: &FakeDocker, upgrade: &Value, extra: &[&str]) -> Ran {
    let argv: Vec<String> = serde_json::from_value(upgrade["next"]["argv"].clone()).unwrap();
    assert_eq!(argv[0], "rancher-upgrade");
    fake.command()
        .args(&argv[1..])
        .args(extra)
        .output()
        .unwrap()
        .into()
}

/// Fails unless the report names `rancher-upgrade COMMAND --backup-dir DIR` as next.
#[track_caller]
fn expect_next(report: &Value, upgrade: &Value, command: &str) {
    let dir = report["backup_dir"].as_str().unwrap();
    assert_eq!(
        upgrade["next"]["command"],
        format!("rancher-upgrade {command} --backup-dir {dir}")
    );
}

/// Fails unless `status` in text says each of `lines`.
#[track_caller]
fn expect_status_text(fake: &FakeDocker, lines: &[&str]) {
    let shown = run(fake, &["status"]).expect_code(0).stdout;
    for line in lines {
        assert!(shown.contains(line), "no {line:?} in:\n{shown}");
    }
}

fn sha256sum(file: &str) -> String {
    let out = host("sha256sum", &[file]).expect_code(0);
    out.stdout.split_whitespace().next().unwrap().to_string()
}

#[test]
fn status_without_a_record_shows_the_running_server_and_changes_nothing() {
    let fake = FakeDocker::new("embedded");
    let shown = run(&fake, &["status"]).expect_code(0).stdout;
    assert!(shown.contains("No upgrade is recorded in"), "{shown}");
    assert!(
        shown.contains("Now: rancher runs 127.0.0.1:5599/rancher/server:v1.6.10 (v1.6.10)"),
        "{shown}"
    );
    let report = status_json(&fake);
    assert_eq!(report["upgrades"], serde_json::json!([]));
    assert_eq!(report["server"]["version"], "v1.6.10");
    assert!(
        fake.mutating_calls().is_empty(),
        "{:?}",
        fake.mutating_calls()
    );
}

#[test]
fn status_of_a_stopped_upgrade_names_the_command_that_resumes_it() {
    let mut fake = FakeDocker::new("embedded");
    let ping = pong_server();
    // Two Ctrl-C while the old server is parked: the tool leaves at once, without going back.
    let args: Vec<String> = [
        "upgrade",
        "--container",
        "rancher",
        "--to",
        "v1.6.20",
        "--yes",
        "--health-url",
        &ping,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    fake.stop_halfway_at("rename", &args);
    let before = fake.mutating_calls().len();

    let report = status_json(&fake);
    let upgrade = the_upgrade(&report);
    assert_eq!(upgrade["status"], "stopped");
    assert_eq!(
        upgrade["server"]["version"], "v1.6.10",
        "the old server still runs"
    );
    expect_next(
        &report,
        upgrade,
        &format!("upgrade --container rancher --to {NEW_IMAGE}"),
    );
    expect_status_text(
        &fake,
        &["rancher: stopped halfway: the same command resumes it"],
    );
    assert_eq!(
        fake.mutating_calls().len(),
        before,
        "status changed something"
    );

    // The command it names finishes the upgrade; then there is nothing left to do.
    let resumed = run_next(&fake, upgrade, &["--yes", "--health-url", &ping]).expect_code(0);
    assert!(
        resumed.stderr.contains("Resuming the upgrade"),
        "{}",
        resumed.stderr
    );
    let report = status_json(&fake);
    let upgrade = the_upgrade(&report);
    assert_eq!(upgrade["status"], "completed");
    assert_eq!(upgrade["next"], Value::Null);
    assert_eq!(upgrade["server"]["image"], NEW_IMAGE);
    let archive = &report["archives"][0];
    assert_eq!(archive["path"], upgrade["backup_archive"]);
    assert_eq!(archive["recorded_by"], serde_json::json!(["rancher"]));
    let path = archive["path"].as_str().unwrap();
    assert_eq!(archive["sha256"], sha256sum(path));
    assert_eq!(archive["bytes"], std::fs::metadata(path).unwrap().len());
    expect_status_text(&fake, &["rancher: done\n", "next: nothing to do"]);
}

#[test]
fn status_of_a_failed_way_back_names_rollback_which_finishes_it() {
    let mut fake = FakeDocker::new("embedded");
    let ping = pong_server();
    // The new version exits; the way back's first step (stopping it) fails too.
    fake.set_env("FAKE_DOCKER_RUN_EXITS", "3")
        .set_env("FAKE_DOCKER_FAIL_AT", "stop")
        .set_env("FAKE_DOCKER_FAIL_NTH", "2");
    let failed = upgrade(&fake, &["--health-url", &ping]).expect_code(1);
    assert!(
        failed.stderr.contains("rollback stopped too"),
        "{}",
        failed.stderr
    );
    for name in [
        "FAKE_DOCKER_RUN_EXITS",
        "FAKE_DOCKER_FAIL_AT",
        "FAKE_DOCKER_FAIL_NTH",
    ] {
        fake.unset_env(name);
    }
    let report = status_json(&fake);
    let upgrade = the_upgrade(&report);
    assert_eq!(upgrade["status"], "failed");
    assert_eq!(
        upgrade["server"]["image"], NEW_IMAGE,
        "the new container is left"
    );
    assert_eq!(
        upgrade["parked"]["version"], "v1.6.10",
        "the old one is parked"
    );
    expect_next(&report, upgrade, "rollback --container rancher");
    expect_status_text(
        &fake,
        &[
            "rancher: failed, and its way back did not finish",
            "the old server is parked: rancher-v1.6.10 is stopped",
        ],
    );

    run_next(&fake, upgrade, &["--yes", "--health-url", &ping]).expect_code(0);
    let upgrade = status_json(&fake)["upgrades"][0].clone();
    assert_eq!(upgrade["status"], "rolled-back");
    assert_eq!(upgrade["server"]["version"], "v1.6.10");
    assert_eq!(upgrade["next"], Value::Null);
}

#[test]
fn status_refuses_bad_input_in_one_line() {
    let fake = FakeDocker::new("embedded");
    run(&fake, &["status", "--backup-dir", "nowhere"])
        .expect_one_line_refusal("--backup-dir nowhere");
    run(&fake, &["status", "--container", "not a name"])
        .expect_one_line_refusal("--container \"not a name\" is not a container name");
    let refused = run(&fake, &["status", "--format", "markdown"]).expect_code(2);
    assert!(
        refused.stderr.contains("invalid value 'markdown'"),
        "{}",
        refused.stderr
    );
    assert!(fake.calls().is_empty());
}

// ------------------------------------------------------------------ result --

/// The field names the README's table of the result documents: `outcome`, `steps[].id`, ...
fn documented_result_fields() -> BTreeSet<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("### The result of a run (`--result FILE`)")
        .nth(1)
        .expect("the README documents the result")
        .split("\n### ")
        .next()
        .unwrap();
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(name, _)| name.to_string()))
        .collect()
}

/// The field names of a result document, in the README's notation.
fn result_fields(document: &Value) -> BTreeSet<String> {
    let mut fields = BTreeSet::new();
    for (key, value) in document.as_object().unwrap() {
        fields.insert(key.clone());
        let nested = match value {
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_object)
                .map(|o| (format!("{key}[]"), o))
                .collect(),
            Value::Object(object) => vec![(key.clone(), object)],
            _ => vec![],
        };
        for (prefix, object) in nested {
            fields.extend(object.keys().map(|k| format!("{prefix}.{k}")));
        }
    }
    fields
}

#[track_caller]
fn expect_only_documented_fields(document: &Value) {
    let undocumented: Vec<String> = result_fields(document)
        .difference(&documented_result_fields())
        .cloned()
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in the README: {undocumented:?}"
    );
}

fn result(fake: &FakeDocker, file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fake.work_dir().join(file)).unwrap()).unwrap()
}

#[test]
fn the_result_of_a_finished_upgrade_has_the_documented_schema() {
    let fake = FakeDocker::new("embedded");
    let ping = pong_server();
    upgrade(&fake, &["--health-url", &ping, "--result", "up.json"]).expect_code(0);
    let document = result(&fake, "up.json");
    let documented = documented_result_fields();
    let present = result_fields(&document);
    // A finished run has no stop and no way back: their fields are the documented ones still.
    let absent: BTreeSet<String> = documented
        .iter()
        .filter(|f| f.starts_with("stops[].") || f.starts_with("way_back[]."))
        .cloned()
        .collect();
    assert_eq!(present, &documented - &absent, "{document:#}");
    assert_eq!(document["format"], "rancher-upgrade-result/1");
    assert_eq!(document["kind"], "upgrade");
    assert_eq!(document["outcome"], "completed");
    assert_eq!(document["to"], NEW_IMAGE);
    let steps = document["steps"].as_array().unwrap();
    let ids: Vec<&str> = steps.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids.first(), Some(&"pull"));
    assert_eq!(ids.last(), Some(&"remove-old"));
    for step in steps {
        assert_eq!(step["ok"], true, "{step:#}");
        assert_eq!(step["phase"], "plan");
        assert!(step["duration_seconds"].as_f64().unwrap() >= 0.0);
        if step["command"].is_string() {
            assert_eq!(step["exit_code"], 0, "{step:#}");
            assert_eq!(step["exit_status"], "exit status: 0");
            let (action, command) = (
                step["action"].as_str().unwrap(),
                step["command"].as_str().unwrap(),
            );
            if step["id"] == "backup" || step["id"] == "check-room" {
                // The engine's command, in the pipeline that stands for what the tool does with
                // its output here (the archive written, the room compared).
                assert!(
                    action.starts_with("$ ") && action.contains(command),
                    "{step:#}"
                );
            } else {
                assert_eq!(action, format!("$ {command}"));
            }
        } else {
            assert_eq!(step["exit_code"], Value::Null, "{step:#}");
        }
    }
    let archive = document["archive"]["path"].as_str().unwrap();
    assert_eq!(
        document["archive"]["bytes"],
        std::fs::metadata(archive).unwrap().len()
    );
    assert!(Path::new(document["transcript"].as_str().unwrap()).exists());
    assert!(Path::new(document["state_file"].as_str().unwrap()).exists());
    assert_eq!(document["way_back"], serde_json::json!([]));
}

#[test]
fn the_result_of_a_failed_upgrade_holds_the_stop_and_the_way_back_it_ran() {
    let mut fake = FakeDocker::new("embedded");
    fake.set_env("FAKE_DOCKER_RUN_EXITS", "3");
    let ping = pong_server();
    upgrade(&fake, &["--health-url", &ping, "--result", "failed.json"]).expect_code(1);
    let document = result(&fake, "failed.json");
    assert_eq!(document["outcome"], "rolled-back");
    assert_eq!(document["stops"][0]["phase"], "plan");
    assert_eq!(document["stops"][0]["step"], "wait-healthy");
    assert_eq!(document["stops"][0]["reason"], "failed");
    let phases: Vec<(&str, &str)> = document["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["phase"].as_str().unwrap()))
        .collect();
    assert!(phases.contains(&("wait-healthy", "plan")), "{phases:?}");
    assert!(phases.contains(&("restore-data", "way-back")), "{phases:?}");
    assert_eq!(
        phases.last(),
        Some(&("wait-old-healthy", "way-back")),
        "{phases:?}"
    );
    expect_only_documented_fields(&document);
}

#[test]
fn the_result_of_an_upgrade_that_went_back_by_itself_lists_the_way_back_it_took() {
    let mut fake = FakeDocker::new("embedded");
    fake.set_env("FAKE_DOCKER_FAIL_AT", "stop");
    upgrade(&fake, &["--result", "stopped.json"]).expect_code(1);
    let document = result(&fake, "stopped.json");
    assert_eq!(document["outcome"], "rolled-back");
    let steps = document["steps"].as_array().unwrap();
    let stop = steps.iter().find(|s| s["id"] == "stop").unwrap();
    assert_eq!(
        (stop["id"].as_str(), stop["ok"].as_bool()),
        (Some("stop"), Some(false))
    );
    assert_eq!(stop["exit_code"], 1);
    let went_back: Vec<&str> = steps
        .iter()
        .filter(|s| s["phase"] == "way-back")
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert!(
        went_back.contains(&"$ docker rename rancher-v1.6.10 rancher"),
        "{went_back:?}"
    );
    assert_eq!(
        document["archive"]["bytes"],
        Value::Null,
        "no backup was taken"
    );
    expect_only_documented_fields(&document);
}

#[test]
fn a_result_file_that_cannot_be_written_is_refused_before_anything_runs() {
    let fake = FakeDocker::new("embedded");
    upgrade(&fake, &["--result", "no/such/dir/r.json"])
        .expect_one_line_refusal("choose another file with --result FILE");
    let args = ["--to", "v1.6.20", "--dry-run", "--result", "r.json"];
    let with_dry_run = run(&fake, &[&["upgrade"][..], &args].concat()).expect_code(2);
    assert!(
        with_dry_run.stderr.contains("cannot be used with"),
        "{}",
        with_dry_run.stderr
    );
    assert!(
        fake.mutating_calls().is_empty(),
        "{:?}",
        fake.mutating_calls()
    );
}
