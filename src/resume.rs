//! Picking up an upgrade that stopped halfway (Ctrl-C, a killed terminal, a failed step before
//! the new version ran): the record says what was done, the engine confirms it.

use crate::archive::Archive;
use crate::discover::discover;
use crate::engine::Engine;
use crate::health::ContainerState;
use crate::plan::{Plan, StepId};
use crate::server::{Discovery, RestartPolicy, Server};
use crate::state::UpgradeRecord;
use anyhow::{Result, bail};
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
    // A step cut off by Ctrl-C (here or on the way back: a rename, a create, a connect, a
    // start, a stop, a removal) may have taken effect or not: what the engine shows decides.
    let mut seen = |id: StepId, on_engine: bool| {
        done.retain(|d| *d != id || on_engine);
        if on_engine && !done.contains(&id) {
            done.push(id);
        }
    };
    let parked = container_id(engine, &record.parked_name)?;
    seen(
        StepId::ParkOld,
        parked.as_deref() == Some(record.old_container_id.as_str()),
    );
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
    let networks = new_container
        .as_ref()
        .and_then(|new| new.pointer("/NetworkSettings/Networks"))
        .and_then(Value::as_object);
    seen(StepId::CreateNew, new_container.is_some());
    for (index, network) in server.carried.connected_networks().enumerate() {
        seen(
            StepId::ConnectNetwork(index),
            networks.is_some_and(|n| n.contains_key(&network.name)),
        );
    }
    let state = new_container
        .as_ref()
        .and_then(|new| serde_json::from_value::<ContainerState>(new["State"].clone()).ok());
    seen(StepId::RunNew, state.is_some_and(|s| s.ever_started()));
    let old_running = crate::health::container_state(engine, &record.old_container_id)?.running;
    seen(StepId::Stop, !old_running);
    // A backup cut off by Ctrl-C once its archive and checksum were written: the archive under
    // this upgrade's own name, whole, is that backup done.
    let archived = record
        .backup_archive
        .clone()
        .and_then(Archive::at)
        .is_some_and(|archive| archive.verify().is_ok());
    if archived && !done.contains(&StepId::Backup) {
        done.push(StepId::Backup);
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
