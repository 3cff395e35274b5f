//! The secret audit: servers whose database password and secret-named env values are unique
//! markers (every one holds `MARKER`, and nothing else on the host does), run through every
//! command the tool has. No marker may show in stdout, stderr, a transcript, the state file, the
//! `--result` document, `status` or a runbook, unless `--show-secrets` asks for them; nor on
//! any docker command line but the one docker takes no other way (a server's own `--db-pass
//! VALUE`, in its `create`): the external database's dump and restore get the password in
//! docker's environment. The containers the tool makes still get the real values.

mod common;

use common::{FakeDocker, pong_server};
use serde_json::Value;
use std::fs;

/// What every secret value of these servers holds, and no other value does.
const MARKER: &str = "MARKER";
const FORMATS: [&str; 4] = ["text", "markdown", "shell", "json"];

/// A server to audit: a fixture, with secrets added where the fixture has too few.
struct Server {
    name: &'static str,
    fixture: &'static str,
    /// Env assignments added to the server's own.
    extra_env: &'static [&'static str],
    /// The server's arguments after the image, in place of the fixture's.
    args: Option<&'static [&'static str]>,
    /// A piece of each secret value that shows whichever way the value is quoted.
    tokens: &'static [&'static str],
    /// A secret value, whole, to put in a log line.
    a_secret: &'static str,
}

const SERVERS: [Server; 4] = [
    Server {
        name: "embedded, secret env of every kind",
        fixture: "embedded",
        extra_env: &[
            "AWS_SECRET_ACCESS_KEY=aws-MARKER/abc+def==",
            "MY_KEY=key-MARKER",
            "db_password=lower-MARKER",
            "my.api-key=dotted-MARKER",
            "SESSION_TOKEN=sess-MARKER it's $HOME `id` ;x",
        ],
        args: None,
        tokens: &[
            "tok-MARKER",
            "aws-MARKER/abc+def==",
            "key-MARKER",
            "lower-MARKER",
            "dotted-MARKER",
            "sess-MARKER",
        ],
        a_secret: "sess-MARKER it's $HOME `id` ;x",
    },
    Server {
        name: "external database, --db-pass VALUE",
        fixture: "external-flags",
        extra_env: &[],
        args: None,
        tokens: &["pw-MARKER with space", "tok-MARKER"],
        a_secret: "pw-MARKER with space",
    },
    Server {
        name: "external database, --db-pass=VALUE",
        fixture: "external-flags",
        extra_env: &[],
        args: Some(&[
            "--db-host",
            "db.example",
            "--db-user",
            "cattle",
            "--db-pass=inline-MARKER",
            "--db-name",
            "cattle",
        ]),
        tokens: &["inline-MARKER", "tok-MARKER"],
        a_secret: "inline-MARKER",
    },
    Server {
        name: "external database, CATTLE_DB_CATTLE_PASSWORD",
        fixture: "external-env",
        extra_env: &[],
        args: None,
        tokens: &["pw-MARKER", "tok-MARKER"],
        a_secret: "pw-MARKER",
    },
];

impl Server {
    /// A host running this server as `rancher`.
    fn host(&self) -> FakeDocker {
        let fake = FakeDocker::new(self.fixture);
        let mut server = fake.container("rancher");
        for assignment in self.extra_env {
            server["Config"]["Env"]
                .as_array_mut()
                .unwrap()
                .push((*assignment).into());
        }
        if let Some(args) = self.args {
            server["Config"]["Cmd"] = args.iter().map(|a| Value::from(*a)).collect();
            server["Args"] = server["Config"]["Cmd"].clone();
        }
        fake.put_container(&server);
        fake
    }

