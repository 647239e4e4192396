//! The HorizontalPodAutoscaler controller (Kubernetes' `pkg/controller/podautoscaler`), for
//! autoscaling/v1 and v2 HPAs (stored once, as v2) and any target with a `scale`
//! subresource: every HPA is reconciled once per sync period (`--hpa-sync-period`, 15 s as
//! Kubernetes' `--horizontal-pod-autoscaler-sync-period`). A reconcile reads the target's
//! Scale through the API (`FailedGetScale` when the kind is unknown, has no scale
//! subresource or the object is missing), computes a count per metric from the metrics API
//! (`metrics.k8s.io`, what `kubectl top` reads: cgroup figures of real nodes, annotations on
//! simulated ones) and the pods the Scale's selector matches in the shared pod cache
//! ([`replicas`]: the replica calculator), takes the highest, stabilizes and limits it
//! ([`normalize`]), writes the Scale when the count changes (`SuccessfulRescale`), and
//! writes the status — current/desired replicas, current metrics, lastScaleTime, the
//! AbleToScale / ScalingActive / ScalingLimited conditions with Kubernetes' reasons and
//! messages — when it changed. A metric that cannot be read is a `FailedGetResourceMetric`
//! event (`FailedGetContainerResourceMetric`, `FailedGetPodsMetric`, … for the others) and
//! ScalingActive False; when no metric can be read (or some cannot and the rest would scale
//! down) the count is left alone and `FailedComputeMetricsReplicas` says why. Pods, Object
//! and External metrics need the custom and external metrics APIs, which Baton does not
//! serve: such a metric is reported that way, as on a Kubernetes cluster without an adapter.
//!
//! What Kubernetes keeps in memory (the recommendations of the stabilization windows, the
//! scalings counted by the policies) is kept here too, per HPA uid, and lost on restart as
//! there.

pub mod normalize;
pub mod replicas;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_api::events::{Kind, Recorder};
use baton_api::quantity::Quantity;
use baton_api::registry::{self, ResourceDef};
use baton_api::selectors::LabelSelector;
use futures::StreamExt;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus,
    MetricSpec, MetricStatus, MetricTarget,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::informer::{Informer, Informers};
use normalize::History;
use replicas::{Calculator, PodMetric, PodMetrics};

/// The component name of the controller's events.
const COMPONENT: &str = "horizontal-pod-autoscaler";
/// HPAs reconciled at once (Kubernetes' `--concurrent-horizontal-pod-autoscaler-syncs`).
const WORKERS: usize = 5;

/// The controller's settings (Kubernetes' controller-manager flags).
#[derive(Clone, Debug)]
pub struct Options {
    /// How often each HPA is reconciled.
    pub sync_period: Duration,
    /// The scale-down stabilization window of HPAs without `behavior` (and the default of
    /// `behavior.scaleDown.stabilizationWindowSeconds`).
    pub downscale_stabilization: Duration,
    pub tolerance: f64,
    pub cpu_initialization_period: Duration,
    pub initial_readiness_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync_period: Duration::from_secs(15),
            downscale_stabilization: Duration::from_secs(300),
            tolerance: replicas::TOLERANCE,
            cpu_initialization_period: replicas::CPU_INITIALIZATION_PERIOD,
            initial_readiness_delay: replicas::INITIAL_READINESS_DELAY,
        }
    }
}

struct Controller {
    client: Client,
    events: Recorder,
    pods: Informer<Pod>,
    opts: Options,
    history: Mutex<HashMap<String, History>>,
}

