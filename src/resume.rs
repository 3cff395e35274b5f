//! Picking up an upgrade that stopped halfway (Ctrl-C, a killed terminal, a failed step before
//! the new version ran): the record says what was done, the engine confirms it.

use crate::discover::discover;
use crate::engine::Engine;
use crate::plan::{Plan, StepId};
use crate::server::{Discovery, RestartPolicy};
use crate::state::UpgradeRecord;
use anyhow::{Result, bail};

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
/// shows although the run was killed before it could record them.
pub fn steps_done(engine: &Engine, record: &UpgradeRecord) -> Result<Vec<StepId>> {
    let mut done = record.steps_done.clone();
    // A rename cut off by Ctrl-C (the park, or the unpark on the way back) may have taken effect
    // or not: the name the old server has says whether it is parked.
    let parked = container_id(engine, &record.parked_name)?.as_deref()
        == Some(record.old_container_id.as_str());
    done.retain(|id| *id != StepId::ParkOld || parked);
    if parked && !done.contains(&StepId::ParkOld) {
        done.push(StepId::ParkOld);
    }
    let under_the_name = container_id(engine, &record.container)?;
    if under_the_name.is_some_and(|id| id != record.old_container_id)
        && !done.contains(&StepId::RunNew)
    {
        done.push(StepId::RunNew);
    }
    // Likewise a stop, or a start on the way back: the old server's state says whether it is
    // stopped.
    let old_running = crate::health::container_state(engine, &record.old_container_id)?.running;
    done.retain(|id| *id != StepId::Stop || !old_running);
    if !old_running && !done.contains(&StepId::Stop) {
        done.push(StepId::Stop);
    }
    Ok(done)
}

/// The id of the container with that name, if there is one. An engine that does not answer
/// is an error, not a missing container; docker says "No such", podman "no such".
pub fn container_id(engine: &Engine, name: &str) -> Result<Option<String>> {
    let found = engine.read(&engine.inspect_container_field("{{.Id}}", name))?;
    if found.success {
        Ok(Some(found.stdout.trim().to_string()))
    } else if found.stderr.to_lowercase().contains("no such") {
        Ok(None)
    } else {
        bail!(
            "`{} inspect {name}` failed ({}): {}",
            engine.target().program,
            found.status,
            found.stderr.trim()
        )
    }
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
