//! `baton image …`: import, list, remove and pull images in a node's store, printed like
//! `crictl images`. The binary embeds [`ImageCommand`] and calls [`run`].

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::auth::RegistryAuth;
use crate::store::{ImageStore, ImageSummary};

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Import the images of a `docker save` or OCI-layout archive (tar, optionally gzipped).
    Import { file: PathBuf },
    /// List images (IMAGE, TAG, IMAGE ID, SIZE).
    #[command(alias = "list", alias = "images")]
    Ls,
    /// Remove an image by reference or id, then delete data no image or container uses.
    #[command(alias = "rmi")]
    Rm { image: String },
    /// Pull an image from its registry.
    Pull {
        image: String,
        /// A registry (host or host:port) to reach over plain http; loopback ones always are.
        #[arg(long = "insecure-registry")]
        insecure_registry: Vec<String>,
        /// Docker config JSON with credentials (the format of a dockerconfigjson pull secret).
        #[arg(long)]
        auth_file: Option<PathBuf>,
    },
}

/// Runs one command against the store at `images_root`, printing to stdout.
pub async fn run(cmd: ImageCommand, images_root: &Path) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    run_to(cmd, images_root, &mut out).await
}

/// [`run`] with the output going to `out`.
pub async fn run_to(
    cmd: ImageCommand,
    images_root: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match cmd {
        ImageCommand::Import { file } => {
            let store = ImageStore::open(images_root)?;
            for img in store.import(&file).await? {
                writeln!(out, "Imported {} ({})", img.reference, img.id)?;
            }
        }
        ImageCommand::Ls => {
            let store = ImageStore::open(images_root)?;
            write!(out, "{}", format_table(&store.list().await?))?;
        }
        ImageCommand::Rm { image } => {
            let store = ImageStore::open(images_root)?;
            for r in store.remove(&image).await? {
                writeln!(out, "Deleted: {r}")?;
            }
            store.gc(&mounted_images(images_root)).await?;
        }
        ImageCommand::Pull {
            image,
            insecure_registry,
            auth_file,
        } => {
            let auth = match auth_file {
                Some(p) => {
                    let bytes =
                        std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
                    RegistryAuth::from_docker_config(&bytes)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
                }
                None => RegistryAuth::anonymous(),
            };
            let store = ImageStore::open_with(images_root, insecure_registry)?;
            let img = store.pull(&image, &auth).await?;
            writeln!(out, "Image is up to date for {}", img.id)?;
        }
    }
    Ok(())
}

/// Image ids whose rootfs is an overlay lowerdir right now (containers of a running agent),
/// which `rm` must not delete from under them.
fn mounted_images(images_root: &Path) -> HashSet<String> {
    let rootfs = images_root.join("rootfs");
    let prefix = format!("{}/", rootfs.display());
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return HashSet::new();
    };
    let mut ids = HashSet::new();
    for opt in mounts.split([' ', ',']) {
        let Some(dirs) = opt.strip_prefix("lowerdir=") else {
            continue;
        };
        for dir in dirs.split(':') {
            if let Some(rest) = dir.strip_prefix(&prefix) {
                let id = rest.split('/').next().unwrap_or(rest);
                ids.insert(format!("sha256:{id}"));
            }
        }
    }
    ids
}

/// `crictl images` layout: tab-separated columns padded to at least 20, 3 spaces apart.
pub fn format_table(images: &[ImageSummary]) -> String {
    let mut rows = vec![[
        "IMAGE".to_string(),
        "TAG".to_string(),
        "IMAGE ID".to_string(),
        "SIZE".to_string(),
    ]];
    for i in images {
        let id = i.id.strip_prefix("sha256:").unwrap_or(&i.id);
        rows.push([
            i.repository.clone(),
            i.tag.clone(),
            id.chars().take(13).collect(),
            human_size(i.size),
        ]);
    }
    let mut widths = [0usize; 3];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.len() + 3).max(20);
        }
    }
    let mut out = String::new();
    for row in rows {
        for (w, cell) in widths.iter().zip(row.iter()) {
            out.push_str(&format!("{cell:<w$}"));
        }
        out.push_str(&row[3]);
        out.push('\n');
    }
    out
}

/// Docker's `units.HumanSize`: decimal units, four significant digits (`2.164MB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    let int_digits = if v < 1.0 {
        1
    } else {
        (v.log10().floor() as usize) + 1
    };
    let decimals = 4usize.saturating_sub(int_digits);
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(2_164_000), "2.164MB");
        assert_eq!(human_size(1_234_567_890), "1.235GB");
    }

    #[test]
    fn table_like_crictl() {
        let rows = vec![ImageSummary {
            reference: "docker.io/library/busybox:latest".into(),
            repository: "docker.io/library/busybox".into(),
            tag: "latest".into(),
            id: format!("sha256:{}", "a416a98b71e2".repeat(6)),
            size: 2_160_000,
            created: None,
        }];
        let t = format_table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            format!("{:<28}{:<20}{:<20}SIZE", "IMAGE", "TAG", "IMAGE ID")
        );
        assert_eq!(
            lines[1],
            format!(
                "{:<28}{:<20}{:<20}2.16MB",
                "docker.io/library/busybox", "latest", "a416a98b71e2a"
            )
        );
    }
}
