//! The one description of a command: what runs and what is shown both come from an [`Argv`].
//!
//! Execution reads the real values ([`Argv::real`]); every display goes through
//! [`Argv::display`], which POSIX-quotes each word and masks the secret part of a word.

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
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    value: String,
    secret: Option<Secret>,
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

    /// The word as it is shown, not quoted.
    pub fn shown(&self, reveal: Reveal) -> String {
        match (&self.secret, reveal) {
            (Some(_), Reveal::Masked) => format!("{}{MASK}", self.visible_prefix()),
            (Some(secret), Reveal::ShellVariables) => {
                format!("{}${{{}}}", self.visible_prefix(), secret.shell_var)
            }
            _ => self.value.clone(),
        }
    }

    fn quoted(&self, reveal: Reveal) -> String {
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
        });
        self
    }

    pub fn words(&self) -> &[Word] {
        &self.words
    }

    /// The real values, for execution. Never print these.
    pub fn real(&self) -> Vec<String> {
        self.words.iter().map(|w| w.value.clone()).collect()
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

    /// The words as they are shown, one string per word, not quoted.
    pub fn shown_words(&self, reveal: Reveal) -> Vec<String> {
        self.words.iter().map(|w| w.shown(reveal)).collect()
    }

    /// The command line as a POSIX shell reads it: pasting it runs exactly this argv
    /// (with [`Reveal::Plain`]), or the same argv with secrets taken from shell variables.
    pub fn display(&self, reveal: Reveal) -> String {
        self.words
            .iter()
            .map(|w| w.quoted(reveal))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The shell variables a [`Reveal::ShellVariables`] display refers to, with their real values.
    pub fn shell_variables(&self) -> impl Iterator<Item = (&str, &str)> {
        self.words.iter().filter_map(|w| {
            w.secret
                .as_ref()
                .map(|s| (s.shell_var.as_str(), &w.value[s.visible_prefix..]))
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
        }
    }

    fn sample() -> Argv {
        Argv::new("docker")
            .args(["run", "-d", "-e"])
            .arg("GREETING=hello world")
            .arg("-e")
            .secret_arg("API_TOKEN=t0k'en $x", env_secret("API_TOKEN"))
            .arg("rancher/server:v1.6.30")
    }

    #[test]
    fn plain_display_parses_back_to_the_real_argv() {
        let argv = sample();
        let shown = argv.display(Reveal::Plain);
        assert_eq!(shell_words::split(&shown).unwrap(), argv.real());
    }

    #[test]
    fn masked_display_hides_the_secret_but_keeps_the_variable_name() {
        let shown = sample().display(Reveal::Masked);
        assert!(!shown.contains("t0k"), "{shown}");
        assert!(shown.contains("API_TOKEN=********"), "{shown}");
        assert!(shown.contains("'GREETING=hello world'"), "{shown}");
    }

    #[test]
    fn shell_variables_display_refers_to_the_variable_in_double_quotes() {
        let shown = sample().display(Reveal::ShellVariables);
        assert!(shown.contains(r#"-e API_TOKEN="${API_TOKEN}" "#), "{shown}");
        assert!(!shown.contains("t0k"));
        let argv = sample();
        let vars: Vec<_> = argv.shell_variables().collect();
        assert_eq!(vars, vec![("API_TOKEN", "t0k'en $x")]);
    }

    #[test]
    fn control_characters_are_found() {
        let argv = Argv::new("docker").arg("-e").arg("A=line\nbreak");
        let word = argv.first_control_character().unwrap();
        assert_eq!(word.shown(Reveal::Plain), "A=line\nbreak");
        assert_eq!(sample().first_control_character(), None);
    }

    #[test]
    fn json_serialization_is_masked() {
        let json = serde_json::to_string(&sample()).unwrap();
        assert!(!json.contains("t0k"));
        assert!(json.contains("API_TOKEN=********"));
    }
}
