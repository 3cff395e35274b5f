//! The typed description of a running Rancher server, as discovery finds it.

use crate::argv::Secret;
use crate::engine::EngineTarget;
use crate::image::ImageRef;
use crate::secrets::{DB_PASSWORD_FLAG, db_password_secret, env_assignment_secret};
use serde::Serialize;
use std::collections::BTreeMap;

/// Where Rancher 1.x keeps its database, its logs and its state: the image's VOLUMEs.
pub const DATA_PATHS: [&str; 3] = ["/var/lib/mysql", "/var/lib/cattle", "/var/log/mysql"];

/// The label of every one-shot container the tool runs (the room check, the backup, the
/// restore, the dump), valued with the server's name: a run cut off between a one-shot's
/// create and its start leaves it behind (podman removes a `--rm` container only after a
/// start), and the next run finds it by this label, apart from other servers' one-shots.
pub const ONE_SHOT_LABEL: &str = "rancher-upgrade.one-shot-for";

/// The directory above every data path.
pub const DATA_PARENT: &str = "/var";

/// The data paths as tar names them, relative to `/`.
pub fn data_paths_relative() -> impl Iterator<Item = &'static str> {
    DATA_PATHS.iter().map(|p| p.trim_start_matches('/'))
}

/// Each setting of an external database: the server's flag, the env var the entry script maps
/// it to (`server/bin/entry`), and the entry script's default. The host has none: a server
/// that names no host runs its embedded database.
const DB_HOST: (&str, &str) = ("--db-host", "CATTLE_DB_CATTLE_MYSQL_HOST");
const DB_PORT: (&str, &str, &str) = ("--db-port", "CATTLE_DB_CATTLE_MYSQL_PORT", "3306");
const DB_USER: (&str, &str, &str) = ("--db-user", "CATTLE_DB_CATTLE_USERNAME", "cattle");
const DB_NAME: (&str, &str, &str) = ("--db-name", "CATTLE_DB_CATTLE_MYSQL_NAME", "cattle");
const DB_PASSWORD: (&str, &str, &str) = (DB_PASSWORD_FLAG, "CATTLE_DB_CATTLE_PASSWORD", "cattle");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DbMode {
    /// MySQL runs inside the server container, on the /var/lib/mysql volume.
    Embedded,
    /// `--db-host` or `CATTLE_DB_CATTLE_MYSQL_HOST`: the database is elsewhere.
    External,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortBinding {
    /// `8080/tcp`, as docker keys it.
    pub container_port: String,
    pub host_ip: String,
    pub host_port: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: u64,
}

impl RestartPolicy {
    /// No policy: the container stays down after a reboot.
    pub fn is_none(&self) -> bool {
        self.name.is_empty() || self.name == "no"
    }

    /// The value of `docker run --restart` / `docker update --restart`.
    pub fn flag_value(&self) -> String {
        if self.name == "on-failure" && self.maximum_retry_count > 0 {
            format!("on-failure:{}", self.maximum_retry_count)
        } else if self.is_none() {
            "no".to_string()
        } else {
            self.name.clone()
        }
    }
}

/// What holds one data path: a named or anonymous volume, or a host directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum MountSource {
    Volume { name: String },
    Bind { source: String },
}

impl MountSource {
    /// What `-v SOURCE:PATH` names: the volume, or the host directory.
    pub fn source(&self) -> &str {
        match self {
            MountSource::Volume { name } => name,
            MountSource::Bind { source } => source,
        }
    }
}

/// One option of `create` that gives the new container a setting of the old one:
/// `--cap-add=NET_ADMIN`, `--init`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CreateOption {
    pub flag: &'static str,
    pub value: Option<String>,
}

impl CreateOption {
    /// The option as one word, `--flag=value`, so that no value (`-1`, an empty one, `false`
    /// of a switch) reads as anything else.
    pub fn word(&self) -> String {
        match &self.value {
            Some(value) => format!("{}={value}", self.flag),
            None => self.flag.to_string(),
        }
    }
}

/// A network the container is on, with what the operator gave it there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NetworkAttachment {
    pub name: String,
    /// `--network-alias` (`network connect --alias`), without the engine's own.
    pub aliases: Vec<String>,
    /// `--ip`, `--ip6`: addresses the container keeps.
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub link_local_ips: Vec<String>,
    /// `network connect --link`, on a network other than the one joined at create.
    pub links: Vec<String>,
    pub driver_options: BTreeMap<String, String>,
}

