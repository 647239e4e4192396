//! From the metrics' proposal to the count the HPA sets (Kubernetes' `horizontal.go`:
//! `normalizeDesiredReplicas`, `normalizeDesiredReplicasWithBehaviors` and their helpers),
//! pure over one HPA's [`History`] and an explicit `now`.
//!
//! Without `behavior`: the highest recommendation of the last `--horizontal-pod-autoscaler-
//! downscale-stabilization` (5 min) wins, then min/max and the scale-up limit (at most
//! twice the current count, at least 4). With `behavior`: the proposal is held between the
//! lowest recommendation of the scale-up window and the highest of the scale-down window
//! (`stabilizationWindowSeconds`: 0 and 300 s by default), then limited by the policies
//! of the direction (each allows `Pods` more or `Percent` more from the count at the start of
//! its `periodSeconds`, counting the scalings this controller made; `selectPolicy` Max takes
//! the policy allowing the largest change, Min the smallest, Disabled none) and by min/max.

use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// What this controller remembers of one HPA (Kubernetes keeps the same in memory).
#[derive(Clone, Debug, Default)]
pub struct History {
    /// The unstabilized recommendations, with when they were made.
    recommendations: Vec<(Timestamp, i32)>,
    scale_up: Vec<ScaleEvent>,
    scale_down: Vec<ScaleEvent>,
}

#[derive(Clone, Debug)]
struct ScaleEvent {
    change: i32,
    at: Timestamp,
    outdated: bool,
}

/// A condition to set: (reason, message).
pub type Said = (&'static str, &'static str);

/// What normalization decided and the conditions it sets.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalized {
    pub replicas: i32,
    /// AbleToScale True with this reason and message.
    pub able_to_scale: Said,
    /// ScalingLimited: True when the count was limited.
    pub limited: bool,
    pub limited_by: Said,
}

const WITHIN: Said = (
    "DesiredWithinRange",
    "the desired count is within the acceptable range",
);
const SCALE_UP_LIMIT: Said = (
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
);
const TOO_MANY: Said = (
    "TooManyReplicas",
    "the desired replica count is more than the maximum replica count",
);
const TOO_FEW: Said = (
    "TooFewReplicas",
    "the desired replica count is less than the minimum replica count",
);
const SCALE_DOWN_LIMIT: Said = (
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
);
const READY: Said = ("ReadyForNewScale", "recommended size matches current size");
const DOWN_STABILIZED: Said = (
    "ScaleDownStabilized",
    "recent recommendations were higher than current one, applying the highest recent recommendation",
);
const UP_STABILIZED: Said = (
    "ScaleUpStabilized",
    "recent recommendations were lower than current one, applying the lowest recent recommendation",
);

fn secs(s: i64) -> SignedDuration {
    SignedDuration::from_secs(s)
}

impl History {
    /// `recordInitialRecommendation`: the count when the HPA was first seen counts as a
    /// recommendation.
    pub fn record_initial(&mut self, current: i32, now: Timestamp) {
        if self.recommendations.is_empty() {
            self.recommendations.push((now, current));
        }
    }

    /// Stores `rec` in place of a sample older than every window, or appends it.
    fn record(&mut self, old: Option<usize>, rec: i32, now: Timestamp) {
        match old {
            Some(i) => self.recommendations[i] = (now, rec),
            None => self.recommendations.push((now, rec)),
        }
    }

    /// `normalizeDesiredReplicas` (no `behavior`): `window` is the controller's downscale
    /// stabilization window.
    pub fn normalize(
        &mut self,
        current: i32,
        proposed: i32,
        min: i32,
        max: i32,
        window: SignedDuration,
        now: Timestamp,
    ) -> Normalized {
        let cutoff = now - window;
        let mut stabilized = proposed;
        let mut old = None;
        for (i, (at, rec)) in self.recommendations.iter().enumerate() {
            if *at < cutoff {
                old = Some(i);
            } else if *rec > stabilized {
                stabilized = *rec;
            }
        }
        self.record(old, proposed, now);
        let able = if stabilized != proposed {
            DOWN_STABILIZED
        } else {
            READY
        };
        let limit = scale_up_limit(current);
        let (max_allowed, over) = if max > limit {
            (limit, SCALE_UP_LIMIT)
        } else {
            (max, TOO_MANY)
        };
        let (replicas, said) = if stabilized < min {
            (min, TOO_FEW)
        } else if stabilized > max_allowed {
            (max_allowed, over)
        } else {
            (stabilized, WITHIN)
        };
        Normalized {
            replicas,
            able_to_scale: able,
            limited: replicas != stabilized,
            limited_by: said,
        }
    }

