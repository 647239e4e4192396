//! Log rotation, the kubelet's `containerLogMaxSize` and `containerLogMaxFiles`
//! (`--container-log-max-size`, `--container-log-max-files`): a run's log `<n>.log` never
//! grows past the size. When the next record would take it past, the file is renamed
//! `<n>.log.<UTC time>` (`20261208-013400.123456789`) and a new `<n>.log` begun; of the
//! rotated files the newest `files - 1` are kept. A container's run thus holds at most
//! `size × files` bytes of log whatever it writes.
//!
//! The kubelet's container log manager looks at the sizes every 10 s, renames a file that
//! reached the size to `<log>.<YYYYMMDD-HHMMSS>`, gzips the older rotated ones and asks the
//! runtime to reopen its log. Here the writer, the container's monitor ([`crate::shim`]),
//! rotates itself ([`LogWriter`]), between two records: a file never ends inside a record and
//! never holds more than the size (a record longer than the size goes alone into its own
//! file). The names carry nanoseconds, since rotations can come faster than one a second;
//! the rotated files are not compressed (the bound is the kubelet's `size × files` all the
//! same, and readers need no gzip).
//!
//! A reader following the log (`kubectl logs -f`) reads its open file to the end, then asks
//! [`successor`] what comes next: the file rotated after it, or the new log. Nothing is
//! appended to a file once it is renamed, so nothing is lost or read twice; only a reader so
//! far behind that its next file was already removed skips what it held.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use baton_api::quantity::Quantity;

/// The kubelet's default `containerLogMaxSize`, 10Mi.
pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;

/// The kubelet's default `containerLogMaxFiles`.
pub const DEFAULT_MAX_FILES: u32 = 5;

/// How a container's log is rotated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// The most bytes a file holds (more than 0): [`parse_max_size`].
    pub max_size: u64,
    /// The files kept, the one being written included (at least 2): [`parse_max_files`].
    pub max_files: u32,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_size: DEFAULT_MAX_SIZE,
            max_files: DEFAULT_MAX_FILES,
        }
    }
}

/// `--container-log-max-size`: a quantity of bytes (`10Mi`, `512Ki`, `1G`), more than zero
/// (a fraction of a byte is a byte). The kubelet takes a negative size to turn rotation off;
/// Baton has no such switch and refuses it.
pub fn parse_max_size(text: &str) -> Result<u64, String> {
    let q = Quantity::parse(text).map_err(|e| format!("not a quantity such as 10Mi: {e}"))?;
    match u64::try_from(q.value()) {
        Ok(bytes) if bytes > 0 => Ok(bytes),
        _ => Err("must be more than 0 bytes".into()),
    }
}

/// `--container-log-max-files`: at least 2, the file being written and one rotated file (the
/// kubelet's rule for `containerLogMaxFiles`).
pub fn parse_max_files(text: &str) -> Result<u32, String> {
    let n: u32 = text
        .parse()
        .map_err(|_| "not a whole number such as 5".to_string())?;
    if n < 2 {
        return Err("must be at least 2: the file being written and one rotated file".into());
    }
    Ok(n)
}

/// The rotated files of the log `log`, oldest first.
pub fn rotated(log: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let prefix = format!("{name}.");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .is_some_and(is_stamp)
        })
        .map(|e| e.path())
        .collect();
    // The fixed-width UTC times sort as they were taken.
    out.sort();
    out
}

/// The suffix of a rotated file's name: `YYYYMMDD-HHMMSS.nnnnnnnnn`.
fn stamp(t: k8s_openapi::jiff::Timestamp) -> String {
    // Nine digits always, a whole second's too (the names must sort as the times).
    let nanos = t.subsec_nanosecond().max(0);
    format!("{}.{nanos:09}", t.strftime("%Y%m%d-%H%M%S"))
}

/// Whether `s` is the time in a rotated file's name ([`stamp`]).
pub(crate) fn is_stamp(s: &str) -> bool {
    s.len() == 25
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b'-',
            15 => b == b'.',
            _ => b.is_ascii_digit(),
        })
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// A container run's log, written record by record and rotated by a [`Rotation`].
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    /// The length of `file`.
    size: u64,
    rotation: Rotation,
}

