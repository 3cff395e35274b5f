//! Picking up an upgrade that stopped halfway (Ctrl-C, a killed terminal, a failed step before
//! the new version ran): the record says what was done, the engine confirms it.

use crate::discover::discover;
use crate::engine::Engine;
use crate::plan::{Plan, StepId};
use crate::server::{Discovery, RestartPolicy, Server};
use crate::state::UpgradeRecord;
use anyhow::Result;
use serde_json::Value;

/// The old server as it was before the upgrade touched it: found by its id (it may be parked
/// under another name), under its own name, with its own restart policy.
pub fn rediscover(
    engine: &Engine,
    record: &UpgradeRecord,
    data_container: &str,
) -> Result<Discovery> {
    let mut discovery = discover(
        engine,
        &record.old_container_id,
        data_container,
        Some(&record.container),
    )?;
    discovery.server.carried.restart = record.restart_policy.as_deref().map(|policy| {
        let (name, retries) = policy.split_once(':').unwrap_or((policy, "0"));
        RestartPolicy {
            name: name.to_string(),
            maximum_retry_count: retries.parse().unwrap_or(0),
        }
    });
    Ok(discovery)
}

/// The steps the earlier run finished: those it recorded, and those whose effect the engine
/// shows although the run was killed before it could record them: the old server parked, the
/// new one created, connected to the networks of `server` (the old one), started.
pub fn steps_done(engine: &Engine, record: &UpgradeRecord, server: &Server) -> Result<Vec<StepId>> {
    let mut done = record.steps_done.clone();
    let mut shown = Vec::new();
    let parked = container_id(engine, &record.parked_name)?;
    if parked.as_deref() == Some(record.old_container_id.as_str()) {
        shown.push(StepId::ParkOld);
    }
    let found = engine.read(
        &engine
            .command()
            .args(["inspect", "--type", "container", "--"])
            .arg(&record.container),
    )?;
    let new_container: Option<Value> = found
        .success
        .then(|| serde_json::from_str::<Vec<Value>>(found.stdout.trim()).ok())
        .flatten()
        .and_then(|mut all| (!all.is_empty()).then(|| all.swap_remove(0)))
        .filter(|c| c.get("Id").and_then(Value::as_str) != Some(record.old_container_id.as_str()));
    if let Some(new) = &new_container {
        shown.push(StepId::CreateNew);
        let on = new
            .pointer("/NetworkSettings/Networks")
            .and_then(Value::as_object);
        for (index, network) in server.carried.connected_networks().enumerate() {
            if on.is_some_and(|n| n.contains_key(&network.name)) {
                shown.push(StepId::ConnectNetwork(index));
            }
        }
        let started = new.pointer("/State/StartedAt").and_then(Value::as_str);
        if started.is_some_and(|at| !at.starts_with("0001-01-01")) {
            shown.push(StepId::RunNew);
        }
    }
    for id in shown {
        if !done.contains(&id) {
            done.push(id);
        }
    }
    Ok(done)
}

/// The id of the container with that name, if there is one.
pub fn container_id(engine: &Engine, name: &str) -> Result<Option<String>> {
    let found = engine.read(&engine.inspect_container_field("{{.Id}}", name))?;
    Ok(found.success.then(|| found.stdout.trim().to_string()))
}

/// Marks the steps done earlier, so they show as done, run no second time, and count on the
/// way back (`Plan::done_earlier`).
pub fn mark_done(plan: &mut Plan, done: &[StepId], when: &str) {
    for (index, step) in plan.steps.iter_mut().enumerate() {
        if done.contains(&step.id) && step.skipped.is_none() {
            step.skipped = Some(format!("done by the run of {when}"));
            plan.done_earlier.push(index);
        }
    }
}