    /// The words of a container that hold a secret: its env assignments and arguments with a
    /// marker in them.
    fn secret_words(container: &Value) -> Vec<String> {
        ["Env", "Cmd"]
            .iter()
            .flat_map(|key| {
                container["Config"][key]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|w| w.as_str().map(str::to_string))
            .filter(|w| w.contains(MARKER))
            .collect()
    }
}

/// Runs `check` for every server at once, one thread each.
fn for_each_server(check: impl Fn(&Server) + Sync) {
    std::thread::scope(|scope| {
        for server in &SERVERS {
            let check = &check;
            scope.spawn(move || check(server));
        }
    });
}

// ------------------------------------------------------------------ helpers --

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(fake: &FakeDocker, args: &[&str]) -> Ran {
    let output = fake.command().args(args).output().unwrap();
    Ran {
        code: output.status.code().expect("exited by itself"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Fails with the lines that hold a marker, if any do.
#[track_caller]
fn assert_no_secret(server: &Server, what: &str, text: &str) {
    let leaks: Vec<&str> = text.lines().filter(|l| l.contains(MARKER)).collect();
    assert!(
        leaks.is_empty(),
        "{}: {what} shows a secret:\n{}",
        server.name,
        leaks.join("\n")
    );
}

#[track_caller]
fn assert_run_shows_no_secret(server: &Server, args: &[&str], ran: &Ran) {
    assert_no_secret(server, &format!("stdout of {args:?}"), &ran.stdout);
    assert_no_secret(server, &format!("stderr of {args:?}"), &ran.stderr);
}

/// Every file the tool wrote in the working directory: transcripts, the state file, the
/// `--result` documents, the archives' checksum files; and what `status` makes of them. The
/// backup archive holds the volumes' content (or the database's), not the tool's words, and is
/// left out.
#[track_caller]
fn assert_files_show_no_secret(server: &Server, fake: &FakeDocker) {
    let files = fake.work_files();
    assert!(
        files.iter().any(|f| f.ends_with(".result.json")),
        "{}: no result in {files:?}",
        server.name
    );
    for format in ["text", "json"] {
        let args = ["status", "--format", format];
        let status = run(fake, &args);
        assert_eq!(status.code, 0, "{}: {}", server.name, status.stderr);
        assert_run_shows_no_secret(server, &args, &status);
    }
    assert!(
        files.iter().any(|f| f.ends_with(".state.json")),
        "{}: no state file in {files:?}",
        server.name
    );
    assert!(
        files.iter().any(|f| f.ends_with(".log")),
        "{}: no transcript in {files:?}",
        server.name
    );
    for file in files.iter().filter(|f| {
        ![".tar.zst", ".tar.gz", ".sql.zst", ".sql.gz"]
            .iter()
            .any(|archive| f.ends_with(archive))
    }) {
        let bytes = fs::read(fake.work_dir().join(file)).unwrap();
        assert_no_secret(server, file, &String::from_utf8_lossy(&bytes));
    }
}

/// No docker command line the fake saw holds a secret, but a server's own `--db-pass VALUE` in
/// its `create`, which docker takes on its command line only (a warning of the plan says so).
#[track_caller]
fn assert_no_secret_on_a_command_line(server: &Server, fake: &FakeDocker) {
    for call in fake.calls() {
        for (i, word) in call.iter().enumerate() {
            let the_servers_own = call[0] == "create"
                && (word.starts_with("--db-pass=") || i > 0 && call[i - 1] == "--db-pass");
            assert!(
                the_servers_own || !word.contains(MARKER),
                "{}: a command line shows a secret: {call:?}",
                server.name
            );
        }
    }
}

/// The container has every secret word the old server had, with its real value.
#[track_caller]
fn assert_has_real_secrets(server: &Server, container: &Value, original: &[String], what: &str) {
    let now = Server::secret_words(container);
    for word in original {
        assert!(
            now.contains(word),
            "{}: {what} lacks {word:?}; it has {now:?}",
            server.name
        );
    }
}

const TO: [&str; 2] = ["--to", "v1.6.20"];
const NAMED: [&str; 2] = ["--container", "rancher"];

fn with<'a>(parts: &[&[&'a str]]) -> Vec<&'a str> {
    parts.concat()
}

// ------------------------------------------------------------ showing plans --

#[test]
fn dry_runs_and_runbooks_in_every_format_show_no_secret() {
    for_each_server(|server| {
        let fake = server.host();
        for format in FORMATS {
            for command in [&["upgrade", "--dry-run"][..], &["runbook"]] {
                let args = with(&[command, &NAMED, &TO, &["--format", format]]);
                let ran = run(&fake, &args);
                assert_eq!(ran.code, 0, "{}: {args:?}: {}", server.name, ran.stderr);
                assert_run_shows_no_secret(server, &args, &ran);
                assert!(
                    ran.stdout.contains("********") || ran.stdout.contains("\"${"),
                    "{}: {args:?} shows the secret words neither masked nor as variables:\n{}",
                    server.name,
                    ran.stdout
                );
            }
        }
        assert!(fake.mutating_calls().is_empty(), "showing changes nothing");
    });
}

