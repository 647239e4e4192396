//! The `baton` binary: flags and wiring only. `baton server` runs the API server on the
//! embedded store or on etcd (`--store`); later subcommands (agent, image, bench) join here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: the Ingress proxy's and the API server's hot paths
/// allocate and free per request and per object (ARCHITECTURE.md, "Process": the figures
/// that chose it, and what it costs in memory).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

// Parsed once at start: the size of the server's flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the control plane: API server, store and controllers, in one process.
    Server(ServerArgs),
    /// Import, list, pull and remove the images of this machine's node.
    Image(ImageArgs),
    /// Stop and remove everything Baton made on this machine (like `kubeadm reset`).
    Reset(ResetArgs),
    /// Move a cluster's state between stores.
    Store(StoreArgs),
    /// The node agent's per-container monitor (started by the agent, not by hand).
    #[command(name = "shim", hide = true)]
    Shim(ShimArgs),
}

#[derive(clap::Args)]
struct ShimArgs {
    #[arg(long)]
    runc_root: PathBuf,
    #[arg(long)]
    bundle: PathBuf,
    #[arg(long)]
    log: PathBuf,
    /// Rotate the log past this many bytes.
    #[arg(long, default_value_t = baton_node::logs::rotate::DEFAULT_MAX_SIZE, value_parser = baton_node::logs::rotate::parse_max_size)]
    log_max_size: u64,
    /// Log files kept, the one written included.
    #[arg(long, default_value_t = baton_node::logs::rotate::DEFAULT_MAX_FILES, value_parser = baton_node::logs::rotate::parse_max_files)]
    log_max_files: u32,
    /// Keep the container's stdin open for attach sessions.
    #[arg(long)]
    stdin: bool,
    /// Close stdin when the first attach session ends.
    #[arg(long)]
    stdin_once: bool,
    /// Run the container on a terminal.
    #[arg(long)]
    tty: bool,
    id: String,
}

#[derive(clap::Args)]
struct ResetArgs {
    /// The server's data dir: its server, containers, mounts and pods are removed.
    #[arg(long, default_value = "/var/lib/baton")]
    data_dir: PathBuf,
    /// The pods' bridge.
    #[arg(long, default_value = "baton0")]
    bridge: String,
    /// The service proxy's nftables table (family ip).
    #[arg(long, default_value = "baton")]
    table: String,
    /// The service CIDR routed to the bridge.
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cidr: baton_traffic::serviceproxy::Ipv4Cidr,
    /// Also delete the data dir (store, certificates, images).
    #[arg(long)]
    remove_data: bool,
}

#[derive(clap::Args)]
struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy the embedded store of a stopped server into etcd (an empty prefix), then start the
    /// server with the same data dir and `--store etcd://…`. resourceVersions change (clients
    /// re-list); objects, uids and the data dir's certificates and token stay.
    Migrate(MigrateArgs),
}

#[derive(clap::Args)]
struct MigrateArgs {
    /// The stopped server's data dir (its `store.redb` is read, not changed).
    #[arg(long)]
    from: PathBuf,
    /// The etcd to copy into: `etcd://HOST:PORT[,HOST:PORT…]`.
    #[arg(long)]
    to: String,
    #[command(flatten)]
    etcd: EtcdArgs,
}

#[derive(clap::Args)]
struct ImageArgs {
    /// The server's data dir (images live in `<data-dir>/images`).
    #[arg(long, default_value = "/var/lib/baton")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: baton_image::cli::ImageCommand,
}

/// How to reach etcd, for `--store etcd://…` (the server) and `--to etcd://…` (migrate).
#[derive(clap::Args)]
struct EtcdArgs {
    /// With an etcd store: the prefix of every etcd key Baton writes.
    #[arg(long, default_value = baton_store::etcd::DEFAULT_PREFIX)]
    etcd_prefix: String,
    /// With an etcd store: the CA of etcd's serving certificate; reaches etcd over TLS.
    #[arg(long)]
    etcd_cafile: Option<PathBuf>,
    /// With an etcd store and `--etcd-cafile`: a client certificate for etcd's
    /// `--client-cert-auth` (with `--etcd-keyfile`).
    #[arg(long)]
    etcd_certfile: Option<PathBuf>,
    /// The key of `--etcd-certfile`.
    #[arg(long)]
    etcd_keyfile: Option<PathBuf>,
}

