//! Hostile and bad input: every value the operator passes (names, tags, image references, the
//! health URL, paths) and every value `docker inspect` hands over (env values, labels, odd
//! JSON) is either refused before anything runs (exit 2, one line on stderr, no docker call
//! for what the command line alone shows wrong, no file written), or carried verbatim and
//! safely: what reaches docker is byte for byte what the server had, and no `$(...)`, backtick
//! or `;` in it ever runs, whether the shell runbook runs or a shown command is pasted.

mod common;

use common::{FakeDocker, pong_server};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

const NEW_IMAGE: &str = "127.0.0.1:5599/rancher/server:v1.6.20";

// ------------------------------------------------------------------ helpers --

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// Exit 2 with one line on stderr, `rancher-upgrade: ...`, that holds `what`.
    #[track_caller]
    fn expect_one_line_refusal(&self, what: &str, case: &str) {
        assert_eq!(self.code, 2, "{case}: exit code; stderr: {}", self.stderr);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{case}: not one line: {:?}", self.stderr);
        assert!(
            lines[0].starts_with("rancher-upgrade: ") && lines[0].contains(what),
            "{case}: the line does not say {what:?}: {:?}",
            self.stderr
        );
    }
}

fn run<S: AsRef<std::ffi::OsStr>>(fake: &FakeDocker, args: &[S]) -> Ran {
    let output = fake.command().args(args).output().unwrap();
    Ran {
        code: output
            .status
            .code()
            .expect("exited by itself, not by a signal"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Nothing ran that changes anything, and the working directory holds no file.
#[track_caller]
fn assert_nothing_changed(fake: &FakeDocker, case: &str) {
    assert_eq!(
        fake.mutating_calls(),
        Vec::<Vec<String>>::new(),
        "{case}: docker was told to change something"
    );
    assert_eq!(
        fake.work_files(),
        Vec::<String>::new(),
        "{case}: a file was written"
    );
}

/// The commands the tool has: each is refused alike for a bad value of a shared option.
const COMMANDS: [&[&str]; 4] = [
    &["upgrade", "--dry-run", "--to", "v1.6.20"],
    &["runbook", "--to", "v1.6.20"],
    &["upgrade", "--yes", "--to", "v1.6.20"],
    &["rollback", "--yes"],
];

/// 10 KB of one letter: a name docker's rule allows, of a size nobody means.
fn ten_kb() -> String {
    "a".repeat(10 * 1024)
}

// ------------------------------------------------- refused on the command line --

#[test]
fn a_bad_name_url_or_target_is_refused_in_one_line_before_any_docker_call() {
    let names = [
        "",
        "-rf",
        "--yes",
        "ran\ncher",
        "ran\u{7}cher",
        "ran\u{1b}[31mcher",
        "ran\tcher",
        "ran cher",
        "rancher;id",
        "$(touch pwned)",
        "`touch pwned`",
        "ränchér",
        "/rancher",
    ];
    // (the options, what the refusal says, whether `rollback` takes them too)
    let mut cases: Vec<(Vec<String>, String, bool)> = Vec::new();
    for name in names {
        let shown = format!("{name:?}");
        cases.push((
            vec!["--container".into(), name.into()],
            format!("--container {shown}"),
            true,
        ));
        cases.push((
            vec![
                "--container".into(),
                "rancher".into(),
                "--data-container".into(),
                name.into(),
            ],
            format!("--data-container {shown}"),
            true,
        ));
    }
    cases.push((
        strings(&["--container", "rancher", "--data-container", "rancher"]),
        "is the server itself".into(),
        true,
    ));
    for url in [
        "",
        "-http://127.0.0.1:8080/ping",
        "http://",
        "https://127.0.0.1:8080/ping",
        "ftp://127.0.0.1/ping",
        "http://127.0.0.1:8080/\nping",
        "http://127.0.0.1:8080/ ping",
        "http://127.0.0.1:8080/\u{7}ping",
    ] {
        cases.push((
            strings(&["--container", "rancher", "--health-url", url]),
            format!("--health-url {url:?}"),
            true,
        ));
    }
    let long_tag = ten_kb();
    for target in [
        "",
        "-v1.6.20",
        "--yes",
        "v1.6.20\n",
        "v1.6.20\u{7}",
        "v1;rm",
        "$(touch pwned)",
        "`touch pwned`",
        "v1.6.20 v1.6.30",
        long_tag.as_str(),
    ] {
        // Only the upgrade commands take --to; the target replaces theirs.
        cases.push((
            strings(&["--container", "rancher", "--to", target]),
            format!("--to {target:?}"),
            false,
        ));
    }

    std::thread::scope(|scope| {
        for chunk in cases.chunks(cases.len().div_ceil(4)) {
            scope.spawn(move || {
                for (options, message, rollback_too) in chunk {
                    for command in COMMANDS {
                        if !rollback_too && command[0] == "rollback" {
                            continue;
                        }
                        let fake = FakeDocker::new("embedded");
                        let mut args: Vec<String> = strings(command);
                        if !rollback_too {
                            // The bad target in place of the command's own.
                            args.truncate(args.len() - 2);
                        }
                        args.extend(options.iter().cloned());
                        let case = format!("{:?}", abridged(&args));
                        run(&fake, &args).expect_one_line_refusal(message, &case);
                        assert_eq!(fake.calls(), Vec::<Vec<String>>::new(), "{case}");
                        assert!(fake.work_files().is_empty(), "{case}");
                    }
                }
            });
        }
    });
}

#[test]
fn arguments_that_are_not_utf8_are_refused_before_any_docker_call() {
    let not_utf8 = |text: &[u8]| OsString::from_vec(text.to_vec());
    let cases: [(&str, OsString); 4] = [
        ("--container", not_utf8(b"ran\xffcher")),
        ("--data-container", not_utf8(b"rancher-\xc3data")),
        ("--to", not_utf8(b"v1.6.\xfe")),
        ("--health-url", not_utf8(b"http://127.0.0.1:8080/\x80ping")),
    ];
    for (option, value) in cases {
        for command in COMMANDS {
            if option == "--to" && command[0] == "rollback" {
                continue;
            }
            let fake = FakeDocker::new("embedded");
            let mut args: Vec<OsString> = command.iter().map(OsString::from).collect();
            if option == "--to" {
                // The bad target in place of the command's own.
                args.truncate(args.len() - 2);
            }
            if option != "--container" {
                args.extend(["--container".into(), "rancher".into()]);
            }
            args.extend([option.into(), value.clone()]);
            let ran = run(&fake, &args);
            let case = format!("{command:?} {option} {value:?}");
            assert_eq!(ran.code, 2, "{case}: {}", ran.stderr);
            assert_eq!(
                ran.stderr.lines().next(),
                Some("error: invalid UTF-8 was detected in one or more arguments"),
                "{case}"
            );
            assert_eq!(fake.calls(), Vec::<Vec<String>>::new(), "{case}");
            assert!(fake.work_files().is_empty(), "{case}");
        }
    }
}

#[test]
fn a_path_that_is_not_there_is_refused_in_one_line_before_any_docker_call() {
    let cases: [(&[&str], &str); 3] = [
        (
            &[
                "upgrade",
                "--dry-run",
                "--to",
                "v1.6.20",
                "--backup-dir",
                "no/such/dir",
            ],
            "--backup-dir no/such/dir",
        ),
        (
            &["rollback", "--yes", "--backup", "no-such-backup.tar.gz"],
            "--backup no-such-backup.tar.gz",
        ),
        (
            &["rollback", "--dry-run", "--backup", "$(touch pwned).tar.gz"],
            "--backup $(touch pwned).tar.gz",
        ),
    ];
    for (args, message) in cases {
        let fake = FakeDocker::new("embedded");
        let args = [args, &["--container", "rancher"]].concat();
        run(&fake, &args).expect_one_line_refusal(message, &format!("{args:?}"));
        assert_eq!(fake.calls(), Vec::<Vec<String>>::new(), "{args:?}");
        assert!(fake.work_files().is_empty(), "{args:?}");
    }
}

#[test]
fn an_empty_or_dashed_path_is_refused_by_the_parser_before_any_docker_call() {
    for (command, option, value) in [
        (
            &["upgrade", "--dry-run", "--to", "v1.6.20"][..],
            "--backup-dir",
            "",
        ),
        (&["upgrade", "--yes", "--to", "v1.6.20"], "--log", ""),
        (&["rollback", "--yes"], "--backup", ""),
        (&["upgrade", "--yes", "--to", "v1.6.20"], "--docker", ""),
        (
            &["upgrade", "--yes", "--to", "v1.6.20"],
            "--backup-dir",
            "-rf",
        ),
        (&["upgrade", "--yes", "--to", "v1.6.20"], "--log", "--yes"),
        (&["rollback", "--yes"], "--backup", "-x.tar.gz"),
    ] {
        let fake = FakeDocker::new("embedded");
        let args = [command, &["--container", "rancher", option, value]].concat();
        let ran = run(&fake, &args);
        assert_eq!(ran.code, 2, "{args:?}: {}", ran.stderr);
        let first = ran.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ")
                && (first.contains(option) || first.contains(&value[..value.len().min(2)])),
            "{args:?}: {}",
            ran.stderr
        );
        assert_eq!(fake.calls(), Vec::<Vec<String>>::new(), "{args:?}");
        assert!(fake.work_files().is_empty(), "{args:?}");
    }
}

// ----------------------------------------- paths that can't be used as given --

#[test]
fn a_transcript_that_cannot_be_written_stops_the_run_before_any_change() {
    let fake = FakeDocker::new("embedded");
    std::fs::create_dir(fake.work_dir().join("a-directory")).unwrap();
    for log in ["no/such/dir/t.log", "a-directory"] {
        let args = [
            "upgrade",
            "--yes",
            "--container",
            "rancher",
            "--to",
            "v1.6.20",
            "--log",
            log,
        ];
        let ran = run(&fake, &args);
        assert_ne!(ran.code, 0, "{log}: {}", ran.stderr);
        assert_eq!(ran.stderr.lines().count(), 1, "{log}: {}", ran.stderr);
        assert!(
            ran.stderr
                .contains(&format!("can't write the transcript {log}")),
            "{log}: {}",
            ran.stderr
        );
        assert_eq!(
            fake.mutating_calls(),
            Vec::<Vec<String>>::new(),
            "{log}: docker was told to change something"
        );
        assert_eq!(fake.work_files(), ["a-directory"], "{log}");
    }
}

#[test]
fn a_transcript_that_cannot_be_written_is_bad_input() {
    let fake = FakeDocker::new("embedded");
    let args = [
        "upgrade",
        "--yes",
        "--container",
        "rancher",
        "--to",
        "v1.6.20",
        "--log",
        "no/such/dir/t.log",
    ];
    run(&fake, &args).expect_one_line_refusal("no/such/dir/t.log", "--log in a missing directory");
    assert_eq!(fake.calls(), Vec::<Vec<String>>::new());
}

#[test]
fn a_backup_dir_that_is_a_file_is_refused_as_bad_input() {
    let fake = FakeDocker::new("embedded");
    std::fs::write(fake.work_dir().join("a-file"), "x").unwrap();
    let args = [
        "upgrade",
        "--dry-run",
        "--container",
        "rancher",
        "--to",
        "v1.6.20",
        "--backup-dir",
        "a-file",
    ];
    run(&fake, &args).expect_one_line_refusal("--backup-dir a-file", "a file as --backup-dir");
    assert_eq!(fake.calls(), Vec::<Vec<String>>::new());
}

/// The archive is written on this machine, never mounted into a container: a ':' that
/// `docker -v` would split at is an ordinary character of the path.
#[test]
fn a_backup_dir_with_a_colon_holds_the_archive() {
    let fake = FakeDocker::new("embedded");
    std::fs::create_dir(fake.work_dir().join("backups:2026")).unwrap();
    let ping = pong_server();
    let args = [
        "upgrade",
        "--yes",
        "--container",
        "rancher",
        "--to",
        "v1.6.20",
        "--backup-dir",
        "backups:2026",
        "--health-url",
        &ping,
    ];
    let ran = run(&fake, &args);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let mut written: Vec<String> = std::fs::read_dir(fake.work_dir().join("backups:2026"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("rancher-data-backup-"))
        .collect();
    written.sort();
    assert_eq!(
        written.len(),
        2,
        "the archive and its checksum: {written:?}"
    );
    assert!(written[0].ends_with(".tar.zst"), "{written:?}");
}

#[test]
fn a_backup_dir_that_is_not_utf8_is_refused_before_anything_runs() {
    let fake = FakeDocker::new("embedded");
    let dir = OsString::from_vec(b"backups-\xff".to_vec());
    std::fs::create_dir(fake.work_dir().join(&dir)).unwrap();
    let mut args: Vec<OsString> = [
        "upgrade",
        "--yes",
        "--container",
        "rancher",
        "--to",
        "v1.6.20",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.extend(["--backup-dir".into(), dir]);
    let ran = run(&fake, &args);
    assert_ne!(ran.code, 101, "it panicked: {}", ran.stderr);
    ran.expect_one_line_refusal("--backup-dir", "a --backup-dir that is not UTF-8");
    assert_eq!(fake.mutating_calls(), Vec::<Vec<String>>::new());
}

#[test]
fn a_10_kb_container_name_is_refused_as_bad_input() {
    let fake = FakeDocker::new("embedded");
    let name = ten_kb();
    let args = [
        "upgrade",
        "--dry-run",
        "--container",
        &name,
        "--to",
        "v1.6.20",
    ];
    run(&fake, &args).expect_one_line_refusal("--container", "a 10 KB --container");
    assert!(fake.work_files().is_empty());
}

#[test]
fn a_target_reference_with_a_tag_docker_refuses_is_refused_before_any_docker_call() {
    let long = format!("rancher/server:{}", ten_kb());
    for target in [
        "rancher/server:v1;rm",
        "rancher/server:$(id)",
        long.as_str(),
    ] {
        let fake = FakeDocker::new("embedded");
        let args = [
            "upgrade",
            "--dry-run",
            "--container",
            "rancher",
            "--to",
            target,
        ];
        run(&fake, &args).expect_one_line_refusal("--to", &abridged(&strings(&args)));
        assert_eq!(
            fake.calls(),
            Vec::<Vec<String>>::new(),
            "{}",
            abridged(&strings(&args))
        );
    }
}

// --------------------------------------------- hostile values the server holds --

/// Env values that a shell would run, expand or split, put on the server, each touching a
/// file in `dir` if anything runs it. Returns the assignments as the server holds them.
fn hostile_env(dir: &Path) -> Vec<String> {
    let pwned = |n: u32| dir.join(format!("pwned-{n}")).display().to_string();
    let mut big = String::new();
    while big.len() < 10 * 1024 {
        big.push_str(&format!(
            "$(touch {}) `touch {}` ; '\"\\ ",
            pwned(9),
            pwned(9)
        ));
    }
    vec![
        format!("SUBSTITUTION=$(touch {})", pwned(1)),
        format!("BACKTICKS=`touch {}`", pwned(2)),
        format!("SEMICOLON=x; touch {}", pwned(3)),
        format!("QUOTES='; touch {}; '\"$(touch {})\"", pwned(4), pwned(5)),
        "EXPANSIONS=$HOME ${PATH} ~ * ? [a] {a,b} !! !-1 ^a^b".to_string(),
        "BACKSLASHES=a\\b \\\\ \\$x \\n".to_string(),
        "UNICODE=é — 🚀 \u{FFFD} \u{202E}rtl \u{200B}".to_string(),
        "LEADING_DASH=--privileged -v /:/host".to_string(),
        "EMPTY=".to_string(),
        format!("BIG={big}"),
        format!(
            "SESSION_TOKEN=tok $(touch {}) `touch {}` ;",
            pwned(6),
            pwned(7)
        ),
    ]
}

/// The secret values a shell runbook wants exported, by variable.
fn exported_secrets(server: &Value) -> BTreeMap<String, String> {
    let env = server["Config"]["Env"].as_array().unwrap();
    ["API_TOKEN", "SESSION_TOKEN"]
        .iter()
        .map(|name| {
            let value = env
                .iter()
                .find_map(|e| e.as_str()?.strip_prefix(&format!("{name}=")))
                .unwrap();
            (name.to_string(), value.to_string())
        })
        .collect()
}

/// The embedded fixture's server, with hostile env values and a hostile label.
fn hostile_host() -> (FakeDocker, Vec<String>, PathBuf) {
    let fake = FakeDocker::new("embedded");
    let canary = fake.work_dir().join("canary");
    std::fs::create_dir(&canary).unwrap();
    let env = hostile_env(&canary);
    let mut server = fake.container("rancher");
    for assignment in &env {
        server["Config"]["Env"]
            .as_array_mut()
            .unwrap()
            .push(assignment.clone().into());
    }
    server["Config"]["Labels"]["hostile"] = json!(format!("$(touch {}/pwned-8)", canary.display()));
    fake.put_container(&server);
    (fake, env, canary)
}

/// The health URL, with a substitution in its query: pong_server answers any path.
fn hostile_health_url(canary: &Path) -> String {
    format!(
        "{}?x=$(touch${{IFS}}{}/pwned-10)`touch${{IFS}}{}/pwned-11`",
        pong_server(),
        canary.display(),
        canary.display()
    )
}

/// The new server got every hostile value byte for byte, and nothing ran any of them.
#[track_caller]
fn assert_carried_verbatim_and_never_run(fake: &FakeDocker, env: &[String], canary: &Path) {
    let ran: Vec<String> = std::fs::read_dir(canary)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(ran.is_empty(), "a hostile value ran: {ran:?}");
    let new = fake.container("rancher");
    assert_eq!(new["Config"]["Image"], NEW_IMAGE);
    let now: Vec<&str> = new["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for assignment in env {
        assert!(
            now.contains(&assignment.as_str()),
            "the new server lacks {:?}",
            abridged(std::slice::from_ref(assignment))
        );
    }
    assert_eq!(
        new["Config"]["Labels"]["hostile"],
        json!(format!("$(touch {}/pwned-8)", canary.display()))
    );
}

#[test]
fn hostile_env_values_reach_the_new_server_verbatim_in_a_real_upgrade() {
    let (fake, env, canary) = hostile_host();
    let url = hostile_health_url(&canary);
    let args = [
        "upgrade",
        "--yes",
        "--container",
        "rancher",
        "--to",
        "v1.6.20",
        "--health-url",
        &url,
    ];
    let ran = run(&fake, &args);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_carried_verbatim_and_never_run(&fake, &env, &canary);
}

#[test]
fn the_shell_runbook_run_by_bash_carries_hostile_values_and_runs_none() {
    let (fake, env, canary) = hostile_host();
    let url = hostile_health_url(&canary);
    let options = [
        "--container",
        "rancher",
        "--to",
        "v1.6.20",
        "--health-url",
        &url,
    ];
    let script = run(
        &fake,
        &[&["runbook", "--format", "shell"][..], &options].concat(),
    );
    assert_eq!(script.code, 0, "{}", script.stderr);
    let file = fake.state_dir().join("runbook.sh");
    std::fs::write(&file, &script.stdout).unwrap();

    let mut bash = fake.process("bash");
    bash.arg(&file);
    for (var, value) in exported_secrets(&fake.container("rancher")) {
        bash.env(var, value);
    }
    let output = bash.output().unwrap();
    assert!(
        output.status.success(),
        "the runbook failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_carried_verbatim_and_never_run(&fake, &env, &canary);
}

#[test]
fn the_shown_commands_pasted_into_bash_carry_hostile_values_and_run_none() {
    let (fake, env, canary) = hostile_host();
    let shown = run(
        &fake,
        &[
            "upgrade",
            "--dry-run",
            "--show-secrets",
            "--container",
            "rancher",
            "--to",
            "v1.6.20",
        ],
    );
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    // The plan's own commands: the way back listed after them is for another day.
    let plan = shown.stdout.split("\nUntil step").next().unwrap();
    let pasted: Vec<&str> = plan
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("$ "))
        .collect();
    assert_eq!(pasted.len(), 10, "ten docker commands:\n{plan}");
    for line in pasted {
        let output = fake.process("bash").args(["-c", line]).output().unwrap();
        assert!(
            output.status.success(),
            "`{}` failed: {}",
            abridged(&[line.to_string()]),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_carried_verbatim_and_never_run(&fake, &env, &canary);
}

#[test]
fn env_values_that_are_odd_but_valid_text_are_carried_verbatim() {
    let fake = FakeDocker::new("embedded");
    let mut server = fake.container("rancher");
    let odd = [
        "REPLACEMENT=bytes docker could not decode: \u{FFFD}\u{FFFD}",
        "NON_ASCII=Zürich 東京 🚀",
        "BIDI=\u{202E}txt.exe",
    ];
    for assignment in odd {
        server["Config"]["Env"]
            .as_array_mut()
            .unwrap()
            .push(assignment.into());
    }
    fake.put_container(&server);
    let plan: Value = serde_json::from_str(
        &run(
            &fake,
            &[
                "upgrade",
                "--dry-run",
                "--format",
                "json",
                "--container",
                "rancher",
                "--to",
                "v1.6.20",
            ],
        )
        .stdout,
    )
    .unwrap();
    let run_new = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "create-new")
        .unwrap();
    for assignment in odd {
        assert!(
            run_new["argv"]
                .as_array()
                .unwrap()
                .contains(&json!(assignment)),
            "{assignment:?} is not in {}",
            run_new["argv"]
        );
    }
    let ping = pong_server();
    let ran = run(
        &fake,
        &[
            "upgrade",
            "--yes",
            "--container",
            "rancher",
            "--to",
            "v1.6.20",
            "--health-url",
            &ping,
        ],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let env = fake.container("rancher")["Config"]["Env"].clone();
    for assignment in odd {
        assert!(
            env.as_array().unwrap().contains(&json!(assignment)),
            "{assignment:?} is not in {env}"
        );
    }
}

#[test]
fn a_lone_surrogate_in_docker_inspect_is_refused_in_one_line_before_any_change() {
    let fake = FakeDocker::new("embedded");
    // JSON can't hold bytes that are not UTF-8, but it can escape half a UTF-16 pair, which
    // is no character at all. The fake prints it back as `\ud800`.
    let file = fake.state_dir().join("containers/rancher.json");
    let text = std::fs::read_to_string(&file).unwrap();
    let broken = text.replace(
        "\"GREETING=hello world\"",
        "\"GREETING=half \\ud800 a pair\"",
    );
    assert_ne!(text, broken);
    std::fs::write(&file, broken).unwrap();
    // It names what it could not read.
    assert_each_command_on_the_server_fails_in_one_line(&fake, "docker inspect rancher");
}

#[test]
fn a_server_image_reference_with_a_space_is_refused_in_one_line_before_any_change() {
    let fake = FakeDocker::new("embedded");
    let mut server = fake.container("rancher");
    server["Config"]["Image"] = json!("127.0.0.1:5599/rancher/server:v1.6.10; touch pwned");
    fake.put_container(&server);
    assert_each_command_on_the_server_fails_in_one_line(&fake, "contains ' '");
}

/// Every command that reads the server (`rollback` reads its state file first, and there is
/// none) fails with exit 1 and one line that holds `needle`, and changes nothing.
fn assert_each_command_on_the_server_fails_in_one_line(fake: &FakeDocker, needle: &str) {
    for &command in &COMMANDS[..3] {
        let args = [command, &["--container", "rancher"]].concat();
        let ran = run(fake, &args);
        assert_eq!(ran.code, 1, "{args:?}: {}", ran.stderr);
        assert_eq!(ran.stderr.lines().count(), 1, "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.contains(needle), "{args:?}: {}", ran.stderr);
        assert_nothing_changed(fake, &format!("{args:?}"));
    }
}

// ------------------------------------------- control characters are refused --

#[test]
fn a_control_character_in_the_servers_settings_is_refused_with_secrets_masked() {
    // (what the server holds, what the refusal shows, a secret it must not show)
    let cases: [(&str, &str, Option<&str>); 5] = [
        ("GREETING=line\nbreak", "GREETING=line\\nbreak", None),
        ("INDENT=\tx", "INDENT=\\tx", None),
        (
            "API_KEY=sec\u{1b}ret-MARKER",
            "API_KEY=********",
            Some("ret-MARKER"),
        ),
        (
            "DB_PASSWORD=pw\nMARKER",
            "DB_PASSWORD=********",
            Some("MARKER"),
        ),
        ("label", "team=ops\\u{7}", None),
    ];
    for (setting, shown, secret) in cases {
        for command in [
            &["upgrade", "--dry-run", "--to", "v1.6.20"][..],
            &["runbook", "--to", "v1.6.20", "--format", "shell"],
            &["upgrade", "--yes", "--to", "v1.6.20"],
        ] {
            let fake = FakeDocker::new("embedded");
            let mut server = fake.container("rancher");
            if setting == "label" {
                server["Config"]["Labels"]["team"] = json!("ops\u{7}");
            } else {
                server["Config"]["Env"]
                    .as_array_mut()
                    .unwrap()
                    .push(setting.into());
            }
            fake.put_container(&server);
            let args = [command, &["--container", "rancher"]].concat();
            let case = format!("{setting:?}, {args:?}");
            let ran = run(&fake, &args);
            ran.expect_one_line_refusal("control character", &case);
            assert!(ran.stderr.contains(shown), "{case}: {}", ran.stderr);
            if let Some(secret) = secret {
                assert!(!ran.stderr.contains(secret), "{case}: {}", ran.stderr);
            }
            assert!(ran.stdout.is_empty(), "{case}: {}", ran.stdout);
            assert_nothing_changed(&fake, &case);
        }
    }
}

#[test]
fn a_control_character_in_the_database_password_is_refused_masked() {
    let fake = FakeDocker::new("external-flags");
    let mut server = fake.container("rancher");
    let cmd = server["Config"]["Cmd"].as_array_mut().unwrap();
    let at = cmd.iter().position(|w| w == "--db-pass").unwrap();
    cmd[at + 1] = json!("pw\rMARKER");
    server["Args"] = server["Config"]["Cmd"].clone();
    fake.put_container(&server);
    let ran = run(
        &fake,
        &[
            "upgrade",
            "--yes",
            "--container",
            "rancher",
            "--to",
            "v1.6.20",
        ],
    );
    ran.expect_one_line_refusal("control character", "\\r in --db-pass");
    assert!(ran.stderr.contains("\"********\""), "{}", ran.stderr);
    assert!(!ran.stderr.contains("MARKER"), "{}", ran.stderr);
    assert_nothing_changed(&fake, "\\r in --db-pass");
}

#[test]
fn a_control_character_in_the_servers_release_is_refused_and_never_runs() {
    let fake = FakeDocker::new("embedded");
    let canary = fake.work_dir().join("canary");
    std::fs::create_dir(&canary).unwrap();
    let version = format!(
        "CATTLE_RANCHER_SERVER_VERSION=v1.6.10\ntouch {}/pwned\n#",
        canary.display()
    );
    // The image sets it, and the container has it from there.
    let images = fake.state_dir().join("images");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("v1.6.10"))
        .collect();
    files.push(fake.state_dir().join("containers/rancher.json"));
    for file in files {
        let mut object: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for entry in object["Config"]["Env"].as_array_mut().unwrap() {
            if entry
                .as_str()
                .unwrap()
                .starts_with("CATTLE_RANCHER_SERVER_VERSION=")
            {
                *entry = json!(version);
            }
        }
        std::fs::write(&file, serde_json::to_string_pretty(&object).unwrap()).unwrap();
    }
    let ping = pong_server();
    let ran = run(
        &fake,
        &[
            "runbook",
            "--format",
            "shell",
            "--container",
            "rancher",
            "--to",
            "v1.6.20",
            "--health-url",
            &ping,
        ],
    );
    if ran.code == 0 {
        let file = fake.state_dir().join("runbook.sh");
        std::fs::write(&file, &ran.stdout).unwrap();
        let _ = fake
            .process("bash")
            .arg(&file)
            .env("API_TOKEN", "tok-MARKER")
            .output()
            .unwrap();
        assert!(
            !canary.join("pwned").exists(),
            "the runbook ran a line of the server's version:\n{}",
            ran.stdout.lines().take(4).collect::<Vec<_>>().join("\n")
        );
    }
    ran.expect_one_line_refusal("control character", "a newline in the release");
}

// ------------------------------------------------ a data container not ours --

#[test]
fn a_data_container_that_is_not_the_servers_is_refused_before_anything_runs() {
    // A MySQL container of another application, with volumes of its own.
    let foreign = |fake: &FakeDocker| {
        let mut db = fake.container("rancher");
        db["Name"] = json!("/db");
        db["Id"] = json!("d".repeat(64));
        db["Config"]["Image"] = json!("mysql:5.7");
        for mount in db["Mounts"].as_array_mut().unwrap() {
            mount["Name"] = json!(format!("app-{}", &mount["Name"].as_str().unwrap()[..8]));
        }
        fake.put_container(&db);
    };
    let cases: [(&str, &str, &str); 3] = [
        (
            "embedded",
            "db",
            "data container db exists but holds other volumes",
        ),
        (
            "embedded",
            "rancher-v1.6.10",
            "--data-container rancher-v1.6.10 is the server's own name",
        ),
        (
            "wrong-data-container",
            "rancher-data",
            "data container rancher-data exists but holds other volumes",
        ),
    ];
    for (fixture, data, message) in cases {
        for command in [
            &["upgrade", "--dry-run", "--to", "v1.6.20"][..],
            &["upgrade", "--yes", "--to", "v1.6.20"],
        ] {
            let fake = FakeDocker::new(fixture);
            foreign(&fake);
            let args = [
                command,
                &["--container", "rancher", "--data-container", data],
            ]
            .concat();
            let case = format!("{fixture}: {args:?}");
            run(&fake, &args).expect_one_line_refusal(message, &case);
            assert_nothing_changed(&fake, &case);
        }
    }
}

// ------------------------------------------- paths carried verbatim and safely --

#[test]
fn paths_with_spaces_quotes_and_substitutions_are_used_as_they_are() {
    // Whatever runs them runs in the working directory: a `pwned-*` file would show there.
    let fake = FakeDocker::new("embedded");
    let backup_dir = "backups 'q' \"d\" $(touch pwned-1) `touch pwned-2` ;touch pwned-3";
    std::fs::create_dir(fake.work_dir().join(backup_dir)).unwrap();
    let log = "log $(touch pwned-4).txt";
    let ping = pong_server();
    let ran = run(
        &fake,
        &[
            "upgrade",
            "--yes",
            "--container",
            "rancher",
            "--to",
            "v1.6.20",
            "--backup-dir",
            backup_dir,
            "--log",
            log,
            "--health-url",
            &ping,
        ],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let kept: Vec<String> = std::fs::read_dir(fake.work_dir().join(backup_dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        kept.iter()
            .any(|f| f.starts_with("rancher-data-backup-v1.6.10-")),
        "the archive is in the directory named: {kept:?}"
    );
    assert!(
        kept.iter()
            .any(|f| f == "rancher-upgrade-rancher.state.json"),
        "{kept:?}"
    );
    assert!(
        fake.work_dir().join(log).is_file(),
        "the transcript is where --log says"
    );
    assert_no_pwned(&fake);

    // The same directory in a shell runbook, run by bash on a fresh host.
    let fresh = FakeDocker::new("embedded");
    std::fs::create_dir(fresh.work_dir().join(backup_dir)).unwrap();
    let script = run(
        &fresh,
        &[
            "runbook",
            "--format",
            "shell",
            "--container",
            "rancher",
            "--to",
            "v1.6.20",
            "--backup-dir",
            backup_dir,
            "--health-url",
            &ping,
        ],
    );
    assert_eq!(script.code, 0, "{}", script.stderr);
    let file = fresh.state_dir().join("runbook.sh");
    std::fs::write(&file, &script.stdout).unwrap();
    let output = fresh
        .process("bash")
        .arg(&file)
        .env("API_TOKEN", "tok-MARKER")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let archived = std::fs::read_dir(fresh.work_dir().join(backup_dir))
        .unwrap()
        .count();
    assert_eq!(
        archived, 2,
        "the runbook's archive and its checksum are in the directory named"
    );
    assert_no_pwned(&fresh);
}

#[test]
fn a_rollback_backup_that_is_no_archive_is_refused_before_the_server_is_touched() {
    let ping = pong_server();
    for (what, make) in [
        (
            "a directory",
            (|p: &Path| std::fs::create_dir(p).unwrap()) as fn(&Path),
        ),
        ("a file that is no archive", |p: &Path| {
            std::fs::write(p, "not an archive").unwrap()
        }),
    ] {
        let fake = FakeDocker::new("embedded");
        let server = ["--container", "rancher", "--health-url", &ping, "--yes"];
        let upgrade = run(
            &fake,
            &[&["upgrade", "--to", "v1.6.20"][..], &server].concat(),
        );
        assert_eq!(upgrade.code, 0, "{}", upgrade.stderr);
        make(&fake.work_dir().join("other.tar.gz"));
        let changes_before = fake.mutating_calls().len();

        let ran = run(
            &fake,
            &[&["rollback", "--backup", "other.tar.gz"][..], &server].concat(),
        );

        assert_eq!(
            fake.mutating_calls().len(),
            changes_before,
            "{what}: the rollback changed things before finding out:\n{}",
            ran.stderr
        );
        assert_eq!(
            fake.container("rancher")["State"]["Running"],
            true,
            "{what}"
        );
        ran.expect_one_line_refusal("--backup", what);
    }
}

#[test]
fn a_rollback_backup_whose_name_is_not_utf8_is_refused_before_the_server_is_touched() {
    let ping = pong_server();
    let fake = FakeDocker::new("embedded");
    let server = ["--container", "rancher", "--health-url", &ping, "--yes"];
    let upgrade = run(
        &fake,
        &[&["upgrade", "--to", "v1.6.20"][..], &server].concat(),
    );
    assert_eq!(upgrade.code, 0, "{}", upgrade.stderr);
    // The very archive the upgrade wrote, under a name that is not UTF-8.
    let archive = fake
        .work_files()
        .into_iter()
        .find(|f| f.ends_with(".tar.zst"))
        .unwrap();
    let copy = OsString::from_vec(b"copy-\xff.tar.zst".to_vec());
    std::fs::copy(fake.work_dir().join(archive), fake.work_dir().join(&copy)).unwrap();
    let changes_before = fake.mutating_calls().len();

    let mut args: Vec<OsString> = ["rollback", "--backup"]
        .iter()
        .map(OsString::from)
        .collect();
    args.push(copy);
    args.extend(server.iter().map(OsString::from));
    let ran = run(&fake, &args);

    assert_eq!(
        fake.mutating_calls().len(),
        changes_before,
        "the rollback changed things before finding out:\n{}",
        ran.stderr
    );
    ran.expect_one_line_refusal("--backup", "a --backup that is not UTF-8");
}

#[test]
fn a_transcript_whose_name_is_not_utf8_is_written_under_that_very_name() {
    let fake = FakeDocker::new("embedded");
    let log = OsString::from_vec(b"transcript-\xff.log".to_vec());
    let ping = pong_server();
    let mut args: Vec<OsString> = [
        "upgrade",
        "--yes",
        "--no-backup",
        "--container",
        "rancher",
        "--to",
        "v1.6.20",
        "--health-url",
        &ping,
        "--log",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(log.clone());
    let ran = run(&fake, &args);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let transcript = std::fs::read_to_string(fake.work_dir().join(&log)).unwrap();
    assert!(
        transcript.contains(" docker create --name rancher "),
        "{transcript}"
    );
}

// ------------------------------------------------------------------- bits --

#[track_caller]
fn assert_no_pwned(fake: &FakeDocker) {
    let ran: Vec<String> = fake
        .work_files()
        .into_iter()
        .filter(|f| f.starts_with("pwned"))
        .collect();
    assert!(ran.is_empty(), "a path ran as a command: {ran:?}");
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Words as a reader wants them in a failure message: long ones cut short.
fn abridged(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if w.chars().count() > 60 {
                format!(
                    "{}…({} bytes)",
                    w.chars().take(40).collect::<String>(),
                    w.len()
                )
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
