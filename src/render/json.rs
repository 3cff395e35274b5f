//! The plan as JSON, for other tools: `{kind, container, from, to, mode, warnings, nodes,
//! steps}`; in a cluster's plan each step names its node.

use super::way_back;
use crate::argv::Reveal;
use crate::plan::{Action, Plan, Step};
use serde_json::{Value, json};

pub fn render(plan: &Plan, reveal: Reveal) -> String {
    let steps: Vec<_> = plan
        .steps
        .iter()
        .map(|s| step_json(plan, s, reveal))
        .collect();
    let document = json!({
        "kind": plan.kind,
        "engine": plan.engine,
        "container": plan.container,
        "from": plan.from,
        "from_version": plan.from_version,
        "to": plan.to,
        "mode": plan.mode,
        "data_container": plan.data_container,
        "warnings": plan.warnings,
        "nodes": plan.nodes,
        "steps": steps,
        "backup_archive": plan.backup_archive.as_ref().map(|a| &a.path),
        "backup_format": plan.backup_archive.as_ref().map(|a| a.format),
        "way_back": way_back(plan).iter().map(|s| step_json(plan, s, reveal)).collect::<Vec<_>>(),
    });
    let mut text = serde_json::to_string_pretty(&document).expect("a plan always serializes");
    text.push('\n');
    text
}

fn step_json(plan: &Plan, step: &Step, reveal: Reveal) -> Value {
    let (probe, manual, transfer, verify) = match &step.action {
        Action::WaitHealthy(probe) => (Some(probe), None, None, None),
        Action::Manual(instruction) => (None, Some(instruction), None, None),
        Action::Transfer(transfer) => (
            None,
            None,
            Some(json!({"direction": transfer.direction, "archive": transfer.archive})),
            None,
        ),
        Action::VerifyArchive(archive) => (None, None, None, Some(archive)),
        Action::Docker(_) | Action::CheckRoom(_) | Action::Settle(_) | Action::Parallel(_) => {
            (None, None, None, None)
        }
    };
    let room = match &step.action {
        Action::CheckRoom(check) => Some(json!({"dir": check.dir})),
        _ => None,
    };
    json!({
        "node": step.node.map(|i| &plan.nodes[i].name),
        "id": step.id,
        "title": step.title,
        "reason": step.reason,
        "argv": step.argv().map(|a| a.shown_words(reveal)).unwrap_or_default(),
        "environment": step.argv().map(|a| a.shown_environment(reveal)).unwrap_or_default(),
        "changes": step.changes,
        "skipped": step.skipped,
        "probe": probe,
        "manual": manual,
        "transfer": transfer,
        "verify": verify,
        "room": room,
        "parallel": match &step.action {
            Action::Parallel(argvs) => argvs.iter().map(|a| a.shown_words(reveal)).collect(),
            _ => Vec::new(),
        },
        "undo": step.undo.iter().map(|s| step_json(plan, s, reveal)).collect::<Vec<_>>(),
    })
}
