//! The fault matrix: every docker step of every plan the tool runs, made to go wrong in each way
//! docker can go wrong, against the fake docker. Whatever happens:
//!
//! - nothing that holds data is removed: no `rm -v`, no removal of the data container, no
//!   `volume rm`, no prune; the data container is there if it was there or was created;
//! - the report names the step where it stopped;
//! - the exit code says what happened: 1 for a failure, 130 for Ctrl-C;
//! - the way back is real: either the tool went back to the old server by itself, or the
//!   commands it printed, run by `sh` against the same host, go back to it. "Back" means the
//!   old server under its own name, running, on its old image, with its restart policy, its
//!   settings (secrets included) and its very data volumes.
//!
//! The plans: an embedded-database upgrade (with its backup), an external-database upgrade (with
//! its dump), the `rollback` command after a finished upgrade, and the way back an upgrade takes
//! by itself when the new version dies (`FAKE_DOCKER_RUN_EXITS`), of either. Once the new
//! version ran, back also means the external database restored from the dump, before the old
//! server started; before it ran, the database is left alone. The faults: docker exits 1 with a
//! message, docker hangs (`--step-timeout 2` must stop it), docker is killed by a signal, and
//! the operator presses Ctrl-C while the step runs (the step is slow and succeeds: the tool
//! lets it finish, then stops).
//!
//! One test runs the whole matrix, a few cases at a time, and prints
//! `fault matrix: N cases, N held` on stderr, past the test harness's capture.

mod common;

use common::{FakeDocker, fixture_container, pong_server, report_section};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write as _;
use std::io::{Read, Seek};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const OLD_IMAGE: &str = "127.0.0.1:5599/rancher/server:v1.6.10";
const NEW_IMAGE: &str = "127.0.0.1:5599/rancher/server:v1.6.20";
const DATA_CONTAINER: &str = "rancher-data";
const PARKED: &str = "rancher-v1.6.10";
/// The secret values of the fixtures, by the shell variable a printed command reads them from.
const SECRETS: [(&str, &str); 3] = [
    ("API_TOKEN", "tok-MARKER"),
    ("RANCHER_DB_PASS", "pw-MARKER with space"),
    ("CATTLE_DB_CATTLE_PASSWORD", "pw-MARKER"),
];
/// How long a "slow" docker step takes, so that Ctrl-C lands while it runs.
const SLOW_SECONDS: &str = "1.5";
/// Cases run at once: most of a case is waiting (a hang, a slow step), not computing.
const WORKERS: usize = 6;
/// Longer than any case can take when the tool behaves; a tool that hangs fails its case.
const CASE_LIMIT: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------ the matrix --

/// How a docker step goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// docker exits 1 with "Error response from daemon: injected failure at ...".
    Exit,
    /// docker never answers.
    Hang,
    /// docker dies of SIGKILL.
    Kill,
    /// The operator presses Ctrl-C (SIGINT to the tool) while the step runs.
    CtrlC,
}

const FAULTS: [Fault; 4] = [Fault::Exit, Fault::Hang, Fault::Kill, Fault::CtrlC];

/// Which list of steps a case's fault lands in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `upgrade --yes`: the fault is in one of the upgrade's own steps.
    Upgrade,
    /// `rollback --yes` after a finished upgrade.
    RollbackCommand,
    /// `upgrade --yes` whose new version dies at once, so the tool rolls back by itself; the
    /// fault is in one of the steps of that rollback.
    AutomaticRollback,
}

/// One docker step: its number in the report, the subcommand, and which call of that
/// subcommand it is since the host was set up (the fake counts calls to fail the nth).
#[derive(Clone, Copy, Debug)]
struct DockerStep {
    number: usize,
    subcommand: &'static str,
    nth: usize,
    what: &'static str,
}

const fn step(
    number: usize,
    subcommand: &'static str,
    nth: usize,
    what: &'static str,
) -> DockerStep {
    DockerStep {
        number,
        subcommand,
        nth,
        what,
    }
}

