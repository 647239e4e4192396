//! `baton-loadcheck`: a bounded HTTP/1.1 load client that counts every failed request, for the
//! end-to-end tests that must show zero failures while a Deployment rolls (issue 10, "Must
//! hold" 2), and for anyone checking a proxy by hand.
//!
//! ```text
//! baton-loadcheck --url http://10.96.0.10:9090/ [--host rolling-update-test.traefik.io]
//!     --requests 20000 --max-seconds 120 --concurrency 8 --mode mixed|keepalive|new
//!     [--rate 200/s] [--stop-file PATH] [--out summary.json] [--no-stale-retry]
//! ```
//!
//! It stops at the request count, at `--max-seconds`, when the stop file appears, or on
//! SIGTERM/SIGINT, whichever comes first, and always prints one JSON summary on stdout (and
//! writes it to `--out`, atomically): totals, 2xx, non-2xx by status, connect errors, other
//! errors by kind (with the first messages and their times), the tally of 2xx bodies and the
//! ordered body transitions (v1 → v2 during a rollout, v2 → v1 after an undo), per-mode counts,
//! and p50/p99 latency. Requests still in flight at a stop get `--grace-ms` to finish; any
//! abandoned then are reported as `abandoned_in_flight`, never counted as answers or failures.
//! Exit code 0 whenever it ran (the test judges the numbers), 2 on bad arguments.
//!
//! `mixed` gives half of the workers and half of the requests to kept-alive connections and
//! half to a new TCP connection per request (`Connection: close`); the halves are separate
//! budgets, so the faster kept-alive side cannot take the other side's share.
//!
//! HTTP/1.1 is written by hand on tokio's `TcpStream` (`loadcheck/http.rs`): status line,
//! headers, `Content-Length`, chunked and close-delimited bodies. A client library is not used
//! because hyper-util's pooled client resends some failed requests on its own, which would hide
//! exactly the failures this tool exists to count.
//!
//! ## The one resend, and why it exists
//! A server may close an idle kept-alive connection at any moment (idle timeout, a proxy
//! draining before it stops); a request written at that moment fails before any byte of a
//! response comes back, and the client cannot know the server never saw it. RFC 9110 §9.2.2
//! lets a client resend an idempotent request in that case, and every real client does: Go's
//! `net/http` transport (for a reused connection where nothing was read), browsers, curl. So,
//! like them, a GET sent on a **reused** keep-alive connection that fails before the first byte
//! of its response is resent **once** on a new connection. It is counted apart as
//! `stale_retries` (with samples), and if the resend fails too the request counts as failed.
//! Never resent: requests on a new connection (all of `--mode new`, and the first request of
//! each kept-alive connection), timeouts, and anything after part of a response arrived.
//! Without this rule the tool would count as failures what no user would ever see, so the
//! zero-failure test would be judging the client, not the proxy. `--no-stale-retry` switches
//! it off to see the raw races. Likewise, before reusing an idle connection the client looks
//! whether the server has already closed it (as Go's per-connection reader notices) and opens
//! a new one instead (`idle_reconnects`, not a failure); `Connection: close` from the server
//! is honoured.

#[path = "../loadcheck/mod.rs"]
mod loadcheck;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use loadcheck::http::parse_url;
use loadcheck::run::{Config, Mode, run};

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Mixed,
    Keepalive,
    New,
}

