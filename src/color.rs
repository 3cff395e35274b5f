//! Whether the output is coloured: the one decision, made once at the start from `--color`,
//! `NO_COLOR`, `CLICOLOR_FORCE` and whether each stream is a terminal. Every styled text
//! (`console::style`, the spinners, the prompts) follows the switches set here.

use clap::ColorChoice;
use std::ffi::OsString;

/// Whether a stream gets colour. `--color always|never` says it outright; `auto` follows the
/// environment (`NO_COLOR` set and not empty turns colour off, then `CLICOLOR_FORCE` set and
/// not `0` turns it on), else colours a terminal that is not `TERM=dumb`.
pub fn enabled(
    choice: ColorChoice,
    env: impl Fn(&str) -> Option<OsString>,
    is_terminal: bool,
) -> bool {
    let set = |name: &str| env(name).filter(|value| !value.is_empty());
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto if set("NO_COLOR").is_some() => false,
        ColorChoice::Auto if set("CLICOLOR_FORCE").is_some_and(|value| value != "0") => true,
        ColorChoice::Auto => is_terminal && env("TERM").is_none_or(|term| term != "dumb"),
    }
}

/// Sets `console`'s switches for stdout and stderr, each by its own stream.
pub fn apply(choice: ColorChoice) {
    let env = |name: &str| std::env::var_os(name);
    console::set_colors_enabled(enabled(choice, env, console::Term::stdout().is_term()));
    console::set_colors_enabled_stderr(enabled(choice, env, console::Term::stderr().is_term()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(name, value)| (name.to_string(), OsString::from(value)))
            .collect();
        move |name| {
            vars.iter()
                .find(|(set, _)| set == name)
                .map(|(_, value)| value.clone())
        }
    }

    #[test]
    fn always_and_never_override_the_environment_and_the_terminal() {
        let forced = with(&[("CLICOLOR_FORCE", "1")]);
        assert!(!enabled(ColorChoice::Never, &forced, true));
        let refused = with(&[("NO_COLOR", "1")]);
        assert!(enabled(ColorChoice::Always, &refused, false));
    }

    #[test]
    fn auto_colours_a_terminal_only() {
        assert!(enabled(ColorChoice::Auto, with(&[]), true));
        assert!(!enabled(ColorChoice::Auto, with(&[]), false));
        assert!(!enabled(ColorChoice::Auto, with(&[("TERM", "dumb")]), true));
    }

    #[test]
    fn auto_honours_no_color_then_clicolor_force() {
        assert!(!enabled(
            ColorChoice::Auto,
            with(&[("NO_COLOR", "1")]),
            true
        ));
        // An empty NO_COLOR is not set (no-color.org).
        assert!(enabled(ColorChoice::Auto, with(&[("NO_COLOR", "")]), true));
        assert!(enabled(
            ColorChoice::Auto,
            with(&[("CLICOLOR_FORCE", "1")]),
            false
        ));
        assert!(!enabled(
            ColorChoice::Auto,
            with(&[("CLICOLOR_FORCE", "0")]),
            false
        ));
        assert!(!enabled(
            ColorChoice::Auto,
            with(&[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")]),
            true
        ));
    }
}
