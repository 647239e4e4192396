//! Container logs: each run of a container has its own file
//! (`logs/<ns>_<pod>_<uid>/<container>/<n>.log`, n = the restart count), so the output
//! survives an agent restart and `--previous` is the file before the newest. The container's
//! monitor ([`crate::shim`]) writes it in the CRI log format the kubelet reads
//! ([`encode_record`]): one record per line of output,
//! `<RFC 3339 time, nine digits> <stdout|stderr> <F|P> <bytes>\n`, `P` for a part of a longer line
//! (or a last line without a newline), `F` for the part that ends it. This module picks the
//! file and reads it back the way the kubelet's `ReadLogs` does for `kubectl logs`
//! ([`Decoder`], [`tail_start`], [`read`]); a run's log is rotated by size, the older parts
//! kept as `<n>.log.<time>` ([`rotate`]), and `kubectl logs` reads the current part, as the
//! kubelet does:
//!
//! - the output is the records' contents, a newline after each `F`; `timestamps` puts the
//!   record's time (nine digits, UTC) and a space before each line: on a line's first record
//!   only, not on the `P` records that continue it;
//! - `sinceSeconds` / `sinceTime` skip every record older than the time (each record is
//!   judged by its own time, so a line whose first parts are older loses them);
//! - `tailLines` counts lines from the end: a run of `P` records and the `F` that ends it is
//!   one line (the kubelet counts records, which differs only for lines over [`MAX_RECORD`]).
//!   It is applied first and `since` then filters those lines, as the kubelet seeks to the
//!   tail and filters what it reads, so `--tail=5 --since=1m` gives those of the last five
//!   lines that are newer than a minute (possibly none);
//! - `limitBytes` caps what is written, timestamps included, in follow mode too.
//!
//! A file from a Baton that wrote raw bytes has lines that are not records: each is passed
//! through as it is (no timestamp, never skipped by `since`: its time is unknown) and counts
//! as a line for `tailLines`, so such a file reads as it did. (The kubelet refuses a file whose
//! first line is not a record and drops later lines that are not.)

pub mod rotate;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use baton_remotecommand::LogOptions;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The largest record's content: longer lines are cut into `P` records of this size (as
/// containerd does).
pub const MAX_RECORD: usize = 16 * 1024;

/// Which output a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Appends one record to `out`: `content` (without its newline) written at `time`
/// ([`baton_api::clock::rfc3339_nano`]); `partial` when the line goes on in the next record.
pub fn encode_record(out: &mut Vec<u8>, time: &str, stream: Stream, partial: bool, content: &[u8]) {
    out.extend_from_slice(time.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(content);
    out.push(b'\n');
}

/// The content of one line of a log file: a record's bytes after its time, stream and tag
/// ([`parse_record`]), or the line itself when it is not a record (a file an older Baton
/// wrote raw).
pub fn record_content(line: &str) -> &str {
    let Some(r) = parse_record(line.as_bytes()) else {
        return line;
    };
    // The content is a part of `line` that starts after a space (a character boundary).
    let start = r.content.as_ptr() as usize - line.as_ptr() as usize;
    line.get(start..start + r.content.len()).unwrap_or(line)
}

/// The log files of a container, oldest run first.
pub fn runs(dir: &Path) -> Vec<(u32, PathBuf)> {
    let mut out: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_suffix(".log")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// The files of a container's log directory (`names`) that the start of its run `n` removes:
/// those of the runs before `n - 1`, rotated parts included. The kubelet's container garbage
/// collection keeps one ended container, and its log, besides the running one
/// (`--maximum-dead-containers-per-container`, 1), so that `--previous` has its file.
pub fn expired(names: &[String], n: u32) -> Vec<String> {
    names
        .iter()
        .filter(|name| {
            let Some((run, rest)) = name.split_once(".log") else {
                return false;
            };
            let of_a_run = rest.is_empty() || rest.strip_prefix('.').is_some_and(rotate::is_stamp);
            of_a_run && run.parse::<u32>().is_ok_and(|k| k.saturating_add(1) < n)
        })
        .cloned()
        .collect()
}

/// One line of a log file read as a record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<'a> {
    pub time: Timestamp,
    pub stream: Stream,
    /// A `P` record: the line goes on in the next one.
    pub partial: bool,
    /// What the container wrote: a `P` record's without the file line's newline, an `F`
    /// record's with it (the newline that ended the container's line).
    pub content: &'a [u8],
}

/// Reads one line of a log file (with its `\n`, when it has one) as the kubelet's CRI parser
/// does; `None` when it is not a record. The tag may carry more after a `:`; only a first
/// part `P` makes a record partial.
pub fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    fn field(s: &[u8]) -> Option<(&[u8], &[u8])> {
        let i = s.iter().position(|b| *b == b' ')?;
        Some((&s[..i], &s[i + 1..]))
    }
    let (time, rest) = field(line)?;
    let time: Timestamp = std::str::from_utf8(time).ok()?.parse().ok()?;
    let (stream, rest) = field(rest)?;
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let (tag, content) = field(rest)?;
    let partial = tag.split(|b| *b == b':').next() == Some(b"P".as_slice());
    let content = if partial {
        content.strip_suffix(b"\n").unwrap_or(content)
    } else {
        content
    };
    Some(Record {
        time,
        stream,
        partial,
        content,
    })
}

