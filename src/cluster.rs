//! The upgrade of a Rancher HA cluster, the documented way: each node's own single-server plan,
//! its steps put in the order of the docs across the nodes. Pull everywhere first; park and
//! prepare every node while the cluster still runs; stop all of them (the cluster is down); then
//! start the new version on one node at a time, each answering and settled before the next;
//! remove the old containers once every node answers.

use crate::error::Refusal;
use crate::node::{Node, advertise_address, advertised_ip};
use crate::plan::{self, Action, Plan, PlanNode, PlanOptions, Step, StepId};
use std::collections::BTreeMap;

/// When a step of a node's own plan runs in the cluster's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// On every node before anything changes, all at once.
    Pull,
    /// Once for the cluster, before anything changes: the database's backup, or the check of
    /// the archive a rollback restores.
    Check,
    /// On every node while the cluster still runs.
    Prepare,
    /// On every node: from here the cluster is down.
    Stop,
    /// Once for the cluster, every node stopped: the data's backup, or its restore.
    Data,
    /// One node after the other, each answering before the next starts.
    Start,
    /// On every node, once all of them answer.
    Remove,
}

impl Phase {
    /// Whether the cluster runs the phase's steps once, not on every node: its database is one.
    fn once_for_the_cluster(self) -> bool {
        matches!(self, Phase::Check | Phase::Data)
    }
}

const PHASES: [Phase; 7] = [
    Phase::Pull,
    Phase::Check,
    Phase::Prepare,
    Phase::Stop,
    Phase::Data,
    Phase::Start,
    Phase::Remove,
];

fn phase(id: StepId) -> Phase {
    match id {
        StepId::Pull => Phase::Pull,
        StepId::ConfirmDatabaseBackup | StepId::VerifyBackup => Phase::Check,
        StepId::Stop | StepId::StopNew | StepId::RemoveNew | StepId::RemoveParked => Phase::Stop,
        StepId::Backup | StepId::RestoreData => Phase::Data,
        StepId::RunNew
        | StepId::WaitHealthy
        | StepId::RecreateOld
        | StepId::UnparkOld
        | StepId::RestoreRestart
        | StepId::StartOld
        | StepId::WaitOldHealthy => Phase::Start,
        StepId::RemoveOld => Phase::Remove,
        _ => Phase::Prepare,
    }
}

/// A node's steps, each with the phase it runs in: its own, but never before the Stop phase
/// once the node's own plan has stopped its old server (podman's way to keep an `always` server
/// down creates the new server only then, right before removing the old one).
fn node_steps(plan: &Plan) -> impl Iterator<Item = (&Step, Phase)> {
    let mut stopped = false;
    plan.steps.iter().map(move |step| {
        let own = phase(step.id);
        let runs_in = match stopped && !own.once_for_the_cluster() {
            true => own.max(Phase::Stop),
            false => own,
        };
        stopped |= step.id == StepId::Stop;
        (step, runs_in)
    })
}

/// Each node's own plan, or the refusals of all of them, each naming its node.
fn each_node<T>(
    nodes: &[T],
    name: impl Fn(&T) -> &str,
    plan_of: impl Fn(&T) -> Result<Plan, Refusal>,
) -> Result<Vec<Plan>, Refusal> {
    let mut plans = Vec::new();
    let mut refusals = Vec::new();
    for node in nodes {
        match plan_of(node) {
            Ok(plan) => plans.push(plan),
            Err(Refusal::Preflight(reasons)) => refusals.extend(
                reasons
                    .into_iter()
                    .map(|reason| format!("node {}: {reason}", name(node))),
            ),
            Err(Refusal::BadInput(why)) => {
                return Err(Refusal::BadInput(format!("node {}: {why}", name(node))));
            }
        }
    }
    match refusals.is_empty() {
        true => Ok(plans),
        false => Err(Refusal::Preflight(refusals)),
    }
}