impl EtcdArgs {
    /// The etcd flags given (each an error without an etcd store: never ignored).
    fn given(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        for (flag, value) in [
            ("--etcd-cafile", &self.etcd_cafile),
            ("--etcd-certfile", &self.etcd_certfile),
            ("--etcd-keyfile", &self.etcd_keyfile),
        ] {
            if value.is_some() {
                given.push(flag);
            }
        }
        if self.etcd_prefix != baton_store::etcd::DEFAULT_PREFIX {
            given.push("--etcd-prefix");
        }
        given
    }

    /// `opts` (the endpoints of an `etcd://` flag) with the prefix and TLS of these flags.
    fn apply(
        &self,
        mut opts: baton_store::EtcdOptions,
    ) -> anyhow::Result<baton_store::EtcdOptions> {
        if !self.etcd_prefix.starts_with('/') {
            anyhow::bail!("--etcd-prefix {:?} must start with /", self.etcd_prefix);
        }
        opts.prefix = self.etcd_prefix.trim_end_matches('/').to_owned();
        if self.etcd_cafile.is_some() || self.etcd_certfile.is_some() || self.etcd_keyfile.is_some()
        {
            if self.etcd_cafile.is_none() {
                anyhow::bail!(
                    "--etcd-certfile and --etcd-keyfile need --etcd-cafile (TLS to etcd)"
                );
            }
            opts.tls = Some(baton_store::EtcdTls {
                ca: self.etcd_cafile.clone(),
                cert: self.etcd_certfile.clone(),
                key: self.etcd_keyfile.clone(),
            });
        }
        Ok(opts)
    }
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Where the store, certificates, token and kubeconfig live (created 0700).
    #[arg(long, default_value = "/var/lib/baton")]
    data_dir: PathBuf,
    /// Address to serve the Kubernetes API on (HTTPS).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Where the cluster's state lives: `embedded` (one file, `<data-dir>/store.redb`) or
    /// `etcd://HOST:PORT[,HOST:PORT…]` (an etcd 3.4+ cluster, reached over its v3 API).
    #[arg(long, default_value = "embedded", value_parser = parse_store_flag)]
    store: StoreFlag,
    #[command(flatten)]
    etcd: EtcdArgs,
    /// With `--store etcd://…`: how often etcd's history is compacted, to the revision seen one
    /// interval before (kube-apiserver's flag and default); `0s`: never (etcd's own
    /// `--auto-compaction-*` may). Watches from compacted revisions get 410 Gone.
    #[arg(long, default_value = "5m", value_parser = parse_duration_flag)]
    etcd_compaction_interval: std::time::Duration,
    /// How far back, in revisions, a watch may resume; older resourceVersions get 410 Gone.
    /// The embedded store keeps this many events in memory (and at most 32 MiB of object
    /// versions); on etcd it bounds how far back etcd is asked to replay.
    #[arg(long, default_value_t = 10_000)]
    watch_history: usize,
    /// Watches served at once; more are refused with 429 TooManyRequests and Retry-After.
    #[arg(long, default_value_t = baton_apiserver::watch::WatchLimits::default().total)]
    max_watches: usize,
    /// Watches served at once to one client (its address and User-Agent); more are refused
    /// with 429 TooManyRequests and Retry-After.
    #[arg(long, default_value_t = baton_apiserver::watch::WatchLimits::default().per_client)]
    max_watches_per_client: usize,
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
    /// How often the HorizontalPodAutoscaler controller reconciles each HPA (Kubernetes'
    /// `--horizontal-pod-autoscaler-sync-period`): `15s`, `500ms`, `1m`.
    #[arg(long, default_value = "15s", value_parser = parse_duration_flag)]
    hpa_sync_period: std::time::Duration,
    /// How long an HPA without `behavior` waits before scaling down (the highest
    /// recommendation of this window wins; Kubernetes'
    /// `--horizontal-pod-autoscaler-downscale-stabilization`).
    #[arg(long, default_value = "5m", value_parser = parse_duration_flag)]
    hpa_downscale_stabilization: std::time::Duration,
    /// Components not to run: `agent` (no real node on this machine), `proxy` (no Service
    /// virtual IPs), `ingress` (no Ingress proxy), `drain` (pods get SIGTERM without waiting
    /// for the proxies to stop routing to them, as with Kubernetes), `dns` (no cluster DNS:
    /// pods get the host's resolvers).
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
    /// Longest wait, in seconds, before a deleted pod's containers get SIGTERM, for every
    /// proxy to confirm it stopped routing to the pod (`--disable drain`: no wait).
    #[arg(long, default_value_t = 10)]
    drain_timeout: u64,
    /// Where the Ingress proxy listens (HTTP). Default: 127.0.0.1:80 when the node agent
    /// runs; with `--disable agent` the Ingress runs only when this is given.
    #[arg(long)]
    ingress_listen: Option<SocketAddr>,
    /// Where the Ingress proxy listens for HTTPS (certificates from the Ingresses' `tls`
    /// Secrets, chosen by SNI; HTTP/2 or HTTP/1.1 by ALPN). Default: 127.0.0.1:443 when the
    /// node agent runs; with `--disable agent` only when this is given.
    #[arg(long)]
    ingress_tls_listen: Option<SocketAddr>,
    /// Log one line per request the Ingress proxies.
    #[arg(long)]
    ingress_access_log: bool,
    /// The cluster domain: Services are `<svc>.<ns>.svc.<domain>`.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// The cluster DNS's address (UDP and TCP port 53), the `nameserver` of pods with
    /// `dnsPolicy: ClusterFirst`. Default: the pod bridge's address (the first address of
    /// `--pod-cidr`) when the node agent runs; with `--disable agent` only when this is given.
    #[arg(long)]
    cluster_dns: Option<std::net::IpAddr>,
    /// The host's resolver configuration: the cluster DNS forwards other names to its
    /// nameservers, and pods with `dnsPolicy: Default` get it.
    #[arg(long, default_value = "/etc/resolv.conf")]
    resolv_conf: PathBuf,
    /// Registries reached over plain HTTP besides loopback ones (host[:port]).
    #[arg(long, value_delimiter = ',')]
    insecure_registry: Vec<String>,
    /// The size (a quantity: 10Mi, 512Ki) past which a container's log file is rotated
    /// (the kubelet's `containerLogMaxSize`).
    #[arg(long, default_value = "10Mi", value_parser = baton_node::logs::rotate::parse_max_size)]
    container_log_max_size: u64,
    /// The log files kept per container run, the one being written included; at least 2
    /// (the kubelet's `containerLogMaxFiles`). A run's logs take at most size × files.
    #[arg(long, default_value_t = baton_node::logs::rotate::DEFAULT_MAX_FILES, value_parser = baton_node::logs::rotate::parse_max_files)]
    container_log_max_files: u32,
    /// What is kept free on the filesystem of `<data-dir>/node` (pods, logs, writable
    /// layers): a percentage or a quantity. Below it the Node reports DiskPressure (the
    /// kubelet's `nodefs.available` hard eviction threshold); ephemeral-storage allocatable
    /// is the filesystem's size less it.
    #[arg(long, default_value = baton_node::disk::NODEFS_DEFAULT, value_parser = baton_node::disk::parse_min_free)]
    node_fs_min_free: baton_image::MinFree,
    /// What is kept free on the filesystem of `<data-dir>/images`: image pulls that would go
    /// below it are refused (ErrImagePull, with a Failed event), and below it the Node
    /// reports DiskPressure (the kubelet's `imagefs.available` threshold).
    #[arg(long, default_value = baton_node::disk::IMAGEFS_DEFAULT, value_parser = baton_node::disk::parse_min_free)]
    image_fs_min_free: baton_image::MinFree,
    /// The most one image may unpack to (bytes of files over all its layers, a quantity):
    /// a pull past it fails with ErrImagePull naming this flag.
    #[arg(long, default_value = "16Gi", value_parser = baton_node::logs::rotate::parse_max_size)]
    image_max_unpacked_size: u64,
    /// The most files, directories and links one image may hold over all its layers.
    #[arg(long, default_value_t = baton_image::UnpackLimits::DEFAULT_MAX_ENTRIES)]
    image_max_entries: u64,
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
                // hickory-server logs every DNS request at info.
                .unwrap_or_else(|_| "info,hickory_server=warn".into()),
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
        Command::Store(StoreArgs {
            command: StoreCommand::Migrate(args),
        }) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(migrate(args))
        }
        Command::Reset(args) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(reset(args))
        }
        Command::Shim(a) => std::process::exit(baton_node::shim::run(
            &a.runc_root,
            &a.bundle,
            &a.log,
            baton_node::logs::rotate::Rotation {
                max_size: a.log_max_size,
                max_files: a.log_max_files,
            },
            &a.id,
            baton_node::shim::Stdio {
                stdin: a.stdin,
                stdin_once: a.stdin_once,
                tty: a.tty,
            },
        )),
    }
}

