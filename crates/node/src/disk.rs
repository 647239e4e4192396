//! The node's disks as the kubelet watches them: `nodefs` (the agent's data dir: pods, logs,
//! writable layers) and `imagefs` (the image store), each with a share kept free — the
//! kubelet's hard eviction signals `nodefs.available<10%` and `imagefs.available<15%` by
//! default. Below either the Node reports `DiskPressure`; image pulls that would go below
//! `imagefs`'s are refused by the image store (`baton_image::ImageStore::keeping_free`).

use std::path::PathBuf;

use baton_api::quantity::Quantity;
use baton_image::{MinFree, Space};

/// The kubelet's default `nodefs.available` hard eviction threshold.
pub const NODEFS_DEFAULT: &str = "10%";
/// The kubelet's default `imagefs.available` hard eviction threshold.
pub const IMAGEFS_DEFAULT: &str = "15%";

/// `--node-fs-min-free` / `--image-fs-min-free`: a percentage (`15%`) or a quantity (`2Gi`).
pub fn parse_min_free(text: &str) -> Result<MinFree, String> {
    if let Some(p) = MinFree::parse_percent(text) {
        return p;
    }
    let q = Quantity::parse(text)
        .map_err(|e| format!("not a percentage such as 10% or a quantity such as 2Gi: {e}"))?;
    u64::try_from(q.value())
        .map(MinFree::Bytes)
        .map_err(|_| "must not be negative".into())
}

/// One watched filesystem: where, and what is kept free on it.
#[derive(Clone, Debug)]
pub struct Watched {
    /// `nodefs` or `imagefs`, as the kubelet names its signals.
    pub signal: &'static str,
    pub path: PathBuf,
    pub keep: MinFree,
}

impl Watched {
    /// The signal's shortfall now, as the kubelet words a threshold it crossed; `None` with
    /// room to spare. A filesystem that cannot be measured is reported, not ignored.
    fn shortfall(&self) -> Option<String> {
        match Space::of(&self.path) {
            Ok(s) if s.short_of(self.keep, 0) => Some(format!(
                "{}.available is {} of {} on {} (below {})",
                self.signal,
                human(s.available),
                human(s.total),
                self.path.display(),
                self.keep
            )),
            Ok(_) => None,
            Err(e) => Some(format!(
                "{}: cannot measure {}: {e}",
                self.signal,
                self.path.display()
            )),
        }
    }
}

fn human(bytes: u64) -> String {
    baton_image::cli::human_size(bytes)
}

/// The node's watched filesystems.
#[derive(Clone, Debug)]
pub struct Disks {
    pub nodefs: Watched,
    pub imagefs: Watched,
}

impl Disks {
    pub fn new(
        node_dir: PathBuf,
        node_keep: MinFree,
        image_dir: PathBuf,
        image_keep: MinFree,
    ) -> Disks {
        Disks {
            nodefs: Watched {
                signal: "nodefs",
                path: node_dir,
                keep: node_keep,
            },
            imagefs: Watched {
                signal: "imagefs",
                path: image_dir,
                keep: image_keep,
            },
        }
    }

    /// What puts the node under disk pressure now (empty: none).
    pub fn pressure(&self) -> Vec<String> {
        [&self.nodefs, &self.imagefs]
            .into_iter()
            .filter_map(Watched::shortfall)
            .collect()
    }

    /// `ephemeral-storage` capacity and allocatable in bytes: the size of `nodefs`, and that
    /// less what is kept free on it (the kubelet subtracts its hard eviction threshold).
    pub fn ephemeral_storage(&self) -> (u64, u64) {
        match Space::of(&self.nodefs.path) {
            Ok(s) => (
                s.total,
                s.total.saturating_sub(self.nodefs.keep.floor(s.total)),
            ),
            Err(_) => (0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_as_percentages_or_quantities() {
        assert_eq!(parse_min_free("10%"), Ok(MinFree::Percent(10.0)));
        assert_eq!(parse_min_free("2Gi"), Ok(MinFree::Bytes(2 << 30)));
        assert_eq!(parse_min_free("500M"), Ok(MinFree::Bytes(500_000_000)));
        assert!(parse_min_free("101%").is_err());
        assert!(parse_min_free("lots").is_err());
        assert!(parse_min_free("-1Gi").is_err());
    }

    #[test]
    fn pressure_names_the_signal_below_its_threshold() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().to_path_buf();
        let roomy = Disks::new(
            p.clone(),
            MinFree::Percent(0.0),
            p.clone(),
            MinFree::Bytes(0),
        );
        assert!(roomy.pressure().is_empty());
        let full = Disks::new(
            p.clone(),
            MinFree::Percent(0.0),
            p.clone(),
            MinFree::Percent(100.0),
        );
        let why = full.pressure();
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].starts_with("imagefs.available is "), "{why:?}");
        assert!(why[0].ends_with("(below 100%)"), "{why:?}");
        let (capacity, allocatable) = full.ephemeral_storage();
        assert!(
            capacity > 0 && allocatable == capacity,
            "{capacity} {allocatable}"
        );
        let gone = Disks::new(
            p.join("missing"),
            MinFree::Percent(0.0),
            p,
            MinFree::Bytes(0),
        );
        assert!(gone.pressure()[0].starts_with("nodefs: cannot measure "));
    }
}
