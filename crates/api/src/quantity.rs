//! Kubernetes' `resource.Quantity` (`k8s.io/apimachinery/pkg/api/resource`): the one parser,
//! comparison and canonical form of every resource amount Baton reads or writes — container
//! requests and limits, node capacity, the metrics API.
//!
//! A quantity is held exactly, as a count of nano-units in an `i128` (no floating point): parsing
//! rounds a non-zero value up to the nearest 10⁻⁹ as Kubernetes does ("if you want some
//! resources, you should get some resources"), and the magnitude must not exceed
//! 9223372036854775807 units (`i64::MAX`, Kubernetes' `maxAllowed`). Where Kubernetes silently
//! caps a larger value (`9Ei`, `100000000000000000000`) or keeps it in a form no consumer can
//! use (`12E`, `1e100`), Baton refuses it with [`QuantityError::TooLarge`]: the API answers a
//! 422 naming the field instead of storing a limit other than the one asked for.
//!
//! The grammar (`<sign><digits>[.<digits>]<suffix>`, suffixes `n u m "" k M G T P E`,
//! `Ki Mi Gi Ti Pi Ei`, and `e`/`E` exponents), the error messages, the rounding of
//! [`Quantity::value`] and [`Quantity::milli_value`] (up, toward +∞) and the printed form
//! ([`Display`](std::fmt::Display): what the API server stores and `kubectl get -o yaml` shows)
//! follow Kubernetes' `quantity.go`, including that a parse keeps the text as written when
//! Kubernetes' fast path does (`+5`, `05`, `1E3`, `1.G` are stored as sent).

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

/// Nano-units per unit.
const NANO: i128 = 1_000_000_000;
/// The largest magnitude, in nano-units: `i64::MAX` units.
const MAX_NANOS: i128 = i64::MAX as i128 * NANO;

/// How a quantity prefers to be printed, remembered from the suffix it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `e3`, `E-6`: printed with an exponent that is a multiple of three (`12e6`).
    DecimalExponent,
    /// `Ki` … `Ei`: printed with the largest power of 1024 that divides it exactly.
    BinarySI,
    /// `n u m k M G T P E` and none: printed with the largest SI suffix that keeps it whole.
    DecimalSI,
}

/// Why a text is not a quantity; the messages are Kubernetes' (`ErrFormatWrong`,
/// `ErrNumeric`, `ErrSuffix`), except [`TooLarge`](QuantityError::TooLarge), Baton's refusal
/// of what Kubernetes would cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Format,
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    #[error("unable to parse quantity's suffix")]
    Suffix,
    #[error("must be between -9223372036854775807 and 9223372036854775807, inclusive")]
    TooLarge,
}

/// A resource quantity. Equality, ordering and hashing are by value: `1Gi == 1024Mi`,
/// `1 == 1000m`; the format and any kept text only decide how it prints.
#[derive(Debug, Clone)]
pub struct Quantity {
    nanos: i128,
    format: Format,
    /// The text as parsed, when Kubernetes would print it back unchanged.
    kept: Option<Box<str>>,
}

impl Quantity {
    /// Zero, printed `0`.
    pub const ZERO: Quantity = Quantity {
        nanos: 0,
        format: Format::DecimalSI,
        kept: None,
    };

