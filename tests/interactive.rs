//! The real prompts, driven through a pseudo-terminal as an operator at 2 a.m. would answer
//! them: yes, no, all, and Ctrl-C. The fake docker records what ran.

mod common;

use common::{BINARY, FakeDocker, pong_server, upgrade_args};
use rexpect::process::WaitStatus;
use rexpect::session::{PtySession, spawn_command};

/// `rancher-upgrade upgrade` of the embedded fixture on a terminal, no backup (the fake docker
/// writes no archive), with a health URL that answers pong.
fn upgrade_on_a_terminal(fake: &FakeDocker) -> PtySession {
    let mut command = fake.process(BINARY);
    command.args(upgrade_args(&pong_server()));
    spawn_command(command, Some(30_000)).expect("the binary starts on a pseudo-terminal")
}

fn exit_code(session: &PtySession) -> i32 {
    match session.process().wait().unwrap() {
        WaitStatus::Exited(_, code) => code,
        other => panic!("the upgrade did not exit normally: {other:?}"),
    }
}

fn subcommands(fake: &FakeDocker) -> Vec<String> {
    fake.mutating_calls()
        .into_iter()
        .map(|c| c[0].clone())
        .collect()
}

#[test]
fn answering_yes_to_every_step_runs_the_whole_plan() {
    let fake = FakeDocker::new("embedded");
    let mut session = upgrade_on_a_terminal(&fake);
    for step in [1, 2, 3, 4, 5, 6, 7, 9] {
        session.exp_string(&format!("Run step {step}?")).unwrap();
        session.send_line("y").unwrap();
    }
    session.exp_string("Done:").unwrap();
    session.exp_eof().unwrap();
    assert_eq!(exit_code(&session), 0);
    assert_eq!(
        subcommands(&fake),
        [
            "pull", "update", "create", "rename", "create", "stop", "start", "rm"
        ]
    );
}

#[test]
fn answering_no_before_anything_changed_leaves_the_server_as_it_was() {
    let fake = FakeDocker::new("embedded");
    let mut session = upgrade_on_a_terminal(&fake);
    session.exp_string("Run step 1?").unwrap();
    session.send_line("yes").unwrap();
    session.exp_string("Run step 2?").unwrap();
    session.send_line("no").unwrap();
    session
        .exp_string("Stopped before step 2/9 (Keep rancher down after a reboot), as you answered.")
        .unwrap();
    session
        .exp_string("rancher was not touched: it runs as before.")
        .unwrap();
    session.exp_eof().unwrap();
    assert_eq!(exit_code(&session), 1);
    assert_eq!(subcommands(&fake), ["pull"]);
}

/// Yes to the first six steps (the old server is parked and stopped, the new one created), no
/// to the new server's start: the session waits at the question the tool asks then.
fn declined_after_the_stop(fake: &FakeDocker) -> PtySession {
    let mut session = upgrade_on_a_terminal(fake);
    for step in 1..=6 {
        session.exp_string(&format!("Run step {step}?")).unwrap();
        session.send_line("y").unwrap();
    }
    session.exp_string("Run step 7?").unwrap();
    session.send_line("n").unwrap();
    session
        .exp_string("Return to the old server? [Y/n]")
        .unwrap();
    session
}

/// Answering no once the old server is stopped: the tool offers the way back, yes by default.
#[test]
fn answering_no_after_the_stop_offers_the_way_back_and_enter_takes_it() {
    let fake = FakeDocker::new("embedded");
    let mut session = declined_after_the_stop(&fake);
    session.send_line("").unwrap();
    session.exp_string("Rolled back.").unwrap();
    session.exp_eof().unwrap();
    assert_eq!(exit_code(&session), 1);
    let old = fake.container("rancher");
    assert_eq!(old["State"]["Running"], true);
    assert_eq!(old["HostConfig"]["RestartPolicy"]["Name"], "unless-stopped");
    assert!(!fake.has_container("rancher-v1.6.10"));
}

#[test]
fn refusing_the_way_back_says_in_which_state_the_server_is_left() {
    let fake = FakeDocker::new("embedded");
    let mut session = declined_after_the_stop(&fake);
    session.send_line("n").unwrap();
    session
        .exp_string("To return to the old server, run:")
        .unwrap();
    session
        .exp_string("NOT BACK: rancher is not back on the old server (you answered no to the way back): the old server is parked as rancher-v1.6.10, STOPPED; its restart policy is no; the new rancher (127.0.0.1:5599/rancher/server:v1.6.20) is created, never started.")
        .unwrap();
    session.exp_eof().unwrap();
    assert_eq!(exit_code(&session), 1);
    assert_eq!(fake.container("rancher-v1.6.10")["State"]["Running"], false);
}

#[test]
fn answering_all_runs_every_step_but_asks_again_before_removing_the_old_server() {
    let fake = FakeDocker::new("embedded");
    let mut session = upgrade_on_a_terminal(&fake);
    session.exp_string("Run step 1?").unwrap();
    session.send_line("a").unwrap();
    let before_removal = session.exp_string("Run step 9?").unwrap();
    assert!(
        !before_removal.contains("Run step 2?"),
        "after `all`, steps 2 to 8 must not ask: {before_removal}"
    );
    assert_eq!(
        subcommands(&fake),
        [
            "pull", "update", "create", "rename", "create", "stop", "start"
        ],
        "the removal must wait for its own answer"
    );
    session.send_line("n").unwrap();
    session
        .exp_string("To return to the old server, run:")
        .unwrap();
    session.exp_eof().unwrap();
    assert_eq!(exit_code(&session), 1);
    assert!(
        fake.has_container("rancher-v1.6.10"),
        "the old server stays"
    );
}

#[test]
fn an_answer_that_is_no_answer_is_asked_again() {
    let fake = FakeDocker::new("embedded");
    let mut session = upgrade_on_a_terminal(&fake);
    session.exp_string("Run step 1?").unwrap();
    session.send_line("maybe").unwrap();
    session
        .exp_string("answer y (yes), n (no) or a (all)")
        .unwrap();
    session.send_line("n").unwrap();
    session.exp_eof().unwrap();
    assert_eq!(exit_code(&session), 1);
    assert!(subcommands(&fake).is_empty(), "nothing ran");
}

#[test]
fn ctrl_c_at_a_prompt_stops_cleanly_with_exit_130() {
    let fake = FakeDocker::new("embedded");
    let mut session = upgrade_on_a_terminal(&fake);
    session.exp_string("Run step 1?").unwrap();
    session.send_line("y").unwrap();
    session.exp_string("Run step 2?").unwrap();
    session.send_control('c').unwrap();
    session.exp_string("Interrupted at step 2").unwrap();
    session.exp_eof().unwrap();
    assert_eq!(exit_code(&session), 130);
    assert_eq!(subcommands(&fake), ["pull"]);
}
