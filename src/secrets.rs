//! Which values are secret, and the shell variable that stands for each in a shell runbook.

use crate::argv::{Argv, MASK, Secret, is_shell_identifier};

/// The server flag whose value is the database password.
pub const DB_PASSWORD_FLAG: &str = "--db-pass";
/// The shell variable a shell runbook reads the `--db-pass` value from.
const DB_PASSWORD_SHELL_VAR: &str = "RANCHER_DB_PASS";

const SECRET_NAME_PARTS: [&str; 4] = ["PASS", "SECRET", "TOKEN", "KEY"];

/// `CATTLE_DB_CATTLE_PASSWORD`, and any variable whose name contains PASS, SECRET, TOKEN or KEY.
pub fn is_secret_env_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_PARTS.iter().any(|part| upper.contains(part))
}

/// The secret part of a `-e NAME=value` word, when NAME is secret: the value travels in
/// docker's environment, and the command line says `-e NAME`.
pub fn env_assignment_secret(assignment: &str) -> Option<Secret> {
    let (name, _) = assignment.split_once('=')?;
    is_secret_env_name(name).then(|| Secret {
        visible_prefix: name.len() + 1,
        shell_var: shell_variable_for(name),
        via_environment: true,
    })
}

/// The secret part of an option `--flag=KEY=value` whose KEY is secret (`--log-opt` of a
/// `splunk-token`): docker takes option values on its command line only, so it is masked there.
pub fn option_value_secret(word: &str) -> Option<Secret> {
    let (flag, assignment) = word.split_once('=')?;
    let secret = env_assignment_secret(assignment)?;
    Some(Secret {
        visible_prefix: flag.len() + 1 + secret.visible_prefix,
        via_environment: false,
        ..secret
    })
}

/// The secret of the word that follows `--db-pass`. It is an argument of the server's own
/// command, which docker takes on its command line only: it can't travel in the environment.
pub fn db_password_secret() -> Secret {
    Secret {
        visible_prefix: 0,
        shell_var: DB_PASSWORD_SHELL_VAR.to_string(),
        via_environment: false,
    }
}

/// The env var MySQL's clients (`mysql`, `mysqldump`, 5.5 to 8) read their password from.
pub const CLIENT_PASSWORD_ENV: &str = "MYSQL_PWD";

/// The secret of a `MYSQL_PWD=value` word for a one-shot client container: the value travels in
/// docker's environment (`-e MYSQL_PWD`), and a shell runbook reads it from the variable of the
/// server's own password secret, `password`, so one export serves both.
pub fn client_password_secret(password: &Secret) -> Secret {
    Secret {
        visible_prefix: CLIENT_PASSWORD_ENV.len() + 1,
        shell_var: password.shell_var.clone(),
        via_environment: true,
    }
}

/// Whether the server's own arguments hold the database password (`--db-pass VALUE` or
/// `--db-pass=VALUE`): docker takes them on its command line only.
pub fn password_in_arguments(args: &[String]) -> bool {
    args.iter()
        .any(|a| a == DB_PASSWORD_FLAG || inline_flag_secret(a).is_some())
}

/// The secret part of `--db-pass=value`.
pub fn inline_flag_secret(word: &str) -> Option<Secret> {
    let prefix = format!("{DB_PASSWORD_FLAG}=");
    word.starts_with(&prefix).then(|| Secret {
        visible_prefix: prefix.len(),
        shell_var: DB_PASSWORD_SHELL_VAR.to_string(),
        via_environment: false,
    })
}

/// An env name is usable as a shell variable when it is a POSIX identifier; otherwise a
/// derived one takes its place, so the runbook still says which value it wants.
fn shell_variable_for(env_name: &str) -> String {
    if is_shell_identifier(env_name) {
        env_name.to_string()
    } else {
        let cleaned: String = env_name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        // `MY-KEY` and `MY.KEY` clean up alike; the name's hash keeps their variables apart.
        let hash = env_name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        format!("RANCHER_SECRET_{cleaned}_{:08x}", hash as u32)
    }
}

/// Masks the secret values of a plan wherever they turn up in text: docker's output, a
/// container's log, an error message.
#[derive(Clone, Debug, Default)]
pub struct Masker {
    values: Vec<String>,
}

impl Masker {
    pub fn for_argvs<'a>(argvs: impl IntoIterator<Item = &'a Argv>) -> Masker {
        let mut values: Vec<String> = argvs
            .into_iter()
            .flat_map(|argv| argv.shell_variables().map(|(_, value)| value.to_string()))
            .filter(|value| !value.is_empty())
            .collect();
        // Longest first, so a secret that contains another is masked whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Masker { values }
    }

    pub fn mask(&self, text: &str) -> String {
        self.values.iter().fold(text.to_string(), |text, value| {
            text.replace(value.as_str(), MASK)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masker_hides_every_secret_value_in_free_text() {
        let argv = Argv::new("docker")
            .arg("-e")
            .secret_arg(
                "API_TOKEN=abc",
                env_assignment_secret("API_TOKEN=abc").unwrap(),
            )
            .arg("--db-pass")
            .secret_arg("abcdef", db_password_secret());
        let masker = Masker::for_argvs([&argv]);
        assert_eq!(
            masker.mask("login abcdef failed; token abc"),
            "login ******** failed; token ********"
        );
    }

    #[test]
    fn secret_names_are_recognised_in_any_case() {
        for name in [
            "CATTLE_DB_CATTLE_PASSWORD",
            "api_token",
            "AWS_SECRET_ACCESS_KEY",
            "SSH_KEY",
            "passphrase",
        ] {
            assert!(is_secret_env_name(name), "{name}");
        }
        for name in ["CATTLE_DB_CATTLE_MYSQL_HOST", "GREETING", "JAVA_OPTS"] {
            assert!(!is_secret_env_name(name), "{name}");
        }
    }

    #[test]
    fn only_the_value_of_a_secret_assignment_is_secret() {
        let secret = env_assignment_secret("API_TOKEN=abc=def").unwrap();
        assert_eq!(secret.visible_prefix, "API_TOKEN=".len());
        assert_eq!(secret.shell_var, "API_TOKEN");
        assert_eq!(env_assignment_secret("GREETING=hello"), None);
    }

    #[test]
    fn names_that_are_not_shell_identifiers_get_a_derived_variable() {
        let secret = env_assignment_secret("my.api-key=x").unwrap();
        assert!(
            secret.shell_var.starts_with("RANCHER_SECRET_my_api_key_"),
            "{}",
            secret.shell_var
        );
        let other = env_assignment_secret("my-api.key=x").unwrap();
        assert_ne!(
            secret.shell_var, other.shell_var,
            "two names, two variables"
        );
    }

    #[test]
    fn the_inline_password_flag_keeps_the_flag_visible() {
        let secret = inline_flag_secret("--db-pass=hunter2").unwrap();
        assert_eq!(&"--db-pass=hunter2"[..secret.visible_prefix], "--db-pass=");
        assert_eq!(inline_flag_secret("--db-passive"), None);
    }
}
