//! The backup archive, on the machine where the tool runs: the data paths of the tar stream of
//! the data volumes the engine sends, or the dump of the external database, compressed and
//! checked while it is written (every tar header checked, the entries and bytes counted; a
//! dump's tables counted and its last line checked), a SHA-256 of the file kept beside it as
//! `sha256sum -c` reads it, so no second pass is needed; and read back, checksum first, for a
//! restore.

use crate::server::data_paths_relative;
use crate::sql_dump;
use crate::tar_stream::copy_kept;
use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How an archive is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveFormat {
    /// zstd, level 1, on every core: as fast as the engine sends the data.
    Zstd,
    /// gzip, the `.tar.gz` of Rancher's documentation: one core, several times slower.
    Gzip,
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// zstd's fastest level: at it, compression keeps pace with the engine's stream.
const ZSTD_LEVEL: i32 = 1;
/// How much of a stream is read or written at a time.
const STREAM_BUFFER: usize = 1 << 20;

/// What an archive holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveContent {
    /// The data paths of the engine's tar stream of the data volumes (embedded database).
    DataVolumes,
    /// The external database, as `mysqldump --databases` writes it.
    DatabaseDump,
}

impl ArchiveContent {
    const ALL: [ArchiveContent; 2] = [ArchiveContent::DataVolumes, ArchiveContent::DatabaseDump];

    /// How the name of an archive of this content starts.
    pub fn prefix(self) -> &'static str {
        match self {
            ArchiveContent::DataVolumes => "rancher-data-backup-",
            ArchiveContent::DatabaseDump => "rancher-db-backup-",
        }
    }

    /// What the name says before the compression's suffix.
    fn extension(self) -> &'static str {
        match self {
            ArchiveContent::DataVolumes => "tar",
            ArchiveContent::DatabaseDump => "sql",
        }
    }

    /// The content a file name says: a dump is `….sql.zst` or `….sql.gz`, anything else is
    /// taken for the data volumes.
    pub fn of_name(name: &str) -> ArchiveContent {
        let dump = ArchiveContent::DatabaseDump;
        match ArchiveFormat::ALL
            .iter()
            .any(|format| name.ends_with(&format!(".{}.{}", dump.extension(), format.suffix())))
        {
            true => dump,
            false => ArchiveContent::DataVolumes,
        }
    }

    /// What it is, for a message.
    pub fn describe(self) -> &'static str {
        match self {
            ArchiveContent::DataVolumes => "an archive of the data volumes",
            ArchiveContent::DatabaseDump => "a dump of the external database",
        }
    }
}

impl ArchiveFormat {
    const ALL: [ArchiveFormat; 2] = [ArchiveFormat::Zstd, ArchiveFormat::Gzip];

    /// The end of an archive's name: what compressed it.
    pub fn suffix(self) -> &'static str {
        match self {
            ArchiveFormat::Zstd => "zst",
            ArchiveFormat::Gzip => "gz",
        }
    }

    /// The format a file is in, by its first bytes.
    pub fn of_file(path: &Path) -> Option<ArchiveFormat> {
        let mut magic = [0u8; 4];
        File::open(path).ok()?.read_exact(&mut magic).ok()?;
        if magic == ZSTD_MAGIC {
            Some(ArchiveFormat::Zstd)
        } else if magic[..2] == GZIP_MAGIC {
            Some(ArchiveFormat::Gzip)
        } else {
            None
        }
    }

    /// The Debian command that compresses as the tool does, for a runbook.
    pub fn compress_command(self) -> &'static str {
        match self {
            ArchiveFormat::Zstd => "zstd -q -1 -T0",
            ArchiveFormat::Gzip => "gzip -1",
        }
    }

    /// The Debian command that decompresses to stdout, for a runbook.
    pub fn decompress_command(self) -> &'static str {
        match self {
            ArchiveFormat::Zstd => "zstd -q -dc",
            ArchiveFormat::Gzip => "gzip -dc",
        }
    }
}

/// What the checksum file beside an archive says of it.
#[derive(Debug)]
pub enum Checksum {
    /// The archive's SHA-256 is the one its checksum file holds.
    Matches(String),
    /// The checksum file can't be read (most often: there is none).
    Missing(io::Error),
    /// The checksum file holds `expected`, the archive hashes to `actual`.
    Mismatch { expected: String, actual: String },
}

/// An archive file on this machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Archive {
    pub path: PathBuf,
    pub format: ArchiveFormat,
    pub content: ArchiveContent,
}

