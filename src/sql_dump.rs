//! A `mysqldump` stream, read as it arrives and passed on byte for byte, checked on the way:
//! mysqldump writes `-- Dump completed on DATE` as its very last line, so a dump without it was
//! cut short (mysqldump stopped, the engine's stream broke), whatever the exit status said; and
//! a dump without a single table is of an empty or another database.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, Write};

/// The start of mysqldump's last line (mysqldump 5.5 to 8; `--skip-comments` leaves it out,
/// and the tool never passes it).
const COMPLETED: &[u8] = b"-- Dump completed";
const TABLE: &[u8] = b"CREATE TABLE ";
/// How much of a line's start is kept to tell what it is: an INSERT line can be megabytes.
const LINE_START: usize = 32;

/// What a copied dump held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DumpCounts {
    /// Its `CREATE TABLE` statements.
    pub tables: u64,
    /// Its size, uncompressed.
    pub bytes: u64,
}

/// Copies the dump `source` into `sink`, and fails when it does not end with mysqldump's
/// completion line or creates no table.
pub fn copy_checked(source: &mut dyn BufRead, sink: &mut dyn Write) -> Result<DumpCounts> {
    let mut lines = Lines::default();
    loop {
        let chunk = source.fill_buf().context("reading the dump")?;
        if chunk.is_empty() {
            break;
        }
        lines.scan(chunk);
        sink.write_all(chunk)?;
        let read = chunk.len();
        source.consume(read);
    }
    lines.end_line();
    if !lines.last.starts_with(COMPLETED) {
        bail!(
            "the dump ends without mysqldump's last line (`-- Dump completed on ...`): it was cut short after {} bytes",
            lines.counts.bytes
        );
    }
    if lines.counts.tables == 0 {
        bail!("the dump holds no table: the database is empty, or not the server's");
    }
    Ok(lines.counts)
}

/// The start of each line as it goes by, and the start of the last one that was not empty.
#[derive(Default)]
struct Lines {
    current: Vec<u8>,
    last: Vec<u8>,
    counts: DumpCounts,
}

impl Lines {
    fn scan(&mut self, chunk: &[u8]) {
        self.counts.bytes += chunk.len() as u64;
        let mut pieces = chunk.split(|&b| b == b'\n').peekable();
        while let Some(piece) = pieces.next() {
            let room = LINE_START.saturating_sub(self.current.len());
            self.current
                .extend_from_slice(&piece[..piece.len().min(room)]);
            // Every piece but the last one ended at a newline.
            if pieces.peek().is_some() {
                self.end_line();
            }
        }
    }

    fn end_line(&mut self) {
        if self.current.starts_with(TABLE) {
            self.counts.tables += 1;
        }
        if !self.current.is_empty() {
            std::mem::swap(&mut self.last, &mut self.current);
        }
        self.current.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "-- MySQL dump 10.13  Distrib 5.7.17, for Linux (x86_64)\n\
        --\n\
        /*!40000 DROP DATABASE IF EXISTS `cattle`*/;\n\
        CREATE DATABASE /*!32312 IF NOT EXISTS*/ `cattle`;\n\
        USE `cattle`;\n\
        DROP TABLE IF EXISTS `account`;\n\
        CREATE TABLE `account` (\n  `id` bigint(20) NOT NULL AUTO_INCREMENT\n);\n\
        INSERT INTO `account` VALUES (1),(2);\n\
        CREATE TABLE `setting` (`name` varchar(255));\n\
        \n\
        -- Dump completed on 2026-11-27  0:00:00\n";

    /// Copies `dump` through the check in pieces of `piece` bytes.
    fn copied(dump: &[u8], piece: usize) -> Result<(Vec<u8>, DumpCounts)> {
        let mut source = std::io::BufReader::with_capacity(piece, dump);
        let mut sink = Vec::new();
        let counts = copy_checked(&mut source, &mut sink)?;
        Ok((sink, counts))
    }

    #[test]
    fn a_whole_dump_passes_byte_for_byte_with_its_tables_counted() {
        for piece in [1, 3, 7, 64, 1 << 20] {
            let (copy, counts) = copied(DUMP.as_bytes(), piece).unwrap();
            assert_eq!(copy, DUMP.as_bytes(), "pieces of {piece}");
            assert_eq!(
                counts,
                DumpCounts {
                    tables: 2,
                    bytes: DUMP.len() as u64
                },
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn the_last_line_may_lack_its_newline_or_be_followed_by_empty_ones() {
        let trimmed = DUMP.trim_end();
        assert!(copied(trimmed.as_bytes(), 5).is_ok());
        assert!(copied(format!("{DUMP}\n\n").as_bytes(), 5).is_ok());
    }

    #[test]
    fn a_dump_cut_anywhere_before_its_last_line_fails() {
        let cut_at = DUMP.rfind("-- Dump").unwrap();
        for end in [0, 1, DUMP.len() / 2, cut_at, cut_at + 7] {
            let error = copied(&DUMP.as_bytes()[..end], 4).unwrap_err();
            assert!(
                error.to_string().contains("cut short"),
                "cut at {end}: {error}"
            );
        }
    }

    #[test]
    fn a_dump_of_no_table_fails() {
        let empty =
            "-- MySQL dump 10.13\nCREATE DATABASE `cattle`;\n-- Dump completed on 2026-11-27\n";
        let error = copied(empty.as_bytes(), 8).unwrap_err();
        assert!(error.to_string().contains("no table"), "{error}");
    }

    #[test]
    fn a_long_line_counts_by_its_start_only() {
        let long = format!(
            "CREATE TABLE `t` ({});\nINSERT INTO `t` VALUES ('{}');\n-- Dump completed\n",
            "c int, ".repeat(1000),
            "-- Dump completed ".repeat(1000)
        );
        let (_, counts) = copied(long.as_bytes(), 100).unwrap();
        assert_eq!(counts.tables, 1);
    }
}
