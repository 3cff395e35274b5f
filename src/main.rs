use anyhow::{Context, Result};
use rancher_upgrade::archive::Archive;
use rancher_upgrade::cli::{self, Action, Config, Request, Task};
use rancher_upgrade::engine::Engine;
use rancher_upgrade::error::{self, bad_input};
use rancher_upgrade::plan::{self, Plan, PlanOptions};
use rancher_upgrade::state::{self, NodeRecord, Status, UpgradeRecord};
use rancher_upgrade::{
    cluster, color, discover, execute, manual, node, render, resume, rollback, status, transcript,
};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run(cli::Cli::from_args()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rancher-upgrade: {error:#}");
            error::exit_code_for(&error)
        }
    }
}

fn run(cli: cli::Cli) -> Result<()> {
    let (color, request) = cli.request()?;
    color::apply(color);
    match request {
        Request::Plan(config) => {
            let engine = Engine::locate(config.docker.as_deref(), config.context.as_deref())?;
            match (&config.task, config.nodes.as_slice()) {
                (Task::Upgrade(options), []) => upgrade(&config, options, &engine),
                (Task::Rollback { backup }, []) => roll_back(&config, backup.clone(), &engine),
                // One node: one server, on that engine.
                (task, [node]) => {
                    let engine = engine.addressing(&node.engine);
                    let config = Config {
                        container: node.container.clone(),
                        ..(*config).clone()
                    };
                    match task {
                        Task::Upgrade(options) => upgrade(&config, options, &engine),
                        Task::Rollback { backup } => roll_back(&config, backup.clone(), &engine),
                    }
                }
                (Task::Upgrade(options), _) => upgrade_cluster(&config, options, &engine),
                (Task::Rollback { backup }, _) => {
                    roll_back_cluster(&config, backup.clone(), &engine)
                }
            }
        }
        Request::Status(query) => {
            let engine = Engine::locate(query.docker.as_deref(), query.context.as_deref())?;
            let report = status::report(&query, &engine)?;
            print!("{}", status::render(&report, query.format));
            Ok(())
        }
        Request::Completions(shell) => {
            manual::completions(shell, &mut std::io::stdout());
            Ok(())
        }
        Request::Manual => Ok(manual::man_page(&mut std::io::stdout())?),
    }
}

/// The container named by `--container`, else the one running rancher/server container, else
/// (its server stopped halfway through) the one upgrade recorded as stopped in `--backup-dir`.
fn container(config: &Config, engine: &Engine) -> Result<String> {
    if let Some(name) = &config.container {
        return Ok(name.clone());
    }
    let running = discover::find_server_container(engine, "--container NAME");
    if running.is_ok() {
        return running;
    }
    match state::resumable_in(&config.backup_dir)?.as_slice() {
        [record] => {
            eprintln!(
                "No rancher/server container runs; {} has an upgrade that stopped halfway.",
                record.container
            );
            Ok(record.container.clone())
        }
        _ => running,
    }
}

