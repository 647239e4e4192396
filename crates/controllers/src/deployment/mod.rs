//! Deployment controller (stub).
use kube::Client;
/// Runs the Deployment controller.
pub async fn run(_client: Client) {}