/// A plan, as the report numbers its steps.
struct Plan {
    name: &'static str,
    fixture: &'static str,
    kind: Kind,
    /// How many steps the report counts (waits and questions included).
    total: usize,
    /// For an upgrade: the number of `docker run` of the new server. Failing from there on
    /// rolls back by itself.
    run_new: usize,
    docker_steps: &'static [DockerStep],
}

const PLANS: [Plan; 5] = [
    Plan {
        name: "embedded upgrade",
        fixture: "embedded",
        kind: Kind::Upgrade,
        total: 11,
        run_new: 9,
        docker_steps: &[
            step(1, "pull", 1, "pull the new image"),
            step(2, "run", 1, "measure the volumes for the room"),
            step(3, "update", 1, "set its restart policy to no"),
            step(4, "create", 1, "create the data container"),
            step(5, "rename", 1, "park the old server"),
            step(6, "create", 2, "create the new server"),
            step(7, "stop", 1, "stop the old server"),
            step(8, "cp", 1, "stream the data volumes into the backup"),
            step(9, "start", 1, "start the new server"),
            step(11, "rm", 1, "remove the old server"),
        ],
    },
    Plan {
        name: "external-database upgrade",
        fixture: "external-flags",
        kind: Kind::Upgrade,
        total: 9,
        run_new: 7,
        docker_steps: &[
            step(1, "pull", 1, "pull the new image"),
            step(2, "update", 1, "set its restart policy to no"),
            step(3, "rename", 1, "park the old server"),
            step(4, "create", 1, "create the new server"),
            step(5, "stop", 1, "stop the old server"),
            step(6, "run", 1, "dump the external database"),
            step(7, "start", 1, "start the new server"),
            step(9, "rm", 1, "remove the old server"),
        ],
    },
    Plan {
        name: "rollback command",
        fixture: "embedded",
        kind: Kind::RollbackCommand,
        total: 7,
        run_new: 0,
        // Counted after the finished upgrade it rolls back.
        docker_steps: &[
            // Step 1 checks the archive's checksum on this machine: no docker call.
            step(2, "stop", 1, "stop the new server"),
            step(3, "rm", 1, "remove the new server"),
            step(4, "run", 1, "restore the backup"),
            step(5, "create", 1, "recreate the old server"),
            step(6, "start", 1, "start the recreated old server"),
        ],
    },
    Plan {
        name: "automatic rollback of an embedded upgrade",
        fixture: "embedded",
        kind: Kind::AutomaticRollback,
        total: 7,
        run_new: 0,
        // Counted from the start of the upgrade: its own update, rename, stop, the room's
        // measure (a run) and the new server's start come first.
        docker_steps: &[
            step(1, "stop", 2, "stop the new server"),
            step(2, "rm", 1, "remove the new server"),
            step(3, "run", 2, "stream the backup back into the volumes"),
            step(4, "start", 2, "start the old server"),
            step(5, "rename", 2, "give the old server its name back"),
            step(6, "update", 2, "restore the restart policy"),
        ],
    },
    Plan {
        name: "automatic rollback of an external-database upgrade",
        fixture: "external-flags",
        kind: Kind::AutomaticRollback,
        total: 7,
        run_new: 0,
        // Counted from the start of the upgrade: its own update, rename, stop, the dump (a run)
        // and the new server's start come first.
        docker_steps: &[
            step(1, "stop", 2, "stop the new server"),
            step(2, "rm", 1, "remove the new server"),
            step(3, "run", 2, "stream the dump back into the database"),
            step(4, "start", 2, "start the old server"),
            step(5, "rename", 2, "give the old server its name back"),
            step(6, "update", 2, "restore the restart policy"),
        ],
    },
];

/// What a case must end with. The rule: when the tool exits, the old server answers under its
/// name with its restart policy, or the new one answers; the one exception here is a fault in
/// the way back itself (the engine failing twice), which the printed commands finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// The tool went back to the old server by itself (or had changed nothing yet).
    BackByItself,
    /// The removal of the old server failed after the new one answered: the new one stays.
    NewServerAnswers,
    /// A rollback stopped; the commands it printed under "Not done" finish it.
    NotDoneFinishesIt,
    /// Ctrl-C during the last step: the step finished, so did the upgrade; nothing is left to
    /// stop or undo.
    UpgradeFinished,
}

