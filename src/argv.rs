//! The one description of a command: what runs and what is shown both come from an [`Argv`].
//!
//! Execution reads the real values ([`Argv::real`], and [`Argv::environment`] for the secrets
//! that travel in the command's environment); every display goes through [`Argv::display`],
//! which POSIX-quotes each word and masks the secret part of a word.

use serde::Serialize;

/// What an operator sees in place of a secret value.
pub const MASK: &str = "********";

/// The secret part of one word: everything after `visible_prefix` bytes of the word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    /// How many leading bytes stay visible (`NAME=` of an env assignment, or 0).
    pub visible_prefix: usize,
    /// The shell variable that stands for the value in a shell runbook.
    pub shell_var: String,
    /// Whether the value reaches the command through its environment rather than its command
    /// line: the word is `NAME=value`, the command line holds `NAME` alone (docker's `-e NAME`
    /// reads the value from docker's own environment), so no process list (`ps`, any user's
    /// `/proc/PID/cmdline`) shows the value. Only the command's owner can read its environment.
    pub via_environment: bool,
}

/// A secret value inside a word that is not secret itself (an API token in a healthcheck's
/// command, or a label), and the shell variable that holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Embedded {
    pub value: String,
    pub shell_var: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    value: String,
    secret: Option<Secret>,
    /// The secret values it holds without being a secret word ([`Argv::conceal`]): masked
    /// when shown, a shell variable in a shell runbook, real in the command.
    embedded: Vec<Embedded>,
}

impl Word {
    pub fn value(&self) -> &str {
        &self.value
    }

    pub fn secret(&self) -> Option<&Secret> {
        self.secret.as_ref()
    }

    /// The part of the word that is never secret.
    pub fn visible_prefix(&self) -> &str {
        &self.value[..self.secret.as_ref().map_or(0, |s| s.visible_prefix)]
    }

    /// `NAME`, when the word's value travels in the environment as `NAME=value`.
    fn environment_name(&self) -> Option<&str> {
        self.secret
            .as_ref()
            .filter(|s| s.via_environment)
            .map(|s| self.value[..s.visible_prefix].trim_end_matches('='))
    }

    /// What the command line holds for this word.
    fn on_command_line(&self) -> &str {
        self.environment_name().unwrap_or(&self.value)
    }

    pub fn embedded(&self) -> &[Embedded] {
        &self.embedded
    }

    /// Takes those of `candidates` the word holds as its embedded secrets.
    fn embed(&mut self, candidates: &[Embedded]) {
        self.embedded = candidates
            .iter()
            .filter(|e| !e.value.is_empty() && self.value.contains(&e.value))
            .cloned()
            .collect();
        // Longest first, so a secret that contains another is taken whole.
        self.embedded
            .sort_by_key(|e| std::cmp::Reverse(e.value.len()));
        self.embedded.dedup_by(|a, b| a.value == b.value);
    }

    /// The word cut at its embedded secrets: literal text, and the secrets between.
    fn pieces(&self) -> Vec<(&str, Option<&Embedded>)> {
        let mut pieces = Vec::new();
        let mut rest = self.value.as_str();
        while !rest.is_empty() {
            // The secret that starts first; of two at one place, the longer (they are sorted so).
            let next = self
                .embedded
                .iter()
                .filter_map(|e| rest.find(&e.value).map(|at| (at, e)))
                .min_by_key(|(at, _)| *at);
            let Some((at, embedded)) = next else {
                pieces.push((rest, None));
                break;
            };
            if at > 0 {
                pieces.push((&rest[..at], None));
            }
            pieces.push((&rest[at..at + embedded.value.len()], Some(embedded)));
            rest = &rest[at + embedded.value.len()..];
        }
        pieces
    }