/// What a written archive holds, recorded in the state file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveSummary {
    pub sha256: String,
    /// The size of the archive file.
    pub archive_bytes: u64,
    /// The tar entries (files, directories, links) it holds; for a dump, its tables.
    pub entries: u64,
    /// The bytes of file content it holds, uncompressed; for a dump, the dump's own.
    pub content_bytes: u64,
}

impl Archive {
    /// `DIR/<prefix><version>-<stamp>.<tar|sql>.<zst|gz>`: `rancher-data-backup-v1.6.10-T.tar.zst`.
    pub fn new(
        dir: &Path,
        version: &str,
        stamp: &str,
        content: ArchiveContent,
        format: ArchiveFormat,
    ) -> Archive {
        Archive {
            path: dir.join(format!(
                "{}{version}-{stamp}.{}.{}",
                content.prefix(),
                content.extension(),
                format.suffix()
            )),
            format,
            content,
        }
    }

    /// The backup archive a file name in a backup directory says it is (its prefix, content
    /// and compression); `None` for any other name, such as its `.sha256` or a `.partial` one.
    pub fn backup_named(path: PathBuf) -> Option<Archive> {
        let name = path.file_name()?.to_str()?;
        let content = ArchiveContent::ALL
            .into_iter()
            .find(|content| name.starts_with(content.prefix()))?;
        let format = ArchiveFormat::ALL.into_iter().find(|format| {
            name.ends_with(&format!(".{}.{}", content.extension(), format.suffix()))
        })?;
        Some(Archive {
            path,
            format,
            content,
        })
    }

    /// What the written archive holds, in one line for the operator and the transcript.
    pub fn describe(&self, summary: &ArchiveSummary) -> String {
        let held = match self.content {
            ArchiveContent::DataVolumes => format!(
                "{} entries, {} bytes of files",
                summary.entries, summary.content_bytes
            ),
            ArchiveContent::DatabaseDump => format!(
                "{} tables, {} bytes of SQL",
                summary.entries, summary.content_bytes
            ),
        };
        format!(
            "{} ({} bytes, {held}, sha256 {})",
            self.path.display(),
            summary.archive_bytes,
            summary.sha256
        )
    }

    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn directory(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// `ARCHIVE.sha256`: the checksum line `sha256sum -c` reads, in the archive's directory.
    pub fn checksum_path(&self) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(".sha256");
        PathBuf::from(name)
    }

