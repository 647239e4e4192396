//! Latency samples and the figures drawn from them (nearest-rank percentiles, throughput), and
//! the JSON lines the harness prints: one object per figure, `{"bench":…,"value":…}`.

use std::time::Duration;

/// Latencies of one measured phase, with the wall time the phase took.
#[derive(Debug, Default)]
pub struct Samples {
    micros: Vec<u64>,
    pub wall: Duration,
}

impl Samples {
    pub fn with_capacity(n: usize) -> Self {
        Samples {
            micros: Vec::with_capacity(n),
            wall: Duration::ZERO,
        }
    }

    pub fn push(&mut self, d: Duration) {
        self.micros
            .push(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn extend(&mut self, other: Samples) {
        self.micros.extend(other.micros);
    }

    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// The nearest-rank percentile `p` (0..=100) in milliseconds; 0 when empty.
    pub fn percentile_ms(&mut self, p: f64) -> f64 {
        if self.micros.is_empty() {
            return 0.0;
        }
        self.micros.sort_unstable();
        let n = self.micros.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        let idx = rank.clamp(1, n) - 1;
        self.micros[idx] as f64 / 1000.0
    }

    /// Operations per second over the phase's wall time.
    pub fn throughput(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs == 0.0 {
            0.0
        } else {
            self.micros.len() as f64 / secs
        }
    }
}

/// Prints one figure as a JSON line on stdout; `clients` is the concurrency it was measured at.
pub fn emit(bench: &str, clients: Option<usize>, value: f64) {
    let value = (value * 1000.0).round() / 1000.0;
    let line = match clients {
        Some(c) => serde_json::json!({ "bench": bench, "clients": c, "value": value }),
        None => serde_json::json!({ "bench": bench, "value": value }),
    };
    println!("{line}");
}

/// The median of a few measurements, in the unit they were given in.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        for ms in 1..=100u64 {
            s.push(Duration::from_millis(ms));
        }
        assert_eq!(s.percentile_ms(50.0), 50.0);
        assert_eq!(s.percentile_ms(99.0), 99.0);
        assert_eq!(s.percentile_ms(100.0), 100.0);
        assert_eq!(Samples::default().percentile_ms(50.0), 0.0);
    }

    #[test]
    fn median_of_odd_count() {
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), 3.0);
    }
}