    /// The word as it is shown, not quoted; a word that travels in the environment shows as
    /// the `NAME=value` it puts there.
    pub fn shown(&self, reveal: Reveal) -> String {
        if self.secret.is_none() && !self.embedded.is_empty() && reveal != Reveal::Plain {
            return self
                .pieces()
                .into_iter()
                .map(|(text, secret)| match (secret, reveal) {
                    (None, _) => text.to_string(),
                    (Some(_), Reveal::Masked) => MASK.to_string(),
                    (Some(secret), _) => format!("${{{}}}", secret.shell_var),
                })
                .collect();
        }
        match (&self.secret, reveal) {
            (Some(_), Reveal::Masked) => format!("{}{MASK}", self.visible_prefix()),
            (Some(secret), Reveal::ShellVariables) => {
                format!("{}${{{}}}", self.visible_prefix(), secret.shell_var)
            }
            _ => self.value.clone(),
        }
    }

    fn quoted(&self, reveal: Reveal) -> String {
        if let Some(name) = self.environment_name() {
            return quote(name);
        }
        if self.secret.is_none() && !self.embedded.is_empty() && reveal == Reveal::ShellVariables {
            // Each literal piece quoted, each secret a reference outside the quotes.
            return self
                .pieces()
                .into_iter()
                .map(|(text, secret)| match secret {
                    None => quote(text),
                    Some(secret) => format!("\"${{{}}}\"", secret.shell_var),
                })
                .collect();
        }
        match (&self.secret, reveal) {
            // The reference must stay outside single quotes so the shell expands it.
            (Some(secret), Reveal::ShellVariables) => {
                let prefix = self.visible_prefix();
                let prefix = if prefix.is_empty() {
                    String::new()
                } else {
                    quote(prefix)
                };
                format!("{prefix}\"${{{}}}\"", secret.shell_var)
            }
            _ => quote(&self.shown(reveal)),
        }
    }

    /// What the command line holds for this word, as it is shown, not quoted.
    fn shown_on_command_line(&self, reveal: Reveal) -> String {
        match self.environment_name() {
            Some(name) => name.to_string(),
            None => self.shown(reveal),
        }
    }

    /// `NAME='value'` (or `NAME="${VAR}"`) in front of a command: how a shell puts the value of
    /// a word that travels in the environment there, and nowhere on a command line.
    fn assignment(&self, reveal: Reveal) -> Option<String> {
        let name = self.environment_name()?;
        let secret = self.secret.as_ref()?;
        let value = match reveal {
            Reveal::Masked => quote(MASK),
            Reveal::Plain => quote(&self.value[secret.visible_prefix..]),
            Reveal::ShellVariables => format!("\"${{{}}}\"", secret.shell_var),
        };
        Some(if is_shell_identifier(name) {
            format!("{name}={value}")
        } else {
            // No shell assigns such a name; env(1) can, on its own command line.
            format!("env {}{value}", quote(&format!("{name}=")))
        })
    }
}

/// A name a POSIX shell can assign and export: a letter or `_`, then letters, digits, `_`.
pub fn is_shell_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// POSIX quoting for a word after the program name, safe for sh, `bash -c` and a paste into
/// an interactive bash. A word of plain characters stays bare (`--restart=no`: `=` only
/// matters before the program). Anything else goes whole into single quotes: inside them no
/// shell expands anything, not bash's braces (`{a,b}`) or history (`!a`), which
/// `shell_words::quote` would leave bare; `'` itself becomes `'\''`.
pub fn quote(word: &str) -> String {
    let bare = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+:@%/-=".contains(c));
    if bare {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// How secrets appear when an [`Argv`] is displayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reveal {
    /// Secret values become [`MASK`].
    Masked,
    /// Secret values are shown (`--show-secrets`).
    Plain,
    /// Secret values become `"${VAR}"`, for a shell script that gets them from its environment.
    ShellVariables,
}

/// A docker command line. The first word is the program name as an operator types it (`docker`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Argv {
    words: Vec<Word>,
}

