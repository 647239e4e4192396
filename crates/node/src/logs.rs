//! Container logs: each run of a container writes its stdout and stderr straight into its own
//! file (`logs/<ns>_<pod>_<uid>/<container>/<n>.log`, n = the restart count), so the output
//! survives an agent restart and `--previous` is the file before the newest. This module
//! picks the file and cuts it the way `kubectl logs` asks (`tailLines`, `limitBytes`).

use std::path::{Path, PathBuf};

/// What `kubectl logs` asked for (the kubelet's query parameters).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogQuery {
    pub follow: bool,
    pub previous: bool,
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<usize>,
}

impl LogQuery {
    pub fn parse(query: &str) -> LogQuery {
        let mut q = LogQuery::default();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let truthy = v.is_empty() || v == "true" || v == "1";
            match k {
                "follow" => q.follow = truthy,
                "previous" => q.previous = truthy,
                "tailLines" => q.tail_lines = v.parse().ok(),
                "limitBytes" => q.limit_bytes = v.parse().ok(),
                _ => {}
            }
        }
        q
    }
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

/// The part of `text` the query wants (before following).
pub fn cut(text: &[u8], q: &LogQuery) -> Vec<u8> {
    let mut start = 0;
    if let Some(n) = q.tail_lines {
        // Count newlines from the end; a last line without one still counts.
        let body = text.strip_suffix(b"\n").unwrap_or(text);
        let mut seen = 0;
        start = 0;
        for (i, b) in body.iter().enumerate().rev() {
            if *b == b'\n' {
                seen += 1;
                if seen == n {
                    start = i + 1;
                    break;
                }
            }
        }
        if n == 0 {
            start = text.len();
        }
    }
    let mut out = text[start..].to_vec();
    if let Some(limit) = q.limit_bytes {
        out.truncate(limit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_and_limit() {
        let text = b"a\nb\nc\n";
        let q = |t: Option<usize>, l: Option<usize>| LogQuery {
            tail_lines: t,
            limit_bytes: l,
            ..Default::default()
        };
        assert_eq!(cut(text, &q(None, None)), b"a\nb\nc\n");
        assert_eq!(cut(text, &q(Some(1), None)), b"c\n");
        assert_eq!(cut(text, &q(Some(2), None)), b"b\nc\n");
        assert_eq!(cut(text, &q(Some(9), None)), b"a\nb\nc\n");
        assert_eq!(cut(text, &q(Some(0), None)), b"");
        assert_eq!(cut(b"a\nb", &q(Some(1), None)), b"b");
        assert_eq!(cut(text, &q(None, Some(3))), b"a\nb");
    }

    #[test]
    fn parses_the_kubelet_query() {
        let q = LogQuery::parse("follow=true&tailLines=5&previous=false&limitBytes=10");
        assert_eq!(
            q,
            LogQuery {
                follow: true,
                previous: false,
                tail_lines: Some(5),
                limit_bytes: Some(10)
            }
        );
    }
}
