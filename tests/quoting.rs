//! The quoting proof: a command line rendered by [`Argv::display`], run by a real shell, gives
//! the program exactly the words [`Argv::real`] holds, byte for byte.
//!
//! Each check replaces the leading `docker ` of a rendered line with `printf '%s\0' `, keeps
//! the rest byte for byte, runs it with `/bin/sh -c` (dash on Debian) or `/bin/bash -c`, and
//! compares the NUL-separated output with `argv.real()[1..]`. The same argv is also rendered
//! with [`Reveal::ShellVariables`] and run with each secret's shell variable set to the secret
//! part: the shell must rebuild the real words from it.
//!
//! `bash -i` is checked too: the Markdown runbook is pasted into an interactive shell, where
//! history expansion (`!`) is on, unlike in `bash -c` or a script.
//!
//! Shells run in a sandbox: a working directory holding a few files (so an unquoted glob would
//! match something), and a PATH that holds only `touch` (so a word that escaped its quotes can
//! leave a marker file, and nothing else from the host is reachable).
//!
//! `cargo test --test quoting -- --nocapture` shows each proof's summary line.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use rancher_upgrade::argv::{Argv, Reveal, Secret};
use std::cell::Cell;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

/// The fewest generated argv vectors per proof; `PROPTEST_CASES` can ask for more.
const MIN_CASES: u32 = 2000;

// ------------------------------------------------------------------- words --

/// One word after the program name, as a test builds it.
#[derive(Clone, Debug)]
enum WordSpec {
    Plain(String),
    /// `prefix` stays visible (`NAME=`, or empty); `value` is the secret part.
    Secret {
        prefix: String,
        value: String,
    },
}

/// The argv under test, and the shell variables its [`Reveal::ShellVariables`] display needs.
fn build(words: &[WordSpec]) -> (Argv, Vec<(String, String)>) {
    let mut argv = Argv::new("docker");
    let mut vars = Vec::new();
    for (i, word) in words.iter().enumerate() {
        argv = match word {
            WordSpec::Plain(value) => argv.arg(value.clone()),
            WordSpec::Secret { prefix, value } => {
                let shell_var = format!("SECRET_{}", i + 1);
                vars.push((shell_var.clone(), value.clone()));
                argv.secret_arg(
                    format!("{prefix}{value}"),
                    Secret {
                        visible_prefix: prefix.len(),
                        shell_var,
                        // The words of the command line are proven here; a secret that
                        // travels in the environment leaves only its name there.
                        via_environment: false,
                    },
                )
            }
        };
    }
    (argv, vars)
}

// ------------------------------------------------------------------ shells --

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shell {
    /// `/bin/sh -c` (dash on Debian).
    Sh,
    /// `/bin/bash -c`: brace expansion and bash's tilde rules; history expansion is off.
    Bash,
    /// `bash -i` reading the lines from stdin, as a paste into a terminal: history expansion on.
    InteractiveBash,
}

impl Shell {
    fn name(self) -> &'static str {
        match self {
            Shell::Sh => "sh",
            Shell::Bash => "bash",
            Shell::InteractiveBash => "interactive bash",
        }
    }
}

/// Where the shells run. Dropping it removes everything.
struct Sandbox {
    root: TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let root = tempfile::tempdir().expect("temporary directory");
        let work = root.path().join("work");
        let bin = root.path().join("bin");
        fs::create_dir(&work).unwrap();
        fs::create_dir(&bin).unwrap();
        fs::create_dir(root.path().join("home")).unwrap();
        // An unquoted `*`, `?` or `[ab]` would match these instead of staying literal.
        for name in ["a", "b", "ab", "1", "é", "x=y", "-rf", "{a,b}"] {
            fs::write(work.join(name), "").unwrap();
        }
        let touch = ["/usr/bin/touch", "/bin/touch"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("touch is installed");
        symlink(touch, bin.join("touch")).unwrap();
        Sandbox { root }
    }

    fn home(&self) -> String {
        self.root.path().join("home").to_string_lossy().into_owned()
    }

    fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    /// Runs `script` and returns stdout, and stderr for a report.
    fn run(&self, shell: Shell, script: &str, vars: &[(String, String)]) -> (Vec<u8>, String) {
        let mut command = match shell {
            Shell::Sh => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(script);
                c
            }
            Shell::Bash => {
                let mut c = Command::new("/bin/bash");
                c.arg("-c").arg(script);
                c
            }
            Shell::InteractiveBash => {
                let mut c = Command::new("/bin/bash");
                c.args(["--norc", "--noprofile", "--noediting", "-i"]);
                c
            }
        };
        command
            .env_clear()
            .env("PATH", self.root.path().join("bin"))
            .env("HOME", self.home())
            .env("LC_ALL", "C.UTF-8")
            .env("HISTFILE", "/dev/null")
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .current_dir(self.work())
            .stdin(if shell == Shell::InteractiveBash {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("shell starts");
        let writer = child.stdin.take().map(|mut stdin| {
            let input = format!("{script}\n");
            std::thread::spawn(move || {
                let _ = stdin.write_all(input.as_bytes());
            })
        });
        let output = child.wait_with_output().expect("shell runs");
        if let Some(writer) = writer {
            writer.join().unwrap();
        }
        (
            output.stdout,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// The rendered line with `docker ` replaced by `printf '%s\0' `; the rest is kept byte for byte.
fn as_printf(line: &str) -> String {
    let rest = line
        .strip_prefix("docker ")
        .unwrap_or_else(|| panic!("a rendered line starts with `docker `: {line:?}"));
    format!("printf '%s\\0' {rest}")
}

/// Long text cut down for a report, with its length.
fn abridged(text: &str) -> String {
    const KEEP: usize = 160;
    if text.chars().count() <= KEEP {
        return text.to_string();
    }
    let head: String = text.chars().take(KEEP).collect();
    format!("{head}… ({} bytes in all)", text.len())
}

/// NUL-terminated records, shown readably.
fn records(bytes: &[u8]) -> Vec<String> {
    let mut parts: Vec<String> = bytes
        .split(|b| *b == 0)
        .map(|r| abridged(&String::from_utf8_lossy(r)))
        .collect();
    if bytes.last() == Some(&0) {
        parts.pop();
    }
    parts
}

/// Runs one argv's Plain and ShellVariables renderings through `shell`; `Err` explains a mismatch.
fn check(sandbox: &Sandbox, shell: Shell, words: &[WordSpec]) -> Result<(), String> {
    let (argv, vars) = build(words);
    if let Some(word) = argv.first_control_character() {
        return Err(format!(
            "generator bug: control character in {:?}",
            word.shown(Reveal::Plain)
        ));
    }
    let plain = as_printf(&argv.display(Reveal::Plain));
    let variables = as_printf(&argv.display(Reveal::ShellVariables));
    // \001 cannot be in a word (control characters are refused), so it separates the runs.
    let script = format!("{plain}\nprintf '\\001\\0'\n{variables}");
    let mut expected = Vec::new();
    for pass in 0..2 {
        if pass == 1 {
            expected.extend_from_slice(b"\x01\0");
        }
        for word in &argv.real()[1..] {
            expected.extend_from_slice(word.as_bytes());
            expected.push(0);
        }
    }
    let (stdout, stderr) = sandbox.run(shell, &script, &vars);
    if stdout == expected {
        return Ok(());
    }
    let real: Vec<String> = argv.real()[1..].iter().map(|w| abridged(w)).collect();
    let vars: Vec<(&str, String)> = vars
        .iter()
        .map(|(k, v)| (k.as_str(), abridged(v)))
        .collect();
    Err(format!(
        "{} mismatch\n  real words:       {real:?}\n  Plain line:       {}\n  ShellVariables:   {}\n  shell variables:  {vars:?}\n  expected records: {:?}\n  shell printed:    {:?}\n  stderr: {}",
        shell.name(),
        abridged(&plain),
        abridged(&variables),
        records(&expected),
        records(&stdout),
        stderr.trim_end(),
    ))
}

// --------------------------------------------------------------- the proof --

/// The characters a POSIX shell or bash gives a meaning to.
const SPECIAL: [char; 23] = [
    '\'', '"', '$', '\\', ' ', '!', '*', '?', '[', ']', '~', '#', '=', '`', ';', '&', '|', '(',
    ')', '{', '}', '<', '>',
];

/// Characters that are ordinary in every shell, or nearly so.
const ORDINARY: [char; 17] = [
    'a', 'b', 'Z', '0', '1', '-', '_', '.', ',', '/', ':', '@', '%', '+', '^', 'é', '日',
];

/// Characters `shell_words::quote` leaves bare but the crate's own bare set does not: words made
/// only of these are where brace expansion (`{a,b}`, `{1..3}`) and history expansion (`!!`) hide,
/// and words drawn from all characters almost never consist of these alone.
const LEFT_BARE: [char; 15] = [
    'a', 'b', '1', '2', '.', ',', '{', '}', '!', ']', '^', '-', '/', 'é', '日',
];

fn chars_to_word(
    chars: impl Strategy<Value = char> + 'static,
    max: usize,
) -> BoxedStrategy<String> {
    prop::collection::vec(chars, 0..max)
        .prop_map(|chars| chars.into_iter().collect())
        .boxed()
}

/// A character, mostly shell-special, never a control character.
fn heavy_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::sample::select(SPECIAL.to_vec()),
        3 => prop::sample::select(ORDINARY.to_vec()),
        // Any other character the tool accepts: printable, format (Cf), private use, ...
        1 => any::<char>().prop_filter("control characters are refused", |c| !c.is_control()),
    ]
}

/// A word of 0..40 characters.
fn word() -> BoxedStrategy<String> {
    prop_oneof![
        2 => "\\PC{0,40}",
        4 => chars_to_word(heavy_char(), 40),
        2 => chars_to_word(prop::sample::select(LEFT_BARE.to_vec()), 12),
    ]
    .boxed()
}

fn word_spec() -> impl Strategy<Value = WordSpec> {
    let name = prop_oneof!["[A-Z_][A-Z0-9_]{0,12}", chars_to_word(heavy_char(), 15)];
    prop_oneof![
        4 => word().prop_map(WordSpec::Plain),
        1 => (prop::option::of(name), word()).prop_map(|(name, value)| WordSpec::Secret {
            prefix: name.map(|n| format!("{n}=")).unwrap_or_default(),
            value,
        }),
    ]
}

/// 1 to 8 words after `docker`.
fn words() -> impl Strategy<Value = Vec<WordSpec>> {
    prop::collection::vec(word_spec(), 1..=8)
}

fn prove(shell: Shell) {
    let sandbox = Sandbox::new();
    let config = Config {
        cases: Config::default().cases.max(MIN_CASES),
        failure_persistence: None,
        ..Config::default()
    };
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    let ran = Cell::new(0u32);
    let started = Instant::now();
    let result = runner.run(&words(), |words| {
        ran.set(ran.get() + 1);
        check(&sandbox, shell, &words).map_err(TestCaseError::fail)
    });
    match result {
        // Straight to the stderr handle: libtest captures eprint! of a passing test.
        Ok(()) => summary(format_args!(
            "quoting proof: {cases} argv vectors, 0 mismatches ({}, Plain and ShellVariables) in {:.1?}",
            shell.name(),
            started.elapsed()
        )),
        Err(TestError::Fail(why, minimal)) => panic!(
            "quoting proof: mismatch ({}) after {} runs (shrinking included); minimal input:\n{minimal:#?}\n{why}",
            shell.name(),
            ran.get()
        ),
        Err(error) => panic!("quoting proof ({}): {error}", shell.name()),
    }
}

#[test]
fn displays_round_trip_through_sh() {
    prove(Shell::Sh);
}

#[test]

fn displays_round_trip_through_bash() {
    prove(Shell::Bash);
}

#[test]

fn displays_round_trip_through_interactive_bash() {
    prove(Shell::InteractiveBash);
}

// ----------------------------------------------------------- hostile table --

/// A marker path no test run has used: if it ever exists, a word ran as a command.
fn fresh_marker(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("/tmp/pwned-{}-{nanos}-{tag}", std::process::id())
}

fn hostile_words(marker: &str) -> Vec<String> {
    let unit = format!("x'$(touch {marker})\"{{a,b}}!!é `touch {marker}`\\ ~ * ");
    let mut ten_kb = unit.repeat(10 * 1024 / unit.len() + 1);
    while ten_kb.len() > 10 * 1024 {
        ten_kb.pop();
    }
    let mut words: Vec<String> = [
        "",
        "-rf",
        "--volumes-from=x",
        "`id`",
        ";rm -rf /",
        "a'b\"c",
        "!!",
        "!",
        "a!b",
        "!-1",
        "*",
        "?",
        "[ab]",
        "~",
        "~root",
        "x=~",
        "--opt=~/x",
        "{a,b}",
        "a{b,c}d",
        "{1..3}",
        "^x^y",
        "héllo wörld",
        "日本語",
        "\\",
        "trailing\\",
        "'",
        "''",
        "\"",
        "$HOME",
        "${HOME}",
        "$'\\x41'",
        "#comment",
        "a #b",
        "%s%b\\0",
        "\u{a0}non-breaking space",
        "line\u{2028}separator",
        "\u{202e}right-to-left override",
        "\u{feff}byte order mark",
        "😀",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    words.extend([
        format!("$(touch {marker})"),
        format!("`touch {marker}`"),
        format!(";touch {marker}"),
        format!("&& touch {marker}"),
        format!("| touch {marker}"),
        format!(">{marker}"),
        format!("\"$(touch {marker})\""),
        format!("'$(touch {marker})'"),
        ten_kb,
    ]);
    words
}

/// Secret words: the secret part reaches the shell only through a variable.
fn hostile_secrets(marker: &str) -> Vec<WordSpec> {
    let secret = |prefix: &str, value: String| WordSpec::Secret {
        prefix: prefix.to_string(),
        value,
    };
    vec![
        secret("API_TOKEN=", format!("$(touch {marker})")),
        secret("", format!("'; touch {marker}; '")),
        secret("--db-pass=", format!("`touch {marker}`")),
        secret("{a,b}=", "x".to_string()),
        secret("A=", String::new()),
        secret("", String::new()),
        secret("N=", "!! {a,b} ~ * $HOME".to_string()),
        secret("'$(touch x)'=", "\"${HOME}\"".to_string()),
    ]
}

/// Every hostile word alone, every secret alone, and all of them in one argv.
fn hostile_table(marker: &str) -> Vec<Vec<WordSpec>> {
    let words: Vec<WordSpec> = hostile_words(marker)
        .into_iter()
        .map(WordSpec::Plain)
        .chain(hostile_secrets(marker))
        .collect();
    let mut table: Vec<Vec<WordSpec>> = words.iter().map(|w| vec![w.clone()]).collect();
    table.push(
        [WordSpec::Plain("run".into()), WordSpec::Plain("-e".into())]
            .into_iter()
            .chain(words)
            .collect(),
    );
    table
}

fn hostile_table_round_trips(shell: Shell) {
    let marker = fresh_marker(&shell.name().replace(' ', "-"));
    let sandbox = Sandbox::new();
    let table = hostile_table(&marker);
    let failures: Vec<String> = table
        .iter()
        .filter_map(|words| check(&sandbox, shell, words).err())
        .collect();
    let pwned = Path::new(&marker).exists();
    let _ = fs::remove_file(&marker);
    assert!(
        failures.is_empty(),
        "{} of {} hostile argvs did not round-trip through {}:\n\n{}",
        failures.len(),
        table.len(),
        shell.name(),
        failures.join("\n\n")
    );
    assert!(!pwned, "a word ran as a command: {marker} was created");
    summary(format_args!(
        "quoting proof: {} hostile argvs, 0 mismatches ({}), marker never created",
        table.len(),
        shell.name()
    ));
}

/// A line CI shows: written to the stderr handle, past the test harness's capture.
fn summary(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[test]
fn hostile_table_round_trips_through_sh() {
    hostile_table_round_trips(Shell::Sh);
}

#[test]

fn hostile_table_round_trips_through_bash() {
    hostile_table_round_trips(Shell::Bash);
}

#[test]

fn hostile_table_round_trips_through_interactive_bash() {
    hostile_table_round_trips(Shell::InteractiveBash);
}

/// A control for the proof itself: unquoted words do expand in the sandbox, and a word that
/// escapes can create the marker, so the checks above could fail.
#[test]
fn the_sandbox_shows_expansion_and_command_substitution() {
    let sandbox = Sandbox::new();
    let marker = fresh_marker("control");
    let script = format!("printf '%s\\0' [a-z] {{a,b}} ~ $(touch {marker})");
    let (sh, _) = sandbox.run(Shell::Sh, &script, &[]);
    assert_eq!(records(&sh), ["a", "b", "{a,b}", &sandbox.home()]);
    assert!(Path::new(&marker).exists(), "command substitution ran");
    fs::remove_file(&marker).unwrap();
    let (bash, _) = sandbox.run(Shell::Bash, "printf '%s\\0' {a,b}", &[]);
    assert_eq!(records(&bash), ["a", "b"]);
    let (interactive, _) = sandbox.run(Shell::InteractiveBash, "printf '%s\\0' x\necho !!", &[]);
    assert_eq!(interactive, b"x\0printf %s\\0 x\n");
}

// ------------------------------------------------------ control characters --

#[test]
fn control_characters_are_found() {
    for bad in [
        "line\nbreak",
        "tab\there",
        "escape\x1b[31m",
        "delete\x7f",
        "next line\u{85}",
    ] {
        let argv = Argv::new("docker")
            .args(["run", "-e"])
            .arg(bad)
            .arg("image");
        let found = argv
            .first_control_character()
            .unwrap_or_else(|| panic!("{bad:?} holds a control character"));
        assert_eq!(found.shown(Reveal::Plain), bad);
    }
    let secret = Argv::new("docker").secret_arg(
        "TOKEN=a\tb",
        Secret {
            visible_prefix: "TOKEN=".len(),
            shell_var: "TOKEN".into(),
            via_environment: true,
        },
    );
    assert!(secret.first_control_character().is_some());
}

#[test]
fn the_hostile_table_holds_no_control_characters() {
    for words in hostile_table("/tmp/pwned-unused") {
        let (argv, _) = build(&words);
        assert_eq!(argv.first_control_character(), None, "{words:?}");
    }
}