impl Argv {
    pub fn new(program: &str) -> Self {
        Argv::default().arg(program)
    }

    pub fn arg(mut self, value: impl Into<String>) -> Self {
        self.words.push(Word {
            value: value.into(),
            secret: None,
            embedded: vec![],
        });
        self
    }

    pub fn args<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for value in values {
            self = self.arg(value);
        }
        self
    }

    /// Adds a word whose bytes after `visible_prefix` are secret.
    pub fn secret_arg(mut self, value: impl Into<String>, secret: Secret) -> Self {
        self.words.push(Word {
            value: value.into(),
            secret: Some(secret),
            embedded: vec![],
        });
        self
    }

    /// Adds a word that holds some of the secret values of `embedded` without being a secret
    /// word (the record of a command, rebuilt).
    pub fn concealed_arg(mut self, value: impl Into<String>, embedded: &[Embedded]) -> Self {
        let mut word = Word {
            value: value.into(),
            secret: None,
            embedded: vec![],
        };
        word.embed(embedded);
        self.words.push(word);
        self
    }

    /// The same command with every word that holds one of the secret values of `secrets`
    /// (shell variable, value) marked to hide it: shown masked, or as its variable.
    pub fn conceal(mut self, secrets: &[(String, String)]) -> Argv {
        let embedded: Vec<Embedded> = secrets
            .iter()
            .map(|(var, value)| Embedded {
                value: value.clone(),
                shell_var: var.clone(),
            })
            .collect();
        for word in self.words.iter_mut().filter(|w| w.secret.is_none()) {
            word.embed(&embedded);
        }
        self
    }

    pub fn words(&self) -> &[Word] {
        &self.words
    }

    /// The command line, for execution: the real values, except those that travel in the
    /// environment ([`Argv::environment`]). Never print these.
    pub fn real(&self) -> Vec<String> {
        self.words
            .iter()
            .map(|w| w.on_command_line().to_string())
            .collect()
    }

    /// `(NAME, value)` for each secret the command gets in its environment. Never print these.
    pub fn environment(&self) -> Vec<(String, String)> {
        self.words
            .iter()
            .filter_map(|w| {
                let name = w.environment_name()?;
                Some((name.to_string(), w.value[name.len() + 1..].to_string()))
            })
            .collect()
    }

    pub fn has_secrets(&self) -> bool {
        self.words.iter().any(|w| w.secret.is_some())
    }

    /// The first word that contains a control character, which no pasted command can carry intact.
    pub fn first_control_character(&self) -> Option<&Word> {
        self.words
            .iter()
            .find(|w| w.value.chars().any(char::is_control))
    }

    /// The words of the command line as they are shown, one string per word, not quoted.
    pub fn shown_words(&self, reveal: Reveal) -> Vec<String> {
        self.words
            .iter()
            .map(|w| w.shown_on_command_line(reveal))
            .collect()
    }

    /// The command line as a POSIX shell reads it: pasting it runs exactly this argv
    /// (with [`Reveal::Plain`]), or the same argv with secrets taken from shell variables. The
    /// secrets that travel in the environment come first, as assignments the shell keeps off
    /// every command line (`API_TOKEN='...' docker create -e API_TOKEN ...`).
    pub fn display(&self, reveal: Reveal) -> String {
        let mut assignments: Vec<String> = self
            .words
            .iter()
            .filter_map(|w| w.assignment(reveal))
            .collect();
        // Plain assignments must stand before `env`, which takes the others as its arguments.
        assignments.sort_by_key(|a| a.starts_with("env "));
        assignments
            .into_iter()
            .chain(self.words.iter().map(|w| w.quoted(reveal)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `NAME=value` of each secret that travels in the environment, as it is shown.
    pub fn shown_environment(&self, reveal: Reveal) -> Vec<String> {
        self.words
            .iter()
            .filter(|w| w.environment_name().is_some())
            .map(|w| w.shown(reveal))
            .collect()
    }

    /// The shell variables a [`Reveal::ShellVariables`] display refers to, with their real values.
    pub fn shell_variables(&self) -> impl Iterator<Item = (&str, &str)> {
        self.words.iter().flat_map(|w| {
            let own = w
                .secret
                .as_ref()
                .map(|s| (s.shell_var.as_str(), &w.value[s.visible_prefix..]));
            own.into_iter().chain(
                w.embedded
                    .iter()
                    .map(|e| (e.shell_var.as_str(), e.value.as_str())),
            )
        })
    }
}

impl Serialize for Argv {
    /// Serialized argv is always masked: JSON output must not leak secrets by default.
    /// Callers that need another reveal serialize [`Argv::shown_words`] themselves.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.shown_words(Reveal::Masked).serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_secret(name: &str) -> Secret {
        Secret {
            visible_prefix: name.len() + 1,
            shell_var: name.to_string(),
            via_environment: true,
        }
    }

    fn password_secret() -> Secret {
        Secret {
            visible_prefix: 0,
            shell_var: "RANCHER_DB_PASS".to_string(),
            via_environment: false,
        }
    }

    fn sample() -> Argv {
        Argv::new("docker")
            .args(["run", "-d", "-e"])
            .arg("GREETING=hello world")
            .arg("-e")
            .secret_arg("API_TOKEN=t0k'en $x", env_secret("API_TOKEN"))
            .arg("rancher/server:v1.6.30")
            .arg("--db-pass")
            .secret_arg("pa55 word", password_secret())
    }

    /// What `sh -c DISPLAY` hands the program (standing in for docker): its arguments, then
    /// the value of each of `names` in its environment (`-` when unset).
    fn through_sh(display: &str, names: &[&str], vars: &[(&str, &str)]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("docker");
        let values: String = names.iter().map(|n| format!(" \"${{{n}--}}\"")).collect();
        std::fs::write(
            &program,
            format!("#!/bin/sh\nprintf '%s\\0' \"$@\"{values}\n"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let output = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(display)
            .current_dir(dir.path())
            .env_clear()
            .envs(vars.iter().copied())
            .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
            .output()
            .unwrap();
        assert!(output.status.success(), "{display}: {output:?}");
        String::from_utf8(output.stdout)
            .unwrap()
            .split_terminator('\0')
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_secret_env_value_travels_in_the_environment_not_on_the_command_line() {
        let argv = sample();
        assert!(argv.real().contains(&"API_TOKEN".to_string()));
        assert!(!argv.real().iter().any(|w| w.contains("t0k")));
        assert_eq!(
            argv.environment(),
            [("API_TOKEN".to_string(), "t0k'en $x".to_string())]
        );
        // The password after the image is an argument of the server's command: it stays there.
        assert!(argv.real().contains(&"pa55 word".to_string()));
    }

    #[test]
    fn plain_display_runs_the_real_argv_with_the_real_environment() {
        let argv = sample();
        let shown = argv.display(Reveal::Plain);
        assert!(
            shown.starts_with("API_TOKEN='t0k'\\''en $x' docker run"),
            "{shown}"
        );
        for value in [
            "$(touch x)",
            "'; touch x; '",
            "`id`",
            "!! {a,b} ~ * $HOME",
            "",
            "日本",
        ] {
            let argv = Argv::new("docker")
                .arg("-e")
                .secret_arg(format!("API_TOKEN={value}"), env_secret("API_TOKEN"));
            let shown = argv.display(Reveal::Plain);
            assert_eq!(
                through_sh(&shown, &["API_TOKEN"], &[]),
                ["-e", "API_TOKEN", value],
                "{shown}"
            );
        }
    }

    #[test]
    fn shell_variables_display_rebuilds_the_command_from_the_variables() {
        let argv = sample();
        let shown = argv.display(Reveal::ShellVariables);
        assert!(
            shown.starts_with(r#"API_TOKEN="${API_TOKEN}" docker run"#),
            "{shown}"
        );
        assert!(
            shown.contains(r#"--db-pass "${RANCHER_DB_PASS}""#),
            "{shown}"
        );
        assert!(!shown.contains("t0k") && !shown.contains("pa55"), "{shown}");
        let vars = [("API_TOKEN", "t0k'en $x"), ("RANCHER_DB_PASS", "pa55 word")];
        let mut expected = argv.real()[1..].to_vec();
        expected.push("t0k'en $x".to_string());
        assert_eq!(through_sh(&shown, &["API_TOKEN"], &vars), expected);
        let listed: Vec<_> = argv.shell_variables().collect();
        assert_eq!(listed, vars);
    }

    #[test]
    fn masked_display_hides_the_secrets_but_keeps_the_variable_names() {
        let shown = sample().display(Reveal::Masked);
        assert!(!shown.contains("t0k") && !shown.contains("pa55"), "{shown}");
        assert!(shown.starts_with("API_TOKEN='********' docker"), "{shown}");
        assert!(shown.contains(" -e API_TOKEN "), "{shown}");
        assert!(shown.contains("'GREETING=hello world'"), "{shown}");
        assert_eq!(
            sample().shown_environment(Reveal::Masked),
            ["API_TOKEN=********"]
        );
    }

    #[test]
    fn a_name_no_shell_can_assign_goes_through_env() {
        let argv = Argv::new("docker")
            .arg("-e")
            .secret_arg("my.api-key=v", env_secret("my.api-key"))
            .arg("-e")
            .secret_arg("TOKEN=w", env_secret("TOKEN"));
        let shown = argv.display(Reveal::Plain);
        assert_eq!(
            shown,
            "TOKEN=w env my.api-key=v docker -e my.api-key -e TOKEN"
        );
    }

    #[test]
    fn a_secret_inside_another_word_is_masked_shown_as_its_variable_and_run_as_it_is() {
        let token = "t0k'en";
        let health = format!("--health-cmd=curl -H 'X-Token: {token}' -H 'Again: {token}'");
        let argv = Argv::new("docker")
            .arg("-e")
            .secret_arg(format!("API_TOKEN={token}"), env_secret("API_TOKEN"))
            .arg(health.clone())
            .conceal(&[("API_TOKEN".into(), token.into())]);
        let masked = argv.display(Reveal::Masked);
        assert!(!masked.contains("t0k"), "{masked}");
        assert!(
            masked.contains("X-Token: ********") && masked.contains("Again: ********"),
            "{masked}"
        );
        let variables = argv.display(Reveal::ShellVariables);
        assert!(!variables.contains("t0k"), "{variables}");
        assert_eq!(
            through_sh(&variables, &["API_TOKEN"], &[("API_TOKEN", token)]),
            ["-e", "API_TOKEN", health.as_str(), token]
        );
        assert_eq!(
            through_sh(&argv.display(Reveal::Plain), &["API_TOKEN"], &[]),
            ["-e", "API_TOKEN", health.as_str(), token]
        );
        let vars: Vec<_> = argv.shell_variables().map(|(var, _)| var).collect();
        assert_eq!(vars, ["API_TOKEN", "API_TOKEN"]);
    }

    #[test]
    fn control_characters_are_found() {
        let argv = Argv::new("docker").arg("-e").arg("A=line\nbreak");
        let word = argv.first_control_character().unwrap();
        assert_eq!(word.shown(Reveal::Plain), "A=line\nbreak");
        assert_eq!(sample().first_control_character(), None);
    }

    #[test]
    fn json_serialization_is_masked_and_names_the_command_line() {
        let json = serde_json::to_string(&sample()).unwrap();
        assert!(!json.contains("t0k") && !json.contains("pa55"), "{json}");
        assert!(json.contains(r#""-e","API_TOKEN","#), "{json}");
    }
}