async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    baton_apiserver::pki::ensure_data_dir(&args.data_dir)
        .with_context(|| format!("preparing data dir {}", args.data_dir.display()))?;
    let store = open_store(&args).await?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let rx_controllers = rx.clone();
    let running = baton_apiserver::start(
        baton_apiserver::Config {
            data_dir: args.data_dir.clone(),
            listen: args.listen,
            watch_limits: baton_apiserver::watch::WatchLimits {
                total: args.max_watches,
                per_client: args.max_watches_per_client,
            },
        },
        store,
        rx,
    )
    .await?;
    tracing::info!(addr = %running.addr, took_ms = started.elapsed().as_millis() as u64, "baton server ready");
    let kubeconfig = kube::config::Kubeconfig::read_from(&running.kubeconfig)
        .context("reading the kubeconfig the server wrote")?;
    let mut client_config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    // The controllers, node agent and proxies are one client to the API server (its per-client
    // watch bound), told apart from clients that send no User-Agent.
    client_config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(concat!("baton-server/", env!("CARGO_PKG_VERSION"))),
    ));
    let client = baton_controllers::client::in_process(client_config)?;
    let sim = baton_controllers::SimOptions {
        nodes: args.simulated_nodes,
        ready_delay: std::time::Duration::from_millis(args.sim_ready_delay_ms),
        cpu: args.sim_node_cpu.clone(),
        memory: args.sim_node_memory.clone(),
        pods: args.sim_node_pods,
        ..Default::default()
    };
    let hpa = baton_controllers::hpa::Options {
        sync_period: args.hpa_sync_period,
        downscale_stabilization: args.hpa_downscale_stabilization,
        ..Default::default()
    };
    let opts = baton_controllers::ControllerOptions { sim, hpa };
    let informers = baton_controllers::run(client.clone(), opts, rx_controllers).await?;
    // Persistent volumes: the provisioner keeps them under the data dir of this machine.
    tokio::spawn(baton_controllers::volumes::run(
        client.clone(),
        informers.clone(),
        baton_controllers::volumes::Options {
            root: args.data_dir.join("volumes"),
            local_node: (!args.disabled("agent")).then(|| args.node_name()),
        },
        tx.subscribe(),
    ));
    // The node agent first: it makes the pod bridge the Service proxy routes the service
    // CIDR to.
    let agent_running = if args.disabled("agent") {
        false
    } else {
        if !is_root() {
            tracing::warn!(
                "not running as root: real containers, Service virtual IPs and the Ingress on port 80 need root; the API, the controllers and simulated nodes (--simulated-nodes N) work without it"
            );
        }
        start_agent(client.clone(), &args, &running).await
    };
    start_dns(&args, agent_running, &informers, tx.subscribe()).await;
    start_traffic(
        client,
        &args,
        agent_running,
        &running.state.metrics,
        tx.subscribe(),
    )
    .await;
    println!("export KUBECONFIG={}", running.kubeconfig.display());
    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = tx.send(true);
    Ok(())
}

