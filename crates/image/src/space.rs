//! Free space on a filesystem and the share of it a node keeps free: the kubelet's
//! `imagefs.available` / `nodefs.available` eviction signals, as a floor that image pulls
//! (here) and the Node's `DiskPressure` condition (in the agent) are checked against.

use std::fmt;
use std::path::Path;

/// How much of a filesystem is kept free: a share of its size (`15%`) or a number of bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MinFree {
    Percent(f64),
    Bytes(u64),
}

impl MinFree {
    /// The bytes kept free on a filesystem of `total` bytes.
    pub fn floor(&self, total: u64) -> u64 {
        match *self {
            MinFree::Percent(p) => ((total as f64) * p / 100.0) as u64,
            MinFree::Bytes(b) => b,
        }
    }

    /// `"15%"` as a share; `None` when `s` is not a percentage (the caller parses quantities).
    pub fn parse_percent(s: &str) -> Option<Result<MinFree, String>> {
        let p = s.strip_suffix('%')?;
        Some(match p.trim().parse::<f64>() {
            Ok(v) if (0.0..=100.0).contains(&v) => Ok(MinFree::Percent(v)),
            _ => Err(format!("{s:?} is not a percentage between 0% and 100%")),
        })
    }
}

impl fmt::Display for MinFree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MinFree::Percent(p) => write!(f, "{p}%"),
            MinFree::Bytes(b) => f.write_str(&crate::cli::human_size(*b)),
        }
    }
}

/// A filesystem's size and the bytes an unprivileged writer may still use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Space {
    pub total: u64,
    pub available: u64,
}

impl Space {
    /// Of the filesystem holding `path`.
    pub fn of(path: &Path) -> std::io::Result<Space> {
        let s = rustix::fs::statvfs(path)?;
        Ok(Space {
            total: s.f_blocks.saturating_mul(s.f_frsize),
            available: s.f_bavail.saturating_mul(s.f_frsize),
        })
    }

    /// Whether fewer than `keep` bytes would be left after writing `more`.
    pub fn short_of(&self, keep: MinFree, more: u64) -> bool {
        self.available < more.saturating_add(keep.floor(self.total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_and_shortfalls() {
        assert_eq!(MinFree::Percent(15.0).floor(1000), 150);
        assert_eq!(MinFree::Bytes(7).floor(1000), 7);
        let s = Space {
            total: 1000,
            available: 200,
        };
        assert!(!s.short_of(MinFree::Percent(15.0), 50));
        assert!(s.short_of(MinFree::Percent(15.0), 51));
        assert!(s.short_of(MinFree::Bytes(201), 0));
        assert_eq!(
            MinFree::parse_percent("15%"),
            Some(Ok(MinFree::Percent(15.0)))
        );
        assert!(matches!(MinFree::parse_percent("150%"), Some(Err(_))));
        assert!(MinFree::parse_percent("1Gi").is_none());
        assert_eq!(MinFree::Percent(12.5).to_string(), "12.5%");
    }

    #[test]
    fn a_real_filesystem_has_a_size() {
        let s = Space::of(Path::new("/")).expect("statvfs /");
        assert!(s.total > 0 && s.available <= s.total);
    }
}
