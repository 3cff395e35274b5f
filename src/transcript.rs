//! The transcript: every executed command (masked), its exit status, its duration and the tail
//! of its output, for the post-mortem at 3 a.m.

use crate::error::bad_input;
use crate::secrets::Masker;
use anyhow::Result;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub struct Transcript {
    file: File,
    path: PathBuf,
    masker: Masker,
}

/// `20261127T091500Z`: a UTC time that sorts and fits in a file name.
pub fn compact_utc_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now())
        .to_string()
        .replace(['-', ':'], "")
}

impl Transcript {
    /// Opens the transcript for appending; it is readable by its owner only, like the backups.
    pub fn open(path: &Path, masker: Masker) -> Result<Transcript> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|error| {
                bad_input(format!(
                    "can't write the transcript {}: {error}; choose another file with --log FILE",
                    path.display()
                ))
            })?;
        Ok(Transcript {
            file,
            path: path.to_path_buf(),
            masker,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A line of its own, stamped with the time. Secret values are masked on the way in.
    pub fn note(&mut self, text: &str) {
        let stamp = humantime::format_rfc3339_seconds(SystemTime::now());
        let masked = self.masker.mask(text);
        // A transcript that can't be written must not stop an upgrade halfway.
        let _ = writeln!(self.file, "[{stamp}] {masked}");
    }

    pub fn command(
        &mut self,
        shown: &str,
        status: &str,
        duration: Duration,
        output_tail: &[String],
    ) {
        self.note(&format!("$ {shown}"));
        let mut record = format!("  exit: {status}, {:.2} s", duration.as_secs_f64());
        for line in output_tail {
            record.push_str("\n  | ");
            record.push_str(line);
        }
        self.note(&record);
    }
}