impl ServerArgs {
    fn disabled(&self, component: &str) -> bool {
        self.disable.iter().any(|d| d == component)
    }

    /// Where the cluster DNS answers: `--cluster-dns`, else the pod bridge's address when the
    /// node agent runs (pods reach it through their default route; a pod cannot reach the
    /// host's loopback). `None` when no cluster DNS runs.
    fn cluster_dns(&self) -> Option<std::net::IpAddr> {
        if self.disabled("dns") {
            return None;
        }
        match self.cluster_dns {
            Some(ip) => Some(ip),
            None if !self.disabled("agent") => Some(self.pod_cidr.gateway().into()),
            None => None,
        }
    }

    /// This machine's node name: `--node-name`, else its hostname in lower case.
    fn node_name(&self) -> String {
        self.node_name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_lowercase())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "baton-node".into())
        })
    }
}

/// Starts the cluster DNS on `--cluster-dns` port 53 (after the node agent, which makes the
/// bridge whose address it uses by default). One that cannot bind is logged naming the flag;
/// the rest runs on.
async fn start_dns(
    args: &ServerArgs,
    agent_running: bool,
    informers: &baton_controllers::informer::Informers,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let Some(ip) = args.cluster_dns() else {
        return;
    };
    if args.cluster_dns.is_none() && !agent_running {
        return;
    }
    let opts = baton_dns::Options {
        domain: args.cluster_domain.clone(),
        listen: SocketAddr::new(ip, 53),
        upstreams: baton_dns::Upstreams::ResolvConf(args.resolv_conf.clone()),
    };
    match baton_dns::start(
        informers.services.clone(),
        informers.endpoint_slices.clone(),
        opts,
        shutdown,
    )
    .await
    {
        Ok(addr) => {
            tracing::info!(%addr, domain = %args.cluster_domain, "cluster DNS listening")
        }
        Err(e) => tracing::error!(
            "cluster DNS not started: cannot listen on {ip}:53 (--cluster-dns): {e}"
        ),
    }
}

