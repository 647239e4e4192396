//! Cron schedules as Kubernetes reads a CronJob's `spec.schedule`: robfig/cron v3's
//! `ParseStandard` (five fields — minute, hour, day of month, month, day of week — with
//! `*`, `?`, lists, ranges, steps and month/day names; the `@yearly`, `@monthly`, `@weekly`,
//! `@daily`/`@midnight`, `@hourly` and `@every <duration>` descriptors; a leading `TZ=` or
//! `CRON_TZ=`), its error messages word for word (validation shows them in the 422), and its
//! `Next` — the first matching second after a time, in a time zone, with its daylight-saving
//! rules — which the CronJob controller steps through.
//!
//! Time zones are the system's tz database (`/usr/share/zoneinfo`, through `jiff`), as Go's
//! `time.LoadLocation` reads it. Written by hand: no maintained cron crate is in the offline
//! vendor set, and the messages and `Next` are Kubernetes' behaviour.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};

use crate::validation::go::quote;

/// Bit 63 of a field: it was written `*` or `?` (robfig's `starBit`), which changes how the
/// day of month and the day of week combine.
const STAR: u64 = 1 << 63;

#[derive(Clone, Copy)]
struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// A parsed schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    kind: Kind,
    /// The zone a `TZ=`/`CRON_TZ=` prefix named; `None`: the caller's zone.
    zone: Option<(String, TimeZone)>,
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    /// One bit per allowed value of each field (seconds are always 0 in the standard form).
    Spec {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
    },
    /// `@every <duration>`: a constant delay, whole seconds, at least one.
    Every(i64),
}

/// Parses `spec` as `cron.ParseStandard` does; the error is robfig's message.
pub fn parse(spec: &str) -> Result<Schedule, String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec;
    let mut zone = None;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        // robfig slices up to the first space; without one Go would panic, Baton refuses.
        let Some(space) = spec.find(' ') else {
            return Err(format!(
                "provided bad location {}: unknown time zone {}",
                &spec[eq + 1..],
                &spec[eq + 1..]
            ));
        };
        let name = spec.get(eq + 1..space).unwrap_or_default();
        match load_location(name) {
            Ok(tz) => zone = Some((name.to_string(), tz)),
            Err(e) => return Err(format!("provided bad location {name}: {e}")),
        }
        spec = spec[space..].trim();
    }
    if spec.starts_with('@') {
        return Ok(Schedule {
            kind: descriptor(spec)?,
            zone,
        });
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    Ok(Schedule {
        kind: Kind::Spec {
            minute: field(fields[0], MINUTES)?,
            hour: field(fields[1], HOURS)?,
            dom: field(fields[2], DOM)?,
            month: field(fields[3], MONTHS)?,
            dow: field(fields[4], DOW)?,
        },
        zone,
    })
}

fn all(b: Bounds) -> u64 {
    bits(b.min, b.max, 1) | STAR
}

fn descriptor(spec: &str) -> Result<Kind, String> {
    let spec_kind = |minute, hour, dom, month, dow| Kind::Spec {
        minute,
        hour,
        dom,
        month,
        dow,
    };
    Ok(match spec {
        "@yearly" | "@annually" => spec_kind(1, 1, 1 << 1, 1 << 1, all(DOW)),
        "@monthly" => spec_kind(1, 1, 1 << 1, all(MONTHS), all(DOW)),
        "@weekly" => spec_kind(1, 1, all(DOM), all(MONTHS), 1),
        "@daily" | "@midnight" => spec_kind(1, 1, all(DOM), all(MONTHS), all(DOW)),
        "@hourly" => spec_kind(1, all(HOURS), all(DOM), all(MONTHS), all(DOW)),
        _ => match spec.strip_prefix("@every ") {
            Some(d) => {
                let nanos =
                    go_duration(d).map_err(|e| format!("failed to parse duration {spec}: {e}"))?;
                // robfig's Every: at least a second, rounded down to whole seconds.
                Kind::Every((nanos / 1_000_000_000).max(1) as i64)
            }
            None => return Err(format!("unrecognized descriptor: {spec}")),
        },
    })
}

