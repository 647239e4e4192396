//! `kubectl-rolling_update`: the `kubectl rolling-update` command removed from kubectl in
//! 1.18, restored as a kubectl plugin. kubectl runs any `kubectl-<name>` executable on PATH
//! for `kubectl <name> …`, so this works with every kubectl version, against Baton or any
//! Kubernetes cluster: it speaks only the public API (through the `kube` client).
//!
//! # Layout
//! - [`args`]: the flags (old defaults) and validation of the command's forms.
//! - [`command`]: one run: resolve old and new controllers, check, print the result.
//! - [`updater`]: the scale-up/scale-down loop, cleanup and rename (kubectl's RollingUpdater).
//! - [`arithmetic`]: surge and availability bounds of each step (pure).
//! - [`objects`]: the next controller's name and labels, annotations, pod readiness (pure).
//! - [`cluster`]: the few API calls, through `kube`.
//! - [`duration`]: Go-style durations (`1m0s`, `200ms`).
//! - [`error`]: every failure, worded as the old command.

mod args;
mod arithmetic;
mod cluster;
mod command;
mod duration;
mod error;
mod objects;
mod updater;

use std::process::ExitCode;

use clap::Parser;

use crate::error::Error;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let mut in_flight = None;
    let result = {
        let run = command::run(&cli, &mut in_flight);
        tokio::select! {
            r = run => r,
            _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
        }
    };
    let Err(err) = result else {
        return ExitCode::SUCCESS;
    };
    if err.is_from_server() {
        eprintln!("{err}");
    } else {
        eprintln!("error: {err}");
    }
    if err.leaves_update_resumable()
        && let Some(f) = in_flight
    {
        eprintln!(
            "The update from {old} to {new} was left in place, nothing serving was deleted. Run the same command again to resume it, or undo it with: kubectl rolling-update {old} {new} --rollback",
            old = f.old,
            new = f.new
        );
    }
    if matches!(err, Error::Interrupted) {
        ExitCode::from(130)
    } else {
        ExitCode::FAILURE
    }
}
