//! The engine's tar stream, read block by block as it arrives: every header is checked (its
//! checksum and its size), and only the entries at or under the kept paths, and the
//! directories above them, go on, byte for byte (their PAX and GNU extension headers with
//! them). What else the engine's copy holds (`docker cp DATA:/var` brings the image's own
//! `/var` as well) stays out of the archive.

use anyhow::{Context, Result, bail};
use std::io::{self, BufRead, Write};

const BLOCK: usize = 512;
/// An extension header (PAX records, a GNU long name) larger than this is no honest engine's.
const MAX_EXTENSION: u64 = 1 << 20;

/// What a copied stream held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TarCounts {
    /// The entries kept (files, directories, links).
    pub entries: u64,
    /// The bytes of file content kept.
    pub content_bytes: u64,
}

/// Copies the tar stream `source` into `sink`, keeping the entries at or under one of `keep`
/// (relative paths, as tar names them) and the directories above them, and ends the copy with
/// tar's end-of-archive blocks. A stream that does not read as tar, that ends before its own
/// end-of-archive blocks, or that holds nothing of `keep[0]`, fails.
pub fn copy_kept(
    source: &mut dyn BufRead,
    sink: &mut dyn Write,
    keep: &[&str],
) -> Result<TarCounts> {
    let mut counts = TarCounts::default();
    let mut extensions = Extensions::default();
    let mut first_kept_seen = false;
    loop {
        let mut header = [0u8; BLOCK];
        source
            .read_exact(&mut header)
            .context("the engine's tar stream ended before its end-of-archive blocks")?;
        if header.iter().all(|&b| b == 0) {
            if !extensions.blocks.is_empty() {
                bail!("the engine's tar stream ends with an extension header and no entry");
            }
            break;
        }
        check_sum(&header)?;
        let kind = header[156];
        let own_size = number(&header[124..136])?;
        if let b'x' | b'L' | b'K' | b'g' = kind {
            let size = own_size;
            if size > MAX_EXTENSION {
                bail!("the engine's tar stream is damaged: an extension header of {size} bytes");
            }
            let mut content = vec![0u8; padded(size)];
            source
                .read_exact(&mut content)
                .context("the engine's tar stream ended inside an extension header")?;
            if kind == b'g' {
                // Global: it applies to every entry after it, kept or not.
                sink.write_all(&header)?;
                sink.write_all(&content)?;
            } else {
                extensions.add(kind, &header, &content[..size as usize], &content)?;
            }
            continue;
        }
        let size = extensions.size.unwrap_or(own_size);
        let path = match extensions.path.take() {
            Some(path) => path,
            None => header_path(&header),
        };
        let path = path.trim_start_matches("./").trim_matches('/');
        let kept = is_kept(path, keep);
        first_kept_seen |= within(keep[0], path);
        // Links, devices, directories and FIFOs carry no data, whatever their size field says.
        let data = if matches!(kind, b'1'..=b'6') { 0 } else { size };
        if kept {
            sink.write_all(&extensions.blocks)?;
            sink.write_all(&header)?;
            counts.entries += 1;
            counts.content_bytes += data;
        }
        pass(
            source,
            if kept { Some(&mut *sink) } else { None },
            padded(data) as u64,
        )
        .context("the engine's tar stream ended inside a file")?;
        extensions = Extensions::default();
    }
    // What follows the end-of-archive blocks is padding to tar's record size.
    io::copy(source, &mut io::sink()).context("reading the end of the engine's tar stream")?;
    sink.write_all(&[0u8; 2 * BLOCK])?;
    if !first_kept_seen {
        bail!(
            "the engine's tar stream holds no /{}: no database was read",
            keep[0]
        );
    }
    Ok(counts)
}

/// The extension headers read for the entry that follows them.
#[derive(Default)]
struct Extensions {
    /// Their blocks, as they came.
    blocks: Vec<u8>,
    /// The entry's path, from a PAX `path` record or a GNU long name.
    path: Option<String>,
    /// The entry's size, from a PAX `size` record (files of 8 GiB and more).
    size: Option<u64>,
}

impl Extensions {
    fn add(&mut self, kind: u8, header: &[u8], body: &[u8], blocks: &[u8]) -> Result<()> {
        self.blocks.extend_from_slice(header);
        self.blocks.extend_from_slice(blocks);
        match kind {
            b'x' => {
                for (key, value) in pax_records(body)? {
                    match key {
                        "path" => self.path = Some(value.to_string()),
                        "size" => {
                            self.size = Some(value.parse().with_context(|| {
                                format!("the engine's tar stream has a PAX size of {value:?}")
                            })?)
                        }
                        _ => {}
                    }
                }
            }
            b'L' => self.path = Some(c_string(body)),
            _ => {}
        }
        Ok(())
    }
}

