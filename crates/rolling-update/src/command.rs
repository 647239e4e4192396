//! One run of `kubectl rolling-update`: resolve the old controller and the new one from the
//! chosen form (`--image`, `-f`, `--rollback`), make the old controller distinguishable
//! (deployment label, next-controller annotation), check what the old command checked, then
//! hand over to the updater and print the result as kubectl did.

use std::io::Read;

use k8s_openapi::api::core::v1::ReplicationController;

use crate::args::{Cli, Output, Request, Source};
use crate::cluster::{Cluster, Target};
use crate::error::Error;
use crate::objects::{self, NEXT_CONTROLLER, ORIGINAL_REPLICAS, name, replicas};
use crate::updater::{self, Cleanup, InFlight, Settings};

/// Runs the command; `in_flight` names the two controllers once an update is under way, so
/// that a failure or Ctrl-C can say how to resume it.
pub async fn run(cli: &Cli, in_flight: &mut Option<InFlight>) -> Result<(), Error> {
    let req = cli.request()?;
    let cluster = Cluster::connect(&Target {
        kubeconfig: cli.kubeconfig.clone(),
        context: cli.context.clone(),
        namespace: cli.namespace.clone(),
    })
    .await?;

    let mut old = match cluster.get_rc(&req.old_name).await {
        Ok(rc) => rc,
        Err(Error::Api(e))
            if crate::error::is_not_found(&e)
                && req.keep_old_name
                && matches!(req.source, Source::Image { .. }) =>
        {
            // Interrupted between deleting the old controller and the rename: finish it.
            // With nothing to rename, the plain "not found" is the clearer message.
            let Some(renaming) = find_renaming(&cluster, &req.old_name).await? else {
                return Err(Error::Api(e));
            };
            println!("Renaming {} to {}", name(&renaming), req.old_name);
            let rc = updater::rename(&cluster, &renaming, &req.old_name, cli.poll_interval).await?;
            return print_result(&rc, "rolling updated", req.output);
        }
        Err(e) => return Err(e),
    };

    let mut filename = String::new();
    let mut replicas_defaulted = false;
    let mut new = match &req.source {
        Source::File(path) => {
            filename = path.clone();
            let mut rc = read_controller(path)?;
            match rc.metadata.namespace.as_deref() {
                Some(ns) if ns != cluster.namespace() => {
                    return Err(Error::NamespaceMismatch {
                        file: ns.to_string(),
                        namespace: cluster.namespace().to_string(),
                    });
                }
                _ => rc.metadata.namespace = Some(cluster.namespace().to_string()),
            }
            replicas_defaulted = rc.spec.as_ref().and_then(|s| s.replicas).is_none();
            rc
        }
        Source::Image {
            image,
            container,
            pull_policy,
        } => {
            let (next, relabelled) = next_for_image(
                &cluster,
                &req,
                old,
                image,
                container.as_deref(),
                pull_policy.as_deref(),
            )
            .await?;
            old = relabelled;
            next
        }
        Source::Rollback => {
            let new_name =
                objects::find_new_name(req.new_name.as_deref(), &old).unwrap_or_default();
            match cluster.get_rc_opt(&new_name).await? {
                Some(rc) if !new_name.is_empty() => rc,
                _ => return Err(Error::NothingToRollBack(new_name)),
            }
        }
    };

    let file_or_new = if filename.is_empty() {
        name(&new).to_string()
    } else {
        filename.clone()
    };
    if req.old_name == name(&new) {
        return Err(Error::SameName {
            file: file_or_new,
            old: req.old_name.clone(),
        });
    }
    if !objects::selectors_differ(&old, &new) {
        return Err(Error::SelectorNotDifferent {
            file: file_or_new,
            old: req.old_name.clone(),
        });
    }
    if replicas_defaulted {
        new.spec.get_or_insert_with(Default::default).replicas = Some(replicas(&old));
    }

    if req.dry_run {
        let (from, to) = match req.output {
            None => (name(&old).to_string(), name(&new).to_string()),
            Some(format) => (render(&old, format)?, render(&new, format)?),
        };
        println!("Rolling from:\n{from}\nTo:\n{to}");
        return Ok(());
    }

    let mut settings = Settings {
        update_period: cli.update_period,
        poll_interval: cli.poll_interval,
        timeout: cli.timeout,
        max_surge: 1,
        max_unavailable: 0,
        cleanup: if req.keep_old_name {
            Cleanup::Rename
        } else {
            Cleanup::Delete
        },
        progress: cli.progress,
    };

    if req.source == Source::Rollback {
        // Swap the controllers: the next one becomes the source, the original the target,
        // back to the size it had before the update.
        let original = old;
        let aborted = new;
        let size = objects::annotation(&original, ORIGINAL_REPLICAS)
            .ok_or_else(|| Error::OriginalReplicasMissing(name(&original).to_string()))?
            .to_string();
        println!("Setting \"{}\" replicas to {}", name(&original), size);
        let source = objects::source_id(&aborted);
        let original = cluster
            .update_rc(name(&original), |rc| {
                objects::set_annotation(rc, objects::SOURCE_ID, &source);
                objects::set_annotation(rc, objects::DESIRED_REPLICAS, &size);
            })
            .await?;
        settings.cleanup = Cleanup::Delete;
        let restored = updater::update(&cluster, aborted, original, &settings, in_flight).await?;
        let restored = cluster
            .update_rc(name(&restored), |rc| {
                objects::remove_annotations(rc, &[NEXT_CONTROLLER, ORIGINAL_REPLICAS])
            })
            .await?;
        return print_result(&restored, "rolled back", req.output);
    }

    let result = updater::update(&cluster, old, new, &settings, in_flight).await?;
    let message = if req.keep_old_name {
        "rolling updated".to_string()
    } else {
        format!("rolling updated to \"{}\"", name(&result))
    };
    let result = cluster.get_rc(name(&result)).await?;
    print_result(&result, &message, req.output)
}

