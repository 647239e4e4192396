use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn next_utc(spec: &str, from: &str) -> Option<String> {
    let s = parse(spec).expect("schedule parses");
    s.next(ts(from), &TimeZone::UTC).map(|t| t.to_string())
}

#[test]
fn errors_are_robfigs_words() {
    let cases = [
        ("", "empty spec string"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        (
            "* * * * * *",
            "expected exactly 5 fields, found 6: [* * * * * *]",
        ),
        ("61 * * * *", "end of range (61) above maximum (59): 61"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("* * * * 7", "end of range (7) above maximum (6): 7"),
        (
            "5-1 * * * *",
            "beginning of range (5) beyond end of range (1): 5-1",
        ),
        (
            "*/0 * * * *",
            "step of range should be a positive number: */0",
        ),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("1/2/3 * * * *", "too many slashes: 1/2/3"),
        (
            "a * * * *",
            "failed to parse int from a: strconv.Atoi: parsing \"a\": invalid syntax",
        ),
        (
            "-1 * * * *",
            "failed to parse int from : strconv.Atoi: parsing \"\": invalid syntax",
        ),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
        (
            "@every x",
            "failed to parse duration @every x: time: invalid duration \"x\"",
        ),
        (
            "TZ=Nowhere/City * * * * *",
            "provided bad location Nowhere/City: unknown time zone Nowhere/City",
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(parse(spec).err().as_deref(), Some(want), "{spec:?}");
    }
}

#[test]
fn next_times() {
    let cases = [
        (
            "*/15 * * * *",
            "2026-03-10T10:07:30Z",
            "2026-03-10T10:15:00Z",
        ),
        ("* * * * *", "2026-03-10T10:07:00Z", "2026-03-10T10:08:00Z"),
        (
            "* * * * *",
            "2026-03-10T10:07:59.5Z",
            "2026-03-10T10:08:00Z",
        ),
        ("0 0 * * *", "2026-03-10T10:07:30Z", "2026-03-11T00:00:00Z"),
        ("@hourly", "2026-03-10T23:59:00Z", "2026-03-11T00:00:00Z"),
        ("@daily", "2026-12-31T10:00:00Z", "2027-01-01T00:00:00Z"),
        ("@weekly", "2026-03-10T10:00:00Z", "2026-03-15T00:00:00Z"),
        ("@monthly", "2026-03-10T10:00:00Z", "2026-04-01T00:00:00Z"),
        ("@yearly", "2026-03-10T10:00:00Z", "2027-01-01T00:00:00Z"),
        // Saturday 14 March: the next weekday 09:00 is Monday.
        (
            "0 9 * * mon-fri",
            "2026-03-14T12:00:00Z",
            "2026-03-16T09:00:00Z",
        ),
        (
            "0 9 * * MON-FRI",
            "2026-03-13T08:00:00Z",
            "2026-03-13T09:00:00Z",
        ),
        // Day of month and day of week both restricted: either matches.
        (
            "0 0 1 * mon",
            "2026-03-10T10:00:00Z",
            "2026-03-16T00:00:00Z",
        ),
        (
            "0 0 1 * mon",
            "2026-03-28T10:00:00Z",
            "2026-03-30T00:00:00Z",
        ),
        (
            "0 0 1 * mon",
            "2026-03-31T10:00:00Z",
            "2026-04-01T00:00:00Z",
        ),
        // One of them a star: both must match.
        (
            "0 0 13 * fri",
            "2026-01-01T00:00:00Z",
            "2026-01-02T00:00:00Z",
        ),
        ("0 0 13 * *", "2026-01-14T00:00:00Z", "2026-02-13T00:00:00Z"),
        (
            "30 6-16/4 * * *",
            "2026-03-10T07:00:00Z",
            "2026-03-10T10:30:00Z",
        ),
        (
            "5,10 * * feb *",
            "2026-03-10T07:00:00Z",
            "2027-02-01T00:05:00Z",
        ),
        (
            "@every 90s",
            "2026-03-10T07:00:00.7Z",
            "2026-03-10T07:01:30Z",
        ),
        (
            "@every 1m30.5s",
            "2026-03-10T07:00:00Z",
            "2026-03-10T07:01:30Z",
        ),
    ];
    for (spec, from, want) in cases {
        assert_eq!(
            next_utc(spec, from).as_deref(),
            Some(want),
            "{spec} after {from}"
        );
    }
    // February never has a 31st: nothing within five years.
    assert_eq!(next_utc("0 0 31 2 *", "2026-03-10T07:00:00Z"), None);
}

#[test]
fn time_zones_follow_daylight_saving() {
    let berlin = load_location("Europe/Berlin").expect("tz database");
    let s = parse("0 9 * * *").expect("parses");
    let winter = s.next(ts("2026-01-10T00:00:00Z"), &berlin).expect("next");
    assert_eq!(winter.to_string(), "2026-01-10T08:00:00Z");
    let summer = s.next(ts("2026-07-10T00:00:00Z"), &berlin).expect("next");
    assert_eq!(summer.to_string(), "2026-07-10T07:00:00Z");
    // A prefix zone wins over the caller's.
    let p = parse("CRON_TZ=America/New_York 0 9 * * *").expect("parses");
    assert_eq!(p.prefix_zone(), Some("America/New_York"));
    let t = p.next(ts("2026-07-10T00:00:00Z"), &berlin).expect("next");
    assert_eq!(t.to_string(), "2026-07-10T13:00:00Z");
    assert_eq!(
        load_location("Mars/Olympus").err().as_deref(),
        Some("unknown time zone Mars/Olympus")
    );
}

#[test]
fn go_durations() {
    assert_eq!(go_duration("1h2m3s"), Ok(3_723_000_000_000));
    assert_eq!(go_duration("1.5s"), Ok(1_500_000_000));
    assert_eq!(go_duration(".5ms"), Ok(500_000));
    assert_eq!(go_duration("0"), Ok(0));
    assert_eq!(
        go_duration("1").err().as_deref(),
        Some("time: missing unit in duration \"1\"")
    );
    assert_eq!(
        go_duration("1x").err().as_deref(),
        Some("time: unknown unit \"x\" in duration \"1x\"")
    );
}
