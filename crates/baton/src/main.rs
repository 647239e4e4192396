//! The `baton` binary: flags and wiring only. `baton server` runs the API server on the
//! embedded store; later subcommands (agent, image, bench) join here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "baton",
    version,
    about = "A Kubernetes-compatible orchestrator built around the seamless rolling update"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane: API server, store and controllers, in one process.
    Server(ServerArgs),
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Where the store, certificates, token and kubeconfig live (created 0700).
    #[arg(long, default_value = "/var/lib/baton")]
    data_dir: PathBuf,
    /// Address to serve the Kubernetes API on (HTTPS).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Watch history kept in memory, in events; older resourceVersions get 410 Gone.
    #[arg(long, default_value_t = 10_000)]
    watch_history: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Server(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(server(args))
        }
    }
}

async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    baton_apiserver::pki::ensure_data_dir(&args.data_dir)
        .with_context(|| format!("preparing data dir {}", args.data_dir.display()))?;
    let db = args.data_dir.join("store.redb");
    let store = baton_store::EmbeddedStore::open(
        &db,
        baton_store::EmbeddedOptions {
            history: args.watch_history,
        },
    )
    .with_context(|| format!("opening the store {}", db.display()))?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let running = baton_apiserver::start(
        baton_apiserver::Config {
            data_dir: args.data_dir.clone(),
            listen: args.listen,
        },
        Arc::new(store),
        rx,
    )
    .await?;
    tracing::info!(addr = %running.addr, took_ms = started.elapsed().as_millis() as u64, "baton server ready");
    println!("export KUBECONFIG={}", running.kubeconfig.display());
    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = tx.send(true);
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