    fn partial_path(&self) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(".partial");
        PathBuf::from(name)
    }

    /// Writes the archive from `source`, and only from a whole, checked stream that holds the
    /// database: the data paths of a tar stream of the data volumes, or a dump that ends as
    /// mysqldump ends one. A partial file is written first and takes the archive's name at the
    /// end, never over an existing one. Both files are their owner's alone (the archive holds
    /// the database). `progress` hears the bytes read so far.
    pub fn write_from(
        &self,
        source: &mut dyn Read,
        progress: &AtomicU64,
    ) -> Result<ArchiveSummary> {
        if self.path.exists() {
            bail!(
                "{} exists already, and a backup never overwrites one; move it aside or run again",
                self.path.display()
            );
        }
        let partial = self.partial_path();
        // A partial file is what an interrupted backup of ours left: never a finished archive.
        match fs::remove_file(&partial) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => {
                return Err(error).with_context(|| format!("removing {}", partial.display()));
            }
            _ => {}
        }
        let file = private_file(&partial)?;
        let hashed = HashingWriter::new(BufWriter::with_capacity(STREAM_BUFFER, file));
        let mut source = BufReader::with_capacity(
            STREAM_BUFFER,
            Counted {
                inner: source,
                progress,
            },
        );
        let kept: Vec<&str> = data_paths_relative().collect();
        // (entries, content bytes) of the stream, checked as it is copied.
        let mut copy = |sink: &mut dyn Write| -> Result<(u64, u64)> {
            match self.content {
                ArchiveContent::DataVolumes => copy_kept(&mut source, sink, &kept)
                    .map(|counts| (counts.entries, counts.content_bytes)),
                ArchiveContent::DatabaseDump => sql_dump::copy_checked(&mut source, sink)
                    .map(|counts| (counts.tables, counts.bytes)),
            }
        };
        let ((entries, content_bytes), hashed) = match self.format {
            ArchiveFormat::Zstd => {
                let mut encoder = zstd::Encoder::new(hashed, ZSTD_LEVEL)?;
                encoder.multithread(compression_threads())?;
                let counts = copy(&mut encoder)?;
                (counts, encoder.finish()?)
            }
            ArchiveFormat::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(hashed, flate2::Compression::fast());
                let counts = copy(&mut encoder)?;
                (counts, encoder.finish()?)
            }
        };
        let (buffered, digest, archive_bytes) = hashed.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| anyhow!("writing {}: {}", partial.display(), e.error()))?;
        file.sync_all()
            .with_context(|| format!("writing {}", partial.display()))?;
        // A hard link fails where the name is taken: the archive is never replaced.
        fs::hard_link(&partial, &self.path)
            .with_context(|| format!("naming the backup {}", self.path.display()))?;
        fs::remove_file(&partial).with_context(|| format!("removing {}", partial.display()))?;
        let checksum_path = self.checksum_path();
        let mut checksum = private_file(&checksum_path)?;
        writeln!(checksum, "{digest}  {}", self.file_name())
            .and_then(|()| checksum.sync_all())
            .with_context(|| format!("writing {}", checksum_path.display()))?;
        File::open(self.directory())
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("syncing {}", self.directory().display()))?;
        Ok(ArchiveSummary {
            sha256: digest,
            archive_bytes,
            entries,
            content_bytes,
        })
    }

    /// The archive at `path`, when its first bytes say its format; its name says its content.
    pub fn at(path: PathBuf) -> Option<Archive> {
        let format = ArchiveFormat::of_file(&path)?;
        let content = ArchiveContent::of_name(&path.file_name()?.to_string_lossy());
        Some(Archive {
            path,
            format,
            content,
        })
    }

    /// Compares the archive with the checksum written beside it; an error is an archive that
    /// can't be read.
    pub fn checksum(&self) -> Result<Checksum> {
        let expected = match fs::read_to_string(self.checksum_path()) {
            Ok(line) => line
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
            Err(error) => return Ok(Checksum::Missing(error)),
        };
        let mut file = File::open(&self.path)
            .with_context(|| format!("the backup {} can't be read", self.path.display()))?;
        let mut hashed = HashingWriter::new(io::sink());
        io::copy(&mut file, &mut hashed)
            .with_context(|| format!("reading the backup {}", self.path.display()))?;
        let (_, actual, _) = hashed.finish();
        Ok(if actual == expected {
            Checksum::Matches(actual)
        } else {
            Checksum::Mismatch { expected, actual }
        })
    }

    /// Checks the archive against the checksum written beside it: a truncated, damaged or
    /// replaced archive fails here, before any volume is emptied.
    pub fn verify(&self) -> Result<String> {
        let checksum_path = self.checksum_path();
        match self.checksum()? {
            Checksum::Matches(sha256) => Ok(sha256),
            Checksum::Missing(error) => Err(anyhow::Error::new(error).context(format!(
                "the checksum of {} ({}) can't be read; without it the archive can't be trusted",
                self.path.display(),
                checksum_path.display()
            ))),
            Checksum::Mismatch { .. } => bail!(
                "the backup {} does not match its checksum in {} (damaged or truncated); nothing was restored from it",
                self.path.display(),
                checksum_path.display()
            ),
        }
    }

    /// Decompresses the archive into `sink`: the tar stream the engine gets back.
    pub fn read_into(&self, sink: &mut dyn Write, progress: &AtomicU64) -> Result<()> {
        let file = File::open(&self.path)
            .with_context(|| format!("the backup {} can't be read", self.path.display()))?;
        let mut counted = Counted {
            inner: sink,
            progress,
        };
        let copied = match self.format {
            ArchiveFormat::Zstd => io::copy(&mut zstd::Decoder::new(file)?, &mut counted),
            ArchiveFormat::Gzip => io::copy(&mut flate2::read::GzDecoder::new(file), &mut counted),
        };
        copied
            .map(|_| ())
            .with_context(|| format!("streaming the backup {}", self.path.display()))
    }
}

fn private_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

fn compression_threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Adds the bytes read from or written to `inner` to `progress`.
struct Counted<'a, T> {
    inner: T,
    progress: &'a AtomicU64,
}