/// The settings of the old container that the new one gets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CarriedSettings {
    /// `NAME=value`, only those the operator set (the old image's env subtracted).
    pub env: Vec<String>,
    pub ports: Vec<PortBinding>,
    pub restart: Option<RestartPolicy>,
    /// The arguments after the image name, when they differ from the image's CMD.
    pub args: Vec<String>,
    pub volumes_from: Vec<String>,
    /// `--network`: a mode (`host`, `container:ID`) or the network joined at create; `None`
    /// for the engine's default network.
    pub network: Option<String>,
    /// The networks other than the engine's default, the one named by `network` first; each
    /// other one is joined with `network connect`.
    pub networks: Vec<NetworkAttachment>,
    pub stop_timeout: Option<u64>,
    /// Every other setting the operator chose, as the options that give it.
    pub options: Vec<CreateOption>,
}

impl CarriedSettings {
    /// The networks joined after create, one `network connect` each.
    pub fn connected_networks(&self) -> impl Iterator<Item = &NetworkAttachment> {
        let joined_at_create = self.network.as_deref();
        self.networks
            .iter()
            .filter(move |n| Some(n.name.as_str()) != joined_at_create)
    }

    /// The network joined at create, with its aliases and addresses.
    pub fn created_on(&self) -> Option<&NetworkAttachment> {
        self.networks
            .iter()
            .find(|n| Some(n.name.as_str()) == self.network.as_deref())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Server {
    pub name: String,
    pub id: String,
    pub running: bool,
    /// The image as the container was started with it (`Config.Image`).
    pub image: ImageRef,
    pub image_id: String,
    /// `CATTLE_RANCHER_SERVER_VERSION` of the running container.
    pub version: Option<String>,
    pub mode: DbMode,
    pub carried: CarriedSettings,
    /// What the data container must hold, by the path it is mounted at: each of
    /// [`DATA_PATHS`], and every anonymous volume, which no option names.
    pub data_mounts: BTreeMap<String, MountSource>,
    /// The mount options the engine recorded for a data mount among the server's binds
    /// (podman lists every volume there, `rprivate,rw,nodev,exec,nosuid,rbind`): the data
    /// container gets them again, so that the new server mounts it alike.
    pub data_mount_options: BTreeMap<String, String>,
    /// Settings that are not carried over: the operator must see each.
    pub not_carried: Vec<String>,
}

/// The external database a server uses, as its entry script reads it: each `--db-*` flag
/// (`--db-user U` or `--db-user=U`), else its `CATTLE_DB_CATTLE_*` env var, else the default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalDatabase {
    pub host: String,
    pub port: String,
    pub user: String,
    pub name: String,
    pub password: String,
    /// The secret the password is, as the server's settings hold it (`--db-pass` or
    /// `CATTLE_DB_CATTLE_PASSWORD`); `None` for the entry script's default, which is no secret.
    pub password_secret: Option<Secret>,
}

impl CarriedSettings {
    /// The last value of `flag` among the arguments after the image (`--db-host X` or
    /// `--db-host=X`).
    fn argument(&self, flag: &str) -> Option<String> {
        let inline = format!("{flag}=");
        self.args
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, arg)| match arg {
                _ if arg == flag => self.args.get(i + 1).cloned(),
                _ => arg.strip_prefix(&inline).map(str::to_string),
            })
    }

    fn env_value(&self, name: &str) -> Option<String> {
        let assignment = format!("{name}=");
        self.env
            .iter()
            .find_map(|e| e.strip_prefix(&assignment).map(str::to_string))
    }

    /// A setting the server's entry script reads: the argument `flag`, else the variable `env`
    /// (`--db-host`, else `CATTLE_DB_CATTLE_MYSQL_HOST`).
    pub fn setting(&self, flag: &str, env: &str) -> Option<String> {
        self.argument(flag).or_else(|| self.env_value(env))
    }

    /// The external database the settings name (what puts a server in [`DbMode::External`]);
    /// `None` for a server on its embedded one.
    pub fn external_database(&self) -> Option<ExternalDatabase> {
        let argument = |flag: &str| self.argument(flag);
        let env = |name: &str| self.env_value(name);
        let setting = |(flag, name, default): (&str, &str, &str)| {
            self.setting(flag, name)
                .unwrap_or_else(|| default.to_string())
        };
        let (flag, name) = DB_HOST;
        let host = argument(flag).or_else(|| env(name))?;
        let (flag, name, _) = DB_PASSWORD;
        let password_secret = if argument(flag).is_some() {
            Some(db_password_secret())
        } else {
            env(name).and_then(|value| env_assignment_secret(&format!("{name}={value}")))
        };
        Some(ExternalDatabase {
            host,
            port: setting(DB_PORT),
            user: setting(DB_USER),
            name: setting(DB_NAME),
            password: setting(DB_PASSWORD),
            password_secret,
        })
    }
}

impl Server {
    /// The release the server runs: its version env, else its image tag.
    pub fn release(&self) -> &str {
        self.version
            .as_deref()
            .unwrap_or_else(|| self.image.effective_tag())
    }

    /// The name the old container is parked under while the new one takes its name.
    pub fn parked_name(&self) -> String {
        let release: String = self
            .release()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!("{}-{release}", self.name)
    }
}