/// Runs the traffic layer: the Service proxy with the node agent (it programs this machine's
/// nftables), the Ingress proxy on `--ingress-listen`. A part that cannot start is logged
/// with what to do; the rest runs on.
async fn start_traffic(
    client: kube::Client,
    args: &ServerArgs,
    agent_running: bool,
    metrics: &baton_apiserver::metrics::Metrics,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let agent = !args.disabled("agent");
    // The Service proxy programs this machine's nftables for the pods of its bridge: it runs
    // with the node agent only.
    let service_proxy = (agent_running && !args.disabled("proxy")).then(|| {
        let pod_cidr = baton_traffic::serviceproxy::Ipv4Cidr {
            addr: args.pod_cidr.addr,
            prefix: args.pod_cidr.prefix,
        };
        baton_traffic::serviceproxy::Options {
            bridge: args.bridge.clone(),
            pod_cidr,
            ..Default::default()
        }
    });
    let listen = match args.ingress_listen {
        Some(a) => Some(a),
        None if agent => Some(SocketAddr::from(([127, 0, 0, 1], 80))),
        None => None,
    };
    let tls_listen = match args.ingress_tls_listen {
        Some(a) => Some(a),
        None if agent => Some(SocketAddr::from(([127, 0, 0, 1], 443))),
        None => None,
    };
    let ingress = listen.filter(|_| !args.disabled("ingress")).map(|listen| {
        baton_traffic::ingress::Options {
            listen,
            tls_listen,
            access_log: args.ingress_access_log,
            ..Default::default()
        }
    });
    let mut opts = baton_traffic::agent::Options {
        holder: args.node_name(),
        service_proxy,
        ingress,
    };
    // A listener that cannot be bound is reported naming its flag; the rest starts without it
    // (no TLS listener, then no Ingress at all).
    loop {
        match baton_traffic::agent::start(client.clone(), opts.clone(), shutdown.clone()).await {
            Ok(r) => {
                if let Some(addr) = r.ingress_addr {
                    tracing::info!(%addr, "Ingress proxy listening");
                }
                if let Some(addr) = r.ingress_tls_addr {
                    tracing::info!(%addr, "Ingress proxy listening for HTTPS");
                }
                // The proxies' figures follow the API server's own on its /metrics.
                if let Some(m) = r.proxy_metrics {
                    metrics.register(Box::new(move || m.render()));
                }
                if let Some(m) = r.ingress_metrics {
                    metrics.register(Box::new(move || m.text()));
                }
                return;
            }
            Err(e) => {
                let tls = matches!(&e, baton_traffic::agent::Error::Ingress(i) if i.is_tls());
                match opts.ingress.as_mut() {
                    Some(i) if tls && i.tls_listen.is_some() => {
                        tracing::error!("Ingress TLS listener not started: {e}");
                        i.tls_listen = None;
                    }
                    Some(_) => {
                        tracing::error!("Ingress not started: {e}");
                        opts.ingress = None;
                    }
                    None => {
                        tracing::error!("traffic layer not started: {e}");
                        return;
                    }
                }
            }
        }
    }
}

