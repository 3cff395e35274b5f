//! Whether the backup directory has room for the archive, asked before anything stops: the
//! engine measures the data volumes (`du -sk` in a one-shot container, wherever the engine
//! runs), this machine its own free room.

use crate::argv::Argv;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The check, as a plan holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomCheck {
    /// Prints the size of each data path in KiB, a `SIZE<tab>PATH` line each (`du -sk`).
    pub measure: Argv,
    /// Where the archive goes.
    pub dir: PathBuf,
}

impl RoomCheck {
    /// What `measure` printed, judged against the room in `dir`: a note when the archive fits,
    /// else the refusal. The estimate is the data's size uncompressed: compression only shrinks
    /// it (by how much depends on the data), and a backup that runs out of room fails while the
    /// server is down.
    pub fn judge(&self, measured: &str) -> Result<String> {
        let needed = kibibytes(measured)?.saturating_mul(1024);
        let free = free_bytes(&self.dir)?;
        verdict(&self.dir, needed, free)
    }
}

fn verdict(dir: &Path, needed: u64, free: u64) -> Result<String> {
    if free < needed {
        bail!(
            "{} has {} free, and the backup may take {} (the data volumes, uncompressed): free room there, or pass --backup-dir a directory with more",
            dir.display(),
            size(free),
            size(needed)
        );
    }
    Ok(format!(
        "room: {} free in {}, the backup takes {} at most",
        size(free),
        dir.display(),
        size(needed)
    ))
}

/// The sum of the sizes `du -sk` printed.
fn kibibytes(measured: &str) -> Result<u64> {
    let sizes = measured
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .with_context(|| format!("`du -sk` printed {line:?}, not a size"))
        })
        .collect::<Result<Vec<u64>>>()?;
    if sizes.is_empty() {
        bail!("`du -sk` printed no size");
    }
    Ok(sizes.iter().sum())
}

fn free_bytes(dir: &Path) -> Result<u64> {
    let stats = rustix::fs::statvfs(dir)
        .with_context(|| format!("can't tell how much room {} has", dir.display()))?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// `1.5 GiB`, `300.0 KiB`: a size for a reader.
fn size(bytes: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} bytes"),
        _ => format!("{value:.1} {}", units[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sizes_du_prints_are_summed() {
        let printed = "1048576\t/var/lib/mysql\n8\t/var/lib/cattle\n4\t/var/log/mysql\n";
        assert_eq!(kibibytes(printed).unwrap(), 1_048_588);
        assert!(kibibytes("").is_err());
        assert!(kibibytes("du: /var/lib/mysql: No such file or directory\n").is_err());
    }

    #[test]
    fn too_little_room_is_refused_naming_the_directory_the_room_and_the_estimate() {
        let dir = Path::new("/srv/backups");
        let error = verdict(dir, 3 << 30, 512 << 20).unwrap_err().to_string();
        assert_eq!(
            error,
            "/srv/backups has 512.0 MiB free, and the backup may take 3.0 GiB (the data volumes, uncompressed): free room there, or pass --backup-dir a directory with more"
        );
        assert!(!error.contains('\n'));
        let note = verdict(dir, 3 << 30, 3 << 30).unwrap();
        assert_eq!(
            note,
            "room: 3.0 GiB free in /srv/backups, the backup takes 3.0 GiB at most"
        );
    }

    #[test]
    fn the_room_of_a_real_directory_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let check = RoomCheck {
            measure: Argv::new("docker"),
            dir: dir.path().to_path_buf(),
        };
        assert!(check.judge("4\t/var/lib/mysql\n").is_ok());
        let refused = check.judge(&format!("{}\t/var/lib/mysql\n", u64::MAX / 2048));
        assert!(refused.unwrap_err().to_string().contains("has"));
    }
}