    /// `normalizeDesiredReplicasWithBehaviors`; `default_down_window` fills an unset
    /// scale-down `stabilizationWindowSeconds` (`maybeInitScaleDownStabilizationWindow`).
    #[allow(clippy::too_many_arguments)]
    pub fn normalize_with_behavior(
        &mut self,
        behavior: &HorizontalPodAutoscalerBehavior,
        current: i32,
        proposed: i32,
        min: i32,
        max: i32,
        default_down_window: i64,
        now: Timestamp,
    ) -> Normalized {
        let up = behavior.scale_up.clone().unwrap_or_else(default_scale_up);
        let down = behavior
            .scale_down
            .clone()
            .unwrap_or_else(default_scale_down);
        let up_window = up.stabilization_window_seconds.map_or(0, i64::from);
        let down_window = down
            .stabilization_window_seconds
            .map_or(default_down_window, i64::from);
        // stabilizeRecommendationWithBehaviors
        let (up_cutoff, down_cutoff) = (now - secs(up_window), now - secs(down_window));
        let (mut up_rec, mut down_rec) = (proposed, proposed);
        let mut old = None;
        for (i, (at, rec)) in self.recommendations.iter().enumerate() {
            if *at > up_cutoff {
                up_rec = up_rec.min(*rec);
            }
            if *at > down_cutoff {
                down_rec = down_rec.max(*rec);
            }
            if *at < up_cutoff && *at < down_cutoff {
                old = Some(i);
            }
        }
        let stabilized = current.max(up_rec).min(down_rec);
        self.record(old, proposed, now);
        let able = if stabilized == proposed {
            READY
        } else if proposed >= current {
            UP_STABILIZED
        } else {
            DOWN_STABILIZED
        };
        // convertDesiredReplicasWithBehaviorRate
        let (replicas, said) = if stabilized > current {
            let limit = self
                .scale_up_limit_with_rules(current, &up, now)
                .max(current);
            let (max_allowed, over) = if max > limit {
                (limit, SCALE_UP_LIMIT)
            } else {
                (max, TOO_MANY)
            };
            if stabilized > max_allowed {
                (max_allowed, over)
            } else {
                (stabilized, WITHIN)
            }
        } else if stabilized < current {
            let limit = self
                .scale_down_limit_with_rules(current, &down, now)
                .min(current);
            let (min_allowed, under) = if min < limit {
                (limit, SCALE_DOWN_LIMIT)
            } else {
                (min, TOO_FEW)
            };
            if stabilized < min_allowed {
                (min_allowed, under)
            } else {
                (stabilized, WITHIN)
            }
        } else {
            (stabilized, WITHIN)
        };
        Normalized {
            replicas,
            able_to_scale: able,
            limited: replicas != stabilized,
            limited_by: said,
        }
    }

    fn change_in_period(events: &[ScaleEvent], period: i64, now: Timestamp) -> i32 {
        let cutoff = now - secs(period);
        events
            .iter()
            .filter(|e| e.at > cutoff)
            .map(|e| e.change)
            .sum()
    }

    /// The count at the start of `period`: the current one less the scalings made since.
    fn period_start(&self, current: i32, period: i64, now: Timestamp) -> i32 {
        current - Self::change_in_period(&self.scale_up, period, now)
            + Self::change_in_period(&self.scale_down, period, now)
    }

