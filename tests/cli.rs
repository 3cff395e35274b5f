//! The built binary against the fake docker (`tests/support/fake-docker`), on states captured
//! from a real engine (`tests/fixtures/`): what it prints, what it refuses, and which docker
//! commands it issues. Showing a plan must never change anything.

mod common;

use common::{FakeDocker, Ran, fixture_container, pong_server};
use serde_json::{Value, json};
use std::path::Path;

const OLD_IMAGE: &str = "127.0.0.1:5599/rancher/server:v1.6.10";
const NEW_IMAGE: &str = "127.0.0.1:5599/rancher/server:v1.6.20";
const FORMATS: [&str; 4] = ["text", "markdown", "shell", "json"];

/// Every fixture, the tag it is upgraded to, and the exit code its plan ends with: 0 when
/// the plan is shown, 2 when the preflight refuses.
const FIXTURES: [(&str, &str, i32); 8] = [
    ("embedded", "v1.6.20", 0),
    ("external-flags", "v1.6.20", 0),
    ("external-env", "v1.6.20", 0),
    ("bind-mount", "v1.6.20", 0),
    ("second-upgrade", "v1.6.30", 0),
    ("data-container-loop", "v1.6.30", 2),
    ("wrong-data-container", "v1.6.20", 2),
    ("parked-name-taken", "v1.6.20", 2),
];

// ------------------------------------------------------------------ helpers --

/// The binary, with the fake as `docker` on PATH.
fn run(fake: &FakeDocker, args: &[&str]) -> Ran {
    fake.command().args(args).output().unwrap().into()
}

/// `upgrade --dry-run` of `rancher` to `to`, with `extra` arguments.
fn dry_run(fake: &FakeDocker, to: &str, extra: &[&str]) -> Ran {
    let args = [
        &["upgrade", "--dry-run", "--container", "rancher", "--to", to],
        extra,
    ]
    .concat();
    run(fake, &args)
}

/// `upgrade --dry-run --format json` of `rancher`, parsed.
fn dry_run_json(fake: &FakeDocker, to: &str, extra: &[&str]) -> Value {
    dry_run(fake, to, &[&["--format", "json"], extra].concat())
        .expect_code(0)
        .json()
}

fn step<'a>(plan: &'a Value, id: &str) -> &'a Value {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {plan:#}"))
}

fn words(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

/// The docker commands of a list of steps, in order: those not skipped, not a wait, not a
/// question to the operator.
fn docker_commands(steps: &Value) -> Vec<Vec<String>> {
    steps
        .as_array()
        .unwrap_or_else(|| panic!("not a list of steps: {steps}"))
        .iter()
        .filter(|s| s["skipped"].is_null() && !s["argv"].as_array().unwrap().is_empty())
        .map(|s| words(&s["argv"]))
        .collect()
}

/// The docker command in a shown line: the whole line, or the docker command inside a
/// backup's or a restore's pipeline.
fn engine_command(words: &[String]) -> Vec<String> {
    match words.iter().position(|w| w == "docker") {
        Some(start) => words[start..]
            .iter()
            .take_while(|w| !["|", ")", "&&", ">"].contains(&w.as_str()))
            .cloned()
            .collect(),
        None => words.to_vec(),
    }
}

/// The docker commands the plan runs, in order.
fn planned_commands(plan: &Value) -> Vec<Vec<String>> {
    docker_commands(&plan["steps"])
}

/// `-v VOLUME:PATH` of each data volume of `container`, in path order: how the plan creates
/// the data container.
fn data_volume_options(container: &Value) -> Vec<String> {
    let mut volumes: Vec<(String, String)> = container["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let source = if m["Type"] == "bind" {
                &m["Source"]
            } else {
                &m["Name"]
            };
            (
                m["Destination"].as_str().unwrap().to_string(),
                source.as_str().unwrap().to_string(),
            )
        })
        .collect();
    volumes.sort();
    volumes
        .into_iter()
        .flat_map(|(path, source)| ["-v".to_string(), format!("{source}:{path}")])
        .collect()
}