/// `--image`: the next controller (found again when resuming, else derived from the old
/// one), and the old controller marked with the deployment label and the next name.
async fn next_for_image(
    cluster: &Cluster,
    req: &Request,
    old: ReplicationController,
    image: &str,
    container: Option<&str>,
    pull_policy: Option<&str>,
) -> Result<(ReplicationController, ReplicationController), Error> {
    let new_name = objects::find_new_name(req.new_name.as_deref(), &old);
    let existing = match &new_name {
        Some(n) => cluster.get_rc_opt(n).await?,
        None => None,
    };
    let next = match existing {
        Some(existing) => {
            let index = objects::container_index(&existing, container)?;
            let in_progress = objects::image_at(&existing, index)
                .unwrap_or("")
                .to_string();
            if in_progress != image {
                return Err(Error::InProgressImage(in_progress));
            }
            println!(
                "Found existing update in progress ({}), resuming.",
                name(&existing)
            );
            existing
        }
        None => {
            let index = objects::container_index(&old, container)?;
            if objects::image_at(&old, index) == Some(image) && pull_policy.is_none() {
                return Err(Error::SameImage);
            }
            objects::next_for_image(
                &old,
                image,
                container,
                pull_policy,
                new_name.as_deref(),
                &req.deployment_key,
            )?
        }
    };
    // "-orig": with the same image (a pull-policy change) the hashes could otherwise match.
    let old_hash = format!("{}-orig", objects::hash(&old)?);
    let old = if req.dry_run {
        let mut old = old;
        if !objects::selector(&old).contains_key(&req.deployment_key) {
            objects::set_deployment_label(&mut old, &req.deployment_key, &old_hash);
        }
        objects::set_annotation(&mut old, NEXT_CONTROLLER, name(&next));
        old
    } else {
        mark_old(cluster, old, name(&next), &req.deployment_key, &old_hash).await?
    };
    Ok((next, old))
}

/// Records the next controller on the old one and, the first time, puts the deployment
/// label on its template, its pods and then its selector (in that order, so the controller
/// never loses sight of a pod), then deletes stragglers created meanwhile without it.
async fn mark_old(
    cluster: &Cluster,
    old: ReplicationController,
    next_name: &str,
    key: &str,
    value: &str,
) -> Result<ReplicationController, Error> {
    if objects::selector(&old).contains_key(key) {
        return cluster
            .update_rc(name(&old), |rc| {
                objects::set_annotation(rc, NEXT_CONTROLLER, next_name)
            })
            .await;
    }
    let old = cluster
        .update_rc(name(&old), |rc| {
            objects::set_annotation(rc, NEXT_CONTROLLER, next_name);
            let labels = rc
                .spec
                .get_or_insert_with(Default::default)
                .template
                .get_or_insert_with(Default::default)
                .metadata
                .get_or_insert_with(Default::default)
                .labels
                .get_or_insert_with(Default::default);
            labels.insert(key.to_string(), value.to_string());
        })
        .await?;
    let old_selector = objects::selector(&old);
    for pod in cluster.pods(&old_selector).await? {
        if let Some(pod_name) = pod.metadata.name.as_deref() {
            cluster.label_pod(pod_name, key, value).await?;
        }
    }
    let old = cluster
        .update_rc(name(&old), |rc| {
            objects::set_deployment_label(rc, key, value)
        })
        .await?;
    for pod in cluster.pods(&old_selector).await? {
        let labelled = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .is_some_and(|v| v == value);
        if !labelled && let Some(pod_name) = pod.metadata.name.as_deref() {
            cluster.delete_pod(pod_name).await?;
        }
    }
    Ok(old)
}