/// Runs this machine as a node. A machine that cannot (not root, no runc) still serves the
/// API and simulated nodes: the reason is logged, once.
/// Whether this process runs as root (effective uid 0).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Starts the node agent; false (with the reason logged) when it cannot run here.
async fn start_agent(
    client: kube::Client,
    args: &ServerArgs,
    running: &baton_apiserver::Running,
) -> bool {
    let node_name = args.node_name();
    let token = match std::fs::read_to_string(args.data_dir.join("admin.token")) {
        Ok(t) => t.trim().to_string(),
        Err(e) => {
            tracing::error!(error = %e, "node agent not started: cannot read the admin token");
            return false;
        }
    };
    let _ = running;
    let node_dir = args.data_dir.join("node");
    let image_dir = args.data_dir.join("images");
    let images = match baton_node::images::Store::open(&image_dir, args.insecure_registry.clone()) {
        Ok(baton_node::images::Store(i)) => baton_node::images::Store(
            i.keeping_free(args.image_fs_min_free)
                .with_unpack_limits(baton_image::UnpackLimits {
                    max_bytes: args.image_max_unpacked_size,
                    max_entries: args.image_max_entries,
                }),
        ),
        Err(e) => {
            tracing::error!(error = %e, "node agent not started: cannot open the image store");
            return false;
        }
    };
    let opts = baton_node::AgentOptions {
        data_dir: node_dir.clone(),
        node_name,
        node_ip: std::net::Ipv4Addr::LOCALHOST,
        pod_cidr: args.pod_cidr,
        bridge: args.bridge.clone(),
        kubelet_listen: args.kubelet_listen,
        token,
        drain_timeout: (!args.disabled("drain"))
            .then(|| std::time::Duration::from_secs(args.drain_timeout)),
        dns: baton_node::dns::DnsOptions {
            cluster_dns: args.cluster_dns(),
            cluster_domain: args.cluster_domain.clone(),
            resolv_conf: args.resolv_conf.clone(),
        },
        disks: baton_node::disk::Disks::new(
            node_dir.clone(),
            args.node_fs_min_free,
            image_dir,
            args.image_fs_min_free,
        ),
    };
    let host = std::sync::Arc::new(baton_node::host::LinuxHost {
        runc_root: opts.data_dir.join("runc"),
        log_rotation: baton_node::logs::rotate::Rotation {
            max_size: args.container_log_max_size,
            max_files: args.container_log_max_files,
        },
    });
    match baton_node::start(client, host, std::sync::Arc::new(images), opts).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, "node agent not started (run as root with runc installed, or pass --disable agent)");
            false
        }
    }
}

