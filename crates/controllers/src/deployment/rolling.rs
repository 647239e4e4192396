//! The rollout arithmetic, as Kubernetes does it: fenceposts (maxSurge rounds up,
//! maxUnavailable rounds down, never both zero), how far the new ReplicaSet may grow, and
//! how far old ReplicaSets may shrink — unhealthy replicas first, then oldest first.
//! Pure functions over plain numbers, tested by tables; [`rollout`] at the end applies them
//! to a Deployment's ReplicaSets.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::sync::scale_rs;
use super::{Ctx, available, spec_replicas};
use crate::error::Error;

/// An int or a percentage of `total`, rounded up or down.
pub fn scaled_value(v: Option<&IntOrString>, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        None => Ok(0),
        Some(IntOrString::Int(n)) => Ok(*n),
        Some(IntOrString::String(s)) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let prod = pct * i64::from(total);
            let v = if round_up {
                (prod + 99).div_euclid(100)
            } else {
                prod.div_euclid(100)
            };
            Ok(v as i32)
        }
    }
}

/// (maxSurge, maxUnavailable) for `desired` replicas.
pub fn resolve_fenceposts(
    surge: Option<&IntOrString>,
    unavailable: Option<&IntOrString>,
    desired: i32,
) -> (i32, i32) {
    let s = scaled_value(surge, desired, true).unwrap_or(0);
    let u = scaled_value(unavailable, desired, false).unwrap_or(0);
    if s == 0 && u == 0 { (0, 1) } else { (s, u) }
}

/// Kubernetes' `MaxUnavailable`: 0 for non-rolling or zero replicas, capped at replicas.
pub fn max_unavailable(rolling: bool, replicas: i32, fence_unavailable: i32) -> i32 {
    if !rolling || replicas == 0 {
        0
    } else {
        fence_unavailable.min(replicas)
    }
}

/// How many replicas the new ReplicaSet should have (`NewRSNewReplicas`, rolling case).
pub fn new_rs_new_replicas(
    replicas: i32,
    max_surge: i32,
    all_spec_total: i32,
    new_spec: i32,
) -> i32 {
    if new_spec >= replicas {
        // Equal: nothing to do; larger: scale it back down to the target.
        return replicas;
    }
    let max_total = replicas + max_surge;
    if all_spec_total >= max_total {
        return new_spec;
    }
    new_spec + (max_total - all_spec_total).min(replicas - new_spec)
}

/// One old ReplicaSet as the scale-down steps see it (already sorted oldest first).
#[derive(Clone, Debug, PartialEq)]
pub struct Old {
    pub spec: i32,
    pub available: i32,
}

/// Step 2 budget: how many replicas may go (`maxScaledDown`); ≤ 0 means none.
pub fn max_scaled_down(
    all_spec_total: i32,
    min_available: i32,
    new_spec: i32,
    new_available: i32,
) -> i32 {
    all_spec_total - min_available - (new_spec - new_available)
}

/// Step 2(a): shrink old ReplicaSets by their unavailable replicas, within `budget`.
/// Returns the new sizes and how many were removed.
pub fn cleanup_unhealthy(olds: &[Old], budget: i32) -> (Vec<i32>, i32) {
    let mut sizes: Vec<i32> = olds.iter().map(|o| o.spec).collect();
    let mut total = 0;
    for (i, o) in olds.iter().enumerate() {
        if total >= budget {
            break;
        }
        if o.spec == 0 || o.spec == o.available {
            continue;
        }
        let cut = (budget - total).min(o.spec - o.available);
        sizes[i] = o.spec - cut;
        total += cut;
    }
    (sizes, total)
}

/// Step 2(b): remove `total_available − min_available` replicas, oldest first.
pub fn scale_down_old(sizes: &[i32], total_available: i32, min_available: i32) -> (Vec<i32>, i32) {
    let mut out = sizes.to_vec();
    if total_available <= min_available {
        return (out, 0);
    }
    let mut left = total_available - min_available;
    let mut removed = 0;
    for s in out.iter_mut() {
        if left == 0 {
            break;
        }
        if *s == 0 {
            continue;
        }
        let cut = (*s).min(left);
        *s -= cut;
        left -= cut;
        removed += cut;
    }
    (out, removed)
}