fn field(text: &str, b: Bounds) -> Result<u64, String> {
    let mut out = 0;
    for expr in text.split(',').filter(|e| !e.is_empty()) {
        out |= range(expr, b)?;
    }
    Ok(out)
}

fn range(expr: &str, b: Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end, mut extra);
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (start, end, extra) = (b.min as u64, b.max as u64, STAR);
    } else {
        start = int_or_name(low_and_high[0], b)?;
        end = match low_and_high.len() {
            1 => start,
            2 => int_or_name(low_and_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        extra = 0;
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_int(range_and_step[1])?;
            if single {
                end = b.max as u64;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min as u64 {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max as u64 {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(bits(start as u32, end as u32, step) | extra)
}

fn bits(min: u32, max: u32, step: u64) -> u64 {
    let mut out = 0u64;
    let mut i = min as u64;
    while i <= max as u64 {
        out |= 1 << i;
        i += step;
    }
    out
}

fn int_or_name(expr: &str, b: Bounds) -> Result<u64, String> {
    let lower = expr.to_ascii_lowercase();
    if let Some((_, n)) = b.names.iter().find(|(name, _)| *name == lower) {
        return Ok(*n as u64);
    }
    must_int(expr)
}

/// robfig's `mustParseInt`: Go's `strconv.Atoi`, negatives refused.
fn must_int(expr: &str) -> Result<u64, String> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    let syntax = || {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: invalid syntax",
            quote(expr)
        )
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(syntax());
    }
    let n: i64 = expr.parse().map_err(|_| {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: value out of range",
            quote(expr)
        )
    })?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    Ok(n as u64)
}

/// Go's `time.ParseDuration`, in nanoseconds (saturating), with its error messages.
pub fn go_duration(s: &str) -> Result<u128, String> {
    let invalid = || format!("time: invalid duration {}", quote(s));
    let mut rest = s.strip_prefix(['-', '+']).unwrap_or(s);
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "" => return Err(format!("time: missing unit in duration {}", quote(s))),
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            u => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    quote(u),
                    quote(s)
                ));
            }
        };
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut value = int.saturating_mul(scale);
        value = value.saturating_add(fraction(frac_part, scale));
        total = total.saturating_add(value);
        rest = after;
    }
    Ok(total)
}

/// The nanoseconds `0.<frac>` units of `scale` nanoseconds make, rounded down.
fn fraction(frac: &str, scale: u128) -> u128 {
    let mut num: u128 = 0;
    let mut den: u128 = 1;
    for d in frac.bytes().take(30) {
        num = num * 10 + (d - b'0') as u128;
        den *= 10;
    }
    num.saturating_mul(scale) / den
}

/// Go's `time.LoadLocation`: `""` and `UTC` are UTC, `Local` the machine's zone, any other
/// name a zone of the system's tz database; the error is Go's.
pub fn load_location(name: &str) -> Result<TimeZone, String> {
    match name {
        "" | "UTC" => Ok(TimeZone::UTC),
        "Local" => Ok(local_zone()),
        _ => jiff::tz::db()
            .get(name)
            .map_err(|_| format!("unknown time zone {name}")),
    }
}

/// The machine's zone as Go's `time.Local` finds it: `$TZ`, else `/etc/localtime`, else UTC.
pub fn local_zone() -> TimeZone {
    if let Ok(tz) = std::env::var("TZ") {
        let name = tz.strip_prefix(':').unwrap_or(&tz);
        if name.is_empty() || name == "UTC" {
            return TimeZone::UTC;
        }
        if let Ok(zone) = jiff::tz::db().get(name) {
            return zone;
        }
    }
    std::fs::read("/etc/localtime")
        .ok()
        .and_then(|data| TimeZone::tzif("Local", &data).ok())
        .unwrap_or(TimeZone::UTC)
}

impl Schedule {
    /// The zone named by a `TZ=`/`CRON_TZ=` prefix, if any.
    pub fn prefix_zone(&self) -> Option<&str> {
        self.zone.as_ref().map(|(n, _)| n.as_str())
    }