fn step_ids(plan: &Value) -> Vec<&str> {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

/// The text with each backup time stamp (`20261127T093551Z`) replaced by `STAMP`: two runs of
/// the binary a second apart name their archives differently.
fn without_stamps(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let is_stamp = |at: usize| {
        chars.len() >= at + 16
            && chars[at..at + 8].iter().all(char::is_ascii_digit)
            && chars[at + 8] == 'T'
            && chars[at + 9..at + 15].iter().all(char::is_ascii_digit)
            && chars[at + 15] == 'Z'
    };
    let (mut out, mut at) = (String::new(), 0);
    while at < chars.len() {
        if is_stamp(at) {
            out.push_str("STAMP");
            at += 16;
        } else {
            out.push(chars[at]);
            at += 1;
        }
    }
    out
}

fn commands_without_stamps(commands: Vec<Vec<String>>) -> Vec<Vec<String>> {
    commands
        .into_iter()
        .map(|c| c.iter().map(|w| without_stamps(w)).collect())
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Runs `check` for every fixture at once, one thread each.
fn for_each_fixture(check: impl Fn(&str, &str, i32) + Sync) {
    std::thread::scope(|scope| {
        for (fixture, to, code) in FIXTURES {
            let check = &check;
            scope.spawn(move || check(fixture, to, code));
        }
    });
}

fn subcommands(calls: &[Vec<String>]) -> Vec<&str> {
    calls.iter().map(|c| c[0].as_str()).collect()
}

/// What discovery runs, in no fixed order (two rounds, each at once): four typed inspects (the
/// server, the data container, the image, the parking name) and the `ps` of one-shot containers
/// an earlier run left.
const DISCOVERY: [&str; 5] = ["inspect", "inspect", "inspect", "inspect", "ps"];

/// The subcommands of `calls`, sorted: the order of discovery's parallel calls is not fixed.
fn discovery_subcommands(calls: &[Vec<String>]) -> Vec<&str> {
    let mut subcommands = subcommands(calls);
    subcommands.sort_unstable();
    subcommands
}

// ------------------------------------------------- showing changes nothing --

#[test]
fn showing_the_plan_of_any_fixture_in_any_format_only_reads() {
    for_each_fixture(|fixture, to, code| {
        for format in FORMATS {
            for mut args in [vec!["upgrade", "--dry-run"], vec!["runbook"]] {
                args.extend(["--format", format, "--container", "rancher", "--to", to]);
                let fake = FakeDocker::new(fixture);
                run(&fake, &args).expect_code(code);
                let calls = fake.calls();
                assert_eq!(
                    fake.mutating_calls(),
                    Vec::<Vec<String>>::new(),
                    "{fixture}: {args:?}"
                );
                assert_eq!(
                    discovery_subcommands(&calls),
                    DISCOVERY,
                    "{fixture}: {args:?}"
                );
                assert_eq!(
                    fake.work_files(),
                    Vec::<String>::new(),
                    "{fixture}: {args:?} wrote files"
                );
            }
        }
    });
}

#[test]
fn without_container_discovery_lists_the_servers_once_then_discovers_as_with_one() {
    for_each_fixture(|fixture, to, code| {
        for args in [
            &["upgrade", "--dry-run", "--to", to][..],
            &["runbook", "--format", "shell", "--to", to],
        ] {
            let fake = FakeDocker::new(fixture);
            run(&fake, args).expect_code(code);
            let calls = fake.calls();
            // The listing of the servers comes before anything else.
            assert_eq!(subcommands(&calls[..1]), ["ps"], "{fixture}: {calls:?}");
            assert_eq!(
                discovery_subcommands(&calls[1..]),
                DISCOVERY,
                "{fixture}: {calls:?}"
            );
        }
    });
}

// ------------------------------------------------------ the embedded server --

#[test]
fn embedded_server_without_backup_is_upgraded_with_the_documented_commands() {
    let fake = FakeDocker::new("embedded");
    let plan = dry_run_json(&fake, "v1.6.20", &["--no-backup"]);
    let data_volumes = data_volume_options(&fake.container("rancher"));

    assert_eq!(plan["container"], "rancher");
    assert_eq!(plan["from"], OLD_IMAGE);
    assert_eq!(plan["to"], NEW_IMAGE);
    assert_eq!(plan["mode"], "embedded");
    assert_eq!(plan["data_container"], "rancher-data");
    let expected: Vec<Vec<String>> = vec![
        strings(&["docker", "pull", NEW_IMAGE]),
        // While the old server still answers: nothing here needs it down.
        strings(&["docker", "update", "--restart=no", "rancher"]),
        [
            strings(&["docker", "create", "--name", "rancher-data"]),
            data_volumes,
            strings(&[OLD_IMAGE]),
        ]
        .concat(),
        strings(&["docker", "rename", "rancher", "rancher-v1.6.10"]),
        strings(&[
            "docker",
            "create",
            "--name",
            "rancher",
            "--volumes-from",
            "rancher-data",
            "--restart=unless-stopped",
            "-p",
            "8080:8080",
            "-e",
            "GREETING=hello world",
            "-e",
            "API_TOKEN",
            "--label=team=ops",
            NEW_IMAGE,
        ]),
        strings(&["docker", "stop", "-t", "60", "rancher-v1.6.10"]),
        strings(&["docker", "start", "rancher"]),
        strings(&["docker", "rm", "rancher-v1.6.10"]),
    ];
    assert_eq!(planned_commands(&plan), expected);
    // The token travels in docker's environment, never on a command line.
    assert_eq!(
        words(&step(&plan, "create-new")["environment"]),
        ["API_TOKEN=********"]
    );
    let wait = step(&plan, "wait-healthy");
    // Asked inside the container through the engine, never on this machine's ports.
    assert!(wait["probe"]["url"].is_null());
    assert_eq!(
        words(&wait["probe"]["ask"]),
        strings(&[
            "docker",
            "exec",
            "rancher",
            "curl",
            "-fsS",
            "--max-time",
            "5",
            "http://127.0.0.1:8080/ping"
        ])
    );
    assert_eq!(wait["probe"]["container"], "rancher");
}

#[test]
fn embedded_text_output_shows_the_same_commands_as_the_json() {
    let fake = FakeDocker::new("embedded");
    let plan: Value = serde_json::from_str(&without_stamps(
        &dry_run_json(&fake, "v1.6.20", &[]).to_string(),
    ))
    .unwrap();
    let text = dry_run(&fake, "v1.6.20", &[]).expect_code(0).stdout;
    let text = without_stamps(&text);

    // Each command is a `$ ` line a shell reads back as exactly the planned argv; the way
    // back follows the steps.
    let shown: Vec<Vec<String>> = text
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("$ "))
        .map(|command| engine_command(&shell_words::split(command).unwrap()))
        .collect();
    let planned = planned_commands(&plan);
    assert!(shown.len() > planned.len(), "{text}");
    assert_eq!(shown[..planned.len()], planned[..], "{text}");
    let way_back = docker_commands(&plan["way_back"]);
    assert_eq!(shown[planned.len()..], way_back[..], "{text}");
    assert!(
        text.contains("-e 'GREETING=hello world'"),
        "an env value with a space is quoted: {text}"
    );
}

#[test]
fn embedded_server_data_is_backed_up_before_the_new_version_starts() {
    let fake = FakeDocker::new("embedded");
    let plan = dry_run_json(&fake, "v1.6.20", &[]);
    let dir = std::fs::canonicalize(fake.work_dir()).unwrap();
    let dir = dir.to_str().unwrap();

    assert_eq!(
        step_ids(&plan),
        [
            "pull",
            "check-room",
            "disable-restart",
            "create-data-container",
            "park-old",
            "create-new",
            "stop",
            "backup",
            "run-new",
            "wait-healthy",
            "remove-old"
        ]
    );
    // By default the archive goes to the working directory, named after the old release.
    let archive = plan["backup_archive"].as_str().unwrap();
    let name = archive
        .strip_prefix(&format!("{dir}/"))
        .unwrap_or_else(|| panic!("{archive} is not in {dir}"));
    assert!(
        name.starts_with("rancher-data-backup-v1.6.10-") && name.ends_with(".tar.zst"),
        "{name}"
    );
    // The old image by its release tag: it names that image for good, unlike `stable`.
    let image_id = fixture_container("embedded", "rancher")["Config"]["Image"]
        .as_str()
        .unwrap()
        .to_string();
    // Before anything stops, the engine measures the volumes in a one-shot container of the old
    // image, each volume named as the data container will name it (it comes later).
    let volumes = [
        "2a50d15b00f2494d06463ccc63c330e77270e194568bd20880a203027d838f3d:/var/lib/cattle",
        "b7a22972c752e06047476bd71fdca966457ecd46dbea6365f0ebe8b079a2b5d8:/var/lib/mysql",
        "42ac22ebe32e8976c2168fbd15a201a826ebacaaa3ad6854a8a250030e59bf05:/var/log/mysql",
    ];
    assert_eq!(step(&plan, "check-room")["changes"], false);
    assert_eq!(step(&plan, "check-room")["room"]["dir"], dir);
    assert_eq!(
        words(&step(&plan, "check-room")["argv"]),
        strings(&[
            "docker",
            "run",
            "--rm",
            "--label",
            "rancher-upgrade.one-shot-for=rancher",
            "--log-driver",
            "none",
            "-v",
            volumes[0],
            "-v",
            volumes[1],
            "-v",
            volumes[2],
            "--entrypoint",
            "du",
            &image_id,
            "-sk",
            "/var/lib/mysql",
            "/var/lib/cattle",
            "/var/log/mysql"
        ])
    );
    // The engine streams the volumes out; this machine writes the archive.
    assert_eq!(step(&plan, "backup")["transfer"]["direction"], "backup");
    assert_eq!(
        step(&plan, "backup")["transfer"]["archive"]["path"],
        archive
    );
    assert_eq!(
        words(&step(&plan, "backup")["argv"]),
        strings(&["docker", "cp", "rancher-data:/var", "-"])
    );
    assert_eq!(
        fake.work_files(),
        Vec::<String>::new(),
        "a dry run writes no archive"
    );
}

#[test]
fn without_backup_there_is_no_backup_step_and_a_warning_says_so() {
    let fake = FakeDocker::new("embedded");
    let plan = dry_run_json(&fake, "v1.6.20", &["--no-backup"]);
    let ids = step_ids(&plan);
    assert!(
        !ids.contains(&"backup") && !ids.contains(&"verify-backup"),
        "{ids:?}"
    );
    assert!(plan["backup_archive"].is_null());
    let warnings = plan["warnings"].to_string();
    assert!(warnings.contains("--no-backup"), "{warnings}");
}

// ------------------------------------------------------- external databases --

/// The secret is in no output unless asked for: masked in text, Markdown and JSON, a shell
/// variable in the shell runbook, itself with --show-secrets.
fn assert_secret_is_shown_only_when_asked(fixture: &str, secret: &str, shell_form: &str) {
    let fake = FakeDocker::new(fixture);
    let base = ["--container", "rancher", "--to", "v1.6.20"];
    for format in ["text", "markdown", "json"] {
        for mut args in [vec!["upgrade", "--dry-run"], vec!["runbook"]] {
            args.extend(["--format", format]);
            args.extend(base);
            let ran = run(&fake, &args).expect_code(0);
            assert!(
                !ran.stdout.contains(secret) && !ran.stderr.contains(secret),
                "{args:?} shows the secret:\n{}{}",
                ran.stdout,
                ran.stderr
            );
            assert!(
                ran.stdout.contains("********"),
                "{args:?} masks nothing:\n{}",
                ran.stdout
            );
        }
    }

    let shell = run(
        &fake,
        &[&["runbook", "--format", "shell"], &base[..]].concat(),
    )
    .expect_code(0);
    assert!(!shell.stdout.contains(secret), "{}", shell.stdout);
    assert!(
        shell.stdout.contains(shell_form),
        "no {shell_form} in:\n{}",
        shell.stdout
    );

    for format in ["text", "json"] {
        let shown = run(
            &fake,
            &[
                &["upgrade", "--dry-run", "--show-secrets", "--format", format],
                &base[..],
            ]
            .concat(),
        )
        .expect_code(0);
        assert!(
            shown.stdout.contains(secret),
            "--show-secrets hides it:\n{}",
            shown.stdout
        );
    }
    assert_eq!(fake.mutating_calls(), Vec::<Vec<String>>::new());
}

#[test]
fn external_db_flags_are_carried_after_the_image_without_a_data_container() {
    let fake = FakeDocker::new("external-flags");
    let plan = dry_run_json(&fake, "v1.6.20", &[]);

    assert_eq!(plan["mode"], "external");
    assert!(plan["data_container"].is_null());
    let ids = step_ids(&plan);
    assert!(
        !ids.contains(&"create-data-container") && !ids.contains(&"check-room"),
        "no volume holds the database: {ids:?}"
    );
    let run_new = words(&step(&plan, "create-new")["argv"]);
    assert!(
        !run_new.contains(&"--volumes-from".to_string()),
        "{run_new:?}"
    );
    let after_image: Vec<String> = run_new
        .iter()
        .skip_while(|w| *w != NEW_IMAGE)
        .skip(1)
        .cloned()
        .collect();
    // The old server's own arguments, the password masked.
    let old_args = words(&fixture_container("external-flags", "rancher")["Config"]["Cmd"]);
    let masked: Vec<String> = old_args
        .iter()
        .map(|a| {
            if a == "pw-MARKER with space" {
                "********".to_string()
            } else {
                a.clone()
            }
        })
        .collect();
    assert_eq!(after_image, masked);

    let shown = dry_run_json(&fake, "v1.6.20", &["--show-secrets"]);
    let run_new = words(&step(&shown, "create-new")["argv"]);
    assert_eq!(run_new[run_new.len() - old_args.len()..], old_args[..]);
}

#[test]
fn external_db_is_dumped_by_the_old_images_mysqldump_with_the_password_in_no_argv() {
    for fixture in ["external-flags", "external-env"] {
        let fake = FakeDocker::new(fixture);
        let plan = dry_run_json(&fake, "v1.6.20", &["--show-secrets"]);
        let ids = step_ids(&plan);
        let at = |id: &str| ids.iter().position(|i| *i == id).unwrap();
        assert!(
            at("stop") < at("backup") && at("backup") < at("run-new"),
            "{fixture}: {ids:?}"
        );
        assert!(!ids.contains(&"confirm-database-backup"), "{fixture}");
        let backup = step(&plan, "backup");
        let archive = &backup["transfer"]["archive"];
        assert_eq!(archive["content"], "database-dump", "{fixture}");
        assert_eq!(archive["path"], plan["backup_archive"], "{fixture}");
        let file = archive["path"].as_str().unwrap();
        assert!(
            Path::new(file)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("rancher-db-backup-v1.6.10-")
                && file.ends_with(".sql.zst"),
            "{fixture}: {file}"
        );
        let argv = words(&backup["argv"]);
        assert_eq!(
            argv[..11],
            [
                "docker",
                "run",
                "--rm",
                "--label",
                "rancher-upgrade.one-shot-for=rancher",
                "--log-driver",
                "none",
                "-e",
                "MYSQL_PWD",
                "--entrypoint",
                "mysqldump"
            ],
            "{fixture}"
        );
        assert_eq!(argv[11], OLD_IMAGE, "{fixture}");
        let secret = if fixture == "external-flags" {
            "pw-MARKER with space"
        } else {
            "pw-MARKER"
        };
        for shown in [backup, &backup["undo"][0]] {
            // Even shown with its secrets, the command line holds none: it goes in docker's
            // environment.
            assert!(!shown["argv"].to_string().contains("MARKER"), "{shown:#}");
            assert_eq!(
                words(&shown["environment"]),
                [format!("MYSQL_PWD={secret}")],
                "{fixture}"
            );
        }
        assert_eq!(backup["undo"][0]["id"], "restore-data");
        assert_eq!(words(&backup["undo"][0]["argv"])[11], "mysql", "after -i");
        assert_eq!(
            plan["way_back"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap())
                .collect::<Vec<_>>(),
            [
                "stop-new",
                "remove-new",
                "restore-data",
                "start-old",
                "unpark-old",
                "restore-restart",
                "wait-old-healthy"
            ],
            "{fixture}: the dump goes back before the old server starts"
        );
    }
}

#[test]
fn external_db_with_no_backup_asks_to_confirm_a_dump_of_your_own() {
    let fake = FakeDocker::new("external-flags");
    let plan = dry_run_json(&fake, "v1.6.20", &["--no-backup"]);
    assert!(!step_ids(&plan).contains(&"backup"));
    assert!(plan["backup_archive"].is_null());
    let ask = step(&plan, "confirm-database-backup");
    let manual = ask["manual"].as_str().unwrap_or_else(|| panic!("{ask:#}"));
    assert!(
        manual.starts_with("mysqldump -h db.example -P 3306 -u cattle -p --single-transaction"),
        "{manual}"
    );
}

#[test]
fn external_db_password_flag_is_shown_only_when_asked() {
    assert_secret_is_shown_only_when_asked(
        "external-flags",
        "pw-MARKER",
        r#"--db-pass "${RANCHER_DB_PASS}""#,
    );
}

#[test]
fn external_db_env_is_carried_before_the_image_without_a_data_container() {
    let fake = FakeDocker::new("external-env");
    let plan = dry_run_json(&fake, "v1.6.20", &["--show-secrets"]);

    assert_eq!(plan["mode"], "external");
    assert!(plan["data_container"].is_null());
    let run_new = words(&step(&plan, "create-new")["argv"]);
    let image_at = run_new.iter().position(|w| w == NEW_IMAGE).unwrap();
    // The password goes by name: its value travels in docker's environment.
    for assignment in [
        "CATTLE_DB_CATTLE_MYSQL_HOST=db.example",
        "CATTLE_DB_CATTLE_PASSWORD",
    ] {
        let at = run_new.iter().position(|w| w == assignment);
        assert!(
            at.is_some_and(|i| i < image_at && run_new[i - 1] == "-e"),
            "no `-e {assignment}` before the image: {run_new:?}"
        );
    }
    assert_eq!(
        words(&step(&plan, "create-new")["environment"]),
        [
            "API_TOKEN=tok-MARKER",
            "CATTLE_DB_CATTLE_PASSWORD=pw-MARKER"
        ]
    );
    assert_eq!(
        run_new.last().unwrap(),
        NEW_IMAGE,
        "no arguments after the image"
    );
    assert!(
        !run_new.contains(&"--volumes-from".to_string()),
        "{run_new:?}"
    );
}

#[test]
fn external_db_password_env_is_shown_only_when_asked() {
    assert_secret_is_shown_only_when_asked(
        "external-env",
        "pw-MARKER",
        r#"CATTLE_DB_CATTLE_PASSWORD="${CATTLE_DB_CATTLE_PASSWORD}" docker "#,
    );
}

#[test]
fn a_secret_env_of_an_embedded_server_is_shown_only_when_asked() {
    assert_secret_is_shown_only_when_asked(
        "embedded",
        "tok-MARKER",
        r#"API_TOKEN="${API_TOKEN}" docker "#,
    );
}

// ------------------------------------------------- mounts and data containers --

#[test]
fn a_bind_mounted_database_is_held_by_the_data_container_and_kept_on_the_new_server() {
    let fake = FakeDocker::new("bind-mount");
    let plan = dry_run_json(&fake, "v1.6.20", &[]);

    let data_volumes = data_volume_options(&fake.container("rancher"));
    assert!(
        data_volumes.contains(&"/srv/rancher-mysql:/var/lib/mysql".to_string()),
        "{data_volumes:?}"
    );
    assert_eq!(
        words(&step(&plan, "create-data-container")["argv"]),
        [
            strings(&["docker", "create", "--name", "rancher-data"]),
            data_volumes,
            strings(&[OLD_IMAGE]),
        ]
        .concat()
    );
    let run_new = words(&step(&plan, "create-new")["argv"]);
    let volumes_from: Vec<_> = run_new
        .windows(2)
        .filter(|w| w[0] == "--volumes-from")
        .collect();
    assert_eq!(volumes_from, [["--volumes-from", "rancher-data"]]);
    // The old server's own -v, as docker recorded it: the same directory at the same path.
    assert!(
        run_new.contains(&"--volume=/srv/rancher-mysql:/var/lib/mysql".to_string()),
        "{run_new:?}"
    );
}

#[test]
fn a_second_upgrade_reuses_rancher_data_instead_of_creating_it() {
    let fake = FakeDocker::new("second-upgrade");
    let plan = dry_run_json(&fake, "v1.6.30", &[]);

    assert_eq!(plan["from_version"], "v1.6.20");
    let create = step(&plan, "create-data-container");
    let why = create["skipped"]
        .as_str()
        .unwrap_or_else(|| panic!("not skipped: {create:#}"));
    assert!(why.contains("rancher-data"), "{why}");
    let run_new = words(&step(&plan, "create-new")["argv"]);
    let volumes_from: Vec<_> = run_new
        .windows(2)
        .filter(|w| w[0] == "--volumes-from")
        .collect();
    assert_eq!(
        volumes_from,
        [["--volumes-from", "rancher-data"]],
        "{run_new:?}"
    );
    let creates: Vec<_> = planned_commands(&plan)
        .into_iter()
        .filter(|c| c[1] == "create")
        .collect();
    assert!(
        creates.len() == 1 && creates[0][2..4] == ["--name", "rancher"],
        "only the new server is created: {creates:?}"
    );
}

/// The documented upgrade done with `--name rancher` for the new server leaves rancher-data
/// naming rancher, which takes its volumes from rancher-data: a loop dockerd never finishes
/// starting on. Reusing rancher-data would keep it; the refusal names the way out, which works.
#[test]
fn a_rancher_data_naming_the_server_is_refused_with_a_way_out_that_ends_the_loop() {
    let fake = FakeDocker::new("data-container-loop");
    let ran = dry_run(&fake, "v1.6.30", &[])
        .expect_one_line_refusal("rancher-data takes its volumes from rancher by name");
    assert!(
        ran.stderr.contains("moby#38825")
            && ran.stderr.contains("--data-container rancher-data-v1.6.20"),
        "{}",
        ran.stderr
    );
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
    assert_eq!(fake.mutating_calls(), Vec::<Vec<String>>::new());

    // The way out: a new data container that names the server's very volumes, no container.
    let server_volumes = data_volume_options(&fake.container("rancher"));
    let health_url = pong_server();
    run(
        &fake,
        &[
            "upgrade",
            "--yes",
            "--no-backup",
            "--health-url",
            &health_url,
            "--container",
            "rancher",
            "--to",
            "v1.6.30",
            "--data-container",
            "rancher-data-v1.6.20",
        ],
    )
    .expect_code(0);
    let created = fake.container("rancher-data-v1.6.20");
    assert_eq!(created["HostConfig"]["VolumesFrom"], Value::Null);
    assert_eq!(data_volume_options(&created), server_volumes);
    let new = fake.container("rancher");
    assert_eq!(
        new["HostConfig"]["VolumesFrom"],
        json!(["rancher-data-v1.6.20"])
    );
    assert!(
        fake.container_names()
            .iter()
            .all(|n| n != "rancher-v1.6.20"),
        "{:?}",
        fake.container_names()
    );
    // The old rancher-data now names a container that takes nothing from it.
    assert_eq!(
        fake.container("rancher-data")["HostConfig"]["VolumesFrom"],
        json!(["rancher"])
    );
}

#[test]
fn a_rancher_data_holding_other_volumes_is_refused() {
    let fake = FakeDocker::new("wrong-data-container");
    let ran = dry_run(&fake, "v1.6.20", &[]).expect_code(2);
    assert!(
        ran.stderr.contains("rancher-data") && ran.stderr.contains("other volumes"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stdout.is_empty(),
        "a refused plan prints no plan: {}",
        ran.stdout
    );
    assert_eq!(fake.mutating_calls(), Vec::<Vec<String>>::new());
}

#[test]
fn a_taken_parking_name_is_refused() {
    let fake = FakeDocker::new("parked-name-taken");
    let ran = run(
        &fake,
        &["runbook", "--container", "rancher", "--to", "v1.6.20"],
    )
    .expect_code(2);
    assert!(
        ran.stderr.contains("rancher-v1.6.10") && ran.stderr.contains("already exists"),
        "{}",
        ran.stderr
    );
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
    assert_eq!(fake.mutating_calls(), Vec::<Vec<String>>::new());
}

// ------------------------------------------------------ finding the server --

/// A copy of the fixture's server under another name and id, running `image`.
fn another_container(fake: &FakeDocker, name: &str, image: &str, running: bool) -> Value {
    let mut container = fake.container("rancher");
    container["Name"] = format!("/{name}").into();
    container["Id"] = format!("{:0>64}", name.len()).into();
    container["Config"]["Image"] = image.into();
    container["State"]["Running"] = running.into();
    container["State"]["Status"] = if running { "running" } else { "exited" }.into();
    container
}

#[test]
fn without_container_the_one_running_rancher_server_is_used() {
    let fake = FakeDocker::new("embedded");
    fake.put_container(&another_container(
        &fake,
        "web",
        "127.0.0.1:5599/busybox:latest",
        true,
    ));
    fake.put_container(&another_container(
        &fake,
        "rancher-stopped",
        NEW_IMAGE,
        false,
    ));

    let ran = run(
        &fake,
        &[
            "upgrade",
            "--dry-run",
            "--format",
            "json",
            "--to",
            "v1.6.20",
        ],
    )
    .expect_code(0);
    assert_eq!(ran.json()["container"], "rancher");
    let calls = fake.calls();
    assert_eq!(calls[0][0], "ps");
    // The server and the data container are inspected at once: either may be logged first.
    assert!(
        calls[1..3].contains(&strings(&[
            "inspect",
            "--type",
            "container",
            "--",
            "rancher"
        ])),
        "{calls:?}"
    );
}

#[test]
fn without_container_and_no_running_rancher_server_it_asks_for_one() {
    let fake = FakeDocker::new("embedded");
    let mut server = fake.container("rancher");
    server["State"]["Running"] = false.into();
    server["State"]["Status"] = "exited".into();
    fake.put_container(&server);
    fake.put_container(&another_container(
        &fake,
        "web",
        "127.0.0.1:5599/busybox:latest",
        true,
    ));

    let ran = run(&fake, &["upgrade", "--dry-run", "--to", "v1.6.20"])
        .expect_one_line_refusal("--container");
    assert!(
        ran.stderr.contains("no running container"),
        "{}",
        ran.stderr
    );
    assert_eq!(subcommands(&fake.calls()), ["ps"]);
}

#[test]
fn without_container_and_two_running_rancher_servers_it_lists_both() {
    let fake = FakeDocker::new("embedded");
    fake.put_container(&another_container(&fake, "rancher-two", NEW_IMAGE, true));

    let ran = run(&fake, &["runbook", "--to", "v1.6.20"]).expect_one_line_refusal("--container");
    assert!(
        ran.stderr.contains("rancher") && ran.stderr.contains("rancher-two"),
        "the candidates are not listed: {}",
        ran.stderr
    );
    assert_eq!(subcommands(&fake.calls()), ["ps"]);
}

#[test]
fn a_container_that_does_not_exist_is_named() {
    let fake = FakeDocker::new("embedded");
    let ran = run(
        &fake,
        &[
            "upgrade",
            "--dry-run",
            "--container",
            "ranch",
            "--to",
            "v1.6.20",
        ],
    )
    .expect_one_line_refusal("\"ranch\"");
    assert!(ran.stderr.contains("--container"), "{}", ran.stderr);
    assert_eq!(fake.mutating_calls(), Vec::<Vec<String>>::new());
}

// ------------------------------------------------------ finding docker --

#[test]
fn docker_is_found_on_path() {
    let fake = FakeDocker::new("embedded");
    run(
        &fake,
        &["runbook", "--container", "rancher", "--to", "v1.6.20"],
    )
    .expect_code(0);
    assert!(!fake.calls().is_empty(), "the docker on PATH was not used");
}

#[test]
fn rancher_upgrade_docker_names_the_docker_binary() {
    let fake = FakeDocker::new("embedded");
    fake.command_without_docker_on_path()
        .env("RANCHER_UPGRADE_DOCKER", common::script())
        .args(["runbook", "--container", "rancher", "--to", "v1.6.20"])
        .assert()
        .code(0);
    assert_eq!(discovery_subcommands(&fake.calls()), DISCOVERY);
}

#[test]
fn the_docker_option_names_the_docker_binary() {
    let fake = FakeDocker::new("embedded");
    fake.command_without_docker_on_path()
        .args([
            "runbook",
            "--container",
            "rancher",
            "--to",
            "v1.6.20",
            "--docker",
        ])
        .arg(common::script())
        .assert()
        .code(0);
    assert_eq!(discovery_subcommands(&fake.calls()), DISCOVERY);
}

#[test]
fn a_docker_path_with_nothing_there_is_refused() {
    let fake = FakeDocker::new("embedded");
    let ran = run(
        &fake,
        &[
            "upgrade",
            "--dry-run",
            "--docker",
            "/nonexistent",
            "--container",
            "rancher",
            "--to",
            "v1.6.20",
        ],
    )
    .expect_one_line_refusal("/nonexistent");
    assert!(ran.stderr.contains("no executable"), "{}", ran.stderr);
    assert!(fake.calls().is_empty());
}

#[test]
fn without_docker_on_path_both_ways_to_name_it_are_given() {
    let fake = FakeDocker::new("embedded");
    let empty = tempfile::tempdir().unwrap();
    let ran: Ran = fake
        .command()
        .env("PATH", empty.path())
        .args([
            "upgrade",
            "--dry-run",
            "--container",
            "rancher",
            "--to",
            "v1.6.20",
        ])
        .output()
        .unwrap()
        .into();
    let ran = ran.expect_one_line_refusal("--docker");
    assert!(
        ran.stderr.contains("RANCHER_UPGRADE_DOCKER"),
        "{}",
        ran.stderr
    );
    assert!(fake.calls().is_empty());
}

#[test]
fn docker_host_reaches_docker_untouched() {
    let mut fake = FakeDocker::new("embedded");
    fake.set_env("DOCKER_HOST", "tcp://docker.example:2376");
    run(&fake, &["upgrade", "--dry-run", "--to", "v1.6.20"]).expect_code(0);

    let seen = fake.docker_env();
    assert_eq!(seen.len(), fake.calls().len());
    assert_eq!(seen.len(), 1 + DISCOVERY.len());
    for env in seen {
        assert_eq!(env["DOCKER_HOST"], "tcp://docker.example:2376");
    }
}

// ------------------------------------------------------------ bad input --

#[test]
fn bad_options_are_refused_in_one_line_before_any_docker_call() {
    let cases: [(&[&str], &str); 5] = [
        (&["--to", "v1;rm"], "--to \"v1;rm\""),
        (&["--to", ""], "--to \"\""),
        (
            &["--container=-rf", "--to", "v1.6.20"],
            "--container \"-rf\"",
        ),
        (
            &["--data-container", "a b", "--to", "v1.6.20"],
            "--data-container \"a b\"",
        ),
        (
            &["--health-url", "ftp://x", "--to", "v1.6.20"],
            "--health-url \"ftp://x\"",
        ),
    ];
    for (options, message) in cases {
        for command in [
            &["upgrade", "--dry-run"][..],
            &["runbook"],
            &["upgrade", "--yes"],
        ] {
            let fake = FakeDocker::new("embedded");
            let args = [command, options].concat();
            run(&fake, &args).expect_one_line_refusal(message);
            assert_eq!(fake.calls(), Vec::<Vec<String>>::new(), "{args:?}");
        }
    }
}

#[test]

fn a_container_name_that_looks_like_an_option_is_refused_in_one_line() {
    let fake = FakeDocker::new("embedded");
    run(
        &fake,
        &[
            "upgrade",
            "--dry-run",
            "--container",
            "-rf",
            "--to",
            "v1.6.20",
        ],
    )
    .expect_one_line_refusal("--container \"-rf\"");
    assert!(fake.calls().is_empty());
}

#[test]
fn a_container_name_that_looks_like_an_option_never_reaches_docker() {
    let fake = FakeDocker::new("embedded");
    run(
        &fake,
        &[
            "upgrade",
            "--dry-run",
            "--container",
            "-rf",
            "--to",
            "v1.6.20",
        ],
    )
    .expect_code(2);
    assert!(fake.calls().is_empty());
}

#[test]
fn a_target_pinned_by_digest_is_refused_after_discovery() {
    let fake = FakeDocker::new("embedded");
    let pinned = format!("{NEW_IMAGE}@sha256:{}", "0".repeat(64));
    let ran = dry_run(&fake, &pinned, &[]).expect_one_line_refusal("pinned by digest");
    assert!(ran.stdout.is_empty());
    assert_eq!(discovery_subcommands(&fake.calls()), DISCOVERY);
}

#[test]
fn a_downgrade_is_refused_unless_allowed() {
    let fake = FakeDocker::new("embedded");
    let ran =
        dry_run(&fake, "v1.6.9", &[]).expect_one_line_refusal("older than the running v1.6.10");
    assert!(ran.stderr.contains("--allow-downgrade"), "{}", ran.stderr);

    let plan = dry_run_json(&fake, "v1.6.9", &["--allow-downgrade"]);
    assert_eq!(plan["to"], "127.0.0.1:5599/rancher/server:v1.6.9");
    assert_eq!(fake.mutating_calls(), Vec::<Vec<String>>::new());
}

// ------------------------------------------------------- the shell runbook --

#[test]
fn the_shell_runbook_of_every_plannable_fixture_is_valid_bash() {
    for (fixture, to, code) in FIXTURES {
        if code != 0 {
            continue;
        }
        let fake = FakeDocker::new(fixture);
        let script = run(
            &fake,
            &[
                "runbook",
                "--format",
                "shell",
                "--container",
                "rancher",
                "--to",
                to,
            ],
        )
        .expect_code(0)
        .stdout;
        let file = fake.state_dir().join("runbook.sh");
        std::fs::write(&file, &script).unwrap();
        let check = std::process::Command::new("bash")
            .arg("-n")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{fixture}: bash -n: {}\n{script}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

/// The upgrade of `rancher` to v1.6.20 that a runbook shows, waiting for `ping`.
fn runbook_options(ping: &str) -> [&str; 6] {
    [
        "--container",
        "rancher",
        "--to",
        "v1.6.20",
        "--health-url",
        ping,
    ]
}

/// Runs the shell runbook of the upgrade of the server of `fake` to v1.6.20 with bash, its
/// secrets exported: whether it succeeded, and what bash printed.
fn run_shell_runbook(fake: &FakeDocker, ping: &str, secrets: &[(&str, &str)]) -> (bool, String) {
    let options = runbook_options(ping);
    let script = run(
        fake,
        &[&["runbook", "--format", "shell"], &options[..]].concat(),
    )
    .expect_code(0)
    .stdout;
    let file = fake.state_dir().join("runbook.sh");
    std::fs::write(&file, &script).unwrap();
    let bash = fake
        .process("bash")
        .arg(&file)
        .envs(secrets.iter().copied())
        .output()
        .unwrap();
    let shown = format!(
        "{}\n{}",
        String::from_utf8_lossy(&bash.stdout),
        String::from_utf8_lossy(&bash.stderr)
    );
    (bash.status.success(), shown)
}

#[test]
fn the_shell_runbook_dumps_an_external_database_by_hand_and_checks_it_is_whole() {
    for (fixture, password_var, password) in [
        ("external-flags", "RANCHER_DB_PASS", "pw-MARKER with space"),
        ("external-env", "CATTLE_DB_CATTLE_PASSWORD", "pw-MARKER"),
    ] {
        let secrets = [("API_TOKEN", "tok-MARKER"), (password_var, password)];
        let fake = FakeDocker::new(fixture);
        let (ok, shown) = run_shell_runbook(&fake, &pong_server(), &secrets);
        assert!(ok, "{fixture}: the runbook failed:\n{shown}");
        assert!(
            shown.contains("\n-- Dump completed on "),
            "grep shows the line:\n{shown}"
        );
        let files = fake.work_files();
        let [dump, checksum] = &files[..] else {
            panic!("{fixture}: the dump and its checksum: {files:?}");
        };
        assert!(dump.starts_with("rancher-db-backup-v1.6.10-") && dump.ends_with(".sql.zst"));
        let checked = std::process::Command::new("sha256sum")
            .arg("-c")
            .arg(checksum)
            .current_dir(fake.work_dir())
            .output()
            .unwrap();
        assert!(checked.status.success(), "{checked:?}");
        let served: Vec<String> = fake
            .database_clients()
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        assert_eq!(
            served,
            ["mysqldump"],
            "{fixture}: the database accepted the password"
        );
        assert_eq!(fake.container("rancher")["Config"]["Image"], NEW_IMAGE);

        // A dump cut short stops the runbook before its checksum, and before the new version.
        let mut cut = FakeDocker::new(fixture);
        cut.set_env("FAKE_DOCKER_DUMP_CUT", "1");
        let (ok, shown) = run_shell_runbook(&cut, &pong_server(), &secrets);
        assert!(!ok, "{fixture}: a cut dump went on:\n{shown}");
        assert!(
            !cut.work_files().iter().any(|f| f.ends_with(".sha256")),
            "{:?}",
            cut.work_files()
        );
        assert!(
            !cut.mutating_calls()
                .contains(&strings(&["start", "rancher"]))
        );
    }
}

#[test]
fn the_shell_runbook_run_by_bash_issues_exactly_the_planned_commands() {
    let fake = FakeDocker::new("embedded");
    let ping = pong_server();
    let plan = run(
        &fake,
        &[
            &["upgrade", "--dry-run", "--format", "json", "--show-secrets"],
            &runbook_options(&ping)[..],
        ]
        .concat(),
    )
    .expect_code(0)
    .json();
    let (ok, shown) = run_shell_runbook(&fake, &ping, &[("API_TOKEN", "tok-MARKER")]);
    assert!(ok, "the runbook failed:\n{shown}");

    // The fake records docker's calls; the runbook's other commands, the host's `zstd` and
    // `sha256sum` writing the archive and its checksum, must have passed for bash to succeed.
    let planned: Vec<Vec<String>> = planned_commands(&plan)
        .into_iter()
        .filter(|c| c[0] == "docker")
        .map(|c| c[1..].to_vec())
        .collect();
    assert_eq!(
        commands_without_stamps(fake.mutating_calls()),
        commands_without_stamps(planned)
    );
    // The archive in the working directory holds the old server's own volumes.
    let old = fixture_container("embedded", "rancher");
    let archives = fake.work_files();
    assert_eq!(
        archives.len(),
        2,
        "the archive and its checksum: {archives:?}"
    );
    assert!(archives[0].starts_with("rancher-data-backup-v1.6.10-"));
    let checked = std::process::Command::new("sha256sum")
        .arg("-c")
        .arg(&archives[1])
        .current_dir(fake.work_dir())
        .output()
        .unwrap();
    assert!(checked.status.success(), "{checked:?}");
    for mount in old["Mounts"].as_array().unwrap() {
        let destination = mount["Destination"].as_str().unwrap();
        let marker = std::process::Command::new("tar")
            .arg("--zstd")
            .arg("-xOf")
            .arg(fake.work_dir().join(&archives[0]))
            .arg(format!("{}/fake-docker-mount", &destination[1..]))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(marker.stdout).unwrap().trim(),
            mount["Name"].as_str().unwrap(),
            "{destination} in the archive"
        );
    }
    // What the host holds afterwards: the new release on the old volumes, the old container gone.
    let new = fake.container("rancher");
    assert_eq!(new["Config"]["Image"], NEW_IMAGE);
    assert_eq!(new["State"]["Running"], true);
    assert_eq!(new["Mounts"], old["Mounts"]);
    assert_eq!(
        new["HostConfig"]["RestartPolicy"],
        old["HostConfig"]["RestartPolicy"]
    );
    assert_eq!(
        new["HostConfig"]["PortBindings"],
        old["HostConfig"]["PortBindings"]
    );
    let env = words(&new["Config"]["Env"]);
    for assignment in [
        "GREETING=hello world",
        "API_TOKEN=tok-MARKER",
        "CATTLE_RANCHER_SERVER_VERSION=v1.6.20",
    ] {
        assert!(env.contains(&assignment.to_string()), "{env:?}");
    }
    assert_eq!(fake.container_names(), ["rancher", "rancher-data"]);
}

// ------------------------------------------------- the fake docker itself --

/// The fake docker itself, as the binary would run it.
fn fake_docker(fake: &FakeDocker, args: &[&str]) -> Ran {
    fake.process(common::script())
        .args(args)
        .output()
        .unwrap()
        .into()
}

#[test]
fn the_fake_docker_inspects_like_the_real_one() {
    let fake = FakeDocker::new("embedded");
    let found =
        fake_docker(&fake, &["inspect", "--type", "container", "--", "rancher"]).expect_code(0);
    assert_eq!(
        found.json(),
        Value::Array(vec![fixture_container("embedded", "rancher")])
    );

    let image_id = fixture_container("embedded", "rancher")["Image"]
        .as_str()
        .unwrap()
        .to_string();
    let partly = fake_docker(&fake, &["inspect", "--", &image_id, "rancher-data"]).expect_code(1);
    assert_eq!(partly.json()[0]["Id"], image_id.as_str());
    assert_eq!(partly.stderr, "Error: No such object: rancher-data\n");

    let none = fake_docker(&fake, &["inspect", "--type", "container", "--", "nope"]).expect_code(1);
    assert_eq!(none.stdout, "[]\n");
    assert_eq!(
        none.stderr,
        "Error response from daemon: No such container: nope\n"
    );

    let running = fake_docker(
        &fake,
        &["inspect", "--format", "{{.State.Running}}", "rancher"],
    )
    .expect_code(0);
    assert_eq!(running.stdout, "true\n");
    let id = fake_docker(&fake, &["inspect", "--format", "{{.Id}}", "rancher"]).expect_code(0);
    assert_eq!(
        id.stdout.trim(),
        fixture_container("embedded", "rancher")["Id"]
    );
    fake_docker(&fake, &["inspect", "--format", "{{.Name}}", "rancher"]).expect_code(2);
    fake_docker(&fake, &["frobnicate"]).expect_code(2);
}

#[test]
fn the_fake_docker_fails_on_cue_without_changing_anything() {
    let mut fake = FakeDocker::new("embedded");
    fake.set_env("FAKE_DOCKER_FAIL_AT", "stop")
        .set_env("FAKE_DOCKER_FAIL_NTH", "2");
    fake_docker(&fake, &["stop", "-t", "1", "rancher"]).expect_code(0);
    fake_docker(&fake, &["start", "rancher"]).expect_code(0);
    let failed = fake_docker(&fake, &["stop", "rancher"]).expect_code(1);
    assert_eq!(
        failed.stderr,
        "Error response from daemon: injected failure at stop\n"
    );
    assert_eq!(fake.container("rancher")["State"]["Running"], true);
    assert_eq!(
        fake.calls_of("stop").len(),
        2,
        "the failed call is recorded too"
    );

    fake.unset_env("FAKE_DOCKER_FAIL_NTH")
        .unset_env("FAKE_DOCKER_FAIL_AT");
    fake.set_env("FAKE_DOCKER_FAIL_AT", "pull")
        .set_env("FAKE_DOCKER_FAIL_MODE", "kill");
    let killed = fake
        .process(common::script())
        .args(["pull", NEW_IMAGE])
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(killed.signal(), Some(9));
}

#[test]
fn the_fake_docker_runs_a_server_that_dies_when_told() {
    let mut fake = FakeDocker::new("second-upgrade");
    fake.set_env("FAKE_DOCKER_RUN_EXITS", "3");
    fake_docker(&fake, &["stop", "rancher"]).expect_code(0);
    fake_docker(&fake, &["rm", "rancher"]).expect_code(0);
    fake_docker(
        &fake,
        &[
            "run",
            "-d",
            "--name",
            "rancher",
            "--volumes-from",
            "rancher-data",
            "-p",
            "127.0.0.1:18080:8080",
            "127.0.0.1:5599/rancher/server:v1.6.30",
        ],
    )
    .expect_code(0);
    let dead = fake.container("rancher");
    assert_eq!(dead["State"]["Running"], false);
    assert_eq!(dead["State"]["ExitCode"], 3);
    assert_eq!(dead["Mounts"], fake.container("rancher-data")["Mounts"]);
    assert_eq!(
        dead["HostConfig"]["PortBindings"]["8080/tcp"][0],
        serde_json::json!({"HostIp": "127.0.0.1", "HostPort": "18080"})
    );
    let logs = fake_docker(&fake, &["logs", "--tail", "5", "rancher"]).expect_code(0);
    assert_eq!(logs.stdout, "FATAL: migration failed\n");
    let busy = fake_docker(&fake, &["rename", "rancher", "rancher-data"]).expect_code(1);
    assert!(
        busy.stderr
            .contains("Conflict. The container name \"/rancher-data\" is already in use"),
        "{}",
        busy.stderr
    );
}

#[test]
fn a_node_given_badly_is_refused_in_one_line_before_any_docker_call() {
    let fake = FakeDocker::new("embedded");
    let upgrade = |extra: &[&str]| {
        run(
            &fake,
            &[&["upgrade", "--dry-run", "--to", "v1.6.20"][..], extra].concat(),
        )
    };
    upgrade(&["--node", "http://10.0.0.11"]).expect_one_line_refusal("unix://, tcp:// or ssh://");
    upgrade(&[
        "--node",
        "ssh://root@10.0.0.11",
        "--node",
        "ssh://root@10.0.0.11",
    ])
    .expect_one_line_refusal("is given twice");
    upgrade(&["--node", "ssh://root@10.0.0.11", "--container", "rancher"])
        .expect_one_line_refusal("ENGINE=CONTAINER");
    upgrade(&["--node", "a", "--context", "b"]).expect_one_line_refusal("--node CONTEXT");
    upgrade(&["--node", "ssh://root@10.0.0.11=-rf"]).expect_code(2);
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

#[test]
fn one_node_is_one_server_on_that_engine() {
    let fake = FakeDocker::new("embedded");
    let plan = run(
        &fake,
        &[
            "upgrade",
            "--dry-run",
            "--format",
            "json",
            "--to",
            "v1.6.20",
            "--node",
            "ssh://root@10.0.0.11=rancher",
        ],
    )
    .expect_code(0)
    .json();
    assert_eq!(plan["nodes"], serde_json::json!([]));
    assert_eq!(
        words(&step(&plan, "pull")["argv"])[..3],
        strings(&["docker", "--host", "ssh://root@10.0.0.11"])[..]
    );
}
