//! Go-style durations (`1m0s`, `200ms`, `1h2m3.5s`), the syntax the removed kubectl command
//! accepted for `--update-period`, `--poll-interval` and `--timeout`, so that old scripts keep
//! working unchanged.

use std::time::Duration;

/// Parses a Go `time.ParseDuration` string: a sequence of decimal numbers, each with a unit
/// (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`). A bare `0` is allowed; negatives are not (a
/// negative wait makes no sense for this command).
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration \"{text}\"");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() || text.starts_with('-') {
        return Err(bad());
    }
    let rest = text.strip_prefix('+').unwrap_or(text);
    let mut total = 0f64;
    let mut chars = rest.char_indices().peekable();
    let mut any = false;
    while chars.peek().is_some() {
        let start = chars.peek().map(|(i, _)| *i).unwrap_or(0);
        let mut end = start;
        while let Some((i, c)) = chars.peek().copied() {
            if c.is_ascii_digit() || c == '.' {
                end = i + c.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        let number: f64 = rest[start..end].parse().map_err(|_| bad())?;
        let unit_start = end;
        let mut unit_end = end;
        while let Some((i, c)) = chars.peek().copied() {
            if c.is_ascii_digit() || c == '.' {
                break;
            }
            unit_end = i + c.len_utf8();
            chars.next();
        }
        let scale = match &rest[unit_start..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("missing unit in duration \"{text}\"")),
            unit => return Err(format!("unknown unit \"{unit}\" in duration \"{text}\"")),
        };
        total += number * scale;
        any = true;
    }
    if !any {
        return Err(bad());
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_old_defaults_and_test_values() {
        let cases = [
            ("1m0s", Duration::from_secs(60)),
            ("3s", Duration::from_secs(3)),
            ("5m0s", Duration::from_secs(300)),
            ("5m", Duration::from_secs(300)),
            ("200ms", Duration::from_millis(200)),
            ("1h2m3s", Duration::from_secs(3723)),
            ("1.5s", Duration::from_millis(1500)),
            ("0", Duration::ZERO),
            ("10us", Duration::from_micros(10)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_what_go_rejects() {
        for text in ["", "1", "-1s", "1x", "s", "1.2.3s"] {
            assert!(parse(text).is_err(), "{text} should be rejected");
        }
    }
}