/// Whether `path` is one of `keep`, under one, or a directory above one.
fn is_kept(path: &str, keep: &[&str]) -> bool {
    !path.is_empty()
        && keep
            .iter()
            .any(|kept| within(kept, path) || within(path, kept))
}

/// Whether `inner` is `outer` or a path under it.
fn within(outer: &str, inner: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Copies `bytes` from `source` into `sink`, or skips them when there is no sink, straight
/// from the reader's buffer.
fn pass(source: &mut dyn BufRead, mut sink: Option<&mut dyn Write>, mut bytes: u64) -> Result<()> {
    while bytes > 0 {
        let buffer = source.fill_buf()?;
        if buffer.is_empty() {
            bail!("{bytes} bytes missing");
        }
        let n = buffer
            .len()
            .min(usize::try_from(bytes).unwrap_or(usize::MAX));
        if let Some(sink) = sink.as_mut() {
            sink.write_all(&buffer[..n])?;
        }
        source.consume(n);
        bytes -= n as u64;
    }
    Ok(())
}

fn padded(size: u64) -> usize {
    size.div_ceil(BLOCK as u64) as usize * BLOCK
}

/// The header's checksum must match: anything else is not tar, or is damaged.
fn check_sum(header: &[u8; BLOCK]) -> Result<()> {
    let stored = number(&header[148..156]).context("the engine's tar stream is not tar")?;
    let field = 148..156;
    let unsigned: u64 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| if field.contains(&i) { 32 } else { u64::from(b) })
        .sum();
    // Some old writers summed signed bytes.
    let signed: i64 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if field.contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
        bail!("the engine's tar stream is damaged (a header's checksum does not match)");
    }
    Ok(())
}

/// A numeric header field: octal digits, or GNU's base-256 for values too large for them.
fn number(field: &[u8]) -> Result<u64> {
    if field[0] & 0x80 != 0 {
        if field[0] != 0x80 || field[1..field.len() - 8].iter().any(|&b| b != 0) {
            bail!("the engine's tar stream has a number out of range");
        }
        return Ok(field[field.len() - 8..]
            .iter()
            .fold(0u64, |n, &b| n << 8 | u64::from(b)));
    }
    let digits = std::str::from_utf8(field)
        .ok()
        .map(|text| text.trim_matches(|c: char| c == '\0' || c == ' '))
        .context("the engine's tar stream is not tar (a number is not text)")?;
    if digits.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(digits, 8)
        .with_context(|| format!("the engine's tar stream is not tar (the number {digits:?})"))
}