impl LogWriter {
    /// Opens the log at `path` to append to it (it may hold records already).
    pub fn open(path: &Path, rotation: Rotation) -> std::io::Result<LogWriter> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            rotation,
        })
    }

    /// Appends `records` (whole CRI records, each ending with its newline:
    /// [`super::encode_record`]), rotating first whenever the next record would take the file
    /// past the size. When the rotation fails the rest goes to the current file (the output is
    /// kept; the next write tries again) and the error is returned.
    pub fn write_records(&mut self, records: &[u8]) -> std::io::Result<()> {
        let mut rest = records;
        while !rest.is_empty() {
            let room = usize::try_from(self.rotation.max_size.saturating_sub(self.size))
                .unwrap_or(usize::MAX);
            let fit = if rest.len() <= room {
                rest.len()
            } else {
                rest[..room]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |i| i + 1)
            };
            let take = if fit > 0 {
                fit
            } else if self.size == 0 {
                // One record longer than the size: alone in its file.
                rest.iter()
                    .position(|b| *b == b'\n')
                    .map_or(rest.len(), |i| i + 1)
            } else {
                if let Err(e) = self.rotate() {
                    self.append(rest)?;
                    return Err(e);
                }
                continue;
            };
            self.append(&rest[..take])?;
            rest = &rest[take..];
        }
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Removes the oldest rotated files but `files - 2`, renames the log to
    /// `<log>.<time>` and begins a new one (as the kubelet: the files then are `files - 1`
    /// rotated ones and the new log). A log that cannot be begun anew gets its old name back.
    fn rotate(&mut self) -> std::io::Result<()> {
        let keep = self.rotation.max_files.saturating_sub(2) as usize;
        let old = rotated(&self.path);
        for f in &old[..old.len().saturating_sub(keep)] {
            let _ = std::fs::remove_file(f);
        }
        let mut name = self.path.clone().into_os_string();
        name.push(".");
        name.push(stamp(baton_api::clock::now()));
        let target = PathBuf::from(name);
        std::fs::rename(&self.path, &target)?;
        match open_append(&self.path) {
            Ok(file) => {
                self.file = file;
                self.size = 0;
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::rename(&target, &self.path);
                Err(e)
            }
        }
    }
}

