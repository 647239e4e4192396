//! The pure part of the CronJob controller (`pkg/controller/cronjob/utils.go`): which
//! scheduled time is due now, when to look again, and the Job a scheduled time makes. Every
//! function takes `now`, so the tests drive the schedule with their own clock.

use baton_api::cron::Schedule;
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// How many start times were missed since the last one (`missedSchedulesType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    None,
    Few,
    /// More than 100: the controller says so in a `TooManyMissedTimes` event.
    Many,
}

/// What `mostRecentScheduleTime` returns: the time counted from, the latest start time due
/// at `now` (if any), and how many were missed.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub earliest: Timestamp,
    pub most_recent: Option<Timestamp>,
    pub missed: Missed,
}

/// The CronJob facts the schedule needs.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub schedule: &'a Schedule,
    pub zone: &'a TimeZone,
    pub created: Timestamp,
    pub last_schedule: Option<Timestamp>,
    pub starting_deadline: Option<i64>,
}

/// The delay Kubernetes adds to each requeue (`nextScheduleDelta`).
pub const NEXT_SCHEDULE_DELTA: std::time::Duration = std::time::Duration::from_millis(100);

/// `mostRecentScheduleTime`; an error for a schedule that never fires twice a second apart
/// (`0 0 31 2 *`).
pub fn most_recent(f: &Facts, now: Timestamp, with_deadline: bool) -> Result<Due, String> {
    let mut earliest = f.last_schedule.unwrap_or(f.created);
    if with_deadline && let Some(d) = f.starting_deadline {
        let deadline = now - SignedDuration::from_secs(d);
        if deadline > earliest {
            earliest = deadline;
        }
    }
    let none = |missed| Due {
        earliest,
        most_recent: None,
        missed,
    };
    let next = |t: Timestamp| f.schedule.next(t, f.zone);
    let (Some(t1), Some(t2)) = (next(earliest), next(earliest).and_then(next)) else {
        return match next(earliest) {
            Some(t1) if now >= t1 => Ok(Due {
                earliest,
                most_recent: Some(t1),
                missed: Missed::None,
            }),
            _ => Ok(none(Missed::None)),
        };
    };
    if now < t1 {
        return Ok(none(Missed::None));
    }
    if now < t2 {
        return Ok(Due {
            earliest,
            most_recent: Some(t1),
            missed: Missed::None,
        });
    }
    let between = (t2.duration_since(t1).as_millis() as f64 / 1000.0).round() as i64;
    if between < 1 {
        return Err("time difference between two schedules is less than 1 second".into());
    }
    let elapsed = now.duration_since(t1).as_secs();
    let missed_count = elapsed / between + 1;
    let mut potential = t1 + SignedDuration::from_secs((missed_count - 2) * between);
    let mut most_recent = None;
    while let Some(t) = next(potential) {
        if t > now {
            break;
        }
        most_recent = Some(t);
        potential = t;
    }
    let missed = if missed_count > 100 {
        Missed::Many
    } else {
        Missed::Few
    };
    Ok(Due {
        earliest,
        most_recent,
        missed,
    })
}

/// `nextScheduleTime`: the start time to act on now, if one is due.
pub fn due_now(f: &Facts, now: Timestamp) -> Result<(Option<Timestamp>, Missed), String> {
    let due = most_recent(f, now, true)?;
    Ok((due.most_recent.filter(|t| *t <= now), due.missed))
}

/// `nextScheduleTimeDuration`: how long until the sync after the next start time.
pub fn requeue_after(f: &Facts, now: Timestamp) -> std::time::Duration {
    let from = match most_recent(f, now, false) {
        Err(_) => now,
        Ok(Due {
            most_recent: Some(t),
            ..
        }) => t,
        Ok(Due {
            earliest,
            missed: Missed::None,
            ..
        }) => earliest,
        Ok(_) => now,
    };
    let Some(next) = f.schedule.next(from, f.zone) else {
        // Nothing within five years: look again in a day.
        return std::time::Duration::from_secs(24 * 3600);
    };
    let wait = next.duration_since(now).as_millis().max(0) as u64;
    std::time::Duration::from_millis(wait) + NEXT_SCHEDULE_DELTA
}

/// `getJobName`: `<cronjob>-<scheduled time in minutes since the epoch>`.
pub fn job_name(cron_job: &str, scheduled: Timestamp) -> String {
    format!("{cron_job}-{}", scheduled.as_second().div_euclid(60))
}

/// The `batch.kubernetes.io/cronjob-scheduled-timestamp` value: RFC 3339 in the zone.
pub fn scheduled_timestamp(scheduled: Timestamp, zone: &TimeZone) -> String {
    let z = scheduled.to_zoned(zone.clone());
    let offset = z.offset().seconds();
    let base = z.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    if offset == 0 {
        format!("{base}Z")
    } else {
        format!("{base}{}", z.strftime("%:z"))
    }
}

/// `time.RFC1123Z` in UTC, as the `MissSchedule` event writes a time.
pub fn rfc1123z(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC)
        .strftime("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

#[cfg(test)]
mod tests;