/// Runs the controller until the process stops.
pub async fn run(client: Client, informers: Informers, opts: Options) {
    let hpas = informers.hpas.clone();
    if hpas.synced().await.is_err() || informers.pods.synced().await.is_err() {
        return;
    }
    let ctl = Arc::new(Controller {
        events: Recorder::new(client.clone(), COMPONENT, None),
        client,
        pods: informers.pods.clone(),
        opts: opts.clone(),
        history: Mutex::new(HashMap::new()),
    });
    let mut tick = tokio::time::interval(opts.sync_period.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let all = hpas.store().state();
        let live: HashSet<String> = all.iter().filter_map(|h| h.metadata.uid.clone()).collect();
        ctl.history().retain(|uid, _| live.contains(uid));
        futures::stream::iter(all)
            .for_each_concurrent(WORKERS, |hpa| {
                let ctl = ctl.clone();
                async move {
                    if let Err(e) = ctl.reconcile(&hpa).await {
                        tracing::debug!(hpa = %hpa.name_any(), error = %e, "HPA reconcile");
                    }
                }
            })
            .await;
    }
}

/// Sets a condition as Kubernetes' `setConditionInList`: its transition time changes only
/// with its status.
fn set_condition(
    status: &mut HorizontalPodAutoscalerStatus,
    type_: &str,
    value: bool,
    reason: &str,
    message: impl Into<String>,
) {
    let value = if value { "True" } else { "False" };
    let list = status.conditions.get_or_insert_with(Vec::new);
    let i = match list.iter().position(|c| c.type_ == type_) {
        Some(i) => i,
        None => {
            list.push(HorizontalPodAutoscalerCondition {
                type_: type_.to_string(),
                ..Default::default()
            });
            list.len() - 1
        }
    };
    let c = &mut list[i];
    if c.status != value {
        c.last_transition_time = Some(Time(now_second()));
    }
    c.status = value.to_string();
    c.reason = Some(reason.to_string());
    c.message = Some(message.into());
}

/// Now, to the second (as `metav1.Time` is written).
fn now_second() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

/// The text of a kube error as Kubernetes' clients print it (the Status message).
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        e => e.to_string(),
    }
}

/// A metric that could not be computed: the ScalingActive condition it sets.
struct Invalid {
    reason: &'static str,
    message: String,
}

/// What the metrics propose.
struct Proposal {
    replicas: i32,
    metric: String,
    statuses: Vec<MetricStatus>,
}