struct Case<'a> {
    plan: &'a Plan,
    step: DockerStep,
    fault: Fault,
}

impl Case<'_> {
    fn label(&self) -> String {
        format!(
            "{}, step {}/{} (docker {} #{}: {}), {:?}",
            self.plan.name,
            self.step.number,
            self.plan.total,
            self.step.subcommand,
            self.step.nth,
            self.step.what,
            self.fault
        )
    }

    fn ending(&self) -> Ending {
        let last = self.step.number == self.plan.total;
        match (self.plan.kind, self.fault) {
            (Kind::RollbackCommand | Kind::AutomaticRollback, _) => Ending::NotDoneFinishesIt,
            (Kind::Upgrade, Fault::CtrlC) if last => Ending::UpgradeFinished,
            // After the new server answered, a failed removal of the old one is no reason to
            // undo a working upgrade.
            (Kind::Upgrade, _) if last => Ending::NewServerAnswers,
            (Kind::Upgrade, _) => Ending::BackByItself,
        }
    }

    fn expected_code(&self) -> i32 {
        match (self.fault, self.ending()) {
            (_, Ending::UpgradeFinished) => 0,
            (Fault::CtrlC, _) => 130,
            _ => 1,
        }
    }
}

#[test]
fn every_fault_at_every_docker_step_keeps_the_data_and_leaves_a_way_back() {
    let ping = pong_server();
    let cases: Vec<Case> = PLANS
        .iter()
        .flat_map(|plan| {
            plan.docker_steps
                .iter()
                .flat_map(move |&step| FAULTS.iter().map(move |&fault| Case { plan, step, fault }))
        })
        .collect();
    let queue = Mutex::new(cases.iter());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| {
                loop {
                    let Some(case) = queue.lock().unwrap().next() else {
                        break;
                    };
                    let started = Instant::now();
                    let held = catch_unwind(AssertUnwindSafe(|| check_case(case, &ping)));
                    if let Err(panic) = held {
                        let why = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        failures.lock().unwrap().push(format!(
                            "{} ({:.1} s): {why}",
                            case.label(),
                            started.elapsed().as_secs_f64()
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    // Straight to the stderr handle: libtest captures print! of a passing test, and CI's
    // output must show the matrix.
    let by_itself = cases
        .iter()
        .filter(|c| c.ending() != Ending::NotDoneFinishesIt)
        .count();
    let _ = writeln!(
        std::io::stderr(),
        "fault matrix: {} cases, {} held; {} ended with a server answering by itself, {} are the one exception (a fault in the way back itself, finished by the printed commands)",
        cases.len(),
        cases.len() - failures.len(),
        by_itself,
        cases.len() - by_itself
    );
    assert_eq!(
        cases.len(),
        4 * (10 + 8 + 5 + 6 + 6),
        "every docker step of every plan, four ways"
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases did not hold:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

// -------------------------------------------------------------------- a case --

fn check_case(case: &Case, ping: &str) {
    let plan = case.plan;
    let mut fake = FakeDocker::new(plan.fixture);
    let original = fixture_container(plan.fixture, "rancher");
    let data_existed = fake.has_container(DATA_CONTAINER);
    let common_args = ["--container", "rancher", "--health-url", ping];
    let common_args = [&common_args[..], &["--health-timeout", "30", "--yes"]].concat();
    let upgrade_args = [&["upgrade", "--to", "v1.6.20"][..], &common_args].concat();

    let (mut args, calls_before) = match plan.kind {
        Kind::Upgrade => (upgrade_args, 0),
        Kind::AutomaticRollback => {
            fake.set_env("FAKE_DOCKER_RUN_EXITS", "3");
            (upgrade_args, 0)
        }
        Kind::RollbackCommand => {
            let finished = run_tool(&fake, &upgrade_args, None);
            assert_eq!(
                finished.code, 0,
                "the upgrade before the rollback: {}",
                finished.stderr
            );
            let before = fake.calls_of(case.step.subcommand).len();
            ([&["rollback"][..], &common_args].concat(), before)
        }
    };
    let nth = calls_before + case.step.nth;
    fake.set_env("FAKE_DOCKER_FAIL_AT", case.step.subcommand)
        .set_env("FAKE_DOCKER_FAIL_NTH", nth.to_string());
    match case.fault {
        Fault::Exit => {
            fake.set_env("FAKE_DOCKER_FAIL_MODE", "exit");
        }
        Fault::Kill => {
            fake.set_env("FAKE_DOCKER_FAIL_MODE", "kill");
        }
        Fault::Hang => {
            fake.set_env("FAKE_DOCKER_FAIL_MODE", "hang");
            args.extend(["--step-timeout", "2"]);
        }
        Fault::CtrlC => {
            fake.set_env("FAKE_DOCKER_FAIL_MODE", "slow")
                .set_env("FAKE_DOCKER_SLOW_SECONDS", SLOW_SECONDS);
        }
    }
    let interrupt = (case.fault == Fault::CtrlC).then_some((case.step.subcommand, nth));
    let ran = run_tool(&fake, &args, interrupt);
    let report = &ran.stderr;
    let context = |what: &str| format!("{what}\n--- the tool's report:\n{report}");

    // The exit code.
    assert_eq!(ran.code, case.expected_code(), "{}", context("exit code"));

    // The report names the step, and what went wrong there.
    let title = step_title(report, case.step.number, plan.total)
        .unwrap_or_else(|| panic!("{}", context("the step's header is not in the report")));
    match case.fault {
        Fault::CtrlC => {
            assert!(
                report.contains("Ctrl-C: stopping once"),
                "{}",
                context("Ctrl-C is acknowledged")
            );
            let done = report_section(report, "Done:").unwrap_or_default();
            assert!(
                done.contains(&title.as_str()) || case.ending() == Ending::UpgradeFinished,
                "{}",
                context(&format!(
                    "the step was let finish: {title:?} is not under Done"
                ))
            );
            if case.ending() != Ending::UpgradeFinished {
                let at = format!(
                    "Interrupted at step {}/{}",
                    case.step.number + 1,
                    plan.total
                );
                assert!(report.contains(&at), "{}", context(&at));
            }
        }
        _ => {
            let failed = format!("Step {}/{} failed ({title})", case.step.number, plan.total);
            assert!(report.contains(&failed), "{}", context(&failed));
            let evidence = match case.fault {
                Fault::Exit => format!("injected failure at {}", case.step.subcommand),
                Fault::Hang => "no answer within 2 s (--step-timeout)".to_string(),
                _ => "SIGKILL".to_string(),
            };
            assert!(report.contains(&evidence), "{}", context(&evidence));
        }
    }

    // Nothing that holds data went. A create that failed made nothing; one that was let
    // finish (Ctrl-C) did.
    let failed_here = |subcommand: &str, call: usize| {
        case.step.subcommand == subcommand && call == nth && case.fault != Fault::CtrlC
    };
    let data_created = fake
        .calls_of("create")
        .iter()
        .enumerate()
        .any(|(i, c)| c[1..3] == ["--name", DATA_CONTAINER] && !failed_here("create", i + 1));
    let data_expected = data_existed || data_created;
    assert_data_kept(&fake, &original, data_expected, &context("after the run"));

    // The way back.
    match case.ending() {
        Ending::BackByItself => {
            assert!(
                report.contains("Rolled back.") || report.contains("was not touched"),
                "{}",
                context("back on the old server by itself")
            );
            if case.step.number < plan.run_new {
                assert!(
                    !fake.calls_of("start").iter().any(|c| c[1..] == ["rancher"]),
                    "{}",
                    context("the new server never started")
                );
            }
        }
        Ending::NewServerAnswers => {
            assert_new_server_runs(&fake, &context(""));
            assert!(
                report.contains("$ docker rm rancher-v1.6.10"),
                "{}",
                context("the removal left to do by hand")
            );
            assert_data_kept(&fake, &original, data_expected, &context("at the end"));
            return;
        }
        Ending::NotDoneFinishesIt => {
            if plan.kind == Kind::AutomaticRollback {
                for said in [
                    " failed (Wait until rancher answers /ping)",
                    "Rolling back to v1.6.10",
                    "The rollback stopped too",
                ] {
                    assert!(report.contains(said), "{}", context(said));
                }
            }
            let not_done = report_section(report, "Not done; to finish by hand, run:")
                .unwrap_or_else(|| panic!("{}", context("no \"Not done\" commands")));
            let secrets = exported_variables(report);
            run_printed(
                &mut fake,
                &not_done,
                &secrets,
                &context("the rest of the rollback"),
            );
        }
        Ending::UpgradeFinished => {
            assert!(report.contains("\nDone:"), "{}", context("Done"));
            assert_new_server_runs(&fake, &context(""));
            assert!(
                !fake.has_container(PARKED),
                "{}",
                context("old one removed")
            );
            assert_data_kept(&fake, &original, data_expected, &context("at the end"));
            return;
        }
    }
    assert_old_server_is_back(&fake, &original, data_expected, &context("at the end"));
    assert_data_kept(&fake, &original, data_expected, &context("at the end"));
    // The new server ran when one of its starts took effect: a start the fault did not stop
    // before it began.
    let new_ran = fake
        .calls_of("start")
        .iter()
        .enumerate()
        .any(|(i, c)| c[1..] == ["rancher"] && !failed_here("start", i + 1));
    assert_database_back(&fake, new_ran, &context("at the end"));
}

/// An external database is as the old server left it: restored from the dump when the new
/// version ran on it, untouched when it did not.
fn assert_database_back(fake: &FakeDocker, new_ran: bool, context: &str) {
    let served = fake.database_clients();
    let Some((_, dumped)) = served.iter().find(|(client, _)| client == "mysqldump") else {
        return;
    };
    let restored: Vec<&String> = served
        .iter()
        .filter(|(client, _)| client == "mysql")
        .map(|(_, sha256)| sha256)
        .collect();
    if new_ran {
        assert_eq!(restored, [dumped], "the dump restored once\n{context}");
        // The last of each is the one that did it: a call the fault stopped came before.
        let calls = fake.mutating_calls();
        let restore = calls
            .iter()
            .rposition(|c| c[0] == "run" && c.contains(&"mysql".to_string()));
        let old_started = calls.iter().rposition(|c| c[..] == ["start", PARKED]);
        assert!(
            restore < old_started,
            "the restore ran before the old server started: {calls:?}\n{context}"
        );
    } else {
        assert!(
            restored.is_empty(),
            "a restore before the new version ran\n{context}"
        );
    }
}

/// The new release runs under the server's name.
fn assert_new_server_runs(fake: &FakeDocker, context: &str) {
    let new = fake.container("rancher");
    assert_eq!(new["Config"]["Image"], NEW_IMAGE, "new image: {context}");
    assert_eq!(new["State"]["Running"], true, "running: {context}");
}

// ----------------------------------------------------------------- running --

/// What one run of the tool left.
struct Ran {
    code: i32,
    stderr: String,
}

/// Runs the tool to its end. With `interrupt` (subcommand, nth), sends it SIGINT once the nth
/// call of that subcommand has started, as a terminal's Ctrl-C would.
fn run_tool(fake: &FakeDocker, args: &[&str], interrupt: Option<(&str, usize)>) -> Ran {
    let mut stderr = tempfile::tempfile().unwrap();
    let mut child = fake
        .tool()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr.try_clone().unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut interrupt = interrupt;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if let Some((subcommand, nth)) = interrupt
            && fake.calls_of(subcommand).len() >= nth
        {
            let sent = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success(), "kill -INT failed");
            interrupt = None;
        }
        if started.elapsed() > CASE_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the tool ran for more than {} s: {}",
                CASE_LIMIT.as_secs(),
                read_all(&mut stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        interrupt.is_none(),
        "the tool ended before the step to interrupt started: {}",
        read_all(&mut stderr)
    );
    let stderr = read_all(&mut stderr);
    let code = status
        .code()
        .unwrap_or_else(|| panic!("the tool died of {status}: {stderr}"));
    Ran { code, stderr }
}

fn read_all(file: &mut File) -> String {
    let mut text = String::new();
    file.rewind().unwrap();
    file.read_to_string(&mut text).unwrap();
    text
}

/// Runs printed lines with `sh` against the fake, each secret variable exported with its real
/// value, and no fault left: `$ command` runs, `~ wait ...` (a health wait) is skipped.
fn run_printed(fake: &mut FakeDocker, lines: &[&str], secrets: &[String], context: &str) {
    for key in [
        "FAKE_DOCKER_FAIL_AT",
        "FAKE_DOCKER_FAIL_NTH",
        "FAKE_DOCKER_FAIL_MODE",
        "FAKE_DOCKER_SLOW_SECONDS",
        "FAKE_DOCKER_RUN_EXITS",
    ] {
        fake.unset_env(key);
    }
    let values: BTreeMap<&str, &str> = SECRETS.into_iter().collect();
    for line in lines {
        if line.starts_with("~ ") || line.starts_with("nothing: ") {
            continue;
        }
        let command = line
            .strip_prefix("$ ")
            .unwrap_or_else(|| panic!("not a command: {line:?}\n{context}"));
        assert!(
            !command.contains("********"),
            "a masked command can't be run: {command}\n{context}"
        );
        let mut sh = fake.process("sh");
        sh.args(["-c", command]);
        for var in secrets {
            let value = values
                .get(var.as_str())
                .unwrap_or_else(|| panic!("which value is {var}?\n{context}"));
            sh.env(var, value);
        }
        let output = sh.output().unwrap();
        assert!(
            output.status.success(),
            "`{command}` failed: {}\n{context}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

// ------------------------------------------------------------ reading the report --

/// The title of step `number` of the list of `total` steps: the last `[number/total] title`
/// header of the report.
fn step_title(report: &str, number: usize, total: usize) -> Option<String> {
    let header = format!("[{number}/{total}] ");
    report
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix(&header))
        .map(str::to_string)
}

/// The variables of "(export A, B with the secret values first)".
fn exported_variables(report: &str) -> Vec<String> {
    report
        .lines()
        .filter_map(|line| line.trim().strip_prefix("(export "))
        .filter_map(|rest| rest.strip_suffix(" with the secret values first)"))
        .flat_map(|vars| vars.split(", ").map(str::to_string))
        .collect()
}

// ---------------------------------------------------------------- the host --

/// Destination → volume name (or host directory) of a container's data mounts.
fn data_volumes(container: &Value) -> BTreeMap<String, String> {
    container["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            ["/var/lib/mysql", "/var/lib/cattle", "/var/log/mysql"]
                .contains(&m["Destination"].as_str().unwrap())
        })
        .map(|m| {
            let source = m["Name"].as_str().or(m["Source"].as_str()).unwrap();
            (
                m["Destination"].as_str().unwrap().to_string(),
                source.to_string(),
            )
        })
        .collect()
}

/// No docker call that could take data, and the data container where it should be, on the
/// server's own volumes.
fn assert_data_kept(fake: &FakeDocker, original: &Value, data_expected: bool, context: &str) {
    let data_id = fake.has_container(DATA_CONTAINER).then(|| {
        fake.container(DATA_CONTAINER)["Id"]
            .as_str()
            .unwrap()
            .to_string()
    });
    for call in fake.mutating_calls() {
        let words: BTreeSet<&str> = call.iter().map(String::as_str).collect();
        assert!(!words.contains("prune"), "a prune: {call:?}\n{context}");
        assert!(
            !(call[0] == "volume" && (words.contains("rm") || words.contains("remove"))),
            "a volume removal: {call:?}\n{context}"
        );
        if call[0] == "rm" {
            for flag in ["-v", "--volumes", "-f", "--force"] {
                assert!(!words.contains(flag), "rm {flag}: {call:?}\n{context}");
            }
            assert!(
                !words.contains(DATA_CONTAINER)
                    && !data_id.as_deref().is_some_and(|id| words.contains(id)),
                "the data container removed: {call:?}\n{context}"
            );
        }
    }
    if data_expected {
        assert!(
            fake.has_container(DATA_CONTAINER),
            "the data container is gone; the host holds {:?}\n{context}",
            fake.container_names()
        );
        assert_eq!(
            data_volumes(&fake.container(DATA_CONTAINER)),
            data_volumes(original),
            "the data container holds other volumes than the server did\n{context}"
        );
    }
}

/// The old server, as it was before the upgrade: its name, running, its image, its restart
/// policy, its settings and secrets, its data volumes; and no container left over.
fn assert_old_server_is_back(
    fake: &FakeDocker,
    original: &Value,
    data_expected: bool,
    context: &str,
) {
    let mut expected_names = vec!["rancher".to_string()];
    if data_expected {
        expected_names.push(DATA_CONTAINER.to_string());
    }
    assert_eq!(
        fake.container_names(),
        expected_names,
        "the containers on the host\n{context}"
    );
    let now = fake.container("rancher");
    assert_eq!(now["Config"]["Image"], OLD_IMAGE, "image\n{context}");
    assert_eq!(now["Image"], original["Image"], "image id\n{context}");
    assert_eq!(now["State"]["Running"], true, "running\n{context}");
    assert_eq!(
        now["HostConfig"]["RestartPolicy"], original["HostConfig"]["RestartPolicy"],
        "restart policy\n{context}"
    );
    assert_eq!(
        data_volumes(&now),
        data_volumes(original),
        "data volumes\n{context}"
    );
    let env: BTreeSet<&str> = now["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for assignment in original["Config"]["Env"].as_array().unwrap() {
        assert!(
            env.contains(assignment.as_str().unwrap()),
            "{assignment} is not in {env:?}\n{context}"
        );
    }
    assert_eq!(
        now["Config"]["Cmd"], original["Config"]["Cmd"],
        "args\n{context}"
    );
    assert_eq!(
        now["HostConfig"]["PortBindings"], original["HostConfig"]["PortBindings"],
        "ports\n{context}"
    );
}

// ------------------------------------------------------- what a stopped rollback says --

/// A rollback that stopped after removing the new server and restoring the data has touched
/// everything: the host runs no Rancher at all. Its report must not end by telling the
/// operator that nothing needs doing.
#[test]
fn a_rollback_that_stops_halfway_does_not_say_the_old_server_was_untouched() {
    let ping = pong_server();
    let mut fake = FakeDocker::new("embedded");
    let server = ["--container", "rancher", "--health-url", &ping, "--yes"];
    let upgrade = run_tool(
        &fake,
        &[&["upgrade", "--to", "v1.6.20"][..], &server].concat(),
        None,
    );
    assert_eq!(upgrade.code, 0, "{}", upgrade.stderr);
    // The rollback's `create` (after the restore) recreates the old server: it fails.
    let creates = fake.calls_of("create").len();
    fake.set_env("FAKE_DOCKER_FAIL_AT", "create")
        .set_env("FAKE_DOCKER_FAIL_NTH", (creates + 1).to_string());

    let rollback = run_tool(&fake, &[&["rollback"][..], &server].concat(), None);

    assert_eq!(rollback.code, 1, "{}", rollback.stderr);
    assert!(
        rollback.stderr.contains("Step 5/7 failed"),
        "{}",
        rollback.stderr
    );
    assert_eq!(
        fake.container_names(),
        [DATA_CONTAINER],
        "no server runs now: the new one is removed, the old one not yet recreated"
    );
    assert!(
        !rollback.stderr.contains("the old server was not touched"),
        "the report says nothing needs doing while no server runs:\n{}",
        rollback.stderr
    );
}