    /// Parses a quantity as Kubernetes' `ParseQuantity` does (no surrounding whitespace).
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::Format);
        }
        if s == "0" {
            return Ok(Self::ZERO);
        }
        let parts = split(s)?;
        let (base, exponent, format) = interpret(parts.suffix).ok_or(QuantityError::Suffix)?;
        let magnitude = scaled_nanos(parts.num, parts.denom, base, exponent)?;
        let nanos = if parts.negative {
            -magnitude
        } else {
            magnitude
        };
        // A binary quantity below one is printed in decimal (it has no binary suffix).
        let format = if format == Format::BinarySI && magnitude > 0 && magnitude < NANO {
            Format::DecimalSI
        } else {
            format
        };
        let kept = keeps_text(&parts, base, exponent).then(|| Box::from(s));
        Ok(Self {
            nanos,
            format,
            kept,
        })
    }

    /// A quantity as JSON carries it, as Kubernetes' `UnmarshalJSON` reads it: a string
    /// (surrounding whitespace ignored), a number (YAML's `cpu: 2`), or `null` (zero).
    pub fn from_json(v: &Value) -> Result<Self, QuantityError> {
        match v {
            Value::String(s) => Self::parse(s.trim()),
            Value::Number(n) => Self::parse(&n.to_string()),
            Value::Null => Ok(Self::ZERO),
            _ => Err(QuantityError::Format),
        }
    }

    /// A whole number of units (`bytes`, cores, pods) in `format`.
    pub fn from_value(value: i64, format: Format) -> Self {
        Self::from_nanos(i128::from(value) * NANO, format)
    }

    /// Thousandths of a unit (millicores), printed in decimal SI (`250m`, `2`).
    pub fn from_milli(milli: i64) -> Self {
        Self::from_nanos(i128::from(milli) * 1_000_000, Format::DecimalSI)
    }

    /// Billionths of a unit (nanocores); within ±`i64::MAX` units, which every `i64` count of
    /// milli- or nano-units is.
    pub fn from_nanos(nanos: i128, format: Format) -> Self {
        let format = if format == Format::BinarySI && nanos != 0 && nanos.abs() < NANO {
            Format::DecimalSI
        } else {
            format
        };
        Self {
            nanos: nanos.clamp(-MAX_NANOS, MAX_NANOS),
            format,
            kept: None,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// The exact value in billionths of a unit.
    pub fn nano_value(&self) -> i128 {
        self.nanos
    }

    /// The value in whole units, rounded up (toward +∞) as Kubernetes' `Value()`: bytes of a
    /// memory amount (`512974848m` is 512975), cores of a CPU amount.
    pub fn value(&self) -> i64 {
        // |nanos| ≤ i64::MAX units, so the rounded quotient fits.
        i64::try_from(div_ceil(self.nanos, NANO)).unwrap_or(i64::MAX)
    }

    /// The value in thousandths, rounded up (toward +∞) as Kubernetes' `MilliValue()`:
    /// millicores of a CPU amount (`0.5m` is 1). Up to ±9223372036854775807000, hence `i128`.
    pub fn milli_value(&self) -> i128 {
        div_ceil(self.nanos, 1_000_000)
    }

    /// The sum, or `None` past ±`i64::MAX` units. The format is the left operand's unless that
    /// is zero, as Kubernetes' `Add` keeps a suffix.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        let nanos = self.nanos.checked_add(other.nanos)?;
        if nanos.abs() > MAX_NANOS {
            return None;
        }
        let format = if self.is_zero() {
            other.format
        } else {
            self.format
        };
        Some(Self::from_nanos(nanos, format))
    }

    /// The canonical text, ignoring any kept text: Kubernetes' `CanonicalizeBytes`.
    pub fn canonical(&self) -> String {
        canonical(self.nanos, self.format)
    }
}

impl Default for Quantity {
    fn default() -> Self {
        Self::ZERO
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl std::hash::Hash for Quantity {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

impl fmt::Display for Quantity {
    /// The form Kubernetes serializes: the kept text, else the canonical one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kept {
            Some(s) => f.write_str(s),
            None => f.write_str(&self.canonical()),
        }
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&k8s_openapi::apimachinery::pkg::api::resource::Quantity> for Quantity {
    type Error = QuantityError;
    fn try_from(
        q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    ) -> Result<Self, Self::Error> {
        Self::parse(q.0.trim())
    }
}

impl From<&Quantity> for k8s_openapi::apimachinery::pkg::api::resource::Quantity {
    fn from(q: &Quantity) -> Self {
        Self(q.to_string())
    }
}

/// The pieces of a quantity's text (`parseQuantityString`).
struct Parts<'a> {
    negative: bool,
    /// Integer digits without leading zeros; `"0"` when there are none.
    num: &'a str,
    /// Fraction digits as written (possibly empty).
    denom: &'a str,
    suffix: &'a str,
}

fn split(s: &str) -> Result<Parts<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut negative = false;
    match b.first() {
        Some(b'-') => {
            negative = true;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    let whole = |negative| {
        Ok(Parts {
            negative,
            num: "0",
            denom: "",
            suffix: "",
        })
    };
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return whole(negative);
    }
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let num = if pos == start { "0" } else { &s[start..pos] };
    let mut denom = "";
    if pos < end && b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[start..pos];
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::Format);
    }
    Ok(Parts {
        negative,
        num,
        denom,
        suffix: &s[suffix_start..],
    })
}

/// (base, exponent, format) of a suffix (`quantitySuffixer.interpret`).
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    let decimal = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(e) = decimal {
        return Some((10, e, Format::DecimalSI));
    }
    let binary = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(e) = binary {
        return Some((2, e, Format::BinarySI));
    }
    let digits = suffix.strip_prefix(['e', 'E']).filter(|d| !d.is_empty())?;
    // Go's ParseInt (an optional sign, then digits), bounded to ±MaxInt32.
    let e: i64 = digits.parse().ok()?;
    let e = i32::try_from(e).ok().filter(|e| *e != i32::MIN)?;
    Some((10, e, Format::DecimalExponent))
}