/// The entry's path from its header: POSIX ustar splits it into a prefix and a name.
fn header_path(header: &[u8; BLOCK]) -> String {
    let name = c_string(&header[..100]);
    let posix = &header[257..263] == b"ustar\0";
    let prefix = if posix {
        c_string(&header[345..500])
    } else {
        String::new()
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The `LENGTH KEY=VALUE\n` records of a PAX extension header.
fn pax_records(body: &[u8]) -> Result<Vec<(&str, &str)>> {
    let damaged = || anyhow::anyhow!("the engine's tar stream has a damaged PAX header");
    let mut records = Vec::new();
    let mut rest = body;
    while !rest.is_empty() && rest[0] != 0 {
        let space = rest.iter().position(|&b| b == b' ').ok_or_else(damaged)?;
        let length: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|&n| n > space + 1 && n <= rest.len())
            .ok_or_else(damaged)?;
        let record = std::str::from_utf8(&rest[space + 1..length - 1]).map_err(|_| damaged())?;
        let (key, value) = record.split_once('=').ok_or_else(damaged)?;
        records.push((key, value));
        rest = &rest[length..];
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const KEEP: [&str; 3] = ["var/lib/mysql", "var/lib/cattle", "var/log/mysql"];

    /// A tar stream as an engine writes it, of (path, content) files and `dirs`.
    fn stream(dirs: &[&str], files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for dir in dirs {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder.append_data(&mut header, dir, io::empty()).unwrap();
        }
        for (path, content) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(content.len() as u64);
            header.set_mode(0o640);
            header.set_uid(999);
            builder.append_data(&mut header, path, *content).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn copied(input: &[u8]) -> Result<(Vec<u8>, TarCounts)> {
        let mut out = Vec::new();
        let counts = copy_kept(&mut &input[..], &mut out, &KEEP)?;
        Ok((out, counts))
    }

    /// (path, content) of every entry of a tar stream, as the tar crate reads it.
    fn listed(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
        tar::Archive::new(archive)
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let mut content = Vec::new();
                e.read_to_end(&mut content).unwrap();
                (path, content)
            })
            .collect()
    }

    #[test]
    fn only_the_data_paths_and_the_directories_above_them_are_kept() {
        let input = stream(
            &[
                "var/",
                "var/lib/",
                "var/lib/dpkg/",
                "var/lib/mysql/",
                "var/log/",
            ],
            &[
                ("var/lib/dpkg/status", b"image file"),
                ("var/lib/mysql/ibdata1", b"rows"),
                ("var/lib/mysqlx/other", b"not ours"),
                ("var/log/mysql/mysql.log", b"log"),
                ("var/lib/cattle/x", b"y"),
            ],
        );
        let (out, counts) = copied(&input).unwrap();
        let paths: Vec<String> = listed(&out).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            [
                "var/",
                "var/lib/",
                "var/lib/mysql/",
                "var/log/",
                "var/lib/mysql/ibdata1",
                "var/log/mysql/mysql.log",
                "var/lib/cattle/x"
            ]
        );
        assert_eq!(
            counts,
            TarCounts {
                entries: 7,
                content_bytes: 8
            }
        );
        assert!(out.ends_with(&[0u8; 2 * BLOCK]));
    }

    #[test]
    fn a_stream_of_the_data_paths_alone_is_copied_byte_for_byte() {
        let input = stream(
            &["var/lib/mysql/"],
            &[("var/lib/mysql/ibdata1", &[7u8; 3000])],
        );
        let (out, _) = copied(&input).unwrap();
        // The tar crate ends with the same two zero blocks.
        assert_eq!(out, input);
    }

    #[test]
    fn long_names_and_their_extension_headers_go_with_their_entry() {
        let deep = format!("var/lib/mysql/{}/f", "d".repeat(150));
        let other = format!("var/lib/dpkg/{}/g", "e".repeat(150));
        // The tar crate writes GNU long names; docker's Go writer PAX `path` records.
        let mut input = stream(&[], &[(&deep, b"kept"), (&other, b"dropped")]);
        input.truncate(input.len() - 2 * BLOCK);
        input.extend(pax_entry(
            &format!("var/lib/mysql/{}/p", "p".repeat(120)),
            b"pax",
        ));
        input.extend(pax_entry(
            &format!("var/cache/{}/q", "q".repeat(120)),
            b"dropped too",
        ));
        input.extend([0u8; 2 * BLOCK]);
        let (out, counts) = copied(&input).unwrap();
        let entries = listed(&out);
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert_eq!(entries[0], (deep, b"kept".to_vec()));
        assert_eq!(
            entries[1],
            (
                format!("var/lib/mysql/{}/p", "p".repeat(120)),
                b"pax".to_vec()
            )
        );
        assert_eq!(counts.entries, 2);
    }

    /// A file whose path is in a PAX `path` record, as Go's archive/tar (docker cp) writes it.
    fn pax_entry(path: &str, content: &[u8]) -> Vec<u8> {
        let record = {
            let body = format!(" path={path}\n");
            let mut length = body.len() + 1;
            while format!("{length}{body}").len() != length {
                length += 1;
            }
            format!("{length}{body}")
        };
        let mut builder = tar::Builder::new(Vec::new());
        let mut pax = tar::Header::new_ustar();
        pax.set_entry_type(tar::EntryType::XHeader);
        pax.set_size(record.len() as u64);
        builder
            .append_data(&mut pax, "PaxHeaders.0/x", record.as_bytes())
            .unwrap();
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        builder
            .append_data(&mut header, "truncated-name", content)
            .unwrap();
        let mut out = builder.into_inner().unwrap();
        out.truncate(out.len() - 2 * BLOCK);
        out
    }

    #[test]
    fn a_size_in_base_256_or_in_a_pax_record_is_read() {
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[4..].copy_from_slice(&(9u64 << 30).to_be_bytes());
        assert_eq!(number(&field).unwrap(), 9 << 30);
        assert_eq!(number(b"00000001750\0").unwrap(), 1000);
        assert_eq!(
            pax_records(b"19 size=9663676416\n18 path=var/lib/x\n").unwrap(),
            [("size", "9663676416"), ("path", "var/lib/x")]
        );
    }

    #[test]
    fn a_damaged_a_cut_or_an_unfinished_stream_fails() {
        let input = stream(
            &["var/lib/mysql/"],
            &[("var/lib/mysql/ibdata1", &[1u8; 5000])],
        );
        let mut damaged = input.clone();
        damaged[600] ^= 1;
        assert!(format!("{:#}", copied(&damaged).unwrap_err()).contains("checksum"));
        let cut = &input[..2048];
        assert!(format!("{:#}", copied(cut).unwrap_err()).contains("inside a file"));
        let unfinished = &input[..input.len() - 2 * BLOCK];
        assert!(format!("{:#}", copied(unfinished).unwrap_err()).contains("end-of-archive"));
    }

    #[test]
    fn a_stream_without_the_database_fails() {
        let input = stream(&["var/", "var/lib/cattle/"], &[("var/lib/cattle/x", b"y")]);
        let error = copied(&input).unwrap_err();
        assert!(
            format!("{error:#}").contains("no /var/lib/mysql"),
            "{error:#}"
        );
    }
}
