//! Asking before each step that changes anything. Without a terminal, nothing is asked: the
//! run is refused up front unless `--yes` answered everything.

use crate::error::{Interrupted, bad_input};
use anyhow::Result;
use dialoguer::{Confirm, Input};
use std::io::IsTerminal;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Yes,
    No,
    All,
}

fn parse_answer(text: &str) -> Option<Answer> {
    match text.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Some(Answer::Yes),
        "n" | "no" => Some(Answer::No),
        "a" | "all" => Some(Answer::All),
        _ => None,
    }
}

#[derive(Debug)]
pub enum Confirmer {
    /// `--yes`: every step runs unasked.
    Unattended,
    /// A person at a terminal; `all` once they answered "all".
    Terminal { all: bool },
}

impl Confirmer {
    /// Refuses before anything runs when nobody could answer.
    pub fn new(assume_yes: bool) -> Result<Confirmer> {
        if assume_yes {
            return Ok(Confirmer::Unattended);
        }
        if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            Ok(Confirmer::Terminal { all: false })
        } else {
            Err(bad_input(
                "no terminal to ask on: pass --yes (or RANCHER_UPGRADE_YES=1) to run every step unasked, or --dry-run to only print the commands",
            ))
        }
    }

    /// Whether to go on. `always_ask` asks even after "all" (the removal of the old server),
    /// unless `--yes` was given.
    pub fn approve(&mut self, question: &str, always_ask: bool) -> Result<bool> {
        let all = match self {
            Confirmer::Unattended => return Ok(true),
            Confirmer::Terminal { all } => all,
        };
        if *all && !always_ask {
            return Ok(true);
        }
        let answer = Input::<String>::new()
            .with_prompt(format!("{question} [y]es, [n]o, [a]ll"))
            .validate_with(|text: &String| {
                parse_answer(text)
                    .map(|_| ())
                    .ok_or("answer y (yes), n (no) or a (all)")
            })
            .interact_text()
            // A prompt that can't be answered (Ctrl-C, closed terminal) is an interruption.
            .map_err(|_| Interrupted)?;
        match parse_answer(&answer) {
            Some(Answer::Yes) => Ok(true),
            Some(Answer::All) => {
                *all = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl Confirmer {
    /// A yes-or-no question whose answer is yes unless the operator says no; unattended, yes.
    pub fn approve_default_yes(&mut self, question: &str) -> Result<bool> {
        match self {
            Confirmer::Unattended => Ok(true),
            Confirmer::Terminal { .. } => Ok(Confirm::new()
                .with_prompt(question)
                .default(true)
                .interact()
                .map_err(|_| Interrupted)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_a_letter_or_a_word_in_any_case() {
        assert_eq!(parse_answer("y"), Some(Answer::Yes));
        assert_eq!(parse_answer(" YES "), Some(Answer::Yes));
        assert_eq!(parse_answer("n"), Some(Answer::No));
        assert_eq!(parse_answer("No"), Some(Answer::No));
        assert_eq!(parse_answer("a"), Some(Answer::All));
        assert_eq!(parse_answer("all"), Some(Answer::All));
        assert_eq!(parse_answer("yep"), None);
        assert_eq!(parse_answer(""), None);
    }

    #[test]
    fn unattended_approves_even_the_removal() {
        let mut confirmer = Confirmer::Unattended;
        assert!(confirmer.approve("Remove?", true).unwrap());
    }
}