impl<T: Read> Read for Counted<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<T: Write> Write for Counted<'_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes through to `inner`, hashing and counting what passes.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    fn finish(self) -> (W, String, u64) {
        (self.inner, hex(&self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A tar stream of `files` (path, content), as an engine would send it.
    fn tar_stream(files: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o640);
            header.set_uid(999);
            header.set_gid(999);
            header.set_cksum();
            builder
                .append_data(&mut header, path, content.as_bytes())
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn archive_in(dir: &Path, format: ArchiveFormat) -> Archive {
        Archive::new(dir, "v1", "T", ArchiveContent::DataVolumes, format)
    }

    fn dump_in(dir: &Path, format: ArchiveFormat) -> Archive {
        Archive::new(dir, "v1", "T", ArchiveContent::DatabaseDump, format)
    }

    const DUMP: &str = "-- MySQL dump 10.13\nCREATE DATABASE `cattle`;\nUSE `cattle`;\nCREATE TABLE `setting` (`name` varchar(255));\n-- Dump completed on 2026-11-27 00:00:00\n";

    #[test]
    fn an_archive_reads_back_byte_for_byte_in_both_formats() {
        let stream = tar_stream(&[("var/lib/mysql/ibdata1", "rows"), ("var/lib/cattle/x", "y")]);
        for format in [ArchiveFormat::Zstd, ArchiveFormat::Gzip] {
            let dir = tempfile::tempdir().unwrap();
            let archive = archive_in(dir.path(), format);
            let progress = AtomicU64::new(0);
            let summary = archive.write_from(&mut &stream[..], &progress).unwrap();
            assert_eq!(summary.entries, 2);
            assert_eq!(summary.content_bytes, 5);
            assert_eq!(progress.load(Ordering::Relaxed), stream.len() as u64);
            assert_eq!(ArchiveFormat::of_file(&archive.path), Some(format));
            assert_eq!(archive.verify().unwrap(), summary.sha256);
            let mut back = Vec::new();
            archive.read_into(&mut back, &AtomicU64::new(0)).unwrap();
            assert_eq!(back, stream);
            for file in [&archive.path, &archive.checksum_path()] {
                let mode = fs::metadata(file).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", file.display());
            }
            assert!(!archive.partial_path().exists());
        }
    }

    #[test]
    fn the_checksum_file_is_what_sha256sum_checks() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive_in(dir.path(), ArchiveFormat::Zstd);
        archive
            .write_from(
                &mut &tar_stream(&[("var/lib/mysql/a", "b")])[..],
                &AtomicU64::new(0),
            )
            .unwrap();
        let checked = std::process::Command::new("sha256sum")
            .arg("-c")
            .arg(archive.checksum_path())
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(checked.status.success(), "{checked:?}");
    }

    #[test]
    fn a_stream_that_is_not_tar_leaves_no_archive() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive_in(dir.path(), ArchiveFormat::Zstd);
        let mut garbage = tar_stream(&[("var/lib/mysql/a", "0123456789")]);
        garbage[100..200].fill(b'x');
        let error = archive
            .write_from(&mut &garbage[..], &AtomicU64::new(0))
            .unwrap_err();
        assert!(format!("{error:#}").contains("tar"), "{error:#}");
        assert!(!archive.path.exists());
    }

    #[test]
    fn a_stream_cut_inside_a_file_leaves_no_archive() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive_in(dir.path(), ArchiveFormat::Gzip);
        let stream = tar_stream(&[("var/lib/mysql/a", &"x".repeat(5000))]);
        let error = archive
            .write_from(&mut &stream[..2048], &AtomicU64::new(0))
            .unwrap_err();
        assert!(format!("{error:#}").contains("tar stream"), "{error:#}");
        assert!(!archive.path.exists());
    }

    #[test]
    fn an_existing_archive_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive_in(dir.path(), ArchiveFormat::Zstd);
        fs::write(&archive.path, "precious").unwrap();
        assert!(
            archive
                .write_from(
                    &mut &tar_stream(&[("var/lib/mysql/a", "b")])[..],
                    &AtomicU64::new(0)
                )
                .is_err()
        );
        assert_eq!(fs::read_to_string(&archive.path).unwrap(), "precious");
    }

    #[test]
    fn a_truncated_or_corrupted_archive_fails_verification() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive_in(dir.path(), ArchiveFormat::Zstd);
        archive
            .write_from(
                &mut &tar_stream(&[("var/lib/mysql/a", &"row ".repeat(1000))])[..],
                &AtomicU64::new(0),
            )
            .unwrap();
        let whole = fs::read(&archive.path).unwrap();
        fs::write(&archive.path, &whole[..whole.len() / 2]).unwrap();
        assert!(archive.verify().is_err());
        let mut flipped = whole.clone();
        flipped[whole.len() / 2] ^= 1;
        fs::write(&archive.path, &flipped).unwrap();
        assert!(archive.verify().is_err());
        fs::write(&archive.path, &whole).unwrap();
        assert!(archive.verify().is_ok());
        fs::remove_file(archive.checksum_path()).unwrap();
        assert!(archive.verify().is_err());
    }

    #[test]
    fn the_checksum_says_whether_its_file_is_missing_or_does_not_match() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive_in(dir.path(), ArchiveFormat::Gzip);
        let summary = archive
            .write_from(
                &mut &tar_stream(&[("var/lib/mysql/a", "b")])[..],
                &AtomicU64::new(0),
            )
            .unwrap();
        assert!(matches!(archive.checksum().unwrap(), Checksum::Matches(s) if s == summary.sha256));
        fs::write(archive.checksum_path(), format!("{}  x\n", "0".repeat(64))).unwrap();
        assert!(matches!(
            archive.checksum().unwrap(),
            Checksum::Mismatch { actual, .. } if actual == summary.sha256
        ));
        fs::remove_file(archive.checksum_path()).unwrap();
        assert!(matches!(archive.checksum().unwrap(), Checksum::Missing(_)));
    }

    #[test]
    fn a_dump_reads_back_byte_for_byte_in_both_formats_with_its_tables_counted() {
        for format in [ArchiveFormat::Zstd, ArchiveFormat::Gzip] {
            let dir = tempfile::tempdir().unwrap();
            let archive = dump_in(dir.path(), format);
            assert!(
                archive
                    .file_name()
                    .starts_with("rancher-db-backup-v1-T.sql."),
                "{}",
                archive.file_name()
            );
            let summary = archive
                .write_from(&mut DUMP.as_bytes(), &AtomicU64::new(0))
                .unwrap();
            assert_eq!(
                (summary.entries, summary.content_bytes),
                (1, DUMP.len() as u64)
            );
            assert_eq!(archive.verify().unwrap(), summary.sha256);
            let mut back = Vec::new();
            archive.read_into(&mut back, &AtomicU64::new(0)).unwrap();
            assert_eq!(back, DUMP.as_bytes());
            assert!(archive.describe(&summary).contains("1 tables"));
            assert_eq!(Archive::at(archive.path.clone()), Some(archive));
        }
    }

    #[test]
    fn a_dump_cut_short_leaves_no_archive() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dump_in(dir.path(), ArchiveFormat::Zstd);
        let cut = &DUMP.as_bytes()[..DUMP.find("-- Dump completed").unwrap()];
        let error = archive
            .write_from(&mut &cut[..], &AtomicU64::new(0))
            .unwrap_err();
        assert!(format!("{error:#}").contains("cut short"), "{error:#}");
        assert!(!archive.path.exists() && !archive.checksum_path().exists());
    }

    #[test]
    fn only_a_backup_name_is_a_backup_archive_with_its_content_and_format() {
        let named = |name: &str| Archive::backup_named(PathBuf::from("/b").join(name));
        for (name, content, format) in [
            (
                "rancher-data-backup-v1-T.tar.zst",
                ArchiveContent::DataVolumes,
                ArchiveFormat::Zstd,
            ),
            (
                "rancher-data-backup-v1-T.tar.gz",
                ArchiveContent::DataVolumes,
                ArchiveFormat::Gzip,
            ),
            (
                "rancher-db-backup-v1-T.sql.zst",
                ArchiveContent::DatabaseDump,
                ArchiveFormat::Zstd,
            ),
            (
                "rancher-db-backup-v1-T.sql.gz",
                ArchiveContent::DatabaseDump,
                ArchiveFormat::Gzip,
            ),
        ] {
            let archive = named(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(
                (archive.content, archive.format),
                (content, format),
                "{name}"
            );
            assert_eq!(ArchiveContent::of_name(name), content, "{name}");
        }
        for other in [
            "rancher-data-backup-v1-T.tar.zst.sha256",
            "rancher-data-backup-v1-T.tar.zst.partial",
            "rancher-db-backup-v1-T.tar.zst",
            "rancher-data-backup-v1-T.sql.zst",
            "notes.txt",
        ] {
            assert_eq!(named(other), None, "{other}");
        }
    }
}