/// The cluster's upgrade. `settle_seconds`: the pause after a node answers, before the next
/// one starts, which lets the database's load fall back after the migration (the docs' advice).
pub fn plan(nodes: &[Node], options: &PlanOptions, settle_seconds: u64) -> Result<Plan, Refusal> {
    let plans = each_node(nodes, |n| &n.name, |n| plan::plan(&n.discovery, options))?;
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    Ok(compose(&names, &plans, |index| {
        let mut after = Vec::new();
        // An interface name or a lookup (eth0, ipify) is resolved inside: no address to look for.
        let address =
            advertise_address(nodes[index].server()).filter(|a| advertised_ip(a).is_some());
        if let Some(address) = address {
            after.push(member_step(index, &nodes[index], &address, options));
        }
        if index + 1 < nodes.len() && settle_seconds > 0 {
            after.push(settle_step(&names[index], settle_seconds, index));
        }
        after
    }))
}

/// The cluster's rollback from each node's own (`rollback::plan`): every new server stopped
/// and removed, the data restored once, then each old one back and answering, one at a time.
pub fn rollback(names: &[String], plans: &[Plan]) -> Plan {
    compose(names, plans, |_| Vec::new())
}

/// The nodes' own plans as one, phase by phase in [`PHASES`]' order; `after_start(index)`:
/// the steps that follow node `index`'s start before the next node's.
fn compose(names: &[String], plans: &[Plan], after_start: impl Fn(usize) -> Vec<Step>) -> Plan {
    let mut steps: Vec<Step> = Vec::new();
    for phase_now in PHASES {
        if phase_now == Phase::Pull {
            steps.extend(pull_everywhere(plans));
            continue;
        }
        for (index, node_plan) in plans.iter().enumerate() {
            // The first node backs the database up, or restores it.
            if index > 0 && phase_now.once_for_the_cluster() {
                continue;
            }
            for (step, _) in node_steps(node_plan).filter(|(_, p)| *p == phase_now) {
                steps.push(on_node(step, index, &names[index]));
            }
            if phase_now == Phase::Start {
                steps.extend(after_start(index));
            }
        }
    }
    let first = &plans[0];
    Plan {
        steps,
        warnings: warnings(names, plans),
        nodes: names
            .iter()
            .zip(plans)
            .map(|(name, plan)| PlanNode {
                name: name.clone(),
                engine: plan.engine.clone(),
                container: plan.container.clone(),
            })
            .collect(),
        ..first.clone()
    }
}

/// A step of node `index`'s own plan, and its undo, named and addressed as that node's.
fn on_node(step: &Step, index: usize, name: &str) -> Step {
    let title = match phase(step.id).once_for_the_cluster() {
        true => step.title.clone(),
        false => format!("{name}: {}", step.title),
    };
    Step {
        title,
        node: Some(index),
        undo: step.undo.iter().map(|u| on_node(u, index, name)).collect(),
        ..step.clone()
    }
}

/// Every node's pull in one step, all at once: the download is no downtime, and a node that
/// can't get the image fails the upgrade before anything stops anywhere.
fn pull_everywhere(plans: &[Plan]) -> Option<Step> {
    let pulls: Vec<&Step> = plans
        .iter()
        .filter_map(|plan| plan.steps.iter().find(|s| s.id == StepId::Pull))
        .collect();
    let first = pulls.first()?;
    Some(Step {
        title: format!("Pull {} on every node", plans[0].to),
        reason: format!("{} Every node pulls at once.", first.reason),
        action: Action::Parallel(pulls.iter().filter_map(|s| s.argv()).cloned().collect()),
        ..(*first).clone()
    })
}

/// The docs' sign that a node is fully up: it is listed under Admin → High Availability.
fn member_step(index: usize, node: &Node, address: &str, options: &PlanOptions) -> Step {
    Step {
        id: StepId::WaitMember,
        title: format!(
            "{}: Wait until {} is in the cluster's HA list",
            node.name,
            node.server().name
        ),
        reason: format!(
            "The docs start the next node once this one is fully up: its UI and API answer, and it is listed under Admin → High Availability as {address}."
        ),
        action: Action::WaitHealthy(plan::member_probe(
            node.engine(),
            &node.server().name,
            address,
            options.health_timeout_seconds,
        )),
        changes: false,
        skipped: None,
        undo: vec![],
        node: Some(index),
    }
}

fn settle_step(name: &str, seconds: u64, index: usize) -> Step {
    Step {
        id: StepId::Settle,
        title: format!("{name}: let the node settle for {seconds} s"),
        reason: "The docs start the next node once this one has settled: its migration and start load the database, whose CPU should fall back near its baseline first (--settle).".into(),
        action: Action::Settle(seconds),
        changes: false,
        skipped: None,
        undo: vec![],
        node: Some(index),
    }
}

