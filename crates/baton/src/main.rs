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
    /// Import, list, pull and remove the images of this machine's node.
    Image(ImageArgs),
}

#[derive(clap::Args)]
struct ImageArgs {
    /// The server's data dir (images live in `<data-dir>/images`).
    #[arg(long, default_value = "/var/lib/baton")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: baton_image::cli::ImageCommand,
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
    /// Components not to run (`agent`: no real node on this machine).
    #[arg(long, value_delimiter = ',')]
    disable: Vec<String>,
    /// This machine's node name (default: its hostname).
    #[arg(long)]
    node_name: Option<String>,
    /// Pod addresses of this machine's node.
    #[arg(long, default_value = "10.244.0.0/24")]
    pod_cidr: baton_node::Cidr,
    /// The Linux bridge pods of this node attach to.
    #[arg(long, default_value = "baton0")]
    bridge: String,
    /// Where the node agent's kubelet endpoints listen (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    kubelet_listen: SocketAddr,
    /// Registries reached over plain HTTP besides loopback ones (host[:port]).
    #[arg(long, value_delimiter = ',')]
    insecure_registry: Vec<String>,
}

/// Errors end the process with one `error: …` line (the causes joined), never a backtrace.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
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
        Command::Image(args) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(baton_image::cli::run(
                args.command,
                &args.data_dir.join("images"),
            ))
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
        cpu: args.sim_node_cpu.clone(),
        memory: args.sim_node_memory.clone(),
        pods: args.sim_node_pods,
        ..Default::default()
    };
    let opts = baton_controllers::ControllerOptions { sim };
    baton_controllers::run(client.clone(), opts, rx_controllers).await?;
    if !args.disable.iter().any(|d| d == "agent") {
        start_agent(client, &args, &running).await;
    }
    println!("export KUBECONFIG={}", running.kubeconfig.display());
    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = tx.send(true);
    Ok(())
}

/// Runs this machine as a node. A machine that cannot (not root, no runc) still serves the
/// API and simulated nodes: the reason is logged, once.
async fn start_agent(client: kube::Client, args: &ServerArgs, running: &baton_apiserver::Running) {
    let node_name = args.node_name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_lowercase())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "baton-node".into())
    });
    let token = match std::fs::read_to_string(args.data_dir.join("admin.token")) {
        Ok(t) => t.trim().to_string(),
        Err(e) => {
            tracing::error!(error = %e, "node agent not started: cannot read the admin token");
            return;
        }
    };
    let _ = running;
    let node_dir = args.data_dir.join("node");
    let images = match baton_node::images::Store::open(
        &args.data_dir.join("images"),
        args.insecure_registry.clone(),
    ) {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = %e, "node agent not started: cannot open the image store");
            return;
        }
    };
    let opts = baton_node::AgentOptions {
        data_dir: node_dir,
        node_name,
        node_ip: std::net::Ipv4Addr::LOCALHOST,
        pod_cidr: args.pod_cidr,
        bridge: args.bridge.clone(),
        kubelet_listen: args.kubelet_listen,
        token,
    };
    let host = std::sync::Arc::new(baton_node::host::LinuxHost {
        runc_root: opts.data_dir.join("runc"),
    });
    if let Err(e) = baton_node::start(client, host, std::sync::Arc::new(images), opts).await {
        tracing::error!(error = %e, "node agent not started (run as root with runc installed, or pass --disable agent)");
    }
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