    /// `calculateScaleUpLimitWithScalingRules`.
    fn scale_up_limit_with_rules(
        &self,
        current: i32,
        rules: &HPAScalingRules,
        now: Timestamp,
    ) -> i32 {
        let select = rules.select_policy.as_deref().unwrap_or("Max");
        if select == "Disabled" {
            return current;
        }
        let mut result = if select == "Min" { i32::MAX } else { i32::MIN };
        for p in rules.policies.iter().flatten() {
            let start = self.period_start(current, i64::from(p.period_seconds), now);
            let proposed = match p.type_.as_str() {
                "Pods" => start.saturating_add(p.value),
                _ => (f64::from(start) * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32,
            };
            result = if select == "Min" {
                result.min(proposed)
            } else {
                result.max(proposed)
            };
        }
        result
    }

    /// `calculateScaleDownLimitWithBehaviors`.
    fn scale_down_limit_with_rules(
        &self,
        current: i32,
        rules: &HPAScalingRules,
        now: Timestamp,
    ) -> i32 {
        let select = rules.select_policy.as_deref().unwrap_or("Max");
        if select == "Disabled" {
            return current;
        }
        let mut result = if select == "Min" { i32::MIN } else { i32::MAX };
        for p in rules.policies.iter().flatten() {
            let start = self.period_start(current, i64::from(p.period_seconds), now);
            let proposed = match p.type_.as_str() {
                "Pods" => start.saturating_sub(p.value),
                _ => (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)) as i32,
            };
            result = if select == "Min" {
                result.max(proposed)
            } else {
                result.min(proposed)
            };
        }
        result
    }

    /// `storeScaleEvent`: remembers a scaling made, for the policies' periods (only with a
    /// `behavior`, as Kubernetes).
    pub fn store_scale_event(
        &mut self,
        behavior: Option<&HorizontalPodAutoscalerBehavior>,
        previous: i32,
        new: i32,
        now: Timestamp,
    ) {
        let Some(behavior) = behavior else {
            return;
        };
        let (events, rules, change) = if new > previous {
            (
                &mut self.scale_up,
                behavior.scale_up.clone().unwrap_or_else(default_scale_up),
                new - previous,
            )
        } else {
            (
                &mut self.scale_down,
                behavior
                    .scale_down
                    .clone()
                    .unwrap_or_else(default_scale_down),
                previous - new,
            )
        };
        let longest = rules
            .policies
            .iter()
            .flatten()
            .map(|p| i64::from(p.period_seconds))
            .max()
            .unwrap_or(0);
        let cutoff = now - secs(longest);
        for e in events.iter_mut() {
            if e.at < cutoff {
                e.outdated = true;
            }
        }
        let event = ScaleEvent {
            change,
            at: now,
            outdated: false,
        };
        match events.iter_mut().find(|e| e.outdated) {
            Some(slot) => *slot = event,
            None => events.push(event),
        }
    }
}

/// `calculateScaleUpLimit`: at most double, at least 4.
pub fn scale_up_limit(current: i32) -> i32 {
    (2.0 * f64::from(current)).max(4.0) as i32
}

/// Kubernetes' default scale-up rules (`GenerateHPAScaleUpRules`).
pub fn default_scale_up() -> HPAScalingRules {
    use k8s_openapi::api::autoscaling::v2::HPAScalingPolicy;
    HPAScalingRules {
        stabilization_window_seconds: Some(0),
        select_policy: Some("Max".into()),
        policies: Some(vec![
            HPAScalingPolicy {
                type_: "Pods".into(),
                value: 4,
                period_seconds: 15,
            },
            HPAScalingPolicy {
                type_: "Percent".into(),
                value: 100,
                period_seconds: 15,
            },
        ]),
        ..Default::default()
    }
}

/// Kubernetes' default scale-down rules (`GenerateHPAScaleDownRules`; the window comes from
/// the controller's flag).
pub fn default_scale_down() -> HPAScalingRules {
    use k8s_openapi::api::autoscaling::v2::HPAScalingPolicy;
    HPAScalingRules {
        stabilization_window_seconds: None,
        select_policy: Some("Max".into()),
        policies: Some(vec![HPAScalingPolicy {
            type_: "Percent".into(),
            value: 100,
            period_seconds: 15,
        }]),
        ..Default::default()
    }
}