/// Each node's warnings, once each: one that every node has is said once, for the cluster.
fn warnings(names: &[String], plans: &[Plan]) -> Vec<String> {
    let mut by_warning: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut order = Vec::new();
    for (name, plan) in names.iter().zip(plans) {
        for warning in &plan.warnings {
            let names = by_warning.entry(warning).or_insert_with(|| {
                order.push(warning.as_str());
                Vec::new()
            });
            names.push(name);
        }
    }
    order
        .into_iter()
        .map(|warning| match by_warning[warning].as_slice() {
            all if all.len() == names.len() => warning.to_string(),
            names => format!("{}: {warning}", names.join(", ")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::argv::Reveal;
    use crate::node::fixture::cluster;

    /// An upgrade to v1.6.20 with the database's dump into /backups.
    fn options() -> PlanOptions {
        plan::fixture::options("v1.6.20", "/backups", "20261127T000000Z")
    }

    /// Each step as `NODE VERB`: the node's number (1-based) and what the step does.
    fn outline(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| {
                let node = s.node.map_or("-".to_string(), |n| (n + 1).to_string());
                format!(
                    "{node} {}",
                    serde_json::to_value(s.id).unwrap().as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn an_always_node_on_podman_gets_its_new_server_only_once_its_old_one_is_stopped_then_removed()
    {
        let mut nodes = cluster();
        nodes[1].discovery.engine.kind = crate::engine::EngineKind::Podman;
        nodes[1].discovery.server.carried.restart = Some(crate::server::RestartPolicy {
            name: "always".into(),
            maximum_retry_count: 0,
        });
        let plan = plan(&nodes, &options(), 0).unwrap();
        let prepared_and_stopped: Vec<String> = outline(&plan.steps)
            .into_iter()
            .skip_while(|s| s != "1 disable-restart")
            .take_while(|s| s != "1 backup")
            .collect();
        assert_eq!(
            prepared_and_stopped,
            [
                "1 disable-restart",
                "1 park-old",
                "1 create-new",
                "2 disable-restart",
                "2 park-old",
                "3 disable-restart",
                "3 park-old",
                "3 create-new",
                "1 stop",
                "2 stop",
                "2 create-new",
                "2 remove-parked",
                "3 stop",
            ]
        );
    }

    #[test]
    fn the_plan_pulls_everywhere_prepares_every_node_stops_all_then_starts_one_after_the_other() {
        let plan = plan(&cluster(), &options(), 30).unwrap();
        assert_eq!(
            outline(&plan.steps),
            [
                "- pull",
                "1 disable-restart",
                "1 park-old",
                "1 create-new",
                "2 disable-restart",
                "2 park-old",
                "2 create-new",
                "3 disable-restart",
                "3 park-old",
                "3 create-new",
                "1 stop",
                "2 stop",
                "3 stop",
                "1 backup",
                "1 run-new",
                "1 wait-healthy",
                "1 wait-member",
                "1 settle",
                "2 run-new",
                "2 wait-healthy",
                "2 wait-member",
                "2 settle",
                "3 run-new",
                "3 wait-healthy",
                "3 wait-member",
                "1 remove-old",
                "2 remove-old",
                "3 remove-old",
            ]
        );
        // Every command of a node goes to that node's engine, and a node's own step says so
        // (the database's dump, once for the cluster, goes through the first).
        for step in &plan.steps {
            if let (Some(node), Some(argv)) = (step.node, step.argv()) {
                let shown = argv.display(Reveal::Masked);
                let address = format!("docker --host ssh://root@10.0.0.1{} ", node + 1);
                assert!(shown.contains(&address), "{shown}");
                assert!(
                    phase(step.id).once_for_the_cluster()
                        || step.title.starts_with(&plan.nodes[node].name),
                    "{}",
                    step.title
                );
            }
        }
        let waits: Vec<String> = plan
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::WaitHealthy(probe) if s.id == StepId::WaitHealthy => {
                    Some(probe.ask.display(Reveal::Masked))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            waits[1],
            "docker --host ssh://root@10.0.0.12 exec rancher curl -fsS --max-time 5 http://127.0.0.1:8080/ping"
        );
        assert_eq!(plan.nodes.len(), 3);
        let Action::Parallel(pulls) = &plan.steps[0].action else {
            panic!("the pulls run at once: {:?}", plan.steps[0]);
        };
        let pulls: Vec<String> = pulls.iter().map(|a| a.display(Reveal::Masked)).collect();
        assert_eq!(
            pulls,
            (1..=3)
                .map(|k| format!(
                    "docker --host ssh://root@10.0.0.1{k} pull 127.0.0.1:5000/rancher/server:v1.6.20"
                ))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_second_node_failing_to_answer_returns_the_whole_cluster_and_waits_for_each() {
        let plan = plan(&cluster(), &options(), 30).unwrap();
        let failed_at = plan
            .steps
            .iter()
            .position(|s| s.id == StepId::WaitHealthy && s.node == Some(1))
            .unwrap();
        let way_back = plan.way_back(&plan.steps[..failed_at]);
        assert_eq!(
            outline(&way_back),
            [
                // The new servers go first: the one that ran, then the ones only created.
                "2 stop-new",
                "2 remove-new",
                "1 stop-new",
                "1 remove-new",
                // The migrated database goes back to the dump before any old server starts.
                "1 restore-data",
                "3 start-old",
                "2 start-old",
                "1 start-old",
                "3 remove-new",
                "3 unpark-old",
                "3 restore-restart",
                "2 unpark-old",
                "2 restore-restart",
                "1 unpark-old",
                "1 restore-restart",
                "1 wait-old-healthy",
                "2 wait-old-healthy",
                "3 wait-old-healthy",
            ]
        );
        let wait_titles: Vec<&str> = way_back
            .iter()
            .filter(|s| s.id == StepId::WaitOldHealthy)
            .map(|s| s.title.as_str())
            .collect();
        assert_eq!(
            wait_titles,
            (1..=3)
                .map(|k| format!("ssh://root@10.0.0.1{k}: Wait until rancher answers /ping again"))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_node_is_up_once_its_ha_list_names_its_address() {
        let plan = plan(&cluster(), &options(), 30).unwrap();
        let member = plan
            .steps
            .iter()
            .find(|s| s.id == StepId::WaitMember && s.node == Some(1));
        let Some(Step {
            action: Action::WaitHealthy(probe),
            ..
        }) = member
        else {
            panic!("no wait for node 2 in the HA list: {member:?}");
        };
        assert_eq!(
            probe.ask.display(Reveal::Masked),
            "docker --host ssh://root@10.0.0.12 exec rancher curl -fsS --max-time 5 http://127.0.0.1:8080/v2-beta/clustermemberships"
        );
        let list = |addresses: &[&str]| {
            let data: Vec<serde_json::Value> = addresses
                .iter()
                .map(|a| serde_json::json!({"config": format!(r#"{{"advertiseAddress":"{a}","httpPort":8080,"clustered":true}}"#)}))
                .collect();
            serde_json::json!({"type": "collection", "data": data}).to_string()
        };
        // The operator's wait and its failure name the address awaited.
        assert_eq!(
            probe.target(),
            "the HA list inside rancher (/v2-beta/clustermemberships, as 10.0.0.12)"
        );
        assert!(probe.expect.accepts(&list(&["10.0.0.11", "10.0.0.12"])));
        assert!(!probe.expect.accepts(&list(&["10.0.0.11"])));
        assert!(!probe.expect.accepts("pong"));
    }

    #[test]
    fn without_a_settle_pause_the_next_node_starts_once_one_answers() {
        let plan = plan(&cluster(), &options(), 0).unwrap();
        assert!(plan.steps.iter().all(|s| s.id != StepId::Settle));
    }

    #[test]
    fn without_a_dump_the_cluster_asks_once_for_the_operators_own() {
        let no_backup = PlanOptions {
            backup: None,
            ..options()
        };
        let plan = plan(&cluster(), &no_backup, 30).unwrap();
        let confirm: Vec<String> = outline(&plan.steps)
            .into_iter()
            .filter(|s| s.ends_with("confirm-database-backup"))
            .collect();
        assert_eq!(confirm, ["1 confirm-database-backup"]);
        assert!(plan.steps.iter().all(|s| s.id != StepId::Backup));
        // A warning every node has is said once.
        let said = plan
            .warnings
            .iter()
            .filter(|w| w.starts_with("--no-backup"))
            .count();
        assert_eq!(said, 1, "{:?}", plan.warnings);
    }
}