fn upgrade(config: &Config, options: &PlanOptions, engine: &Engine) -> Result<()> {
    let container = container(config, engine)?;
    let record_path = state::record_path(&config.backup_dir, &container);
    // `--fresh`: the earlier record is set aside when this run first changes something.
    let previous = match config.fresh {
        true => None,
        false => UpgradeRecord::load(&record_path)?,
    };
    if let Some(record) = &previous
        && record.status == Status::Failed
    {
        return Err(bad_input(format!(
            "the last upgrade of {container} failed and its way back did not finish ({}); run `rancher-upgrade rollback --container {container} --backup-dir {}` first",
            record_path.display(),
            config.backup_dir.display()
        )));
    }
    let resumed = previous.filter(|r| r.status.is_resumable());
    let mut options = options.clone();
    let discovery = match &resumed {
        None => discover::discover(engine, &container, &config.data_container, None)?,
        Some(record) => {
            // The earlier run's archive name: one it finished is used, never written again; one
            // it was cut off writing is written again, over its own partial file.
            if let (Some(backup), Some(stamp)) = (&mut options.backup, &record.backup_stamp) {
                backup.stamp = stamp.clone();
            }
            let old_gone = resume::container_id(engine, &record.old_container_id)?.is_none();
            if old_gone && record.removed_old_container() {
                return Err(bad_input(format!(
                    "{} records an upgrade of {container} that removed its stopped old container {} to keep it down after a reboot, so it can't resume; run `rancher-upgrade rollback --container {container} --backup-dir {}` to make the old server again from the record on the data from before, or pass --fresh to set the record aside and upgrade {container} as it is now",
                    record_path.display(),
                    record.parked_name,
                    config.backup_dir.display()
                )));
            }
            if old_gone {
                return Err(bad_input(format!(
                    "{} records an upgrade of {container} from the container {}, which is gone (re-created, renamed or removed since); pass --fresh to set that record aside and upgrade {container} as it is now, or run `rancher-upgrade rollback --container {container} --backup-dir {}` to return to what it recorded",
                    record_path.display(),
                    &record.old_container_id[..record.old_container_id.len().min(12)],
                    config.backup_dir.display()
                )));
            }
            resume::rediscover(engine, record, &config.data_container)?
        }
    };
    let resuming = resumed.is_some();
    let mut plan = plan::plan(&discovery, &options)?;
    let record = match resumed {
        Some(mut record) => {
            if record.to_image != plan.to.to_string() {
                return Err(bad_input(format!(
                    "an interrupted upgrade of {container} to {} is recorded in {}: run the same command with --to {} to finish it, or `rancher-upgrade rollback --container {container}`",
                    record.to_image,
                    record_path.display(),
                    record.to_image
                )));
            }
            record.status = Status::InProgress;
            // The record names the archive this run writes or reuses, so a later rollback
            // restores the one that exists.
            record.backup_archive = plan.backup_archive.as_ref().map(|a| a.path.clone());
            record.backup_stamp = options.backup.as_ref().map(|b| b.stamp.clone());
            let done = resume::steps_done(engine, &record, &discovery.server)?;
            resume::mark_done(&mut plan, &done, &record.updated_at);
            eprintln!(
                "Resuming the upgrade of {container} recorded in {}: {} step(s) done already.",
                record_path.display(),
                plan.done_earlier.len()
            );
            record
        }
        None => {
            let recreate = plan::recreate_old(
                engine.target(),
                &discovery.server,
                &config.data_container,
                &discovery.server.name,
            );
            let stamp = options.backup.as_ref().map(|b| b.stamp.clone());
            UpgradeRecord::new(&discovery.server, &plan, &recreate, stamp)
        }
    };
    show_or_execute(config, &plan, engine, (record_path, record, resuming))
}

/// The upgrade of an HA cluster: every node discovered and checked together before anything
/// changes anywhere. A cluster's upgrade is recorded, not resumed: its way back returns every
/// node, and the next run plans from the engines as they are.
fn upgrade_cluster(config: &Config, options: &PlanOptions, engine: &Engine) -> Result<()> {
    let nodes = node::discover_nodes(engine, &config.nodes, &config.data_container)?;
    node::preflight(&nodes)?;
    let plan = cluster::plan(&nodes, options, config.settle_seconds)?;
    let record_path = cluster_record_path(config, &plan.container);
    if !config.fresh
        && let Some(record) = UpgradeRecord::load(&record_path)?
        && record.status.is_resumable()
    {
        return Err(bad_input(format!(
            "{} records a cluster upgrade that stopped halfway, which is not resumed: return each node with the way back that run printed, then run again with --fresh",
            record_path.display()
        )));
    }
    // Each node's own record, for a rollback of the cluster later; the first's stands for it.
    let records: Vec<NodeRecord> = nodes
        .iter()
        .map(|node| {
            let server = node.server();
            let recreate =
                plan::recreate_old(node.engine(), server, &config.data_container, &server.name);
            NodeRecord {
                name: node.name.clone(),
                record: UpgradeRecord {
                    container: server.name.clone(),
                    ..UpgradeRecord::new(server, &plan, &recreate, None)
                },
            }
        })
        .collect();
    let record = UpgradeRecord {
        nodes: records.clone(),
        ..records[0].record.clone()
    };
    show_or_execute(config, &plan, engine, (record_path, record, false))
}

/// `rancher-upgrade-cluster-NAME.state.json`: NAME is the first node's server.
fn cluster_record_path(config: &Config, container: &str) -> std::path::PathBuf {
    state::record_path(&config.backup_dir, &format!("cluster-{container}"))
}

