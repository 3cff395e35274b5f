//! The container engine: which binary runs (docker, or podman), which engine it addresses
//! (`--context`, `DOCKER_HOST`), and what that engine does by itself that the plan must know
//! (podman's injected settings, its lack of `update --restart`). Every command of a plan starts
//! with [`EngineTarget::command`], and [`Engine::expression`] runs it with the real binary.
//!
//! Nothing here assumes that the engine shares this machine's filesystem or network: files
//! cross through the engine as streams (`crate::transfer`), and health is asked inside the
//! container (`crate::health`).

use crate::argv::{Argv, Reveal};
use crate::error::bad_input;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    Docker,
    Podman,
}

impl EngineKind {
    /// Whether `update --restart` can change a container's restart policy (podman 4.3 can't).
    pub fn updates_restart_policy(self) -> bool {
        self == EngineKind::Docker
    }

    /// Whether the engine writes settings of its own into every container (podman: `HOSTNAME`,
    /// `container=podman`, `TERM`, a 10 s stop timeout, its log driver), which must not be
    /// carried as if the operator had chosen them. Such an engine also has `init`, which
    /// makes a container's settings whole without starting it.
    pub fn injects_settings(self) -> bool {
        self == EngineKind::Podman
    }

    /// Whether `cp CONTAINER:PATH -` streams the files with their owners (podman 4.3's gives
    /// every file to root, which would restore MySQL's files to the wrong user).
    pub fn copies_with_owners(self) -> bool {
        self == EngineKind::Docker
    }

    /// Whether a container can exist in the engine's storage alone, holding its name while
    /// `inspect` and `ps` don't see it (podman: a `create` killed halfway, a buildah container);
    /// `ps --external` lists them, with the status `Storage`.
    pub fn keeps_storage_only_containers(self) -> bool {
        self == EngineKind::Podman
    }

    /// Whether a container stays stopped once `stop` returns. Podman 4.3's restart policy
    /// (`always` as much as `unless-stopped`) can start a crash-looping container again right
    /// after it, so that a plain `rm` finds it running; `rm --force --time T` stops and removes
    /// it under one lock.
    pub fn stop_holds_against_restarts(self) -> bool {
        self == EngineKind::Docker
    }

    /// Whether `inspect` tells an address given with `--ip` from one the engine assigned
    /// (docker's `IPAMConfig`; podman 4 reports neither).
    pub fn records_static_addresses(self) -> bool {
        self == EngineKind::Docker
    }

    /// The global option that selects a configured remote engine.
    fn context_option(self) -> &'static str {
        match self {
            EngineKind::Docker => "--context",
            EngineKind::Podman => "--connection",
        }
    }

    /// The global option that addresses an engine by URL on one command.
    fn url_option(self) -> &'static str {
        match self {
            EngineKind::Docker => "--host",
            EngineKind::Podman => "--url",
        }
    }

    /// The variable that points the CLI at an engine by address.
    pub fn host_variable(self) -> &'static str {
        match self {
            EngineKind::Docker => "DOCKER_HOST",
            EngineKind::Podman => "CONTAINER_HOST",
        }
    }
}

/// The engine as a plan addresses it: pure data, for the plan and the runbooks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EngineTarget {
    pub kind: EngineKind,
    /// The program as a runbook names it: `docker` or `podman`.
    pub program: String,
    /// `--context NAME` (docker) or `--connection NAME` (podman), on every command.
    pub context: Option<String>,
    /// The engine's address from the environment (`DOCKER_HOST`, `CONTAINER_HOST`), which the
    /// CLI reads by itself; runbooks set it again.
    pub host: Option<String>,
    /// `--host URL` (podman: `--url URL`) on every command: a node of a cluster given by its
    /// address, so that each command says which engine it goes to.
    pub url: Option<String>,
}

impl EngineTarget {
    /// The start of every command: the program and the engine it addresses.
    pub fn command(&self) -> Argv {
        let argv = Argv::new(&self.program);
        match (&self.context, &self.url) {
            (Some(context), _) => argv.arg(self.kind.context_option()).arg(context),
            (None, Some(url)) => argv.arg(self.kind.url_option()).arg(url),
            (None, None) => argv,
        }
    }

    /// The same program addressing another engine: a docker context (podman: connection)
    /// name, or an address (`unix://`, `tcp://`, `ssh://`).
    pub fn addressing(&self, engine: &str) -> EngineTarget {
        let by_url = engine.contains("://");
        EngineTarget {
            context: (!by_url).then(|| engine.to_string()),
            url: by_url.then(|| engine.to_string()),
            // Each command names its engine, so the environment's address is beside the point.
            host: None,
            ..self.clone()
        }
    }