/// For a reader following the log `log`: the file to read after `current` (the metadata of
/// the file it has read to the end), opened; `None` while `current` is still the log (or the
/// next file is not there yet: ask again). Before moving on, the reader reads `current` to
/// its end once more: what the writer appended before the rename. When `current` was
/// removed meanwhile (the reader fell `files - 1` rotations behind), the next is the oldest
/// file kept.
pub fn successor(current: &Metadata, log: &Path) -> Option<File> {
    let id = |m: &Metadata| (m.dev(), m.ino());
    let me = id(current);
    let now = std::fs::metadata(log).ok().map(|m| id(&m));
    if now == Some(me) {
        return None;
    }
    // The log was renamed before this listing (a rename comes before the new log), so the
    // listing holds `current` unless it was removed.
    let mut chain = rotated(log);
    chain.push(log.to_path_buf());
    let ids: Vec<Option<(u64, u64)>> = chain
        .iter()
        .map(|p| std::fs::metadata(p).ok().map(|m| id(&m)))
        .collect();
    let next = ids.iter().position(|i| *i == Some(me)).map_or(0, |i| i + 1);
    let file = File::open(chain.get(next)?).ok()?;
    // Another rotation between the listing and the open would name another file.
    let opened = file.metadata().ok().map(|m| id(&m));
    (opened.is_some() && opened == ids[next]).then_some(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{Decoder, Stream, encode_record, read};
    use std::io::Read;

    fn record(i: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let time = format!("2026-12-08T01:00:00.{i:09}Z");
        encode_record(
            &mut out,
            &time,
            Stream::Stdout,
            false,
            format!("line {i}").as_bytes(),
        );
        out
    }

    /// Records `from..to`, each line's text `line <i>`.
    fn records(from: usize, to: usize) -> Vec<u8> {
        (from..to).flat_map(record).collect()
    }

    /// The lines of a file, decoded.
    fn lines(path: &Path) -> Vec<String> {
        let text = std::fs::read(path).expect("readable");
        let out = read(Decoder::plain(), &text, None);
        String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(String::from)
            .collect()
    }

    fn numbers(lines: &[String]) -> Vec<usize> {
        lines
            .iter()
            .map(|l| l.strip_prefix("line ").expect("a line").parse().expect("n"))
            .collect()
    }

    #[test]
    fn flags_are_read_as_the_kubelet_reads_them() {
        assert_eq!(parse_max_size("10Mi"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_max_size("1k"), Ok(1000));
        assert_eq!(parse_max_size("1500"), Ok(1500));
        // A fraction of a byte is a byte (the quantity's value, rounded up).
        assert_eq!(parse_max_size("100m"), Ok(1));
        for bad in ["0", "-1", "-10Mi"] {
            assert_eq!(
                parse_max_size(bad),
                Err("must be more than 0 bytes".into()),
                "{bad}"
            );
        }
        for bad in ["10MB", "ten", ""] {
            let e = parse_max_size(bad).expect_err(bad);
            assert!(e.starts_with("not a quantity such as 10Mi: "), "{e}");
        }
        assert_eq!(parse_max_files("5"), Ok(5));
        assert_eq!(parse_max_files("2"), Ok(2));
        for bad in ["1", "0"] {
            let e = parse_max_files(bad).expect_err(bad);
            assert!(e.starts_with("must be at least 2"), "{e}");
        }
        assert!(parse_max_files("-3").is_err());
        assert!(parse_max_files("2.5").is_err());
        assert_eq!(
            Rotation::default(),
            Rotation {
                max_size: 10 * 1024 * 1024,
                max_files: 5
            }
        );
    }

    #[test]
    fn a_log_below_the_size_is_not_rotated() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("0.log");
        let all = records(0, 10);
        let rotation = Rotation {
            max_size: all.len() as u64,
            max_files: 2,
        };
        let mut w = LogWriter::open(&log, rotation).expect("open");
        w.write_records(&records(0, 4)).expect("write");
        w.write_records(&records(4, 10)).expect("write");
        assert_eq!(std::fs::read(&log).expect("read"), all);
        assert!(rotated(&log).is_empty());
    }

    #[test]
    fn files_stay_within_the_size_and_the_count_and_records_whole() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("0.log");
        let one = record(0).len() as u64;
        // Room for three and a half records a file.
        let rotation = Rotation {
            max_size: one * 7 / 2,
            max_files: 3,
        };
        let mut w = LogWriter::open(&log, rotation).expect("open");
        // Written in batches of 5 records: a batch is split between files.
        for start in (0..100).step_by(5) {
            w.write_records(&records(start, start + 5)).expect("write");
        }
        let old = rotated(&log);
        assert_eq!(old.len(), 2, "{old:?}");
        let mut kept = Vec::new();
        for f in old.iter().chain([&log]) {
            let name = f.file_name().and_then(|n| n.to_str()).expect("name");
            if f != &log {
                assert!(is_stamp(&name["0.log.".len()..]), "{name}");
            }
            let size = std::fs::metadata(f).expect("file").len();
            assert!(size <= rotation.max_size, "{name}: {size}");
            let text = std::fs::read(f).expect("read");
            // Whole records only: each file's bytes are records and end with one.
            assert!(text.ends_with(b"\n"));
            assert_eq!(lines(f).len() as u64, size / one, "{name}");
            kept.extend(numbers(&lines(f)));
        }
        // The newest lines, in order: 3 + 3 + the current file's (99 is the last).
        assert_eq!(kept.len(), 3 + 3 + (100 % 3));
        let first = kept[0];
        assert_eq!(kept, (first..100).collect::<Vec<_>>());
    }

    #[test]
    fn a_record_longer_than_the_size_is_alone_in_its_file() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("0.log");
        let mut w = LogWriter::open(
            &log,
            Rotation {
                max_size: 10,
                max_files: 5,
            },
        )
        .expect("open");
        w.write_records(&records(0, 3)).expect("write");
        let files: Vec<PathBuf> = rotated(&log).into_iter().chain([log.clone()]).collect();
        assert_eq!(files.len(), 3);
        for (i, f) in files.iter().enumerate() {
            assert_eq!(std::fs::read(f).expect("read"), record(i));
        }
    }

    #[test]
    fn a_reopened_log_counts_what_it_holds() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("0.log");
        let two = records(0, 2);
        std::fs::write(&log, &two).expect("write");
        let rotation = Rotation {
            max_size: two.len() as u64 + 1,
            max_files: 2,
        };
        let mut w = LogWriter::open(&log, rotation).expect("open");
        w.write_records(&record(2)).expect("write");
        assert_eq!(numbers(&lines(&log)), vec![2]);
        let old = rotated(&log);
        assert_eq!(old.len(), 1);
        assert_eq!(numbers(&lines(&old[0])), vec![0, 1]);
    }

    #[test]
    fn rotated_files_are_those_of_the_log_only() {
        let dir = tempfile::tempdir().expect("dir");
        for name in [
            "1.log",
            "1.log.20261208-013400.000000002",
            "1.log.20261208-013400.000000001",
            "10.log.20261208-013400.000000000",
            "1.log.20261208-013400",
            "1.log.tmp",
            "1.log.20261208-013400.000000003.gz",
        ] {
            std::fs::write(dir.path().join(name), "").expect("write");
        }
        let names: Vec<String> = rotated(&dir.path().join("1.log"))
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(String::from))
            .collect();
        assert_eq!(
            names,
            [
                "1.log.20261208-013400.000000001",
                "1.log.20261208-013400.000000002"
            ]
        );
        let t: k8s_openapi::jiff::Timestamp = "2026-12-08T01:34:00.5Z".parse().expect("time");
        assert_eq!(stamp(t), "20261208-013400.500000000");
        let t: k8s_openapi::jiff::Timestamp = "2026-12-08T01:34:00Z".parse().expect("time");
        assert_eq!(stamp(t), "20261208-013400.000000000");
        // The kubelet's runs of a container are unaffected by rotated files.
        let runs: Vec<u32> = crate::logs::runs(dir.path()).iter().map(|r| r.0).collect();
        assert_eq!(runs, vec![1]);
    }

    /// A follower as the kubelet endpoint's: reads its file to the end, then asks for the
    /// successor, reads the old one to its end once more, and goes on.
    struct Follower {
        log: PathBuf,
        file: File,
        next: Option<File>,
        out: Vec<u8>,
    }

    impl Follower {
        fn new(log: &Path) -> Follower {
            Follower {
                log: log.to_path_buf(),
                file: File::open(log).expect("open"),
                next: None,
                out: Vec::new(),
            }
        }

        /// Reads what there is, following rotations.
        fn catch_up(&mut self) {
            loop {
                let mut chunk = Vec::new();
                self.file.read_to_end(&mut chunk).expect("read");
                self.out.extend_from_slice(&chunk);
                if let Some(next) = self.next.take() {
                    self.file = next;
                    continue;
                }
                let meta = self.file.metadata().expect("metadata");
                match successor(&meta, &self.log) {
                    Some(next) => self.next = Some(next),
                    None => return,
                }
            }
        }

        fn numbers(&self) -> Vec<usize> {
            let text = read(Decoder::plain(), &self.out, None);
            let lines: Vec<String> = String::from_utf8(text)
                .expect("utf-8")
                .lines()
                .map(String::from)
                .collect();
            numbers(&lines)
        }
    }

    #[test]
    fn a_follower_reads_every_record_once_across_rotations() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("0.log");
        let one = record(0).len() as u64;
        let rotation = Rotation {
            max_size: one * 4,
            max_files: 3,
        };
        let mut w = LogWriter::open(&log, rotation).expect("open");
        let mut f = Follower::new(&log);
        let mut n = 0;
        // Up to two rotations between two looks: the follower keeps up.
        for batch in [1, 5, 3, 8, 2, 7, 1, 1] {
            w.write_records(&records(n, n + batch)).expect("write");
            n += batch;
            f.catch_up();
        }
        assert_eq!(f.numbers(), (0..n).collect::<Vec<_>>());
        // Nothing new: nothing read.
        f.catch_up();
        assert_eq!(f.numbers().len(), n);
    }

    #[test]
    fn a_follower_left_behind_goes_on_with_the_oldest_file_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("0.log");
        let one = record(0).len() as u64;
        let rotation = Rotation {
            max_size: one * 2,
            max_files: 2,
        };
        let mut w = LogWriter::open(&log, rotation).expect("open");
        w.write_records(&records(0, 1)).expect("write");
        let mut f = Follower::new(&log);
        f.catch_up();
        // Files [0 1] [2 3] [4 5] [6]: the follower's file and the next two are removed.
        w.write_records(&records(1, 7)).expect("write");
        f.catch_up();
        // It still holds its (removed) file: 0 1; then the oldest kept, 4 5, and the log, 6.
        assert_eq!(f.numbers(), vec![0, 1, 4, 5, 6]);
    }
}