/// The rollback of a cluster whose upgrade finished: each node's own rollback, by the record
/// the upgrade kept of it, composed the way the upgrade was.
fn roll_back_cluster(config: &Config, backup: Option<Archive>, engine: &Engine) -> Result<()> {
    let on = |spec: &node::NodeSpec| engine.addressing(&spec.engine);
    let first = &config.nodes[0];
    let container = match &first.container {
        Some(name) => name.clone(),
        None => discover::find_server_container(&on(first), "--node ENGINE=CONTAINER")?,
    };
    let record_path = cluster_record_path(config, &container);
    let record = UpgradeRecord::load(&record_path)?.ok_or_else(|| {
        bad_input(format!(
            "no cluster upgrade of {container} is recorded in {}; pass --backup-dir where the upgrade wrote its state file, and the nodes in the upgrade's order",
            config.backup_dir.display()
        ))
    })?;
    let mut names = Vec::new();
    let mut plans = Vec::new();
    for spec in &config.nodes {
        let Some(node) = record.nodes.iter().find(|n| n.name == spec.engine) else {
            let recorded: Vec<&str> = record.nodes.iter().map(|n| n.name.as_str()).collect();
            return Err(bad_input(format!(
                "node {} took no part in the upgrade recorded in {}; name the nodes that did: {}",
                spec.engine,
                record_path.display(),
                recorded.join(", ")
            )));
        };
        names.push(node.name.clone());
        plans.push(
            rollback_plan(config, backup.clone(), &on(spec), &node.record)
                .with_context(|| format!("node {}", node.name))?,
        );
    }
    let plan = cluster::rollback(&names, &plans);
    show_or_execute(config, &plan, engine, (record_path, record, true))
}

fn roll_back(config: &Config, backup: Option<Archive>, engine: &Engine) -> Result<()> {
    let container = container(config, engine)?;
    let record_path = state::record_path(&config.backup_dir, &container);
    let record = UpgradeRecord::load(&record_path)?.ok_or_else(|| {
        bad_input(format!(
            "no upgrade of {container} is recorded in {}; pass --backup-dir where the upgrade wrote its backups and state file",
            config.backup_dir.display()
        ))
    })?;
    let plan = rollback_plan(config, backup, engine, &record)?;
    show_or_execute(config, &plan, engine, (record_path, record, true))
}

/// The rollback of the server `record` recorded, as it runs now on `engine`.
fn rollback_plan(
    config: &Config,
    backup: Option<Archive>,
    engine: &Engine,
    record: &UpgradeRecord,
) -> Result<Plan> {
    let current = discover::discover(
        engine,
        &record.container,
        record
            .data_container
            .as_deref()
            .unwrap_or(&config.data_container),
        None,
    )?;
    let archive = match backup {
        Some(archive) => Some(archive),
        None => match &record.backup_archive {
            Some(path) => Some(Archive::at(path.clone()).ok_or_else(|| {
                bad_input(format!(
                    "the backup {} is gone or is no archive; pass --backup FILE with the archive taken before the upgrade",
                    path.display()
                ))
            })?),
            None => None,
        },
    };
    let options = rollback::RollbackOptions {
        archive,
        old_container_exists: resume::container_id(engine, &record.parked_name)?
            .is_some_and(|id| id == record.old_container_id),
        health_url: config.health_url.clone(),
        health_timeout_seconds: config.health_timeout_seconds,
        stop_timeout_seconds: config.stop_timeout_seconds,
    };
    Ok(rollback::plan(&current, record, &options)?)
}

fn show_or_execute(
    config: &Config,
    plan: &Plan,
    engine: &Engine,
    journal: execute::JournalStart,
) -> Result<()> {
    let execution = match &config.action {
        Action::Show(format) => {
            print!("{}", render::render(plan, *format, config.show_secrets));
            return Ok(());
        }
        Action::Execute(execution) => execution,
    };
    let log = execution.log.clone().unwrap_or_else(|| {
        config.backup_dir.join(format!(
            "rancher-upgrade-{}-{}.log",
            plan.container,
            transcript::compact_utc_now()
        ))
    });
    let options = execute::ExecOptions {
        assume_yes: execution.assume_yes,
        verbose: execution.verbose,
        log,
        step_timeout: execution.step_timeout,
        result: execution.result.clone(),
    };
    execute::execute(plan, engine, &options, journal)
}
