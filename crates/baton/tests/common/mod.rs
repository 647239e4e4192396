//! The one way these integration tests start a `baton server`: the real binary with
//! `--disable agent` on a free port and its own data dir, a `kube` client from the
//! kubeconfig it prints, and the process killed (data dir removed) when the handle drops.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// A running `baton server`, killed on drop.
pub struct Server {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts a server with `extra` flags; `name` tells its data dir apart.
pub async fn start_server(name: &str, extra: &[&str]) -> (Server, Client) {
    let dir = std::env::temp_dir().join(format!("baton-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args([
            "server",
            "--disable",
            "agent",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start baton server");
    let stdout = child.stdout.take().expect("server stdout");
    let server = Server { child, dir };
    let mut kubeconfig = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read server stdout");
        if let Some(path) = line.strip_prefix("export KUBECONFIG=") {
            kubeconfig = Some(path.to_string());
            break;
        }
    }
    let path = kubeconfig.expect("server printed its kubeconfig");
    let kc = Kubeconfig::read_from(&path).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig to config");
    let client = Client::try_from(config).expect("client");
    (server, client)
}
