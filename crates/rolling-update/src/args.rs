//! The command line: the removed kubectl command's flags with their old defaults, and the
//! validation of which form was asked for (`OLD --image`, `OLD NEW --image`, `OLD -f FILE`,
//! `OLD NEW --rollback`), done before any request so mistakes cost nothing.

use std::time::Duration;

use clap::Parser;

use crate::{duration, error::Error};

/// `kubectl rolling-update` for ReplicationControllers.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl rolling-update",
    override_usage = "kubectl rolling-update OLD_CONTROLLER_NAME ([NEW_CONTROLLER_NAME] --image=NEW_CONTAINER_IMAGE | -f NEW_CONTROLLER_SPEC) [options]",
    about = "Perform a rolling update of the given ReplicationController.",
    long_about = "Perform a rolling update of the given ReplicationController.\n\n\
Replaces the specified replication controller with a new replication controller by updating one pod \
at a time to use the new PodTemplate. The new-controller.json must specify the same namespace as the \
existing replication controller and overwrite at least one (common) label in its replicaSelector.",
    after_help = "Examples:\n  \
# Update pods of frontend-v1 using new replication controller data in frontend-v2.json.\n  \
kubectl rolling-update frontend-v1 -f frontend-v2.json\n\n  \
# Update pods of frontend-v1 using JSON data passed into stdin.\n  \
cat frontend-v2.json | kubectl rolling-update frontend-v1 -f -\n\n  \
# Update the pods of frontend-v1 to frontend-v2 by just changing the image, and switching the\n  \
# name of the replication controller.\n  \
kubectl rolling-update frontend-v1 frontend-v2 --image=image:v2\n\n  \
# Update the pods of frontend by just changing the image, and keeping the old name.\n  \
kubectl rolling-update frontend --image=image:v2\n\n  \
# Abort and reverse an existing rollout in progress (from frontend-v1 to frontend-v2).\n  \
kubectl rolling-update frontend-v1 frontend-v2 --rollback"
)]
pub struct Cli {
    /// OLD_CONTROLLER_NAME [NEW_CONTROLLER_NAME]
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Time to wait between updating pods.
    #[arg(long, default_value = "1m0s", value_parser = duration::parse)]
    pub update_period: Duration,
    /// Time delay between polling for replication controller status after the update.
    #[arg(long, default_value = "3s", value_parser = duration::parse)]
    pub poll_interval: Duration,
    /// Max time to wait for a replication controller to update before giving up.
    #[arg(long, default_value = "5m0s", value_parser = duration::parse)]
    pub timeout: Duration,
    /// Filename or URL to file to use to create the new replication controller ('-' for stdin).
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
    /// Image to use for upgrading the replication controller. Must be distinct from the
    /// existing image (either new image or new image tag). Can not be used with --filename/-f
    #[arg(long, default_value = "")]
    pub image: String,
    /// The key to use to differentiate between two different controllers. Only relevant when
    /// --image is specified, ignored otherwise
    #[arg(long, default_value = "deployment")]
    pub deployment_label_key: String,
    /// Container name which will have its image upgraded. Only relevant when --image is
    /// specified, ignored otherwise. Required when using --image on a multi-container pod
    #[arg(long, default_value = "")]
    pub container: String,
    /// Explicit policy for when to pull container images. Required when --image is same as
    /// existing image, ignored otherwise.
    #[arg(long, default_value = "")]
    pub image_pull_policy: String,
    /// If true, this is a request to abort an existing rollout that is partially rolled out.
    /// It effectively reverses current and next and runs a rollout
    #[arg(long)]
    pub rollback: bool,
    /// If true (or "client"), only print the controllers that would be rolled, without
    /// changing anything.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "none|client|true|false")]
    pub dry_run: Option<String>,
    /// Output format: json, yaml or name.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// If present, the namespace scope for this CLI request.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Path to the kubeconfig file to use for CLI requests.
    #[arg(long)]
    pub kubeconfig: Option<String>,
    /// The name of the kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
    /// Print a live line per poll (ready / updated / old pods) to stderr.
    #[arg(long)]
    pub progress: bool,
    /// Accepted for compatibility with the old command; the server validates the object.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub validate: Option<String>,
}

/// Where the new controller comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A copy of the old controller with another image in one container.
    Image {
        image: String,
        container: Option<String>,
        pull_policy: Option<String>,
    },
    /// A controller read from a file (`-` for stdin).
    File(String),
    /// Abort an update: roll back from NEW to OLD.
    Rollback,
}

/// A validated request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub old_name: String,
    /// The second name argument, if given.
    pub new_name: Option<String>,
    pub source: Source,
    /// One name given: the new controller takes the old name at the end.
    pub keep_old_name: bool,
    pub deployment_key: String,
    pub dry_run: bool,
    pub output: Option<Output>,
}

/// `-o` formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    Name,
}

fn usage(msg: &str) -> Error {
    Error::Usage(msg.to_string())
}