    /// The first time after `t` the schedule fires (robfig's `Next`), in the prefix's zone
    /// or else `tz`; `None` when nothing matches within five years.
    pub fn next(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let tz = self.zone.as_ref().map_or(tz, |(_, z)| z);
        match self.kind {
            Kind::Every(secs) => {
                let t = floor_second(t);
                t.checked_add(SignedDuration::from_secs(secs)).ok()
            }
            Kind::Spec {
                minute,
                hour,
                dom,
                month,
                dow,
            } => next_spec(t, tz, [minute, hour, dom, month, dow]),
        }
    }
}

fn floor_second(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

fn at(date: Date, h: i8, m: i8, tz: &TimeZone) -> Option<Zoned> {
    DateTime::from_parts(date, jiff::civil::time(h, m, 0, 0))
        .to_zoned(tz.clone())
        .ok()
}

fn day_matches(dom: u64, dow: u64, z: &Zoned) -> bool {
    let dom_match = dom & (1 << z.day()) != 0;
    let dow_match = dow & (1 << z.weekday().to_sunday_zero_offset()) != 0;
    if dom & STAR != 0 || dow & STAR != 0 {
        dom_match && dow_match
    } else {
        dom_match || dow_match
    }
}

fn next_spec(
    t: Timestamp,
    tz: &TimeZone,
    [minute, hour, dom, month, dow]: [u64; 5],
) -> Option<Timestamp> {
    // Start at the earliest possible time: the upcoming second.
    let start = floor_second(t)
        .checked_add(SignedDuration::from_secs(1))
        .ok()?;
    let mut z = start.to_zoned(tz.clone());
    let mut added = false;
    let year_limit = z.year() + 5;
    'wrap: loop {
        if z.year() > year_limit {
            return None;
        }
        while month & (1 << z.month()) == 0 {
            if !added {
                added = true;
                z = at(z.date().first_of_month(), 0, 0, tz)?;
            }
            let next = z
                .date()
                .first_of_month()
                .checked_add(jiff::Span::new().months(1))
                .ok()?;
            z = at(next, z.hour(), z.minute(), tz)?;
            if z.month() == 1 {
                continue 'wrap;
            }
        }
        while !day_matches(dom, dow, &z) {
            if !added {
                added = true;
                z = at(z.date(), 0, 0, tz)?;
            }
            z = at(z.date().tomorrow().ok()?, z.hour(), z.minute(), tz)?;
            // A daylight-saving change moved midnight: go back to it (or on to the next).
            let h = z.hour() as i64;
            if h != 0 {
                let shift = if h > 12 { 24 - h } else { -h };
                z = z
                    .timestamp()
                    .checked_add(SignedDuration::from_hours(shift))
                    .ok()?
                    .to_zoned(tz.clone());
            }
            if z.day() == 1 {
                continue 'wrap;
            }
        }
        while hour & (1 << z.hour()) == 0 {
            if !added {
                added = true;
                z = at(z.date(), z.hour(), 0, tz)?;
            }
            z = z
                .timestamp()
                .checked_add(SignedDuration::from_hours(1))
                .ok()?
                .to_zoned(tz.clone());
            if z.hour() == 0 {
                continue 'wrap;
            }
        }
        while minute & (1 << z.minute()) == 0 {
            if !added {
                added = true;
                z = Timestamp::from_second(z.timestamp().as_second().div_euclid(60) * 60)
                    .ok()?
                    .to_zoned(tz.clone());
            }
            z = z
                .timestamp()
                .checked_add(SignedDuration::from_mins(1))
                .ok()?
                .to_zoned(tz.clone());
            if z.minute() == 0 {
                continue 'wrap;
            }
        }
        // Seconds: the standard form fires at second 0 only.
        while z.second() != 0 {
            if !added {
                added = true;
                z = floor_second(z.timestamp()).to_zoned(tz.clone());
            }
            z = z
                .timestamp()
                .checked_add(SignedDuration::from_secs(1))
                .ok()?
                .to_zoned(tz.clone());
            if z.second() == 0 {
                continue 'wrap;
            }
        }
        return Some(z.timestamp());
    }
}

#[cfg(test)]
mod tests;
