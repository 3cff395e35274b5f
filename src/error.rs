//! The failures that decide the exit code. Anything else is exit 1.

use std::process::ExitCode;
use thiserror::Error;

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_INTERRUPTED: u8 = 130;

/// Every exit code with what it tells the operator, for `--help` and the manual page.
pub const EXIT_CODES: [(u8, &str); 4] = [
    (0, "done"),
    (
        EXIT_FAILED,
        "a docker command or a check failed (the report says which, and the way back)",
    ),
    (
        EXIT_BAD_INPUT,
        "bad input, or the preflight refused (nothing was changed)",
    ),
    (
        EXIT_INTERRUPTED,
        "interrupted with Ctrl-C (the running docker command is let finish; a second Ctrl-C stops it)",
    ),
];

#[derive(Debug, Error)]
pub enum Refusal {
    /// Bad input: a wrong option value, a container that doesn't exist, no docker binary.
    #[error("{0}")]
    BadInput(String),
    /// The preflight found reasons not to start; every one of them is listed.
    #[error("{}", preflight_message(.0))]
    Preflight(Vec<String>),
}

fn preflight_message(reasons: &[String]) -> String {
    match reasons {
        [one] => format!("refusing to go on: {one}"),
        many => format!(
            "refusing to go on, for {} reasons:\n  - {}",
            many.len(),
            many.join("\n  - ")
        ),
    }
}

/// The operator interrupted the run (Ctrl-C).
#[derive(Debug, Error)]
#[error("interrupted")]
pub struct Interrupted;

/// The exit code for an error, by what it is.
pub fn exit_code_for(error: &anyhow::Error) -> ExitCode {
    if error.downcast_ref::<Refusal>().is_some() {
        ExitCode::from(EXIT_BAD_INPUT)
    } else if error.downcast_ref::<Interrupted>().is_some() {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
    Refusal::BadInput(message.into()).into()
}