/// The time before which records are skipped: `sinceSeconds` before `now`, or `sinceTime`,
/// the later of the two (as the kubelet takes them). `Err` is the message of a 400 for a
/// `sinceTime` that is not an RFC 3339 time.
pub fn since(o: &LogOptions, now: Timestamp) -> Result<Option<Timestamp>, String> {
    let mut since = o.since_seconds.map(|s| {
        let back = SignedDuration::from_secs(i64::try_from(s).unwrap_or(i64::MAX));
        now.checked_sub(back).unwrap_or(Timestamp::MIN)
    });
    if let Some(text) = &o.since_time {
        let t: Timestamp = text.parse().map_err(|e| {
            format!("sinceTime: invalid value {text:?}: not an RFC 3339 time ({e})")
        })?;
        if since.is_none_or(|s| t > s) {
            since = Some(t);
        }
    }
    Ok(since)
}

/// Turns the bytes of a log file into what `kubectl logs` prints, as the kubelet's log writer
/// does (see the module docs). Fed in chunks that may end anywhere (follow mode): an
/// unfinished line waits for the rest.
#[derive(Debug)]
pub struct Decoder {
    timestamps: bool,
    since: Option<Timestamp>,
    /// Bytes still allowed (`u64::MAX` without `limitBytes`).
    remain: u64,
    /// The next record starts a line (the previous one ended with a newline).
    line_start: bool,
    /// The start of a line of the file whose newline has not been read yet.
    pending: Vec<u8>,
}

impl Decoder {
    /// A decoder for the options; `Err` as [`since`].
    pub fn new(o: &LogOptions, now: Timestamp) -> Result<Decoder, String> {
        Ok(Decoder {
            timestamps: o.timestamps,
            since: since(o, now)?,
            remain: o.limit_bytes.unwrap_or(u64::MAX),
            ..Decoder::plain()
        })
    }

    /// A decoder with no options: every record's content.
    pub fn plain() -> Decoder {
        Decoder {
            timestamps: false,
            since: None,
            remain: u64::MAX,
            line_start: true,
            pending: Vec::new(),
        }
    }

    /// True once `limitBytes` have been written: nothing more will be.
    pub fn done(&self) -> bool {
        self.remain == 0
    }

    /// Decodes the next bytes of the file, appending the output to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        while !self.done() {
            let Some(i) = chunk.iter().position(|b| *b == b'\n') else {
                self.pending.extend_from_slice(chunk);
                return;
            };
            let (line, rest) = chunk.split_at(i + 1);
            chunk = rest;
            if self.pending.is_empty() {
                self.line(line, out);
            } else {
                let mut whole = std::mem::take(&mut self.pending);
                whole.extend_from_slice(line);
                self.line(&whole, out);
            }
        }
        self.pending.clear();
    }

    /// The end of the file: a last line without a newline is decoded as it is.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let last = std::mem::take(&mut self.pending);
        if !last.is_empty() && !self.done() {
            self.line(&last, out);
        }
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let Some(r) = parse_record(line) else {
            self.line_start = line.ends_with(b"\n");
            self.write(line, out);
            return;
        };
        let prefix = self.timestamps && self.line_start;
        // As the kubelet: an empty record counts as ending its line.
        self.line_start = r.content.last().is_none_or(|b| *b == b'\n');
        if self.since.is_some_and(|s| r.time < s) {
            return;
        }
        if prefix {
            let mut time = baton_api::clock::rfc3339_nano(r.time).into_bytes();
            time.push(b' ');
            self.write(&time, out);
        }
        self.write(r.content, out);
    }

    fn write(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let n = usize::try_from(self.remain).map_or(bytes.len(), |r| r.min(bytes.len()));
        out.extend_from_slice(&bytes[..n]);
        self.remain -= n as u64;
    }
}

