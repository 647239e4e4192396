//! ReplicaSet and ReplicationController controllers (stub).
use kube::Client;
/// Runs the ReplicaSet controller.
pub async fn run_replicasets(_client: Client) {}
/// Runs the ReplicationController manager.
pub async fn run_replication_controllers(_client: Client) {}