/// Proportional share for one ReplicaSet when the deployment is resized mid-rollout:
/// `round(spec * (replicas + surge) / annotated_max) − spec`, halves away from zero.
pub fn proportion(
    rs_spec: i32,
    to_add: i32,
    added: i32,
    replicas: i32,
    max_surge: i32,
    annotated_max: i32,
) -> i32 {
    if rs_spec == 0 || to_add == 0 {
        return 0;
    }
    let fraction = if replicas == 0 || annotated_max == 0 {
        -rs_spec
    } else {
        let num = f64::from(rs_spec) * f64::from(replicas + max_surge) / f64::from(annotated_max);
        num.round() as i32 - rs_spec
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// One RollingUpdate step (Kubernetes' `rolloutRolling`): grow the new ReplicaSet as far as
/// maxSurge allows; otherwise shrink old ones as far as maxUnavailable allows. True when a
/// size changed.
pub(super) async fn rollout(
    ctx: &Ctx<'_>,
    new: &ReplicaSet,
    olds: &[ReplicaSet],
) -> Result<bool, Error> {
    let replicas = ctx.d.spec.replicas.unwrap_or(1);
    let all_total: i32 =
        new.spec.replicas.unwrap_or(0) + olds.iter().map(spec_replicas).sum::<i32>();
    let new_size = new_rs_new_replicas(replicas, ctx.max_surge, all_total, spec_replicas(new));
    if scale_rs(ctx, new, new_size).await? {
        return Ok(true);
    }
    let active_olds: Vec<&ReplicaSet> = olds.iter().filter(|o| spec_replicas(o) > 0).collect();
    if active_olds.is_empty() {
        return Ok(false);
    }
    let min_available = replicas - ctx.max_unavailable;
    let budget = max_scaled_down(all_total, min_available, spec_replicas(new), available(new));
    if budget <= 0 {
        return Ok(false);
    }
    let views: Vec<Old> = active_olds
        .iter()
        .map(|o| Old {
            spec: spec_replicas(o),
            available: available(o),
        })
        .collect();
    let (sizes, _) = cleanup_unhealthy(&views, budget);
    let total_available: i32 = available(new) + olds.iter().map(available).sum::<i32>();
    let (sizes, _) = scale_down_old(&sizes, total_available, min_available);
    let mut changed = false;
    for (o, size) in active_olds.iter().zip(sizes) {
        changed |= scale_rs(ctx, o, size).await?;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    #[test]
    fn fenceposts_table() {
        let i = IntOrString::Int;
        // (surge, unavailable, replicas) -> (surge, unavailable)
        let cases = [
            (Some(pct("25%")), Some(pct("25%")), 10, (3, 2)),
            (Some(pct("25%")), Some(pct("25%")), 3, (1, 0)),
            (Some(pct("25%")), Some(pct("25%")), 1, (1, 0)),
            (Some(pct("0%")), Some(pct("0%")), 5, (0, 1)),
            (Some(i(0)), Some(pct("10%")), 5, (0, 1)),
            (Some(i(1)), Some(i(1)), 3, (1, 1)),
            (Some(pct("50%")), Some(pct("50%")), 5, (3, 2)),
            (Some(pct("100%")), Some(i(0)), 4, (4, 0)),
            (None, None, 3, (0, 1)),
            (Some(pct("25%")), Some(pct("25%")), 0, (0, 1)),
        ];
        for (s, u, r, want) in cases {
            assert_eq!(
                resolve_fenceposts(s.as_ref(), u.as_ref(), r),
                want,
                "{s:?} {u:?} {r}"
            );
        }
    }

    #[test]
    fn max_unavailable_table() {
        assert_eq!(max_unavailable(true, 3, 1), 1);
        assert_eq!(max_unavailable(true, 2, 5), 2);
        assert_eq!(max_unavailable(true, 0, 1), 0);
        assert_eq!(max_unavailable(false, 3, 1), 0);
    }

    #[test]
    fn new_replicas_table() {
        // (replicas, surge, all spec total, new spec) -> new spec
        let cases = [
            (3, 1, 3, 0, 1),
            (3, 1, 4, 1, 1),
            (3, 1, 3, 1, 2),
            (10, 3, 10, 0, 3),
            (10, 3, 12, 3, 4),
            (3, 0, 3, 0, 0),
            (3, 1, 3, 3, 3),
            (3, 1, 5, 5, 3),
            (5, 5, 5, 0, 5),
        ];
        for (r, s, total, new, want) in cases {
            assert_eq!(
                new_rs_new_replicas(r, s, total, new),
                want,
                "{r} {s} {total} {new}"
            );
        }
    }

    #[test]
    fn scale_down_table() {
        // 3 replicas, maxUnavailable 1: min available 2; new RS 1 spec/0 available; old 3/3.
        assert_eq!(max_scaled_down(4, 2, 1, 0), 1);
        assert_eq!(max_scaled_down(4, 3, 1, 0), 0);
        let olds = [
            Old {
                spec: 2,
                available: 1,
            },
            Old {
                spec: 3,
                available: 3,
            },
        ];
        assert_eq!(cleanup_unhealthy(&olds, 5), (vec![1, 3], 1));
        assert_eq!(cleanup_unhealthy(&olds, 0), (vec![2, 3], 0));
        let unhealthy = [
            Old {
                spec: 4,
                available: 0,
            },
            Old {
                spec: 2,
                available: 0,
            },
        ];
        assert_eq!(cleanup_unhealthy(&unhealthy, 5), (vec![0, 1], 5));
        assert_eq!(scale_down_old(&[2, 3], 5, 2), (vec![0, 2], 3));
        assert_eq!(scale_down_old(&[2, 3], 2, 2), (vec![2, 3], 0));
        assert_eq!(scale_down_old(&[0, 3], 4, 2), (vec![0, 1], 2));
    }

    #[test]
    fn proportions() {
        // 10 → 15 replicas, surge 3 (annotated max 13): RS of 5 gets round(5*18/13)-5 = 2.
        assert_eq!(proportion(5, 5, 0, 15, 3, 13), 2);
        // Scaling down 10 → 5: RS of 8, max 13, surge 2: round(8*7/13)-8 = -4.
        assert_eq!(proportion(8, -6, 0, 5, 2, 13), -4);
        // Capped by what is left to add.
        assert_eq!(proportion(5, 1, 0, 15, 3, 13), 1);
        // Deployment scaled to zero.
        assert_eq!(proportion(4, -4, 0, 0, 0, 5), -4);
    }
}
