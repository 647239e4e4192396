//! The rolling update's scale arithmetic, as the removed `kubectl rolling-update` did it:
//! how far the new controller may grow without exceeding `desired + maxSurge` pods, and how
//! far the old one may shrink while keeping `desired - maxUnavailable` pods available.
//! Plain functions, so the bounds are tested without a cluster.

/// The limits of one update, fixed when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Replicas the new controller ends with.
    pub desired: i32,
    /// Pods allowed above `desired` while both controllers run.
    pub max_surge: i32,
    /// Pods allowed below `desired` to be unavailable.
    pub max_unavailable: i32,
    /// Pods that must stay available throughout.
    pub min_available: i32,
}

impl Bounds {
    /// Resolves the fenceposts like kubectl did: if both limits are 0, one pod may be
    /// unavailable (otherwise nothing could move); a desired count of 0 lets the old
    /// controller go entirely.
    pub fn new(desired: i32, max_surge: i32, max_unavailable: i32, old_replicas: i32) -> Self {
        let mut max_unavailable = max_unavailable;
        if max_surge == 0 && max_unavailable == 0 {
            max_unavailable = 1;
        }
        let mut min_available = (desired - max_unavailable).max(0);
        if desired == 0 {
            max_unavailable = old_replicas;
            min_available = 0;
        }
        Bounds {
            desired,
            max_surge,
            max_unavailable,
            min_available,
        }
    }

    /// The most pods the update may run at once (the "don't exceed" of the summary line).
    pub fn max_total(&self) -> i32 {
        self.desired + self.max_surge
    }

    /// The new controller's next replica count, or `None` when it cannot (or need not) grow.
    pub fn scale_up(&self, new_replicas: i32, old_replicas: i32) -> Option<i32> {
        if new_replicas == self.desired {
            return None;
        }
        let increment = if old_replicas == 0 {
            // The old controller is gone: grow straight to the goal.
            self.desired - new_replicas
        } else {
            self.max_total() - (old_replicas + new_replicas)
        };
        if increment <= 0 {
            return None;
        }
        Some((new_replicas + increment).min(self.desired))
    }

    /// The old controller's next replica count given how many new pods are available, or
    /// `None` when shrinking it now would break the availability floor.
    pub fn scale_down(
        &self,
        new_replicas: i32,
        old_replicas: i32,
        new_available: i32,
    ) -> Option<i32> {
        if old_replicas == 0 {
            return None;
        }
        let all = old_replicas + new_replicas;
        let new_unavailable = new_replicas - new_available;
        let decrement = all - self.min_available - new_unavailable;
        if decrement <= 0 {
            return None;
        }
        let mut next = (old_replicas - decrement).max(0);
        if new_replicas == self.desired && new_available == self.desired {
            next = 0;
        }
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_example_one_replica() {
        let b = Bounds::new(1, 1, 0, 1);
        assert_eq!((b.min_available, b.max_total()), (1, 2));
        assert_eq!(b.scale_up(0, 1), Some(1));
        // The new pod is not Ready yet: keep the old one.
        assert_eq!(b.scale_down(1, 1, 0), None);
        assert_eq!(b.scale_down(1, 1, 1), Some(0));
        assert_eq!(b.scale_up(1, 0), None);
    }

    #[test]
    fn five_replicas_step_by_one_within_bounds() {
        let b = Bounds::new(5, 1, 0, 5);
        let (mut new, mut old) = (0, 5);
        let mut steps = 0;
        while new != 5 || old != 0 {
            if let Some(n) = b.scale_up(new, old) {
                new = n;
            }
            assert!(new + old <= b.max_total(), "surge exceeded at {new}+{old}");
            // Every new pod becomes available before the scale-down.
            if let Some(o) = b.scale_down(new, old, new) {
                old = o;
            }
            assert!(new + old >= b.min_available);
            steps += 1;
            assert!(steps < 20, "no convergence");
        }
        assert_eq!(steps, 5);
    }

    #[test]
    fn table_of_scale_steps() {
        // (desired, surge, unavailable, new, old, new_available, up, down)
        let cases = [
            (3, 1, 0, 0, 3, 0, Some(1), None),
            (3, 1, 0, 1, 3, 1, None, Some(2)),
            (3, 1, 0, 3, 1, 2, None, None),
            (3, 1, 0, 3, 1, 3, None, Some(0)),
            (3, 0, 1, 0, 3, 0, None, Some(2)),
            (3, 2, 0, 0, 3, 0, Some(2), None),
            (3, 1, 0, 1, 0, 0, Some(3), None),
        ];
        for (d, s, u, new, old, avail, up, down) in cases {
            let b = Bounds::new(d, s, u, old);
            assert_eq!(b.scale_up(new, old), up, "up {d} {s} {u} {new} {old}");
            assert_eq!(
                b.scale_down(new, old, avail),
                down,
                "down {d} {s} {u} {new} {old} {avail}"
            );
        }
    }

    #[test]
    fn fenceposts() {
        assert_eq!(Bounds::new(3, 0, 0, 3).max_unavailable, 1);
        let zero = Bounds::new(0, 1, 0, 4);
        assert_eq!((zero.min_available, zero.max_unavailable), (0, 4));
    }
}
