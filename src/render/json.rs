//! The plan as JSON, for other tools: `{container, from, to, mode, warnings, steps}`.

use super::way_back;
use crate::argv::Reveal;
use crate::plan::{Action, Plan};
use serde_json::json;

pub fn render(plan: &Plan, reveal: Reveal) -> String {
    let steps: Vec<_> = plan
        .steps
        .iter()
        .map(|step| {
            let (argv, probe) = match &step.action {
                Action::Docker(argv) => (argv.shown_words(reveal), None),
                Action::WaitHealthy(probe) => (Vec::new(), Some(probe)),
            };
            json!({
                "id": step.id,
                "title": step.title,
                "reason": step.reason,
                "argv": argv,
                "changes": step.changes,
                "skipped": step.skipped,
                "probe": probe,
                "undo": step.undo.iter().map(|a| a.shown_words(reveal)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let document = json!({
        "container": plan.container,
        "from": plan.from,
        "from_version": plan.from_version,
        "to": plan.to,
        "mode": plan.mode,
        "data_container": plan.data_container,
        "warnings": plan.warnings,
        "steps": steps,
        "way_back": way_back(plan).iter().map(|a| a.shown_words(reveal)).collect::<Vec<_>>(),
    });
    let mut text = serde_json::to_string_pretty(&document).expect("a plan always serializes");
    text.push('\n');
    text
}