#[test]
fn show_secrets_shows_every_secret_in_dry_runs_and_runbooks() {
    for_each_server(|server| {
        let fake = server.host();
        for format in FORMATS {
            for command in [&["upgrade", "--dry-run"][..], &["runbook"]] {
                let args = with(&[
                    command,
                    &NAMED,
                    &TO,
                    &["--format", format, "--show-secrets"],
                ]);
                let ran = run(&fake, &args);
                assert_eq!(ran.code, 0, "{}: {args:?}: {}", server.name, ran.stderr);
                for token in server.tokens {
                    assert!(
                        ran.stdout.contains(token),
                        "{}: {args:?} hides {token:?}:\n{}",
                        server.name,
                        ran.stdout
                    );
                }
            }
        }
    });
}

// ------------------------------------------------------------- running plans --

#[test]
fn an_upgrade_and_its_rollback_print_and_record_no_secret_yet_the_servers_get_them() {
    let ping = pong_server();
    for_each_server(|server| {
        let fake = server.host();
        let secrets = Server::secret_words(&fake.container("rancher"));
        assert!(
            !secrets.is_empty(),
            "{}: a server without secrets",
            server.name
        );
        let run_args = ["--yes", "-v", "--health-url", ping.as_str()];

        let args = with(&[
            &["upgrade"],
            &NAMED,
            &TO,
            &run_args,
            &["--log", "upgrade.log", "--result", "upgrade.result.json"],
        ]);
        let upgrade = run(&fake, &args);
        assert_eq!(upgrade.code, 0, "{}: {}", server.name, upgrade.stderr);
        assert_run_shows_no_secret(server, &args, &upgrade);
        assert_files_show_no_secret(server, &fake);
        let new = fake.container("rancher");
        assert_eq!(
            new["Config"]["Image"],
            "127.0.0.1:5599/rancher/server:v1.6.20"
        );
        assert_has_real_secrets(server, &new, &secrets, "the new server");

        // The rollback's plan, shown: it recreates the removed old server with the secrets.
        for format in FORMATS {
            let args = with(&[&["rollback", "--dry-run", "--format", format], &NAMED]);
            let shown = run(&fake, &args);
            assert_eq!(shown.code, 0, "{}: {args:?}: {}", server.name, shown.stderr);
            assert_run_shows_no_secret(server, &args, &shown);
            let args = with(&[&args, &["--show-secrets"][..]]);
            let revealed = run(&fake, &args);
            for token in server.tokens {
                assert!(
                    revealed.stdout.contains(token),
                    "{}: {args:?} hides {token:?}:\n{}",
                    server.name,
                    revealed.stdout
                );
            }
        }

        let args = with(&[
            &["rollback"],
            &NAMED,
            &run_args,
            &["--log", "rollback.log", "--result", "rollback.result.json"],
        ]);
        let rollback = run(&fake, &args);
        assert_eq!(rollback.code, 0, "{}: {}", server.name, rollback.stderr);
        assert_run_shows_no_secret(server, &args, &rollback);
        assert_files_show_no_secret(server, &fake);
        assert_no_secret_on_a_command_line(server, &fake);
        if server.fixture != "embedded" {
            // The database's clients refuse a wrong password: they got it, through the
            // environment.
            let clients: Vec<String> = fake
                .database_clients()
                .into_iter()
                .map(|(client, _)| client)
                .collect();
            assert_eq!(clients, ["mysqldump", "mysql"], "{}", server.name);
        }
        let old = fake.container("rancher");
        assert_eq!(
            old["Config"]["Image"],
            "127.0.0.1:5599/rancher/server:v1.6.10"
        );
        assert_has_real_secrets(server, &old, &secrets, "the recreated old server");
    });
}