impl Cli {
    /// Checks the combination of arguments as the old command did, and says which form
    /// was asked for.
    pub fn request(&self) -> Result<Request, Error> {
        if self.deployment_label_key.is_empty() {
            return Err(usage("--deployment-label-key can not be empty"));
        }
        if self.filenames.len() > 1 {
            return Err(usage(
                "May only specify a single filename for new controller",
            ));
        }
        if !self.rollback {
            if self.filenames.is_empty() && self.image.is_empty() {
                return Err(usage(
                    "Must specify --filename or --image for new controller",
                ));
            }
            if !self.filenames.is_empty() && !self.image.is_empty() {
                return Err(usage("--filename and --image can not both be specified"));
            }
        } else if !self.filenames.is_empty() || !self.image.is_empty() {
            return Err(usage("Don't specify --filename or --image on rollback"));
        }
        let Some(old_name) = self.names.first().cloned() else {
            return Err(usage("Must specify the controller to update"));
        };
        if self.names.len() > 2 {
            return Err(usage(&format!(
                "unexpected arguments: {} (give OLD_CONTROLLER_NAME and at most NEW_CONTROLLER_NAME)",
                self.names[2..].join(" ")
            )));
        }
        let new_name = self.names.get(1).cloned();
        if let Some(new) = &new_name
            && *new == old_name
        {
            return Err(Error::SameName {
                file: new.clone(),
                old: old_name,
            });
        }
        if !self.image_pull_policy.is_empty()
            && !matches!(
                self.image_pull_policy.as_str(),
                "Always" | "Never" | "IfNotPresent"
            )
        {
            return Err(usage(&format!(
                "invalid --image-pull-policy \"{}\": must be one of Always, Never, IfNotPresent",
                self.image_pull_policy
            )));
        }
        let dry_run = match self.dry_run.as_deref() {
            None | Some("none") | Some("false") => false,
            Some("client") | Some("true") => true,
            Some("server") => {
                return Err(usage(
                    "--dry-run=server is not supported by rolling-update; use --dry-run=client",
                ));
            }
            Some(other) => {
                return Err(usage(&format!(
                    "Invalid dry-run value ({other}). Must be \"none\", \"server\", or \"client\"."
                )));
            }
        };
        let output = match self.output.as_deref() {
            None | Some("") => None,
            Some("json") => Some(Output::Json),
            Some("yaml") => Some(Output::Yaml),
            Some("name") => Some(Output::Name),
            Some(other) => {
                return Err(usage(&format!(
                    "unable to match a printer suitable for the output format \"{other}\", allowed formats are: json,name,yaml"
                )));
            }
        };
        let source = if self.rollback {
            Source::Rollback
        } else if let Some(file) = self.filenames.first() {
            Source::File(file.clone())
        } else {
            Source::Image {
                image: self.image.clone(),
                container: Some(self.container.clone()).filter(|c| !c.is_empty()),
                pull_policy: Some(self.image_pull_policy.clone()).filter(|p| !p.is_empty()),
            }
        };
        Ok(Request {
            keep_old_name: self.names.len() == 1,
            old_name,
            new_name,
            source,
            deployment_key: self.deployment_label_key.clone(),
            dry_run,
            output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Request, String> {
        let mut full = vec!["kubectl-rolling_update"];
        full.extend_from_slice(args);
        let cli = Cli::try_parse_from(full).map_err(|e| e.to_string())?;
        cli.request().map_err(|e| e.to_string())
    }

    #[test]
    fn old_defaults() {
        let cli = Cli::try_parse_from(["x", "rc", "--image=i"]).expect("parses");
        assert_eq!(cli.update_period, Duration::from_secs(60));
        assert_eq!(cli.poll_interval, Duration::from_secs(3));
        assert_eq!(cli.timeout, Duration::from_secs(300));
        assert_eq!(cli.deployment_label_key, "deployment");
    }

    #[test]
    fn forms() {
        let r = parse(&["zc", "--image", "img:2"]).expect("image form");
        assert!(r.keep_old_name);
        assert_eq!(
            r.source,
            Source::Image {
                image: "img:2".into(),
                container: None,
                pull_policy: None
            }
        );
        let r = parse(&["a", "b", "--image=img", "--container=c"]).expect("two names");
        assert!(!r.keep_old_name);
        assert_eq!(r.new_name.as_deref(), Some("b"));
        let r = parse(&["a", "-f", "-"]).expect("stdin");
        assert_eq!(r.source, Source::File("-".into()));
        let r = parse(&["a", "b", "--rollback"]).expect("rollback");
        assert_eq!(r.source, Source::Rollback);
        let r = parse(&["a", "--image=i", "--dry-run"]).expect("dry run");
        assert!(r.dry_run);
        let r = parse(&["a", "--image=i", "--dry-run=client", "-o", "yaml"]).expect("dry run");
        assert_eq!(r.output, Some(Output::Yaml));
        let r = parse(&[
            "-n",
            "spark-cluster",
            "a",
            "--image",
            "i",
            "--update-period=1s",
        ])
        .expect("namespace first");
        assert_eq!(r.old_name, "a");
    }

    #[test]
    fn rejects_like_the_old_command() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["a"],
                "Must specify --filename or --image for new controller",
            ),
            (
                &["a", "-f", "x", "--image=i"],
                "--filename and --image can not both be specified",
            ),
            (
                &["a", "-f", "x", "-f", "y"],
                "May only specify a single filename",
            ),
            (
                &["a", "b", "--rollback", "--image=i"],
                "Don't specify --filename or --image on rollback",
            ),
            (&["--image=i"], "Must specify the controller to update"),
            (
                &["a", "--image=i", "--deployment-label-key="],
                "--deployment-label-key can not be empty",
            ),
            (
                &["a", "a", "--image=i"],
                "cannot have the same name as the existing ReplicationController a",
            ),
            (
                &["a", "--image=i", "--image-pull-policy=Sometimes"],
                "invalid --image-pull-policy",
            ),
            (
                &["a", "--image=i", "--update-period=soon"],
                "invalid duration",
            ),
            (&["a", "--image=i", "-o", "wide"], "allowed formats are"),
        ];
        for (args, want) in cases {
            let err = parse(args).expect_err("should fail");
            assert!(err.contains(want), "{args:?}: {err}");
        }
        let err = parse(&["a"]).expect_err("usage");
        assert!(err.ends_with("See 'kubectl rolling-update -h' for help and examples"));
    }
}
