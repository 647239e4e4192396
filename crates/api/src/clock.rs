//! The one clock: what "now" is and how a time is written on the wire. Kubernetes writes
//! `metav1.Time` as RFC 3339 in whole seconds with a `Z` (`2006-01-02T15:04:05Z`) and
//! `metav1.MicroTime` with six fractional digits; every component of Baton asks here instead
//! of formatting times its own way.

use k8s_openapi::jiff::Timestamp;

/// The current time (from the system clock; before 1970 reads as 1970).
pub fn now() -> Timestamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_secs())
        .ok()
        .and_then(|s| Timestamp::new(s, since.subsec_nanos() as i32).ok())
        .unwrap_or(Timestamp::MAX)
}

/// `t` as Kubernetes writes a `metav1.Time`: RFC 3339, whole seconds, UTC (`…T15:04:05Z`).
pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// [`now`] as [`rfc3339`].
pub fn now_rfc3339() -> String {
    rfc3339(now())
}

/// `t` as Kubernetes writes a `metav1.MicroTime`: six fractional digits, UTC.
pub fn rfc3339_micro(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// [`now`] as [`rfc3339_micro`].
pub fn now_rfc3339_micro() -> String {
    rfc3339_micro(now())
}

/// `t` as container runtimes write a log line's time (Go's `RFC3339Nano` in UTC: nine
/// fractional digits here, as CRI-O and containerd write them).
pub fn rfc3339_nano(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// `d` as Go's `time.Duration.String()` writes it (`523.5ms`, `1.25s`, `2m0s`, `1h0m3s`): the
/// kubelet's event messages quote durations this way.
pub fn go_duration_string(d: std::time::Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    // Integer part and fraction (trailing zeros trimmed) of `ns / unit`.
    let frac = |ns: u128, unit: u128, digits: usize| {
        let whole = ns / unit;
        let rest = ns % unit;
        if rest == 0 {
            whole.to_string()
        } else {
            let f = format!("{rest:0digits$}");
            format!("{whole}.{}", f.trim_end_matches('0'))
        }
    };
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns, 1_000, 3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns, 1_000_000, 6));
    }
    let secs = ns / 1_000_000_000;
    let seconds = frac(ns % 60_000_000_000, 1_000_000_000, 9);
    let (h, m) = (secs / 3600, (secs / 60) % 60);
    match (h, m) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// `t` for code that computes with chrono (the table printers' ages).
pub fn to_chrono(t: Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32)
        .unwrap_or_default()
}

/// `now + seconds`, as [`rfc3339`] (a deletion timestamp a grace period ahead). Saturates at
/// the end of representable time instead of failing.
pub fn rfc3339_in(seconds: i64) -> String {
    let t = now();
    let later = t
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(seconds))
        .unwrap_or(Timestamp::MAX);
    rfc3339(later)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_writes_them() {
        use std::time::Duration;
        let d = |ns: u64| go_duration_string(Duration::from_nanos(ns));
        assert_eq!(d(0), "0s");
        assert_eq!(d(999), "999ns");
        assert_eq!(d(1_500), "1.5µs");
        assert_eq!(d(523_500_000), "523.5ms");
        assert_eq!(d(1_000_000_000), "1s");
        assert_eq!(d(1_250_000_000), "1.25s");
        assert_eq!(d(120_000_000_000), "2m0s");
        assert_eq!(d(3_603_000_000_000), "1h0m3s");
        assert_eq!(d(61_000_000_001), "1m1.000000001s");
    }

    #[test]
    fn times_are_whole_seconds_in_utc() {
        let t: Timestamp = "2024-03-05T06:07:08.912345678+02:00".parse().expect("time");
        assert_eq!(rfc3339(t), "2024-03-05T04:07:08Z");
        assert_eq!(rfc3339(Timestamp::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_micro(t), "2024-03-05T04:07:08.912345Z");
        assert_eq!(
            to_chrono(t).to_rfc3339(),
            "2024-03-05T04:07:08.912345678+00:00"
        );
    }

    #[test]
    fn now_is_parseable_and_grace_is_ahead() {
        let now: Timestamp = now_rfc3339().parse().expect("now parses");
        let later: Timestamp = rfc3339_in(30).parse().expect("later parses");
        let gap = later.duration_since(now).as_secs();
        assert!((29..=31).contains(&gap), "{gap}");
        assert!(rfc3339_in(i64::MAX).starts_with("9999-"));
    }
}