impl Controller {
    fn history(&self) -> std::sync::MutexGuard<'_, HashMap<String, History>> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn warn(&self, hpa: &HorizontalPodAutoscaler, reason: &str, message: impl Into<String>) {
        self.events.publish(hpa, Kind::Warning, reason, message);
    }

    /// The target's Scale and the API it came through, or the message of why not.
    async fn scale(
        &self,
        ns: &str,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<(Scale, Api<DynamicObject>), String> {
        let (group, version) = registry::split_api_version(api_version);
        // The served versions of the kind in its group, the reference's own first (a
        // RESTMapper's preferred mapping); only rows whose Scale is autoscaling/v1.
        let mut defs: Vec<&ResourceDef> = registry::RESOURCES
            .iter()
            .filter(|r| r.group == group && r.kind == kind)
            .collect();
        if defs.is_empty() {
            return Err(format!(
                "no matches for kind {} in group {}",
                quote(kind),
                quote(group)
            ));
        }
        defs.sort_by_key(|d| (d.version != version, d.version != "v1"));
        let mut first = None;
        for def in defs {
            let result: Result<(), String> = if !def.subresources.contains(&"scale") {
                Err(format!(
                    "could not find scale subresource for {}/{}, Resource={} in discovery information",
                    def.group, def.version, def.resource
                ))
            } else if !(def.group.is_empty() || def.version == "v1") {
                Err(format!(
                    "{}/{} {} serve a legacy Scale",
                    def.group, def.version, def.resource
                ))
            } else {
                let ar = ApiResource {
                    group: def.group.to_string(),
                    version: def.version.to_string(),
                    api_version: def.api_version(),
                    kind: def.kind.to_string(),
                    plural: def.resource.to_string(),
                };
                let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
                match api.get_scale(name).await {
                    Ok(s) => return Ok((s, api)),
                    Err(e) => Err(api_message(&e)),
                }
            };
            if let Err(e) = result {
                first.get_or_insert(e);
            }
        }
        Err(first.unwrap_or_else(|| "unrecognized resource".to_string()))
    }

    async fn reconcile(&self, hpa: &HorizontalPodAutoscaler) -> Result<(), String> {
        let ns = hpa.namespace().unwrap_or_default();
        let uid = hpa.metadata.uid.clone().unwrap_or_default();
        let spec = &hpa.spec;
        let target = &spec.scale_target_ref;
        let original = hpa.status.clone().unwrap_or_default();
        let mut status = original.clone();
        let now = Timestamp::now();
        let (scale, scale_api) = match self
            .scale(
                &ns,
                target.api_version.as_deref().unwrap_or(""),
                &target.kind,
                &target.name,
            )
            .await
        {
            Ok(s) => s,
            Err(e) => {
                self.warn(hpa, "FailedGetScale", &e);
                set_condition(
                    &mut status,
                    "AbleToScale",
                    false,
                    "FailedGetScale",
                    format!("the HPA controller was unable to get the target's current scale: {e}"),
                );
                self.write_status(hpa, &original, status).await;
                return Err(e);
            }
        };
        set_condition(
            &mut status,
            "AbleToScale",
            true,
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        );
        let current = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        self.history()
            .entry(uid.clone())
            .or_default()
            .record_initial(current, now);
        let min = spec.min_replicas.unwrap_or(1);
        let max = spec.max_replicas;
        let mut statuses = Vec::new();
        let mut reason = String::new();
        let mut rescale = true;
        let desired;
        if current == 0 && min != 0 {
            desired = 0;
            rescale = false;
            set_condition(
                &mut status,
                "ScalingActive",
                false,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            );
        } else if current > max {
            reason = "Current number of replicas above Spec.MaxReplicas".into();
            desired = max;
        } else if current < min {
            reason = "Current number of replicas below Spec.MinReplicas".into();
            desired = min;
        } else {
            let metrics = spec.metrics.clone().unwrap_or_default();
            let proposal = match self
                .replicas_for_metrics(hpa, &scale, &metrics, &mut status, now)
                .await
            {
                Ok(p) => p,
                Err((e, statuses)) => {
                    status.current_replicas = Some(current);
                    status.current_metrics = none_if_empty(statuses);
                    self.write_status(hpa, &original, status).await;
                    self.warn(hpa, "FailedComputeMetricsReplicas", &e);
                    return Err(e);
                }
            };
            statuses = proposal.statuses;
            let proposed = proposal.replicas;
            if proposed > current {
                reason = format!("{} above target", proposal.metric);
            } else if proposed < current {
                reason = "All metrics below target".into();
            }
            let n = {
                let mut all = self.history();
                let h = all.entry(uid.clone()).or_default();
                match &spec.behavior {
                    None => h.normalize(
                        current,
                        proposed,
                        min,
                        max,
                        SignedDuration::try_from(self.opts.downscale_stabilization)
                            .unwrap_or(SignedDuration::ZERO),
                        now,
                    ),
                    Some(b) => h.normalize_with_behavior(
                        b,
                        current,
                        proposed,
                        min,
                        max,
                        self.opts.downscale_stabilization.as_secs() as i64,
                        now,
                    ),
                }
            };
            set_condition(
                &mut status,
                "AbleToScale",
                true,
                n.able_to_scale.0,
                n.able_to_scale.1,
            );
            set_condition(
                &mut status,
                "ScalingLimited",
                n.limited,
                n.limited_by.0,
                n.limited_by.1,
            );
            desired = n.replicas;
            rescale = desired != current;
        }
        if rescale {
            let mut new = scale.clone();
            new.spec.get_or_insert_with(Default::default).replicas = Some(desired);
            if let Err(e) = scale_api
                .replace_scale(&target.name, &PostParams::default(), &new)
                .await
            {
                let e = api_message(&e);
                self.warn(
                    hpa,
                    "FailedRescale",
                    format!("New size: {desired}; reason: {reason}; error: {e}"),
                );
                set_condition(
                    &mut status,
                    "AbleToScale",
                    false,
                    "FailedUpdateScale",
                    format!("the HPA controller was unable to update the target scale: {e}"),
                );
                status.current_replicas = Some(current);
                status.current_metrics = none_if_empty(statuses);
                self.write_status(hpa, &original, status).await;
                return Err(e);
            }
            set_condition(
                &mut status,
                "AbleToScale",
                true,
                "SucceededRescale",
                format!("the HPA controller was able to update the target scale to {desired}"),
            );
            self.events.publish(
                hpa,
                Kind::Normal,
                "SuccessfulRescale",
                format!("New size: {desired}; reason: {reason}"),
            );
            self.history().entry(uid).or_default().store_scale_event(
                spec.behavior.as_ref(),
                current,
                desired,
                now,
            );
            tracing::info!(hpa = %hpa.name_any(), namespace = %ns, current, desired, %reason, "rescaled");
            status.last_scale_time = Some(Time(now_second()));
        }
        status.current_replicas = Some(current);
        status.desired_replicas = if rescale { desired } else { current };
        status.current_metrics = none_if_empty(statuses);
        self.write_status(hpa, &original, status).await;
        Ok(())
    }

    /// Writes `status` when it differs from what the HPA had (`updateStatusIfNeeded`).
    async fn write_status(
        &self,
        hpa: &HorizontalPodAutoscaler,
        original: &HorizontalPodAutoscalerStatus,
        mut status: HorizontalPodAutoscalerStatus,
    ) {
        status.observed_generation = hpa.metadata.generation;
        if &status == original {
            return;
        }
        let body = json!({"status": {
            "currentReplicas": status.current_replicas,
            "desiredReplicas": status.desired_replicas,
            "currentMetrics": status.current_metrics,
            "conditions": status.conditions,
            "lastScaleTime": status.last_scale_time,
            "observedGeneration": status.observed_generation,
        }});
        let api: Api<HorizontalPodAutoscaler> =
            Api::namespaced(self.client.clone(), &hpa.namespace().unwrap_or_default());
        if let Err(e) = api
            .patch_status(
                &hpa.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&body),
            )
            .await
        {
            tracing::debug!(hpa = %hpa.name_any(), error = %e, "HPA status not written");
        }
    }

    /// `computeReplicasForMetrics`: the highest count any metric proposes, the statuses,
    /// and ScalingActive; `Err` (with the statuses) when the count cannot be trusted.
    async fn replicas_for_metrics(
        &self,
        hpa: &HorizontalPodAutoscaler,
        scale: &Scale,
        specs: &[MetricSpec],
        status: &mut HorizontalPodAutoscalerStatus,
        now: Timestamp,
    ) -> Result<Proposal, (String, Vec<MetricStatus>)> {
        let text = scale
            .status
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        if text.is_empty() {
            self.warn(hpa, "SelectorRequired", "selector is required");
            set_condition(
                status,
                "ScalingActive",
                false,
                "InvalidSelector",
                "the HPA target's scale is missing a selector",
            );
            return Err(("selector is required".into(), Vec::new()));
        }
        let selector = match LabelSelector::parse(&text) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!(
                    "couldn't convert selector into a corresponding internal selector object: {e}"
                );
                self.warn(hpa, "InvalidSelector", &msg);
                set_condition(status, "ScalingActive", false, "InvalidSelector", &msg);
                return Err((msg, Vec::new()));
            }
        };
        let spec_replicas = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let mut statuses = vec![MetricStatus::default(); specs.len()];
        let mut best: Option<(i32, String)> = None;
        let mut invalid: Vec<(String, Invalid)> = Vec::new();
        for (i, m) in specs.iter().enumerate() {
            match self
                .replicas_for_metric(hpa, m, spec_replicas, &text, &selector, now)
                .await
            {
                Ok((replicas, name, st)) => {
                    statuses[i] = st;
                    if best.as_ref().is_none_or(|(r, _)| *r == 0 || replicas > *r) {
                        best = Some((replicas, name));
                    }
                }
                Err(e) => invalid.push(e),
            }
        }
        let (replicas, metric) = best.unwrap_or((0, String::new()));
        if let Some((first_err, cond)) = invalid.first()
            && (invalid.len() >= specs.len() || replicas < spec_replicas)
        {
            set_condition(status, "ScalingActive", false, cond.reason, &cond.message);
            return Err((
                format!(
                    "invalid metrics ({} invalid out of {}), first error is: {first_err}",
                    invalid.len(),
                    specs.len()
                ),
                statuses,
            ));
        }
        if specs.is_empty() {
            return Err((
                "no metrics to compute a replica count from".into(),
                statuses,
            ));
        }
        set_condition(
            status,
            "ScalingActive",
            true,
            "ValidMetricFound",
            format!("the HPA was able to successfully calculate a replica count from {metric}"),
        );
        Ok(Proposal {
            replicas,
            metric,
            statuses,
        })
    }

    /// `computeReplicasForMetric`: one metric's count, name and status, or the wrapped error
    /// and the condition it sets (its event is written here).
    async fn replicas_for_metric(
        &self,
        hpa: &HorizontalPodAutoscaler,
        m: &MetricSpec,
        spec_replicas: i32,
        selector_text: &str,
        selector: &LabelSelector,
        now: Timestamp,
    ) -> Result<(i32, String, MetricStatus), (String, Invalid)> {
        let unable = |reason: &'static str, err: String, wrap: String| {
            self.warn(hpa, reason, &err);
            Err((
                format!("{wrap}: {err}"),
                Invalid {
                    reason,
                    message: format!("the HPA was unable to compute the replica count: {err}"),
                },
            ))
        };
        let (resource, container, target, reason) = match m.type_.as_str() {
            "Resource" => match &m.resource {
                Some(r) => (r.name.clone(), None, &r.target, "FailedGetResourceMetric"),
                None => return Err(unknown_source(m)),
            },
            "ContainerResource" => match &m.container_resource {
                Some(r) => (
                    r.name.clone(),
                    Some(r.container.clone()),
                    &r.target,
                    "FailedGetContainerResourceMetric",
                ),
                None => return Err(unknown_source(m)),
            },
            kind @ ("Pods" | "Object" | "External") => {
                let (reason, api, wrap, name) = match kind {
                    "Pods" => (
                        "FailedGetPodsMetric",
                        "custom.metrics.k8s.io",
                        "failed to get pods metric value",
                        m.pods.as_ref().map(|p| p.metric.name.clone()),
                    ),
                    "Object" => (
                        "FailedGetObjectMetric",
                        "custom.metrics.k8s.io",
                        "failed to get object metric value",
                        m.object.as_ref().map(|p| p.metric.name.clone()),
                    ),
                    _ => (
                        "FailedGetExternalMetric",
                        "external.metrics.k8s.io",
                        "failed to get external metric value",
                        m.external.as_ref().map(|p| p.metric.name.clone()),
                    ),
                };
                let which = if api.starts_with("custom") {
                    "custom"
                } else {
                    "external"
                };
                return unable(
                    reason,
                    format!(
                        "unable to get metric {}: unable to fetch metrics from {which} metrics API: the server could not find the requested resource ({api} is not served by Baton)",
                        name.unwrap_or_default()
                    ),
                    wrap.to_string(),
                );
            }
            _ => return Err(unknown_source(m)),
        };
        let wrap = match &container {
            None => format!("failed to get {resource} resource metric value"),
            Some(_) => format!("failed to get {resource} container metric value"),
        };
        match self
            .resource_replicas(
                hpa,
                spec_replicas,
                &resource,
                container.as_deref(),
                target,
                selector_text,
                selector,
                now,
            )
            .await
        {
            Ok((replicas, name, current)) => {
                let status = match &container {
                    None => {
                        json!({"type": "Resource", "resource": {"name": resource, "current": current}})
                    }
                    Some(c) => {
                        json!({"type": "ContainerResource", "containerResource": {"name": resource, "container": c, "current": current}})
                    }
                };
                let status: MetricStatus = serde_json::from_value(status).unwrap_or_default();
                Ok((replicas, name, status))
            }
            Err(e) => unable(reason, e, wrap),
        }
    }

    /// `computeStatusForResourceMetricGeneric`: (count, metric name, `current` as JSON).
    #[allow(clippy::too_many_arguments)]
    async fn resource_replicas(
        &self,
        hpa: &HorizontalPodAutoscaler,
        current: i32,
        resource: &str,
        container: Option<&str>,
        target: &MetricTarget,
        selector_text: &str,
        selector: &LabelSelector,
        now: Timestamp,
    ) -> Result<(i32, String, Value), String> {
        let ns = hpa.namespace().unwrap_or_default();
        let calc = self.calculator(hpa);
        let cpu = resource == "cpu";
        let kind_of = if container.is_some() {
            "container resource"
        } else {
            "resource"
        };
        if let Some(avg) = &target.average_value {
            let target = Quantity::parse(&avg.0)
                .map(|q| i64::try_from(q.milli_value()).unwrap_or(i64::MAX))
                .map_err(|e| format!("failed to get {resource} usage: {e}"))?;
            let metrics = self
                .pod_metrics(&ns, selector_text, resource, container)
                .await
                .map_err(|e| format!("failed to get {resource} usage: unable to get metrics for resource {resource}: {e}"))?;
            let pods = self.pods_of(&ns, selector);
            let pods: Vec<&Pod> = pods.iter().map(Arc::as_ref).collect();
            let a = calc
                .average_value(current, target, metrics, &pods, cpu, now)
                .map_err(|e| format!("failed to get {resource} usage: {e}"))?;
            return Ok((
                a.replicas,
                format!("{resource} {kind_of}"),
                json!({"averageValue": Quantity::from_milli(a.usage).to_string()}),
            ));
        }
        let Some(util) = target.average_utilization else {
            return Err("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into());
        };
        let metrics = self
            .pod_metrics(&ns, selector_text, resource, container)
            .await
            .map_err(|e| {
                format!(
                    "failed to get {resource} utilization: unable to get metrics for resource {resource}: {e}"
                )
            })?;
        let pods = self.pods_of(&ns, selector);
        let pods: Vec<&Pod> = pods.iter().map(Arc::as_ref).collect();
        let requests = replicas::requests(&pods, container, resource);
        let u = calc
            .utilization(current, util, metrics, &pods, requests, cpu, now)
            .map_err(|e| format!("failed to get {resource} utilization: {e}"))?;
        Ok((
            u.replicas,
            format!("{resource} {kind_of} utilization (percentage of request)"),
            json!({"averageUtilization": u.utilization, "averageValue": Quantity::from_milli(u.raw).to_string()}),
        ))
    }

    /// The calculator with the HPA's own tolerances when its `behavior` sets them.
    fn calculator(&self, hpa: &HorizontalPodAutoscaler) -> Calculator {
        let behavior = hpa.spec.behavior.as_ref();
        let tolerance = |rules: Option<&k8s_openapi::api::autoscaling::v2::HPAScalingRules>| {
            rules
                .and_then(|r| r.tolerance.as_ref())
                .and_then(|q| Quantity::parse(&q.0).ok())
                .map_or(self.opts.tolerance, |q| q.milli_value() as f64 / 1000.0)
        };
        Calculator {
            tolerance_down: tolerance(behavior.and_then(|b| b.scale_down.as_ref())),
            tolerance_up: tolerance(behavior.and_then(|b| b.scale_up.as_ref())),
            cpu_initialization_period: self.opts.cpu_initialization_period,
            initial_readiness_delay: self.opts.initial_readiness_delay,
        }
    }

    /// The pods of `ns` the selector matches, from the shared cache.
    fn pods_of(&self, ns: &str, selector: &LabelSelector) -> Vec<Arc<Pod>> {
        self.pods.store().state_filter(|p| {
            p.metadata.namespace.as_deref() == Some(ns) && selector.matches_map(p.labels())
        })
    }

    /// The resource metrics client's `GetResourceMetric`: each pod's use of `resource` (of
    /// `container` only, when given) from `metrics.k8s.io`.
    async fn pod_metrics(
        &self,
        ns: &str,
        selector: &str,
        resource: &str,
        container: Option<&str>,
    ) -> Result<PodMetrics, String> {
        let ar = ApiResource {
            group: "metrics.k8s.io".into(),
            version: "v1beta1".into(),
            api_version: "metrics.k8s.io/v1beta1".into(),
            kind: "PodMetrics".into(),
            plural: "pods".into(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
        let list = api
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| {
                format!(
                    "unable to fetch metrics from resource metrics API: {}",
                    api_message(&e)
                )
            })?;
        if list.items.is_empty() {
            return Err("no metrics returned from resource metrics API".into());
        }
        parse_pod_metrics(&list.items, resource, container)
    }
}

fn quote(s: &str) -> String {
    baton_api::validation::go::quote(s)
}

fn none_if_empty(v: Vec<MetricStatus>) -> Option<Vec<MetricStatus>> {
    (!v.is_empty()).then_some(v)
}

fn unknown_source(m: &MetricSpec) -> (String, Invalid) {
    let e = format!("unknown metric source type {}", quote(&m.type_));
    (
        e.clone(),
        Invalid {
            reason: "InvalidMetricSourceType",
            message: format!("the HPA was unable to compute the replica count: {e}"),
        },
    )
}

/// `getPodMetrics` / `getContainerMetrics` over PodMetrics objects: a pod missing the
/// resource in any (or the named) container has no metric.
pub fn parse_pod_metrics(
    items: &[DynamicObject],
    resource: &str,
    container: Option<&str>,
) -> Result<PodMetrics, String> {
    let mut out = BTreeMap::new();
    for m in items {
        let name = m.name_any();
        let timestamp = m
            .data
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<Timestamp>().ok())
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let window = m
            .data
            .get("window")
            .and_then(Value::as_str)
            .and_then(crate::simnode::parse_duration)
            .unwrap_or(Duration::ZERO);
        let containers = m
            .data
            .get("containers")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let usage = |c: &Value| {
            c.pointer(&format!("/usage/{resource}"))
                .and_then(Value::as_str)
                .and_then(|q| Quantity::parse(q).ok())
                .map(|q| i64::try_from(q.milli_value()).unwrap_or(i64::MAX))
        };
        let value = match container {
            Some(want) => {
                let found = containers
                    .iter()
                    .find(|c| c.get("name").and_then(Value::as_str) == Some(want));
                match found.and_then(usage) {
                    Some(v) => Some(v),
                    None => {
                        return Err(format!(
                            "failed to get container metrics: container {want} not present in metrics for pod {}/{name}",
                            m.namespace().unwrap_or_default()
                        ));
                    }
                }
            }
            None if containers.is_empty() => None,
            None => containers.iter().map(usage).sum::<Option<i64>>(),
        };
        if let Some(value) = value {
            out.insert(
                name,
                PodMetric {
                    value,
                    timestamp,
                    window,
                },
            );
        }
    }
    Ok(out)
}
