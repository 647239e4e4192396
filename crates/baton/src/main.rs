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
    /// Register this many simulated nodes that run pods without containers (kwok-like).
    #[arg(long, default_value_t = 0)]
    simulated_nodes: u32,
    /// Delay, in milliseconds, before a pod on a simulated node becomes Ready.
    #[arg(long, default_value_t = 0)]
    sim_ready_delay_ms: u64,
    /// CPU capacity of each simulated node.
    #[arg(long, default_value = "32")]
    sim_node_cpu: String,
    /// Memory capacity of each simulated node.
    #[arg(long, default_value = "256Gi")]
    sim_node_memory: String,
    /// Pod capacity of each simulated node.
    #[arg(long, default_value_t = 110)]
    sim_node_pods: u32,
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
    let rx_controllers = rx.clone();
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
    let kubeconfig = kube::config::Kubeconfig::read_from(&running.kubeconfig)
        .context("reading the kubeconfig the server wrote")?;
    let client_config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = kube::Client::try_from(client_config)?;
    let sim = baton_controllers::SimOptions {
        nodes: args.simulated_nodes,
        ready_delay: std::time::Duration::from_millis(args.sim_ready_delay_ms),
        cpu: args.sim_node_cpu,
        memory: args.sim_node_memory,
        pods: args.sim_node_pods,
        ..Default::default()
    };
    let opts = baton_controllers::ControllerOptions { sim };
    baton_controllers::run(client, opts, rx_controllers).await?;
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