/// A container that exists under the data container's name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DataContainer {
    pub name: String,
    /// Every mount it has, by the path it is mounted at.
    pub mounts: BTreeMap<String, MountSource>,
    /// The containers it took its volumes from, as `docker create --volumes-from` was given
    /// them: a name or an id, with `:ro` or `:rw` at times.
    pub volumes_from: Vec<String>,
}

impl DataContainer {
    /// Whether it names `container` in its `--volumes-from`, by name.
    pub fn takes_volumes_from(&self, container: &str) -> bool {
        self.volumes_from.iter().any(|source| {
            let name = source
                .strip_suffix(":ro")
                .or_else(|| source.strip_suffix(":rw"))
                .unwrap_or(source);
            name == container
        })
    }
}

/// Everything discovery learned: the server and the names the plan must not collide with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    /// The engine the server runs on.
    pub engine: EngineTarget,
    pub server: Server,
    /// The container under the data container's name, when one exists.
    pub data_container: Option<DataContainer>,
    /// Whether a container already has the name the old server would be parked under.
    pub parked_name_taken: bool,
    /// The ids of containers an earlier, cut-off run left for this server: its one-shots
    /// ([`ONE_SHOT_LABEL`]), and on podman a container only in storage that holds a name the
    /// plan creates or renames to.
    pub leftovers: Vec<String>,
}

/// A server, and what discovery finds around it, for the unit tests of the plans and the
/// renderers.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;

    /// Each data path on a volume of its own, named `<prefix>-var-lib-mysql` and so on.
    pub fn volumes(prefix: &str) -> BTreeMap<String, MountSource> {
        DATA_PATHS
            .iter()
            .map(|path| {
                let name = format!("{prefix}{}", path.replace('/', "-"));
                (path.to_string(), MountSource::Volume { name })
            })
            .collect()
    }

    /// A running embedded-database server named `rancher`, on `image` (whose tag is its
    /// release), with the `live` volumes and the settings `carried`.
    pub fn server(image: &str, image_id: &str, carried: CarriedSettings) -> Server {
        let image = ImageRef::parse(image).unwrap();
        Server {
            name: "rancher".into(),
            id: format!("id-{}", image.effective_tag()),
            running: true,
            version: Some(image.effective_tag().to_string()),
            image_id: image_id.into(),
            mode: DbMode::Embedded,
            carried,
            data_mounts: volumes("live"),
            data_mount_options: BTreeMap::new(),
            not_carried: vec![],
            image,
        }
    }

    /// What discovery finds around `server`: no data container, the parking name free.
    pub fn discovery(server: Server) -> Discovery {
        Discovery {
            engine: crate::engine::fixture::docker(),
            server,
            data_container: None,
            parked_name_taken: false,
            leftovers: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str], env: &[&str]) -> Option<ExternalDatabase> {
        CarriedSettings {
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env.iter().map(|e| e.to_string()).collect(),
            ..CarriedSettings::default()
        }
        .external_database()
    }

    #[test]
    fn without_a_host_the_database_is_the_embedded_one() {
        assert_eq!(
            settings(&["--db-user", "u"], &["CATTLE_DB_CATTLE_USERNAME=u"]),
            None
        );
    }

    #[test]
    fn each_setting_is_its_flag_else_its_env_else_the_entry_scripts_default() {
        let database = settings(
            &[
                "--db-host",
                "db",
                "--db-user=flag-user",
                "--db-user",
                "last-user",
            ],
            &[
                "CATTLE_DB_CATTLE_MYSQL_HOST=env-host",
                "CATTLE_DB_CATTLE_USERNAME=env-user",
                "CATTLE_DB_CATTLE_MYSQL_NAME=env-name",
            ],
        )
        .unwrap();
        // The entry script exports each flag over the env, the last one last.
        assert_eq!(
            (database.host.as_str(), database.user.as_str()),
            ("db", "last-user")
        );
        assert_eq!(
            (database.port.as_str(), database.name.as_str()),
            ("3306", "env-name")
        );
        assert_eq!(
            (database.password.as_str(), database.password_secret),
            ("cattle", None)
        );
    }

    #[test]
    fn the_password_is_the_secret_of_where_the_server_has_it() {
        let by_flag = settings(&["--db-host", "db", "--db-pass=p w"], &[]).unwrap();
        assert_eq!(by_flag.password, "p w");
        assert_eq!(
            by_flag.password_secret.unwrap().shell_var,
            "RANCHER_DB_PASS"
        );
        let by_env = settings(
            &[],
            &[
                "CATTLE_DB_CATTLE_MYSQL_HOST=db",
                "CATTLE_DB_CATTLE_PASSWORD=e",
            ],
        )
        .unwrap();
        assert_eq!(by_env.password, "e");
        assert_eq!(
            by_env.password_secret.unwrap().shell_var,
            "CATTLE_DB_CATTLE_PASSWORD"
        );
    }
}