    /// `inspect --type container --format TEMPLATE -- CONTAINER`: one field of a container.
    pub fn inspect_container_field(&self, template: &str, container: &str) -> Argv {
        self.command()
            .args(["inspect", "--type", "container", "--format", template, "--"])
            .arg(container)
    }

    /// Where the commands go, for a reader: `docker (DOCKER_HOST=ssh://…)`, `podman`.
    pub fn describe(&self) -> String {
        let mut text = self.command().display(Reveal::Masked);
        if let Some(host) = &self.host {
            text.push_str(&format!(" ({}={host})", self.kind.host_variable()));
        }
        text
    }
}

/// The engine as this run reaches it: the target and the binary that stands for its program.
#[derive(Clone, Debug)]
pub struct Engine {
    target: EngineTarget,
    binary: PathBuf,
}

/// What a finished command left.
#[derive(Debug)]
pub struct Finished {
    pub success: bool,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

impl Engine {
    /// `--docker` (or `RANCHER_UPGRADE_DOCKER`) when given, else `docker` on PATH, else
    /// `podman` on PATH; its kind is what the binary says it is (`podman-docker` installs a
    /// `docker` that is podman).
    pub fn locate(explicit: Option<&Path>, context: Option<&str>) -> Result<Engine> {
        let binary = match explicit {
            Some(path) if path.as_os_str().is_empty() => {
                return Err(bad_input(
                    "--docker is empty: give the path of the docker or podman binary, or leave it out to use `docker` (or `podman`) from PATH",
                ));
            }
            Some(path) if path.components().count() > 1 || path.is_absolute() => {
                which::which(path).map_err(|_| {
                    bad_input(format!(
                        "--docker {}: no executable file there; give the path of the docker or podman binary",
                        path.display()
                    ))
                })?
            }
            Some(name) => which::which(name).map_err(|_| {
                bad_input(format!(
                    "--docker {}: no such program on PATH; give the full path of the docker or podman binary",
                    name.display()
                ))
            })?,
            None => which::which("docker")
                .or_else(|_| which::which("podman"))
                .map_err(|_| {
                    bad_input(
                        "neither `docker` nor `podman` is on PATH: install one, or name it with --docker PATH (or RANCHER_UPGRADE_DOCKER)",
                    )
                })?,
        };
        let kind = kind_of(&binary)?;
        let program = match kind {
            EngineKind::Podman => "podman",
            EngineKind::Docker => "docker",
        }
        .to_string();
        let host = std::env::var(kind.host_variable())
            .ok()
            .filter(|h| !h.trim().is_empty());
        Ok(Engine {
            target: EngineTarget {
                kind,
                program,
                context: context.map(str::to_string),
                host,
                url: None,
            },
            binary,
        })
    }

    pub fn target(&self) -> &EngineTarget {
        &self.target
    }

    /// The same binary, addressing `target` (a node of a cluster).
    pub fn on(&self, target: &EngineTarget) -> Engine {
        Engine {
            target: target.clone(),
            binary: self.binary.clone(),
        }
    }

    /// The same binary, addressing the engine `--node` names (a context or an address).
    pub fn addressing(&self, engine: &str) -> Engine {
        self.on(&self.target.addressing(engine))
    }

    pub fn kind(&self) -> EngineKind {
        self.target.kind
    }

    /// The start of every command (see [`EngineTarget::command`]).
    pub fn command(&self) -> Argv {
        self.target.command()
    }

