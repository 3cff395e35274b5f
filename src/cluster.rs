//! The upgrade of a Rancher HA cluster, the documented way: each node's own single-server plan,
//! its steps put in the order of the docs across the nodes. Pull everywhere first; park and
//! prepare every node while the cluster still runs; stop all of them (the cluster is down); then
//! start the new version on one node at a time, each answering and settled before the next;
//! remove the old containers once every node answers.

use crate::error::Refusal;
use crate::node::Node;
use crate::plan::{self, Action, Plan, PlanNode, PlanOptions, Step, StepId};
use std::collections::BTreeMap;

/// When a step of a node's own plan runs in the cluster's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// On every node before anything changes.
    Pull,
    /// Once for the cluster: the external database's backup.
    Database,
    /// On every node while the cluster still runs.
    Prepare,
    /// On every node: from here the cluster is down.
    Stop,
    /// One node after the other.
    Start,
    /// On every node, once all of them answer.
    Remove,
}

fn phase(id: StepId) -> Phase {
    match id {
        StepId::Pull => Phase::Pull,
        StepId::ConfirmDatabaseBackup => Phase::Database,
        StepId::Stop => Phase::Stop,
        StepId::RunNew | StepId::WaitHealthy => Phase::Start,
        StepId::RemoveOld => Phase::Remove,
        _ => Phase::Prepare,
    }
}

/// Whether the cluster needs a step once, not on every node.
fn once_for_the_cluster(id: StepId) -> bool {
    phase(id) == Phase::Database
}

/// The cluster's plan. `settle_seconds`: the pause after a node answers, before the next one
/// starts, which lets the database's load fall back after the migration (the docs' advice).
pub fn plan(nodes: &[Node], options: &PlanOptions, settle_seconds: u64) -> Result<Plan, Refusal> {
    let mut plans = Vec::new();
    let mut refusals = Vec::new();
    for node in nodes {
        match plan::plan(&node.discovery, options) {
            Ok(plan) => plans.push(plan),
            Err(Refusal::Preflight(reasons)) => refusals.extend(
                reasons
                    .into_iter()
                    .map(|reason| format!("node {}: {reason}", node.name)),
            ),
            Err(Refusal::BadInput(why)) => {
                return Err(Refusal::BadInput(format!("node {}: {why}", node.name)));
            }
        }
    }
    if !refusals.is_empty() {
        return Err(Refusal::Preflight(refusals));
    }

    let mut steps: Vec<Step> = Vec::new();
    let phases = [
        Phase::Pull,
        Phase::Database,
        Phase::Prepare,
        Phase::Stop,
        Phase::Start,
        Phase::Remove,
    ];
    for phase_now in phases {
        for (index, node_plan) in plans.iter().enumerate() {
            if phase_now == Phase::Database && index > 0 {
                continue;
            }
            for step in node_plan.steps.iter().filter(|s| phase(s.id) == phase_now) {
                steps.push(on_node(step, index, &nodes[index].name));
            }
            // The next node starts once this one answers and the database has settled.
            if phase_now == Phase::Start && index + 1 < plans.len() && settle_seconds > 0 {
                steps.push(settle_step(&nodes[index].name, settle_seconds, index));
            }
        }
    }

    let first = &plans[0];
    Ok(Plan {
        steps,
        warnings: warnings(nodes, &plans),
        nodes: nodes
            .iter()
            .zip(&plans)
            .map(|(node, plan)| PlanNode {
                name: node.name.clone(),
                engine: node.engine().clone(),
                container: plan.container.clone(),
            })
            .collect(),
        ..first.clone()
    })
}

/// A step of node `index`'s own plan, and its undo, named and addressed as that node's.
fn on_node(step: &Step, index: usize, name: &str) -> Step {
    let title = match once_for_the_cluster(step.id) {
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
fn warnings(nodes: &[Node], plans: &[Plan]) -> Vec<String> {
    let mut by_warning: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut order = Vec::new();
    for (node, plan) in nodes.iter().zip(plans) {
        for warning in &plan.warnings {
            let names = by_warning.entry(warning).or_insert_with(|| {
                order.push(warning.as_str());
                Vec::new()
            });
            names.push(&node.name);
        }
    }
    order
        .into_iter()
        .map(|warning| match by_warning[warning].as_slice() {
            names if names.len() == nodes.len() => warning.to_string(),
            names => format!("{}: {warning}", names.join(", ")),
        })
        .collect()
}
