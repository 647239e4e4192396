use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

static UTC: std::sync::LazyLock<TimeZone> = std::sync::LazyLock::new(|| TimeZone::UTC);

fn facts<'a>(
    s: &'a Schedule,
    created: &str,
    last: Option<&str>,
    deadline: Option<i64>,
) -> Facts<'a> {
    Facts {
        schedule: s,
        zone: &UTC,
        created: ts(created),
        last_schedule: last.map(ts),
        starting_deadline: deadline,
    }
}

/// A CronJob every minute, driven by a clock the test moves: what is due at each step, and
/// what the controller then records, as the controller's sync would.
#[test]
fn every_minute_with_a_controllable_clock() {
    let s = baton_api::cron::parse("* * * * *").expect("parses");
    let mut last: Option<Timestamp> = None;
    let created = "2026-03-10T10:00:30Z";
    let mut started = Vec::new();
    let mut now = ts("2026-03-10T10:00:31Z");
    for _ in 0..300 {
        let f = Facts {
            schedule: &s,
            zone: &UTC,
            created: ts(created),
            last_schedule: last,
            starting_deadline: None,
        };
        if let (Some(t), _) = due_now(&f, now).expect("valid") {
            started.push(job_name("every", t));
            last = Some(t);
        }
        now += SignedDuration::from_secs(1);
    }
    // 10:00:31 .. 10:05:30: starts at 10:01, 10:02, 10:03, 10:04, 10:05, once each.
    let minute = ts("2026-03-10T10:01:00Z").as_second() / 60;
    let want: Vec<String> = (0..5).map(|i| format!("every-{}", minute + i)).collect();
    assert_eq!(started, want);
}

#[test]
fn requeue_waits_for_the_next_start_plus_a_delta() {
    let s = baton_api::cron::parse("*/5 * * * *").expect("parses");
    let f = facts(&s, "2026-03-10T10:00:30Z", None, None);
    let d = requeue_after(&f, ts("2026-03-10T10:02:00Z"));
    assert_eq!(d, std::time::Duration::from_secs(180) + NEXT_SCHEDULE_DELTA);
    let f = facts(
        &s,
        "2026-03-10T10:00:30Z",
        Some("2026-03-10T10:05:00Z"),
        None,
    );
    let d = requeue_after(&f, ts("2026-03-10T10:05:00.5Z"));
    assert_eq!(
        d,
        std::time::Duration::from_millis(299_500) + NEXT_SCHEDULE_DELTA
    );
}

#[test]
fn missed_start_times() {
    let s = baton_api::cron::parse("* * * * *").expect("parses");
    // Down for half an hour: the latest missed start is run, the others are not.
    let f = facts(
        &s,
        "2026-03-10T10:00:30Z",
        Some("2026-03-10T10:01:00Z"),
        None,
    );
    let (t, missed) = due_now(&f, ts("2026-03-10T10:31:10Z")).expect("valid");
    assert_eq!(t, Some(ts("2026-03-10T10:31:00Z")));
    assert_eq!(missed, Missed::Few);
    // Over 100 missed: said so.
    let (t, missed) = due_now(&f, ts("2026-03-10T13:00:10Z")).expect("valid");
    assert_eq!(t, Some(ts("2026-03-10T13:00:00Z")));
    assert_eq!(missed, Missed::Many);
    // A starting deadline counts only from `now - deadline`.
    let f = facts(
        &s,
        "2026-03-10T10:00:30Z",
        Some("2026-03-10T10:01:00Z"),
        Some(30),
    );
    let (t, missed) = due_now(&f, ts("2026-03-10T13:00:10Z")).expect("valid");
    assert_eq!(t, Some(ts("2026-03-10T13:00:00Z")));
    assert_eq!(missed, Missed::None);
    // ... and a start time older than the deadline is not due at all.
    let f = facts(
        &s,
        "2026-03-10T10:00:30Z",
        Some("2026-03-10T10:01:00Z"),
        Some(5),
    );
    let (t, _) = due_now(&f, ts("2026-03-10T13:00:10Z")).expect("valid");
    assert_eq!(t, None);
}

#[test]
fn a_schedule_that_never_repeats_is_an_error_once_due() {
    let s = baton_api::cron::parse("0 0 30 2 *").expect("parses");
    let f = facts(&s, "2026-03-10T10:00:30Z", None, None);
    assert_eq!(
        due_now(&f, ts("2026-03-10T10:00:40Z")),
        Ok((None, Missed::None))
    );
}

#[test]
fn names_and_annotations() {
    let t = ts("2026-03-10T10:01:00Z");
    assert_eq!(
        job_name("hello", t),
        format!("hello-{}", t.as_second() / 60)
    );
    assert_eq!(
        scheduled_timestamp(t, &TimeZone::UTC),
        "2026-03-10T10:01:00Z"
    );
    let berlin = baton_api::cron::load_location("Europe/Berlin").expect("tz database");
    assert_eq!(scheduled_timestamp(t, &berlin), "2026-03-10T11:01:00+01:00");
    assert_eq!(rfc1123z(t), "Tue, 10 Mar 2026 10:01:00 +0000");
}
