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
