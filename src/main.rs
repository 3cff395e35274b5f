use anyhow::Result;
use clap::Parser;
use rancher_upgrade::{cli, discover, docker, error, execute, plan, render, transcript};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run(cli::Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("rancher-upgrade: {error:#}");
            error::exit_code_for(&error)
        }
    }
}

fn run(cli: cli::Cli) -> Result<ExitCode> {
    let config = cli::Config::from_cli(cli)?;
    let docker = docker::Docker::locate(config.docker.as_deref())?;
    let container = match &config.container {
        Some(name) => name.clone(),
        None => discover::find_server_container(&docker)?,
    };
    let discovery = discover::discover(&docker, &container, &config.plan.data_container)?;
    let plan = plan::plan(&discovery, &config.plan)?;
    match config.action {
        cli::Action::Show(format) => {
            print!("{}", render::render(&plan, format, config.show_secrets));
            Ok(ExitCode::SUCCESS)
        }
        cli::Action::Execute(execution) => {
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
            };
            execute::execute(&plan, &docker, &options)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