/// `baton reset`: the node's part (server, containers, mounts, cgroups, pod networks, bridge)
/// and the service proxy's (nftables table, service CIDR route), one printed line per thing
/// removed.
async fn reset(args: ResetArgs) -> anyhow::Result<()> {
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    let opts = baton_node::reset::ResetOptions {
        data_dir: args.data_dir.clone(),
        bridge: args.bridge.clone(),
        remove_data: args.remove_data,
    };
    // The server first: it would re-create what goes next. The route before the bridge,
    // which would take it along unsaid.
    let stopped = baton_node::reset::stop_servers(&args.data_dir).await;
    removed.extend(stopped.removed);
    failed.extend(stopped.failed);
    match baton_traffic::serviceproxy::remove(&args.table).await {
        Ok(true) => removed.push(format!("nftables table ip {}", args.table)),
        Ok(false) => {}
        Err(e) => failed.push(format!("nftables table ip {}: {e}", args.table)),
    }
    match baton_traffic::serviceproxy::nft::remove_route(&args.bridge, args.service_cidr).await {
        Ok(true) => removed.push(format!("route {} dev {}", args.service_cidr, args.bridge)),
        Ok(false) => {}
        Err(e) => failed.push(format!("route {}: {e}", args.service_cidr)),
    }
    let report = baton_node::reset::reset(&opts).await;
    removed.extend(report.removed);
    failed.extend(report.failed);
    for line in &removed {
        println!("removed {line}");
    }
    if removed.is_empty() && failed.is_empty() {
        println!(
            "nothing to remove: no trace of Baton for {} and bridge {}",
            args.data_dir.display(),
            args.bridge
        );
    }
    if !failed.is_empty() {
        for line in &failed {
            eprintln!("could not remove {line}");
        }
        anyhow::bail!("{} thing(s) could not be removed", failed.len());
    }
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

/// A duration flag: `15s`, `500ms`, `1m`, `1h` or bare milliseconds.
/// `--store`: the embedded store or an etcd cluster.
#[derive(Debug, Clone)]
enum StoreFlag {
    Embedded,
    Etcd(baton_store::EtcdOptions),
}

fn parse_store_flag(s: &str) -> Result<StoreFlag, String> {
    if s == "embedded" {
        return Ok(StoreFlag::Embedded);
    }
    baton_store::EtcdOptions::from_url(s)
        .map(StoreFlag::Etcd)
        .map_err(|e| format!("{e}; or `embedded`"))
}

/// The store `--store` and the `--etcd-*` flags name. An `--etcd-*` flag without an etcd store
/// is an error, not ignored.
async fn open_store(args: &ServerArgs) -> anyhow::Result<Arc<dyn baton_store::Store>> {
    match &args.store {
        StoreFlag::Embedded => {
            let mut etcd_only = args.etcd.given();
            if args.etcd_compaction_interval != baton_store::etcd::DEFAULT_COMPACTION_INTERVAL {
                etcd_only.push("--etcd-compaction-interval");
            }
            if !etcd_only.is_empty() {
                anyhow::bail!(
                    "{} only apply with --store etcd://HOST:PORT",
                    etcd_only.join(", ")
                );
            }
            Ok(Arc::new(open_embedded(&args.data_dir, args.watch_history)?))
        }
        StoreFlag::Etcd(opts) => {
            let mut opts = args.etcd.apply(opts.clone())?;
            opts.history = args.watch_history as u64;
            opts.compaction_interval =
                (!args.etcd_compaction_interval.is_zero()).then_some(args.etcd_compaction_interval);
            let store = baton_store::EtcdStore::connect(opts)
                .await
                .context("opening the etcd store")?;
            Ok(Arc::new(store))
        }
    }
}

fn open_embedded(
    data_dir: &std::path::Path,
    history: usize,
) -> anyhow::Result<baton_store::EmbeddedStore> {
    let db = data_dir.join("store.redb");
    baton_store::EmbeddedStore::open(
        &db,
        baton_store::EmbeddedOptions {
            history,
            ..Default::default()
        },
    )
    .with_context(|| format!("opening the store {}", db.display()))
}

/// `baton store migrate`: the embedded store of a stopped server copied into etcd.
async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let StoreFlag::Etcd(opts) = parse_store_flag(&args.to).map_err(anyhow::Error::msg)? else {
        anyhow::bail!(
            "--to must be etcd://HOST:PORT[,HOST:PORT…] (the embedded store is the source)"
        );
    };
    let db = args.from.join("store.redb");
    if !db.is_file() {
        anyhow::bail!(
            "{} has no embedded store ({} is not a file)",
            args.from.display(),
            db.display()
        );
    }
    let from = open_embedded(&args.from, 1).context("the server using it must be stopped first")?;
    let mut opts = args.etcd.apply(opts)?;
    opts.compaction_interval = None;
    let prefix = opts.prefix.clone();
    let to = baton_store::EtcdStore::connect(opts)
        .await
        .context("opening the etcd store")?;
    let copied = match baton_store::migrate::copy(&from, &to, "/").await {
        Err(baton_store::StoreError::AlreadyExists { key }) => anyhow::bail!(
            "etcd already holds {key} under prefix {prefix}: migrate copies into an empty prefix only (choose another --etcd-prefix, or delete the keys there first)"
        ),
        other => other.context("copying the store")?,
    };
    println!(
        "copied {copied} keys from {} to {} under prefix {prefix}; start the server with: baton server --data-dir {} --store {}{}",
        db.display(),
        args.to,
        args.from.display(),
        args.to,
        if prefix == baton_store::etcd::DEFAULT_PREFIX {
            String::new()
        } else {
            format!(" --etcd-prefix {prefix}")
        }
    );
    Ok(())
}

fn parse_duration_flag(s: &str) -> Result<std::time::Duration, String> {
    baton_controllers::simnode::parse_duration(s)
        .ok_or_else(|| format!("{s:?} is not a duration (15s, 500ms, 1m)"))
}