    /// The command an [`Argv`] describes. A plan names the engine's program as an operator
    /// types it, and this binary stands in for it; another program (the host's `sha256sum`)
    /// runs as named. The secrets that travel in the environment are put there.
    pub fn expression(&self, argv: &Argv) -> duct::Expression {
        let words = argv.real();
        // A name goes to duct as a string: duct reads a relative `Path` as `./name`, a string as
        // a program to look up on PATH.
        let program: OsString = if words[0] == self.target.program {
            self.binary.clone().into_os_string()
        } else {
            words[0].clone().into()
        };
        argv.environment()
            .into_iter()
            .fold(duct::cmd(program, &words[1..]), |command, (name, value)| {
                command.env(name, value)
            })
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
                    self.binary.display(),
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

    /// Like [`Engine::read`], but a failure is an error that quotes the engine's own words.
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

    /// `inspect --type container --format TEMPLATE -- CONTAINER`.
    pub fn inspect_container_field(&self, template: &str, container: &str) -> Argv {
        self.target.inspect_container_field(template, container)
    }
}

/// Docker or podman: by the executable itself when it says so, else by what `BINARY --version`
/// says. That reads no engine, so it answers wherever the engine is, but it starts a process
/// before any command can: about as long as a `docker inspect` (BENCHMARKS.md, part 2).
fn kind_of(binary: &Path) -> Result<EngineKind> {
    if let Some(kind) = kind_of_executable(binary) {
        return Ok(kind);
    }
    let output = duct::cmd(binary, ["--version"])
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .with_context(|| format!("could not start {}", binary.display()))?;
    let said = String::from_utf8_lossy(&output.stdout).to_lowercase();
    if !output.status.success() {
        return Err(bad_input(format!(
            "`{} --version` failed ({}): {}; name a working docker or podman with --docker PATH",
            binary.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(if said.contains("podman") {
        EngineKind::Podman
    } else {
        EngineKind::Docker
    })
}

/// The kind of a compiled `docker` or `podman` (an ELF file under that name, symlinks followed).
/// A script under either name is someone's stand-in (podman-docker's `docker` runs podman) and
/// says nothing by its name.
fn kind_of_executable(binary: &Path) -> Option<EngineKind> {
    let real = std::fs::canonicalize(binary).ok()?;
    let mut magic = [0u8; 4];
    File::open(&real).ok()?.read_exact(&mut magic).ok()?;
    if magic != *b"\x7fELF" {
        return None;
    }
    match real.file_name()?.to_str()? {
        "docker" => Some(EngineKind::Docker),
        "podman" => Some(EngineKind::Podman),
        _ => None,
    }
}

/// Engines for the unit tests.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;

    pub fn docker() -> EngineTarget {
        EngineTarget {
            kind: EngineKind::Docker,
            program: "docker".into(),
            context: None,
            host: None,
            url: None,
        }
    }

    pub fn podman() -> EngineTarget {
        EngineTarget {
            kind: EngineKind::Podman,
            program: "podman".into(),
            ..docker()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn engine(binary: &str, target: EngineTarget) -> Engine {
        Engine {
            target,
            binary: PathBuf::from(binary),
        }
    }

    #[test]
    fn a_step_that_names_another_program_runs_it_from_path() {
        let engine = engine("/nonexistent/docker", fixture::docker());
        let listed = engine
            .expression(&Argv::new("sh").args(["-c", "echo from-path"]))
            .read()
            .unwrap();
        assert_eq!(listed, "from-path");
    }

    #[test]
    fn the_engine_program_runs_as_the_located_binary() {
        let engine = engine("/bin/echo", fixture::podman());
        let said = engine
            .expression(&engine.command().arg("ps"))
            .read()
            .unwrap();
        assert_eq!(said, "ps");
    }

    #[test]
    fn a_context_reaches_every_command_in_the_engine_own_words() {
        let docker = EngineTarget {
            context: Some("prod east".into()),
            ..fixture::docker()
        };
        assert_eq!(
            docker.command().arg("ps").display(Reveal::Plain),
            "docker --context 'prod east' ps"
        );
        let podman = EngineTarget {
            context: Some("edge".into()),
            ..fixture::podman()
        };
        assert_eq!(
            podman.command().arg("ps").display(Reveal::Plain),
            "podman --connection edge ps"
        );
    }

    #[test]
    fn the_kind_is_what_the_binary_says() {
        let dir = tempfile::tempdir().unwrap();
        let fake = |name: &str, says: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\necho '{says}'\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        let podman_as_docker = fake("docker", "podman version 4.3.1");
        assert_eq!(kind_of(&podman_as_docker).unwrap(), EngineKind::Podman);
        let docker = fake("docker-ce", "Docker version 20.10.24+dfsg1, build 297e128");
        assert_eq!(kind_of(&docker).unwrap(), EngineKind::Docker);
    }

    #[test]
    fn a_compiled_docker_or_podman_is_known_by_its_name_without_running_it() {
        let dir = tempfile::tempdir().unwrap();
        // ELF files that would fail if they ran: the kind must come without running them.
        let compiled = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"\x7fELF not a real program").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        assert_eq!(kind_of(&compiled("docker")).unwrap(), EngineKind::Docker);
        let podman = compiled("podman");
        assert_eq!(kind_of(&podman).unwrap(), EngineKind::Podman);
        let linked = dir.path().join("docker-linked");
        std::os::unix::fs::symlink(&podman, &linked).unwrap();
        assert_eq!(kind_of(&linked).unwrap(), EngineKind::Podman);
        // Under another name it is asked, and this one can't answer.
        assert!(kind_of(&compiled("docker-ce")).is_err());
    }
}
