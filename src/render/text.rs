//! The plan for a terminal: coloured as `--color` decides (see `color`), by default when stdout
//! is a terminal.

use super::{
    action_line, database_line, engines_line, headline, numbered, way_back, way_back_note,
};
use crate::argv::Reveal;
use crate::plan::{Plan, Step};
use console::style;
use std::fmt::Write as _;

pub fn render(plan: &Plan, reveal: Reveal) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", style(headline(plan)).bold());
    let engines = if plan.nodes.is_empty() {
        "Engine"
    } else {
        "Nodes"
    };
    let _ = writeln!(out, "{engines}: {}", engines_line(plan));
    let _ = writeln!(out, "Database: {}", database_line(plan));
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "\n{}", style("Warnings:").yellow().bold());
        for warning in &plan.warnings {
            let _ = writeln!(out, "  {} {warning}", style("!").yellow());
        }
    }
    let _ = writeln!(out);
    for (number, step) in numbered(plan) {
        out.push_str(&step_block(number, None, step, reveal));
    }
    if let Some(note) = way_back_note(plan) {
        let _ = writeln!(out, "\n{note}");
        for step in way_back(plan) {
            let _ = writeln!(out, "    {}", action_line(&step, reveal));
        }
    }
    out
}

/// One step as the operator reads it: number, title, reason and command. The executor shows
/// each step with this too, so the plan and the run look alike.
pub fn step_block(number: usize, total: Option<usize>, step: &Step, reveal: Reveal) -> String {
    let mut out = String::new();
    let label = match total {
        Some(total) => format!("[{number}/{total}]"),
        None => format!("{number:>2}."),
    };
    if let Some(why) = &step.skipped {
        let _ = writeln!(
            out,
            "{}",
            style(format!("{label} {} (skipped: {why})", step.title)).dim()
        );
        return out;
    }
    let _ = writeln!(out, "{}", style(format!("{label} {}", step.title)).bold());
    let _ = writeln!(out, "    {}", step.reason);
    let _ = writeln!(out, "    {}", action_line(step, reveal));
    out
}