/// `num.denom × base^exponent` in nano-units, its magnitude rounded up; exact by decimal
/// digit arithmetic, so any number of digits is read without loss.
fn scaled_nanos(num: &str, denom: &str, base: u32, exponent: i32) -> Result<i128, QuantityError> {
    let mut digits: Vec<u8> = num
        .bytes()
        .chain(denom.bytes())
        .map(|c| c - b'0')
        .skip_while(|d| *d == 0)
        .collect();
    let (mut exp10, shift) = match base {
        10 => (i64::from(exponent), 0),
        _ => (0, exponent as u32),
    };
    exp10 += 9 - denom.len() as i64;
    while digits.last() == Some(&0) {
        digits.pop();
        exp10 += 1;
    }
    if digits.is_empty() {
        return Ok(0);
    }
    if shift > 0 {
        // Multiply by 2^shift (≤ 2^60) digit by digit, from the right.
        let factor = 1u128 << shift;
        let mut carry = 0u128;
        for d in digits.iter_mut().rev() {
            let v = u128::from(*d) * factor + carry;
            *d = (v % 10) as u8;
            carry = v / 10;
        }
        let mut head = Vec::new();
        while carry > 0 {
            head.push((carry % 10) as u8);
            carry /= 10;
        }
        head.reverse();
        head.extend_from_slice(&digits);
        digits = head;
    }
    // MAX_NANOS has 28 digits: anything longer in the integer part overflows.
    const MAX_DIGITS: i64 = 29;
    let len = digits.len() as i64;
    let (whole, rest): (&[u8], &[u8]) = if exp10 >= 0 {
        if len + exp10 > MAX_DIGITS {
            return Err(QuantityError::TooLarge);
        }
        (&digits, &[])
    } else {
        let cut = (len + exp10).max(0) as usize;
        if cut as i64 > MAX_DIGITS {
            return Err(QuantityError::TooLarge);
        }
        digits.split_at(cut)
    };
    let mut n: i128 = 0;
    for d in whole {
        n = n * 10 + i128::from(*d);
    }
    for _ in 0..exp10.max(0) {
        n *= 10;
    }
    if rest.iter().any(|d| *d != 0) {
        n += 1;
    }
    if n > MAX_NANOS {
        return Err(QuantityError::TooLarge);
    }
    Ok(n)
}

/// Whether Kubernetes' parse keeps the text as written (its int64 fast path, when the text
/// is already in the form it would print, give or take a sign, leading zeros or `E`).
fn keeps_text(p: &Parts<'_>, base: u32, exponent: i32) -> bool {
    let shifted = format!("{}{}", p.num, p.denom);
    let Ok(value) = shifted.parse::<i64>() else {
        return false;
    };
    if base == 2 {
        let precision = 15 - p.num.len() as i64 - i64::from(exponent) * 3 / 10 - 1;
        return p.denom.is_empty()
            && precision >= 0
            && value.checked_mul(1i64 << exponent).is_some()
            && value & 0x07 != 0;
    }
    let precision = 18 - (p.num.len() + p.denom.len()) as i64;
    let scale = i64::from(exponent) - p.denom.len() as i64;
    precision >= 0
        && scale >= -9
        && scale % 3 == 0
        && !shifted.ends_with("000")
        && !shifted.starts_with('0')
}

/// Kubernetes' `CanonicalizeBytes`: the largest exponent (a multiple of three, or a power of
/// 1024 for a binary quantity that is a whole number ≥ 1024) that keeps the mantissa whole.
fn canonical(nanos: i128, format: Format) -> String {
    if nanos == 0 {
        return "0".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let magnitude = nanos.unsigned_abs();
    let nano = NANO as u128;
    let binary =
        format == Format::BinarySI && magnitude >= 1024 * nano && magnitude.is_multiple_of(nano);
    if binary {
        let mut v = magnitude / nano;
        let mut e = 0;
        while v.is_multiple_of(1024) && e < 6 {
            v /= 1024;
            e += 1;
        }
        let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][e];
        return format!("{sign}{v}{suffix}");
    }
    let mut mantissa = magnitude;
    let mut exponent: i32 = -9;
    while mantissa.is_multiple_of(10) {
        mantissa /= 10;
        exponent += 1;
    }
    let r = exponent.rem_euclid(3);
    mantissa *= 10u128.pow(r as u32);
    exponent -= r;
    let suffix = match format {
        Format::DecimalExponent if exponent == 0 => String::new(),
        Format::DecimalExponent => format!("e{exponent}"),
        _ => match exponent {
            -9 => "n".into(),
            -6 => "u".into(),
            -3 => "m".into(),
            0 => String::new(),
            3 => "k".into(),
            6 => "M".into(),
            9 => "G".into(),
            12 => "T".into(),
            15 => "P".into(),
            18 => "E".into(),
            e => format!("e{e}"),
        },
    };
    format!("{sign}{mantissa}{suffix}")
}

/// ⌈a / b⌉ for b > 0.
fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a.div_euclid(b);
    if a.rem_euclid(b) == 0 { q } else { q + 1 }
}

#[cfg(test)]
mod tests;