#[test]
fn a_failure_that_quotes_the_command_line_is_shown_masked_and_the_old_server_keeps_its_secrets() {
    let ping = pong_server();
    for_each_server(|server| {
        let mut fake = server.host();
        let secrets = Server::secret_words(&fake.container("rancher"));
        // The `create` of the new server fails, and docker's message repeats it whole.
        // Embedded: the data container's `create` comes first.
        let create_new = if server.fixture == "embedded" {
            "2"
        } else {
            "1"
        };
        fake.set_env("FAKE_DOCKER_FAIL_AT", "create")
            .set_env("FAKE_DOCKER_FAIL_NTH", create_new)
            .set_env("FAKE_DOCKER_FAIL_ECHO", "1");
        let args = with(&[
            &["upgrade"],
            &NAMED,
            &TO,
            &[
                "--yes",
                "-v",
                "--health-url",
                &ping,
                "--log",
                "failed.log",
                "--result",
                "failed.result.json",
            ],
        ]);
        let failed = run(&fake, &args);
        assert_eq!(failed.code, 1, "{}: {}", server.name, failed.stderr);
        assert!(
            failed
                .stderr
                .contains("injected failure at create: docker create --name rancher "),
            "{}: docker's words are shown: {}",
            server.name,
            failed.stderr
        );
        assert!(failed.stderr.contains("Rolled back."), "{}", failed.stderr);
        assert_run_shows_no_secret(server, &args, &failed);
        assert_files_show_no_secret(server, &fake);
        let old = fake.container("rancher");
        assert_eq!(
            old["Config"]["Image"],
            "127.0.0.1:5599/rancher/server:v1.6.10"
        );
        assert_has_real_secrets(server, &old, &secrets, "the old server, back");
    });
}

#[test]
fn a_new_server_whose_log_prints_the_password_is_reported_with_the_password_masked() {
    let ping = pong_server();
    for_each_server(|server| {
        let mut fake = server.host();
        let line = format!("connecting with password {}...", server.a_secret);
        fake.set_env("FAKE_DOCKER_RUN_EXITS", "3")
            .set_env("FAKE_DOCKER_RUN_LOG", &line);
        let args = with(&[
            &["upgrade"],
            &NAMED,
            &TO,
            &[
                "--yes",
                "-v",
                "--health-url",
                &ping,
                "--log",
                "crash.log",
                "--result",
                "crash.result.json",
            ],
        ]);
        let crashed = run(&fake, &args);
        assert_eq!(crashed.code, 1, "{}: {}", server.name, crashed.stderr);
        assert!(
            crashed
                .stderr
                .contains("| connecting with password ********..."),
            "{}: the log line is shown, masked:\n{}",
            server.name,
            crashed.stderr
        );
        assert_run_shows_no_secret(server, &args, &crashed);
        assert_files_show_no_secret(server, &fake);
    });
}

#[test]
fn a_stopped_rollback_lists_what_remains_with_variables_not_values() {
    let ping = pong_server();
    for_each_server(|server| {
        let mut fake = server.host();
        let run_args = ["--yes", "-v", "--health-url", ping.as_str()];
        let upgrade = run(&fake, &with(&[&["upgrade"], &NAMED, &TO, &run_args]));
        assert_eq!(upgrade.code, 0, "{}: {}", server.name, upgrade.stderr);
        // The rollback recreates the removed old server with its secrets, in its `docker
        // create`; that one fails, so it is what remains to do by hand.
        let shown = run(
            &fake,
            &with(&[&["rollback", "--dry-run", "--format", "json"], &NAMED]),
        );
        let plan: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
        let creates_in_rollback = plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["argv"][1] == "create")
            .count();
        let nth = fake.calls_of("create").len() + creates_in_rollback;
        fake.set_env("FAKE_DOCKER_FAIL_AT", "create")
            .set_env("FAKE_DOCKER_FAIL_NTH", nth.to_string());
        let args = with(&[
            &["rollback"],
            &NAMED,
            &run_args,
            &["--result", "stopped.result.json"],
        ]);
        let stopped = run(&fake, &args);
        assert_eq!(stopped.code, 1, "{}: {}", server.name, stopped.stderr);
        let remaining = stopped
            .stderr
            .split("Not done; to finish by hand, run:")
            .nth(1)
            .unwrap_or_else(|| panic!("{}: {}", server.name, stopped.stderr));
        assert!(
            remaining.contains("\"${") && remaining.contains("with the secret values first"),
            "{}: the secrets are variables to export:\n{remaining}",
            server.name
        );
        assert_run_shows_no_secret(server, &args, &stopped);
        assert_files_show_no_secret(server, &fake);
    });
}

// --------------------------------------------- a secret that turns up elsewhere --

