//! The replica calculator (Kubernetes' `pkg/controller/podautoscaler/replica_calculator.go`
//! and `metrics/utilization.go`), pure: from the pods the target's selector matches and
//! their metrics, the replica count a Resource metric proposes.
//!
//! The formula (Kubernetes' documentation, "Algorithm details"):
//! `desired = ceil(current × currentMetric / target)`, where the ratio is taken over the
//! pods that count and nothing changes while it is within the tolerance (0.1) of 1. Pods being
//! deleted or Failed are ignored; Pending pods — and, for CPU, pods not Ready or whose metric
//! was measured before one window had passed since they became Ready, within the CPU
//! initialization period of their start — are "unready"; Running pods without metrics are
//! "missing". When the first ratio would scale up with unready pods, or any pod is missing,
//! the ratio is computed again with missing pods at 100% of their request (of the target,
//! for AverageValue) when scaling down and at 0 when scaling up, and unready pods at 0 when
//! scaling up; if that ratio is within the tolerance or turns the direction around, the
//! count stays. Every value is in thousandths of a unit (`MilliValue()`), as Kubernetes'.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::pods;

/// Kubernetes' defaults for the controller's flags.
pub const TOLERANCE: f64 = 0.1;
pub const CPU_INITIALIZATION_PERIOD: Duration = Duration::from_secs(300);
pub const INITIAL_READINESS_DELAY: Duration = Duration::from_secs(30);

/// One pod's metric: the sum over its containers, in thousandths of a unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PodMetric {
    pub value: i64,
    pub timestamp: Timestamp,
    pub window: Duration,
}

/// Pod name → metric.
pub type PodMetrics = BTreeMap<String, PodMetric>;

/// The calculator's settings (the controller manager's flags).
#[derive(Clone, Copy, Debug)]
pub struct Calculator {
    /// How far below and above 1 the usage ratio may be without a change (`behavior`'s
    /// `scaleDown.tolerance` and `scaleUp.tolerance`, else the controller's 0.1).
    pub tolerance_down: f64,
    pub tolerance_up: f64,
    pub cpu_initialization_period: Duration,
    pub initial_readiness_delay: Duration,
}

impl Default for Calculator {
    fn default() -> Self {
        Calculator {
            tolerance_down: TOLERANCE,
            tolerance_up: TOLERANCE,
            cpu_initialization_period: CPU_INITIALIZATION_PERIOD,
            initial_readiness_delay: INITIAL_READINESS_DELAY,
        }
    }
}

/// What a Utilization target proposes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Utilization {
    pub replicas: i32,
    /// Percent of the requests, over the pods that counted first.
    pub utilization: i32,
    /// Average use per pod, in thousandths.
    pub raw: i64,
}

/// What an AverageValue target proposes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Average {
    pub replicas: i32,
    /// Average use per pod, in thousandths.
    pub usage: i64,
}

