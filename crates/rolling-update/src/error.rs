//! Every way the command can fail, worded as the removed `kubectl rolling-update` worded it
//! so that scripts and habits carry over; the binary prints them with kubectl's `error: `
//! prefix (or `Error from server (Reason): ` for API errors).

/// The plugin's error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Wrong arguments or flags (kubectl's usage errors).
    #[error("{0}\nSee 'kubectl rolling-update -h' for help and examples")]
    Usage(String),
    /// The kubeconfig could not be loaded or the client could not be built.
    #[error("{0}")]
    Config(String),
    /// A request to the API server failed.
    #[error("{}", api_message(.0))]
    Api(#[from] kube::Error),
    /// `-f FILE` could not be read.
    #[error("reading {path}: {source}")]
    ReadFile {
        path: String,
        source: std::io::Error,
    },
    /// `-f FILE` does not exist.
    #[error("the path \"{0}\" does not exist")]
    PathNotFound(String),
    /// `-f FILE` is not a single valid object.
    #[error("error parsing {path}: {message}")]
    ParseFile { path: String, message: String },
    /// `-f FILE` holds nothing.
    #[error("please make sure {0} exists and is not empty")]
    EmptyFile(String),
    /// `-f FILE` holds several objects.
    #[error("{0} specifies multiple items")]
    MultipleItems(String),
    /// `-f FILE` holds some other kind.
    #[error("{path} contains a {kind} not a ReplicationController")]
    NotAReplicationController { path: String, kind: String },
    /// `-f FILE` names another namespace than the command's.
    #[error(
        "the namespace from the provided object \"{file}\" does not match the namespace \"{namespace}\". You must pass '--namespace={file}' to perform this operation."
    )]
    NamespaceMismatch { file: String, namespace: String },
    /// `--container` names no container of the pod template.
    #[error("container {0} not found in pod")]
    ContainerNotFound(String),
    /// Several containers and no `--container`.
    #[error("must specify container to update when updating a multi-container pod")]
    MultiContainer,
    /// A pod template without containers.
    #[error("pod has no containers! ({0})")]
    NoContainers(String),
    /// `--image` equals the current image and no pull policy says why to roll anyway.
    #[error(
        "--image-pull-policy (Always|Never|IfNotPresent) must be provided when --image is the same as existing container image"
    )]
    SameImage,
    /// A resumed update goes to another image than the one asked for.
    #[error(
        "Found existing in-progress update to image ({0}).\nEither continue in-progress update with --image={0} or rollback with --rollback"
    )]
    InProgressImage(String),
    /// The new controller would replace itself.
    #[error("{file} cannot have the same name as the existing ReplicationController {old}")]
    SameName { file: String, old: String },
    /// The new controller's selector does not tell its pods from the old ones.
    #[error("{file} must specify a matching key with non-equal value in Selector for {old}")]
    SelectorNotDifferent { file: String, old: String },
    /// `--rollback` without an update to abort.
    #[error("Could not find {0} to rollback.\n")]
    NothingToRollBack(String),
    /// `--rollback` of a controller that never recorded its size.
    #[error("couldn't find original replica count of \"{0}\"")]
    OriginalReplicasMissing(String),
    /// The controller to create would have no replicas.
    #[error("Invalid controller spec for {name}; required: > 0 replicas, actual: {replicas}")]
    InvalidReplicas { name: String, replicas: i32 },
    /// The desired-replicas annotation is missing or not a number.
    #[error("Unable to parse annotation for {name}: {key}={value}")]
    BadAnnotation {
        name: String,
        key: String,
        value: String,
    },
    /// The next controller exists but belongs to another update.
    #[error("Missing/unexpected annotations for controller {name}, expected {expected} : {found}")]
    UnexpectedAnnotations {
        name: String,
        expected: String,
        found: String,
    },
    /// Neither controller changed size for `--timeout`.
    #[error("timed out waiting for any update progress to be made")]
    NoProgress,
    /// A scaled controller did not reach its size within `--timeout`.
    #[error("timed out waiting for \"{0}\" to be synced")]
    NotSynced(String),
    /// A controller being renamed did not go away.
    #[error("timed out waiting for replicationcontroller \"{0}\" to be deleted")]
    NotDeleted(String),
    /// The old controller is gone and no half-renamed successor was found.
    #[error("couldn't find a replication controller with source id == {namespace}/{name}")]
    NoSourceController { namespace: String, name: String },
    /// An object could not be encoded for printing or hashing.
    #[error("encoding {what}: {message}")]
    Encode { what: String, message: String },
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// Whether kubectl would print this without its `error: ` prefix.
    pub fn is_from_server(&self) -> bool {
        matches!(self, Error::Api(kube::Error::Api(_)))
    }

    /// Whether the update was left half done and can be resumed or rolled back.
    pub fn leaves_update_resumable(&self) -> bool {
        matches!(
            self,
            Error::NoProgress | Error::NotSynced(_) | Error::Interrupted
        )
    }
}

/// kubectl's wording for a Status from the server.
fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() {
                "Unknown"
            } else {
                status.reason.as_str()
            };
            format!("Error from server ({reason}): {}", status.message)
        }
        other => other.to_string(),
    }
}

/// Whether a client error is the server's 404.
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404)
}

/// Whether a client error is the server's 409 (stale resourceVersion).
pub fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 409)
}