#[derive(Parser)]
#[command(
    name = "baton-loadcheck",
    about = "Bounded HTTP/1.1 load that counts every failed request; prints a JSON summary"
)]
struct Args {
    /// Target, http://host[:port]/path (connects to this address).
    #[arg(long)]
    url: String,
    /// Host header (default: the URL's host[:port]).
    #[arg(long)]
    host: Option<String>,
    /// Requests to send in all (in mixed mode, half each way).
    #[arg(long, default_value_t = 20000)]
    requests: u64,
    /// Stop after this many seconds even if requests remain.
    #[arg(long, default_value_t = 120.0)]
    max_seconds: f64,
    /// Workers, each with at most one request in flight.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// keepalive: reused HTTP/1.1 connections; new: a new connection per request
    /// (Connection: close); mixed: half the workers and requests each way.
    #[arg(long, value_enum, default_value = "mixed")]
    mode: ModeArg,
    /// Pace requests over all workers, e.g. 200/s or 200 (default: as fast as answered).
    #[arg(long)]
    rate: Option<String>,
    /// Stop when this file exists (checked every 50 ms).
    #[arg(long)]
    stop_file: Option<PathBuf>,
    /// Go on after the stop file appears until this many requests have started.
    #[arg(long, default_value_t = 0)]
    min_requests: u64,
    /// Also write the summary here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Do not resend a request whose reused keep-alive connection failed before any response.
    #[arg(long)]
    no_stale_retry: bool,
    /// TCP connect timeout, ms (counts as a connect error).
    #[arg(long, default_value_t = 2000)]
    connect_timeout_ms: u64,
    /// Whole-response timeout per attempt, ms (counts as an other error).
    #[arg(long, default_value_t = 10000)]
    timeout_ms: u64,
    /// After a stop, how long requests in flight may still finish, ms.
    #[arg(long, default_value_t = 3000)]
    grace_ms: u64,
    /// Body transitions kept in the summary (the first and the last halves).
    #[arg(long, default_value_t = 2000)]
    max_transitions: usize,
}

fn bad(msg: impl std::fmt::Display) -> ! {
    eprintln!("baton-loadcheck: {msg}");
    std::process::exit(2);
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let n = s.trim().strip_suffix("/s").unwrap_or(s.trim());
    match n.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("bad --rate {s:?} (want e.g. 200/s)")),
    }
}

fn main() {
    let args = Args::parse();
    let url = parse_url(&args.url).unwrap_or_else(|e| bad(e));
    if args.concurrency == 0 {
        bad("--concurrency must be at least 1");
    }
    let mode = match args.mode {
        ModeArg::Mixed => Mode::Mixed,
        ModeArg::Keepalive => Mode::KeepAlive,
        ModeArg::New => Mode::New,
    };
    if mode == Mode::Mixed && args.concurrency < 2 {
        bad("--mode mixed needs --concurrency of at least 2 (half of the workers each way)");
    }
    if !(args.max_seconds > 0.0 && args.max_seconds.is_finite()) {
        bad("--max-seconds must be positive");
    }
    let rate = args
        .rate
        .as_deref()
        .map(parse_rate)
        .transpose()
        .unwrap_or_else(|e| bad(e));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| bad(format!("starting the async runtime: {e}")));
    let addr = rt
        .block_on(tokio::net::lookup_host((url.host.as_str(), url.port)))
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| bad(format!("cannot resolve {}", url.host)));
    let cfg = Config {
        url: args.url.clone(),
        addr,
        host_header: args.host.clone().unwrap_or(url.authority.clone()),
        path: url.path.clone(),
        requests: args.requests,
        max_seconds: args.max_seconds,
        concurrency: args.concurrency,
        mode,
        rate,
        stop_file: args.stop_file.clone(),
        min_requests: args.min_requests,
        stale_retry: !args.no_stale_retry,
        connect_timeout: Duration::from_millis(args.connect_timeout_ms),
        timeout: Duration::from_millis(args.timeout_ms),
        grace: Duration::from_millis(args.grace_ms),
        max_transitions: args.max_transitions,
    };
    let summary = rt.block_on(run(cfg));
    let line = format!("{summary}\n");
    let mut status = 0;
    if let Some(out) = &args.out {
        let tmp = out.with_extension("tmp-loadcheck");
        let written = std::fs::write(&tmp, &line).and_then(|()| std::fs::rename(&tmp, out));
        if let Err(e) = written {
            eprintln!("baton-loadcheck: writing {}: {e}", out.display());
            status = 1;
        }
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(line.as_bytes());
    let _ = stdout.flush();
    drop(stdout);
    // The runtime may hold workers abandoned at the grace limit; do not wait for them.
    rt.shutdown_background();
    std::process::exit(status);
}