/// After an interruption between deleting the old controller and the rename: the next
/// controller, found by its source annotation or its `<old>-<hash>` name.
async fn find_renaming(
    cluster: &Cluster,
    old_name: &str,
) -> Result<Option<ReplicationController>, Error> {
    let all = cluster.list_rcs().await?;
    let prefix = format!("{old_name}:");
    if let Some(rc) = all.iter().find(|rc| {
        objects::annotation(rc, objects::SOURCE_ID).is_some_and(|s| s.starts_with(&prefix))
    }) {
        return Ok(Some(rc.clone()));
    }
    let hashed: Vec<&ReplicationController> = all
        .iter()
        .filter(|rc| {
            name(rc)
                .strip_prefix(old_name)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|h| h.len() == 32 && h.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .collect();
    match hashed.as_slice() {
        [one] => Ok(Some((*one).clone())),
        [] => Ok(None),
        _ => Err(Error::NoSourceController {
            namespace: cluster.namespace().to_string(),
            name: old_name.to_string(),
        }),
    }
}

/// Reads `-f FILE` (or stdin for `-`): one ReplicationController, YAML or JSON.
fn read_controller(path: &str) -> Result<ReplicationController, Error> {
    let read_err = |source| Error::ReadFile {
        path: path.to_string(),
        source,
    };
    let text = if path == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(read_err)?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::PathNotFound(path.to_string()),
            _ => read_err(e),
        })?
    };
    let parse_err = |e: &dyn std::fmt::Display| Error::ParseFile {
        path: path.to_string(),
        message: e.to_string(),
    };
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let value: serde_json::Value =
            serde::Deserialize::deserialize(doc).map_err(|e| parse_err(&e))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    let value = match docs.len() {
        0 => return Err(Error::EmptyFile(path.to_string())),
        1 => docs.remove(0),
        _ => return Err(Error::MultipleItems(path.to_string())),
    };
    let field = |k: &str| {
        value
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    if kind != "ReplicationController" || api_version != "v1" {
        // Go's GroupVersionKind: `group/version, Kind=kind`, the core group being empty.
        let group_version = if api_version.contains('/') {
            api_version
        } else {
            format!("/{api_version}")
        };
        return Err(Error::NotAReplicationController {
            path: path.to_string(),
            kind: format!("{group_version}, Kind={kind}"),
        });
    }
    serde_json::from_value(value).map_err(|e| parse_err(&e))
}

/// One object in an `-o` format.
fn render(rc: &ReplicationController, format: Output) -> Result<String, Error> {
    let encode_err = |e: &dyn std::fmt::Display| Error::Encode {
        what: format!("replicationcontroller {}", name(rc)),
        message: e.to_string(),
    };
    match format {
        Output::Json => serde_json::to_string_pretty(rc).map_err(|e| encode_err(&e)),
        Output::Yaml => serde_yaml_ng::to_string(rc)
            .map(|s| s.trim_end().to_string())
            .map_err(|e| encode_err(&e)),
        Output::Name => Ok(format!("replicationcontroller/{}", name(rc))),
    }
}

/// The last line: `replicationcontroller "NAME" rolling updated`, or the object in `-o`.
fn print_result(
    rc: &ReplicationController,
    message: &str,
    output: Option<Output>,
) -> Result<(), Error> {
    match output {
        None => println!("replicationcontroller \"{}\" {message}", name(rc)),
        Some(format) => println!("{}", render(rc, format)?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes TEXT to a fresh file and reads it back as `-f` would.
    fn read(file: &str, text: &str) -> Result<ReplicationController, String> {
        let dir = std::env::temp_dir().join(format!("ru-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(file);
        std::fs::write(&path, text).expect("write");
        let path = path.to_str().expect("utf-8").to_string();
        read_controller(&path).map_err(|e| e.to_string().replace(&path, "FILE"))
    }

    #[test]
    fn reads_one_controller() {
        let rc = read(
            "rc.yaml",
            "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: b}\n",
        )
        .expect("an rc");
        assert_eq!(name(&rc), "b");
    }

    #[test]
    fn file_errors_worded_as_kubectl() {
        let cases = [
            (
                "pod.json",
                r#"{"apiVersion": "v1", "kind": "Pod"}"#,
                "FILE contains a /v1, Kind=Pod not a ReplicationController",
            ),
            (
                "deploy.yaml",
                "apiVersion: apps/v1\nkind: Deployment\n",
                "FILE contains a apps/v1, Kind=Deployment not a ReplicationController",
            ),
            (
                "empty.yaml",
                "",
                "please make sure FILE exists and is not empty",
            ),
            (
                "two.yaml",
                "kind: A\n---\nkind: B\n",
                "FILE specifies multiple items",
            ),
        ];
        for (file, text, want) in cases {
            assert_eq!(read(file, text).expect_err(file), want);
        }
        let missing = std::env::temp_dir().join("ru-read-absent/none.yaml");
        let missing = missing.to_str().expect("utf-8");
        assert_eq!(
            read_controller(missing).expect_err("absent").to_string(),
            format!("the path \"{missing}\" does not exist")
        );
    }
}
