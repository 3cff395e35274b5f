//! The docker binary: finding it, and turning an [`Argv`] into a duct expression.
//!
//! `DOCKER_HOST` and `DOCKER_CONTEXT` reach docker untouched: duct passes the environment on.

use crate::argv::{Argv, Reveal};
use crate::error::bad_input;
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Docker {
    program: PathBuf,
}

/// What a finished docker command left.
#[derive(Debug)]
pub struct Finished {
    pub success: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

impl Docker {
    /// `--docker` (or `RANCHER_UPGRADE_DOCKER`) when given, else `docker` on PATH.
    pub fn locate(explicit: Option<&Path>) -> Result<Docker> {
        let program = match explicit {
            Some(path) if path.as_os_str().is_empty() => {
                return Err(bad_input(
                    "--docker is empty: give the path of the docker binary, or leave it out to use `docker` from PATH",
                ));
            }
            Some(path) if path.components().count() > 1 || path.is_absolute() => {
                which::which(path).map_err(|_| {
                    bad_input(format!(
                        "--docker {}: no executable file there; give the path of the docker binary",
                        path.display()
                    ))
                })?
            }
            Some(name) => which::which(name).map_err(|_| {
                bad_input(format!(
                    "--docker {}: no such program on PATH; give the full path of the docker binary",
                    name.display()
                ))
            })?,
            None => which::which("docker").map_err(|_| {
                bad_input(
                    "no `docker` on PATH: install the Docker CLI, or name it with --docker PATH (or RANCHER_UPGRADE_DOCKER)",
                )
            })?,
        };
        Ok(Docker { program })
    }

    /// The command an [`Argv`] describes. A plan writes `docker` as an operator types it, and
    /// this docker binary stands in for it; another program (the host's `tar`) runs as named.
    pub fn expression(&self, argv: &Argv) -> duct::Expression {
        let words = argv.real();
        // A name goes to duct as a string: duct reads a relative `Path` as `./name`, a string as
        // a program to look up on PATH.
        let program: OsString = match words[0].as_str() {
            "docker" => self.program.clone().into_os_string(),
            other => other.into(),
        };
        duct::cmd(program, &words[1..])
    }

    /// Runs a command that changes nothing, and returns what it printed, success or not.
    pub fn read(&self, argv: &Argv) -> Result<Finished> {
        let output = self
            .expression(argv)
            .stdin_null()
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .with_context(|| {
                format!(
                    "could not start {} for `{}`",
                    self.program.display(),
                    argv.display(Reveal::Masked)
                )
            })?;
        Ok(Finished {
            success: output.status.success(),
            status: output.status.to_string(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Like [`Docker::read`], but a failure is an error that quotes docker's own words.
    pub fn read_ok(&self, argv: &Argv) -> Result<String> {
        let finished = self.read(argv)?;
        if !finished.success {
            bail!(
                "`{}` failed ({}): {}",
                argv.display(Reveal::Masked),
                finished.status,
                finished.stderr.trim()
            );
        }
        Ok(finished.stdout)
    }
}

/// `docker inspect --type container --format TEMPLATE -- CONTAINER`: one field of a container.
pub fn inspect_container_field(template: &str, container: &str) -> Argv {
    Argv::new("docker")
        .args(["inspect", "--type", "container", "--format", template, "--"])
        .arg(container)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_that_names_another_program_runs_it_from_path() {
        let docker = Docker {
            program: PathBuf::from("/nonexistent/docker"),
        };
        let listed = docker
            .expression(&Argv::new("sh").args(["-c", "echo from-path"]))
            .read()
            .unwrap();
        assert_eq!(listed, "from-path");
    }
}