/// Where the last `n` lines of the file `text` start (see the module docs for what a line
/// is). A last line without a newline counts; `n = 0` is the end of the last complete file
/// line, so that following from there never starts in the middle of a record.
pub fn tail_start(text: &[u8], n: u64) -> usize {
    if n == 0 {
        return text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    }
    let keep = usize::try_from(n).unwrap_or(usize::MAX);
    let mut starts = VecDeque::new();
    let mut pos = 0;
    let mut line_start = true;
    while pos < text.len() {
        let end = text[pos..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(text.len(), |i| pos + i + 1);
        if line_start {
            if starts.len() == keep {
                starts.pop_front();
            }
            starts.push_back(pos);
        }
        line_start = !parse_record(&text[pos..end]).is_some_and(|r| r.partial);
        pos = end;
    }
    starts.front().copied().unwrap_or(text.len())
}

/// What `kubectl logs` without `--follow` gets from the file `text`: the last `tail` lines
/// (all without) through `d`.
pub fn read(mut d: Decoder, text: &[u8], tail: Option<u64>) -> Vec<u8> {
    let start = match tail {
        Some(0) => return Vec::new(),
        Some(n) => tail_start(text, n),
        None => 0,
    };
    let mut out = Vec::new();
    d.feed(&text[start..], &mut out);
    d.finish(&mut out);
    out
}

/// The end of a log as a termination message shows it (`FallbackToLogsOnError`): its last
/// `lines` lines without timestamps, then the last `bytes` of those, as the kubelet reads them
/// into a ring buffer. `text` is the end of the file; when `cut` it may start inside a record,
/// and that first part line is dropped.
pub fn last_lines(text: &[u8], cut: bool, lines: u64, bytes: usize) -> Vec<u8> {
    let from = if cut {
        text.iter()
            .position(|b| *b == b'\n')
            .map_or(text.len(), |i| i + 1)
    } else {
        0
    };
    let mut out = read(Decoder::plain(), &text[from..], Some(lines));
    out.drain(..out.len().saturating_sub(bytes));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of records, one a second from 10:00:00 (`(partial, content)`).
    fn file(records: &[(bool, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (partial, content)) in records.iter().enumerate() {
            let time = format!("2026-12-07T10:00:{i:02}.000000500Z");
            let stream = if i % 2 == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            encode_record(&mut out, &time, stream, *partial, content.as_bytes());
        }
        out
    }

    fn now() -> Timestamp {
        "2026-12-07T10:01:00Z".parse().expect("time")
    }

    fn read_with(text: &[u8], query: &str) -> String {
        let o = LogOptions::from_query(Some(query)).expect("query");
        let d = Decoder::new(&o, now()).expect("decoder");
        String::from_utf8(read(d, text, o.tail_lines)).expect("utf-8")
    }

    #[test]
    fn records_parse_as_the_kubelet_reads_them() {
        let r = parse_record(b"2026-12-07T21:38:10.586775123Z stderr F a b \n").expect("record");
        assert_eq!(r.stream, Stream::Stderr);
        assert!(!r.partial);
        assert_eq!(r.content, b"a b \n");
        assert_eq!(
            baton_api::clock::rfc3339_nano(r.time),
            "2026-12-07T21:38:10.586775123Z"
        );
        let p = parse_record(b"2026-12-07T21:38:10Z stdout P:x part\n").expect("partial");
        assert!(p.partial);
        assert_eq!(p.content, b"part");
        assert_eq!(record_content("2026-12-07T21:38:10Z stderr F é x"), "é x");
        assert_eq!(record_content("2026-12-07T21:38:10Z stdout P ab\n"), "ab");
        assert_eq!(record_content("runc: exec failed"), "runc: exec failed");
        for raw in [
            "hello world\n",
            "2026-12-07T21:38:10Z stdin F x\n",
            "2026-12-07T21:38:10Z stdout\n",
            "yesterday stdout F x\n",
            "",
        ] {
            assert_eq!(parse_record(raw.as_bytes()), None, "{raw:?}");
        }
    }

    #[test]
    fn partial_records_join_into_lines() {
        let text = file(&[
            (true, "ab"),
            (true, "cd"),
            (false, "ef"),
            (false, ""),
            (true, "gh"),
        ]);
        assert_eq!(read_with(&text, ""), "abcdef\n\ngh");
    }

    #[test]
    fn timestamps_go_before_a_lines_first_record_only() {
        let text = file(&[(true, "ab"), (false, "cd"), (false, "x"), (true, "end")]);
        assert_eq!(
            read_with(&text, "timestamps=true"),
            "2026-12-07T10:00:00.000000500Z abcd\n\
             2026-12-07T10:00:02.000000500Z x\n\
             2026-12-07T10:00:03.000000500Z end"
        );
    }

    #[test]
    fn since_skips_older_records() {
        let text = file(&[(false, "a"), (false, "b"), (true, "c1"), (false, "c2")]);
        // 10:01:00 - 59 s = 10:00:01: the record at 10:00:01.0000005 is newer.
        assert_eq!(read_with(&text, "sinceSeconds=59"), "b\nc1c2\n");
        assert_eq!(
            read_with(&text, "sinceTime=2026-12-07T10%3A00%3A02Z"),
            "c1c2\n"
        );
        // A line's older first part is skipped; its rest has no timestamp (as the kubelet).
        assert_eq!(
            read_with(&text, "sinceTime=2026-12-07T10%3A00%3A03Z&timestamps=true"),
            "c2\n"
        );
        assert_eq!(read_with(&text, "sinceTime=2027-01-01T00%3A00%3A00Z"), "");
        assert_eq!(read_with(&text, "sinceSeconds=3600"), "a\nb\nc1c2\n");
        let o = LogOptions::from_query(Some("sinceTime=soon")).expect("query");
        assert!(Decoder::new(&o, now()).is_err());
    }

    #[test]
    fn tail_counts_lines_then_since_filters_them() {
        let text = file(&[(false, "a"), (true, "b1"), (false, "b2"), (false, "c")]);
        assert_eq!(read_with(&text, "tailLines=1"), "c\n");
        assert_eq!(read_with(&text, "tailLines=2"), "b1b2\nc\n");
        assert_eq!(read_with(&text, "tailLines=3"), "a\nb1b2\nc\n");
        assert_eq!(read_with(&text, "tailLines=99"), "a\nb1b2\nc\n");
        assert_eq!(read_with(&text, "tailLines=0"), "");
        // The tail first: of the last two lines, those newer than 10:00:03.
        assert_eq!(
            read_with(&text, "tailLines=2&sinceTime=2026-12-07T10%3A00%3A02Z"),
            "b2\nc\n"
        );
        assert_eq!(
            read_with(&text, "tailLines=1&sinceTime=2026-12-07T10%3A00%3A00Z"),
            "c\n"
        );
        assert_eq!(
            read_with(&text, "tailLines=1&sinceTime=2026-12-07T11%3A00%3A00Z"),
            ""
        );
        // A last line still being written (P) counts.
        let open = file(&[(false, "a"), (true, "b")]);
        assert_eq!(read_with(&open, "tailLines=1"), "b");
        assert_eq!(tail_start(&open, 0), open.len());
    }

    #[test]
    fn limit_bytes_counts_timestamps_too() {
        let text = file(&[(false, "abc"), (false, "def")]);
        assert_eq!(read_with(&text, "limitBytes=5"), "abc\nd");
        assert_eq!(read_with(&text, "limitBytes=4"), "abc\n");
        assert_eq!(
            read_with(&text, "limitBytes=33&timestamps=true"),
            "2026-12-07T10:00:00.000000500Z ab"
        );
        assert_eq!(read_with(&text, "limitBytes=100&tailLines=1"), "def\n");
    }

    #[test]
    fn raw_files_read_as_they_were_written() {
        let text = b"a\nb\n\nno newline";
        assert_eq!(read_with(text, ""), "a\nb\n\nno newline");
        assert_eq!(read_with(text, "tailLines=2"), "\nno newline");
        assert_eq!(read_with(text, "tailLines=1&timestamps=true"), "no newline");
        assert_eq!(read_with(text, "sinceSeconds=1"), "a\nb\n\nno newline");
        assert_eq!(read_with(text, "limitBytes=3"), "a\nb");
        assert_eq!(read_with(b"a\nb\nc\n", "tailLines=2"), "b\nc\n");
    }

    #[test]
    fn follow_decodes_records_cut_across_chunks() {
        let text = file(&[(false, "one"), (true, "tw"), (false, "o"), (false, "three")]);
        let o = LogOptions::from_query(Some("follow=true&timestamps=true")).expect("query");
        let whole = read(Decoder::new(&o, now()).expect("decoder"), &text, None);
        // Every cut position, and one byte at a time.
        for cut in 0..=text.len() {
            let mut d = Decoder::new(&o, now()).expect("decoder");
            let mut out = Vec::new();
            d.feed(&text[..cut], &mut out);
            d.feed(&text[cut..], &mut out);
            assert_eq!(out, whole, "cut at {cut}");
        }
        let mut d = Decoder::new(&o, now()).expect("decoder");
        let mut out = Vec::new();
        for b in &text {
            d.feed(std::slice::from_ref(b), &mut out);
        }
        assert_eq!(out, whole);
        // Nothing of a record is written before its newline arrives.
        let mut d = Decoder::new(&o, now()).expect("decoder");
        let mut out = Vec::new();
        d.feed(&text[..text.len() - 1], &mut out);
        assert!(!String::from_utf8_lossy(&out).contains("three"));
    }

    #[test]
    fn follow_stops_at_the_limit() {
        let text = file(&[(false, "abc"), (false, "def")]);
        let o = LogOptions::from_query(Some("follow=true&limitBytes=6")).expect("query");
        let mut d = Decoder::new(&o, now()).expect("decoder");
        let mut out = Vec::new();
        let (first, second) = text.split_at(text.len() / 2);
        d.feed(first, &mut out);
        assert!(!d.done());
        d.feed(second, &mut out);
        assert!(d.done());
        assert_eq!(out, b"abc\nde");
    }

    #[test]
    fn termination_messages_take_the_end_of_the_last_lines() {
        let text = file(&[
            (false, "first"),
            (true, "sec"),
            (false, "ond"),
            (false, "third"),
        ]);
        assert_eq!(last_lines(&text, false, 2, 100), b"second\nthird\n");
        assert_eq!(last_lines(&text, false, 80, 8), b"d\nthird\n");
        // The end of a file read from inside the first record.
        assert_eq!(last_lines(&text[5..], true, 80, 100), b"second\nthird\n");
        assert_eq!(last_lines(b"raw\nlog", false, 1, 100), b"log");
    }

    #[test]
    fn runs_are_numbered_files() {
        let dir = tempfile::tempdir().expect("dir");
        for name in ["0.log", "2.log", "10.log", "x.log", "1.txt"] {
            std::fs::write(dir.path().join(name), "").expect("write");
        }
        let n: Vec<u32> = runs(dir.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(n, vec![0, 2, 10]);
    }

    #[test]
    fn a_run_keeps_its_own_log_and_the_previous_runs_only() {
        let names: Vec<String> = [
            "0.log",
            "0.log.20261208-013400.000000001",
            "1.log",
            "1.log.20261208-013401.000000001",
            "2.log",
            "2.log.20261208-013402.000000001",
            "3.log",
            "12.log",
            "x.log",
            "1.log.tmp",
            "notes",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            expired(&names, 3),
            [
                "0.log",
                "0.log.20261208-013400.000000001",
                "1.log",
                "1.log.20261208-013401.000000001"
            ]
        );
        assert!(expired(&names, 1).is_empty());
        assert!(expired(&names, 0).is_empty());
        assert_eq!(
            expired(&names, 2),
            ["0.log", "0.log.20261208-013400.000000001"]
        );
    }
}