fn add(d: Timestamp, by: Duration) -> Timestamp {
    d.checked_add(SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

struct Groups {
    ready: usize,
    unready: BTreeSet<String>,
    missing: BTreeSet<String>,
    ignored: BTreeSet<String>,
}

impl Calculator {
    /// The ratio is within the tolerance of 1 (Kubernetes' `Tolerances.isWithin`).
    fn within(&self, ratio: f64) -> bool {
        1.0 - self.tolerance_down <= ratio && ratio <= 1.0 + self.tolerance_up
    }

    /// `groupPods`.
    fn group(&self, pods: &[&Pod], metrics: &PodMetrics, cpu: bool, now: Timestamp) -> Groups {
        let mut g = Groups {
            ready: 0,
            unready: BTreeSet::new(),
            missing: BTreeSet::new(),
            ignored: BTreeSet::new(),
        };
        for pod in pods {
            let name = pod.metadata.name.clone().unwrap_or_default();
            if pod.metadata.deletion_timestamp.is_some() || pods::phase(pod) == "Failed" {
                g.ignored.insert(name);
                continue;
            }
            if pods::phase(pod) == "Pending" {
                g.unready.insert(name);
                continue;
            }
            let Some(metric) = metrics.get(&name) else {
                g.missing.insert(name);
                continue;
            };
            if cpu {
                let status = pod.status.as_ref();
                let cond = status
                    .and_then(|s| s.conditions.as_ref())
                    .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
                let start = status.and_then(|s| s.start_time.as_ref()).map(|t| t.0);
                let unready = match (cond, start) {
                    (Some(cond), Some(start)) => {
                        let transition = cond
                            .last_transition_time
                            .as_ref()
                            .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
                        if add(start, self.cpu_initialization_period) > now {
                            cond.status == "False"
                                || metric.timestamp < add(transition, metric.window)
                        } else {
                            cond.status == "False"
                                && add(start, self.initial_readiness_delay) > transition
                        }
                    }
                    _ => true,
                };
                if unready {
                    g.unready.insert(name);
                    continue;
                }
            }
            g.ready += 1;
        }
        g
    }

    /// `GetResourceReplicas` after the metrics were fetched: a Utilization target of
    /// `target` percent. `requests` are the pods' requests (see [`requests`]).
    #[allow(clippy::too_many_arguments)] // the arguments of Kubernetes' function, one each
    pub fn utilization(
        &self,
        current: i32,
        target: i32,
        mut metrics: PodMetrics,
        pods: &[&Pod],
        requests: Result<BTreeMap<String, i64>, String>,
        cpu: bool,
        now: Timestamp,
    ) -> Result<Utilization, String> {
        if pods.is_empty() {
            return Err("no pods returned by selector while calculating replica count".into());
        }
        let g = self.group(pods, &metrics, cpu, now);
        metrics.retain(|name, _| !g.ignored.contains(name) && !g.unready.contains(name));
        if metrics.is_empty() {
            return Err("did not receive metrics for targeted pods (pods might be unready)".into());
        }
        let requests = &requests?;
        let (ratio, utilization, raw) = utilization_ratio(&metrics, requests, target)?;
        let keep = Utilization {
            replicas: current,
            utilization,
            raw,
        };
        let scale_up_with_unready = !g.unready.is_empty() && ratio > 1.0;
        if !scale_up_with_unready && g.missing.is_empty() {
            if self.within(ratio) {
                return Ok(keep);
            }
            return Ok(Utilization {
                replicas: (ratio * g.ready as f64).ceil() as i32,
                ..keep
            });
        }
        if !g.missing.is_empty() {
            if ratio < 1.0 {
                let fallback = i64::from(target.max(100));
                for name in &g.missing {
                    let value = requests.get(name).copied().unwrap_or(0) * fallback / 100;
                    metrics.insert(name.clone(), zero_metric(value));
                }
            } else if ratio > 1.0 {
                for name in &g.missing {
                    metrics.insert(name.clone(), zero_metric(0));
                }
            }
        }
        if scale_up_with_unready {
            for name in &g.unready {
                metrics.insert(name.clone(), zero_metric(0));
            }
        }
        let (new_ratio, _, _) = utilization_ratio(&metrics, requests, target)?;
        Ok(Utilization {
            replicas: self.recomputed(current, ratio, new_ratio, metrics.len()),
            ..keep
        })
    }

    /// `GetRawResourceReplicas` / `calcPlainMetricReplicas`: an AverageValue target of
    /// `target` thousandths per pod.
    pub fn average_value(
        &self,
        current: i32,
        target: i64,
        mut metrics: PodMetrics,
        pods: &[&Pod],
        cpu: bool,
        now: Timestamp,
    ) -> Result<Average, String> {
        if pods.is_empty() {
            return Err("no pods returned by selector while calculating replica count".into());
        }
        let g = self.group(pods, &metrics, cpu, now);
        metrics.retain(|name, _| !g.ignored.contains(name) && !g.unready.contains(name));
        if metrics.is_empty() {
            return Err("did not receive metrics for targeted pods (pods might be unready)".into());
        }
        let (ratio, usage) = usage_ratio(&metrics, target);
        let keep = Average {
            replicas: current,
            usage,
        };
        let scale_up_with_unready = !g.unready.is_empty() && ratio > 1.0;
        if !scale_up_with_unready && g.missing.is_empty() {
            if self.within(ratio) {
                return Ok(keep);
            }
            return Ok(Average {
                replicas: (ratio * g.ready as f64).ceil() as i32,
                ..keep
            });
        }
        if !g.missing.is_empty() {
            let value = if ratio < 1.0 { target } else { 0 };
            for name in &g.missing {
                metrics.insert(name.clone(), zero_metric(value));
            }
        }
        if scale_up_with_unready {
            for name in &g.unready {
                metrics.insert(name.clone(), zero_metric(0));
            }
        }
        let (new_ratio, _) = usage_ratio(&metrics, target);
        Ok(Average {
            replicas: self.recomputed(current, ratio, new_ratio, metrics.len()),
            ..keep
        })
    }

    /// The count after the second pass: unchanged within the tolerance or when the direction
    /// would turn around.
    fn recomputed(&self, current: i32, ratio: f64, new_ratio: f64, pods: usize) -> i32 {
        if self.within(new_ratio)
            || (ratio < 1.0 && new_ratio > 1.0)
            || (ratio > 1.0 && new_ratio < 1.0)
        {
            return current;
        }
        let replicas = (new_ratio * pods as f64).ceil() as i32;
        if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
            return current;
        }
        replicas
    }
}

fn zero_metric(value: i64) -> PodMetric {
    PodMetric {
        value,
        timestamp: Timestamp::UNIX_EPOCH,
        window: Duration::ZERO,
    }
}

/// `GetResourceUtilizationRatio`: (ratio to the target, utilization percent, average value).
fn utilization_ratio(
    metrics: &PodMetrics,
    requests: &BTreeMap<String, i64>,
    target: i32,
) -> Result<(f64, i32, i64), String> {
    let (mut total, mut requested, mut n) = (0i64, 0i64, 0i64);
    for (name, m) in metrics {
        let Some(r) = requests.get(name) else {
            continue;
        };
        total += m.value;
        requested += r;
        n += 1;
    }
    if requested == 0 {
        return Err("no metrics returned matched known pods".into());
    }
    let utilization = i32::try_from(total * 100 / requested).unwrap_or(i32::MAX);
    Ok((
        f64::from(utilization) / f64::from(target),
        utilization,
        total / n,
    ))
}

/// `GetMetricUsageRatio`: (ratio to the target, average value).
fn usage_ratio(metrics: &PodMetrics, target: i64) -> (f64, i64) {
    let total: i64 = metrics.values().map(|m| m.value).sum();
    let usage = total / metrics.len().max(1) as i64;
    (usage as f64 / target as f64, usage)
}

/// `calculatePodRequests`: each pod's request of `resource` in thousandths, summed over its
/// containers and sidecars (or only `container`); a container without one is an error worded
/// as Kubernetes words it.
pub fn requests(
    pods: &[&Pod],
    container: Option<&str>,
    resource: &str,
) -> Result<BTreeMap<String, i64>, String> {
    let mut out = BTreeMap::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(spec) = pod.spec.as_ref() else {
            continue;
        };
        let sidecars = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        let mut sum = 0i64;
        for c in spec.containers.iter().chain(sidecars) {
            if container.is_some_and(|want| want != c.name) {
                continue;
            }
            let request = c
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get(resource));
            match request.and_then(|q| baton_api::quantity::Quantity::parse(&q.0).ok()) {
                Some(q) => {
                    sum += i64::try_from(q.milli_value()).unwrap_or(i64::MAX);
                }
                None => {
                    return Err(format!(
                        "missing request for {resource} in container {} of Pod {name}",
                        c.name
                    ));
                }
            }
        }
        out.insert(name, sum);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
