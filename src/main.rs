mod argv;
mod cli;
mod discover;
mod docker;
mod error;
mod image;
mod plan;
mod render;
mod secrets;
mod server;

use anyhow::Result;
use clap::Parser;
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
        cli::Action::Execute { .. } => Err(error::bad_input(
            "running the upgrade is not built yet; use --dry-run, or `rancher-upgrade runbook --format shell`",
        )),
    }
}
