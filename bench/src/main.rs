//! `baton-bench`: measures a release `baton server` and, in the same run, the etcd peer, and
//! prints one JSON line per figure (`{"bench":"create_p50_ms","clients":8,"value":1.9}`).
//!
//! Layout:
//! - `procs`: starting, measuring and stopping `baton server` and etcd.
//! - `conn`: one kept-open HTTP/1.1 connection (TLS to Baton, plain to etcd).
//! - `load`: the loads (CRUD at a concurrency, paced mutations, watch fan-out).
//! - `peer`: etcd's put through its JSON gateway.
//! - `stats`: percentiles, throughput, and the JSON lines.
//!
//! Only loopback is used; every process started is stopped, also on failure.

mod conn;
mod load;
mod peer;
mod procs;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use crate::procs::{Baton, Etcd};
use crate::stats::{emit, median};

#[derive(Parser)]
#[command(
    name = "baton-bench",
    about = "Benchmarks baton server against an etcd peer; prints JSON lines"
)]
struct Args {
    /// The baton binary (default: `baton` next to this executable).
    #[arg(long)]
    baton: Option<PathBuf>,
    /// The etcd binary for the peer figures.
    #[arg(long, default_value = "etcd")]
    etcd: PathBuf,
    /// Cold starts measured (fresh data dir each).
    #[arg(long, default_value_t = 5)]
    starts: usize,
    /// Operations of each kind per concurrency level (lists: a quarter of it).
    #[arg(long, default_value_t = 2000)]
    ops: usize,
    /// Concurrency levels, each client on its own kept-open connection.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    clients: Vec<usize>,
    /// Paced mutations per second, and for how many seconds.
    #[arg(long, default_value_t = 500)]
    paced_rate: u32,
    #[arg(long, default_value_t = 5)]
    paced_secs: u32,
    /// Watchers on one collection, and the creates they all must see.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    #[arg(long, default_value_t = 500)]
    watch_writes: usize,
    /// Loopback ports for etcd (client, peer).
    #[arg(long, default_value_t = 23790)]
    etcd_client_port: u16,
    #[arg(long, default_value_t = 23800)]
    etcd_peer_port: u16,
}

const IDLE: Duration = Duration::from_secs(2);

fn main() -> Result<()> {
    let args = Args::parse();
    let baton = match &args.baton {
        Some(b) => b.clone(),
        None => std::env::current_exe()
            .context("locating this executable")?
            .with_file_name("baton"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run(&args, &baton))
}

async fn run(args: &Args, binary: &std::path::Path) -> Result<()> {
    // Cold starts, each on a fresh data dir.
    let mut starts = Vec::with_capacity(args.starts);
    for _ in 0..args.starts {
        let server = Baton::start(binary).await?;
        starts.push(server.started_in.as_secs_f64() * 1000.0);
        server.stop().await?;
    }
    emit("start_to_readyz_ms", None, median(&mut starts));

    let server = Baton::start(binary).await?;
    tokio::time::sleep(IDLE).await;
    let baton_idle_rss = server.rss_mb()?;
    emit("idle_rss_mb", None, baton_idle_rss);

    load::prepare_list_namespace(&mut server.connect().await?).await?;
    let mut create_p50_1 = None;
    let mut create_p99_1 = None;
    for &clients in &args.clients {
        for (op, mut samples) in load::crud(&server, clients, args.ops).await? {
            let name = op.name();
            let p50 = samples.percentile_ms(50.0);
            let p99 = samples.percentile_ms(99.0);
            if op == load::Op::Create && clients == 1 {
                create_p50_1 = Some(p50);
                create_p99_1 = Some(p99);
            }
            emit(&format!("{name}_p50_ms"), Some(clients), p50);
            emit(&format!("{name}_p99_ms"), Some(clients), p99);
            emit(
                &format!("{name}_per_sec"),
                Some(clients),
                samples.throughput(),
            );
        }
    }

    let mut paced = load::paced(&server, args.paced_rate, args.paced_secs, 32).await?;
    emit(
        "paced_mutating_target_per_sec",
        None,
        args.paced_rate.into(),
    );
    emit("paced_mutating_per_sec", None, paced.throughput());
    emit("paced_mutating_p50_ms", None, paced.percentile_ms(50.0));
    emit("paced_mutating_p99_ms", None, paced.percentile_ms(99.0));

    let mut fan = load::watch_fan_out(&server, args.watchers, args.watch_writes, 8).await?;
    emit("watch_watchers", None, args.watchers as f64);
    emit("watch_writes", None, args.watch_writes as f64);
    emit(
        "watch_events_expected",
        None,
        (args.watchers * args.watch_writes) as f64,
    );
    emit("watch_events_delivered", None, fan.delivered as f64);
    emit("watch_events_per_sec", None, fan.events_per_sec);
    emit("watch_lag_p50_ms", None, fan.lag.percentile_ms(50.0));
    emit("watch_lag_p99_ms", None, fan.lag.percentile_ms(99.0));

    emit("rss_after_load_mb", None, server.rss_mb()?);
    server.stop().await?;

    // The peer, alone on the machine like Baton was.
    let etcd = Etcd::start(&args.etcd, args.etcd_client_port, args.etcd_peer_port)
        .await
        .with_context(|| format!("starting the etcd peer ({})", args.etcd.display()))?;
    tokio::time::sleep(IDLE).await;
    let etcd_idle_rss = etcd.rss_mb()?;
    let mut puts = peer::etcd_put(&etcd, args.ops).await?;
    etcd.stop().await?;
    let put_p50 = puts.percentile_ms(50.0);
    let put_p99 = puts.percentile_ms(99.0);
    emit("etcd_idle_rss_mb", None, etcd_idle_rss);
    emit("etcd_put_p50_ms", Some(1), put_p50);
    emit("etcd_put_p99_ms", Some(1), put_p99);
    emit("etcd_put_per_sec", Some(1), puts.throughput());
    if let (Some(c50), Some(c99)) = (create_p50_1, create_p99_1)
        && put_p50 > 0.0
        && put_p99 > 0.0
    {
        emit("create_p50_ratio_vs_etcd_put", Some(1), c50 / put_p50);
        emit("create_p99_ratio_vs_etcd_put", Some(1), c99 / put_p99);
    }
    if etcd_idle_rss > 0.0 {
        emit(
            "idle_rss_ratio_vs_etcd",
            None,
            baton_idle_rss / etcd_idle_rss,
        );
    }
    Ok(())
}