/// The old server's healthcheck sends its API token: `test` runs it, with or without a shell.
fn server_with_a_healthcheck_holding_the_token(fake: &FakeDocker, test: Value) {
    let mut server = fake.container("rancher");
    server["Config"]["Healthcheck"] = serde_json::json!({
        "Test": test,
        "Interval": 30_000_000_000_u64
    });
    fake.put_container(&server);
}

/// Without a shell the tool can't carry it (`--health-cmd` runs one), and says so; saying so
/// must not print the token.
fn healthcheck_without_a_shell() -> Value {
    serde_json::json!([
        "CMD",
        "curl",
        "-fsH",
        "X-Token: tok-MARKER",
        "localhost:8080/ping"
    ])
}

/// A finished upgrade, and its transcript.
#[track_caller]
fn upgrade_with_a_transcript(fake: &FakeDocker) -> (Ran, String) {
    let ping = pong_server();
    let args = with(&[
        &["upgrade"],
        &NAMED,
        &TO,
        &["--yes", "--health-url", &ping, "--log", "up.log"],
    ]);
    let ran = run(fake, &args);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let transcript = fs::read_to_string(fake.work_dir().join("up.log")).unwrap();
    (ran, transcript)
}

/// Every dry run shows `shown` and never the token.
#[track_caller]
fn assert_dry_runs_show_but_mask(fake: &FakeDocker, shown: &str) {
    for format in FORMATS {
        let args = with(&[&["upgrade", "--dry-run", "--format", format], &NAMED, &TO]);
        let ran = run(fake, &args);
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        assert!(
            ran.stdout.contains(shown),
            "{format}: no {shown}:\n{}",
            ran.stdout
        );
        assert!(
            !ran.stdout.contains("tok-MARKER"),
            "{format} shows the token:\n{}",
            ran.stdout
        );
    }
}

#[test]
fn a_warning_about_a_setting_that_holds_a_secret_masks_it() {
    let fake = FakeDocker::new("embedded");
    server_with_a_healthcheck_holding_the_token(&fake, healthcheck_without_a_shell());
    assert_dry_runs_show_but_mask(&fake, "Healthcheck");
}

/// The same token in a healthcheck run by a shell, which the tool carries: in every output it
/// is masked, in the shell runbook it is the variable, in the state file it is not, and the
/// new server gets it.
#[test]
fn a_setting_that_holds_a_secret_is_carried_and_never_shown() {
    let fake = FakeDocker::new("embedded");
    server_with_a_healthcheck_holding_the_token(
        &fake,
        serde_json::json!([
            "CMD-SHELL",
            "curl -fsH 'X-Token: tok-MARKER' localhost:8080/ping"
        ]),
    );
    assert_dry_runs_show_but_mask(&fake, "health-cmd");
    let script = run(
        &fake,
        &with(&[&["runbook", "--format", "shell"], &NAMED, &TO]),
    )
    .stdout;
    assert!(
        script.contains(
            r#"'--health-cmd=curl -fsH '\''X-Token: '"${API_TOKEN}"''\'' localhost:8080/ping'"#
        ),
        "{script}"
    );
    let (ran, transcript) = upgrade_with_a_transcript(&fake);
    for (what, text) in [
        ("stderr", ran.stderr.clone()),
        ("the transcript", transcript),
        (
            "the state file",
            fs::read_to_string(fake.work_dir().join("rancher-upgrade-rancher.state.json")).unwrap(),
        ),
    ] {
        assert!(
            !text.contains("tok-MARKER"),
            "{what} shows the token:\n{text}"
        );
    }
    assert_eq!(
        fake.container("rancher")["Config"]["Healthcheck"]["Test"][1],
        "curl -fsH 'X-Token: tok-MARKER' localhost:8080/ping"
    );
}

#[test]
fn a_real_upgrade_warns_of_what_it_does_not_carry_with_the_secret_masked() {
    let fake = FakeDocker::new("embedded");
    server_with_a_healthcheck_holding_the_token(&fake, healthcheck_without_a_shell());
    let (ran, transcript) = upgrade_with_a_transcript(&fake);
    for (what, text) in [("stderr", &ran.stderr), ("the transcript", &transcript)] {
        assert!(
            text.contains("Config.Healthcheck"),
            "{what} does not say the healthcheck is dropped:\n{text}"
        );
        assert!(
            !text.contains("tok-MARKER"),
            "{what} shows the token:\n{text}"
        );
    }
}
