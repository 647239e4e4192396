use serde_json::json;

use super::*;

fn q(s: &str) -> Quantity {
    Quantity::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// Kubernetes' parse and print (quantity_test.go: TestQuantityParse, TestQuantityParseEmit,
/// TestQuantityString): what the API server stores for each text.
#[test]
fn parses_and_prints_as_kubernetes() {
    let cases = [
        ("0", "0"),
        ("0n", "0"),
        ("0u", "0"),
        ("0m", "0"),
        ("0Ki", "0"),
        ("0k", "0"),
        ("0Mi", "0"),
        ("0T", "0"),
        ("-0", "0"),
        ("1", "1"),
        // binary suffixes
        ("1Ki", "1Ki"),
        ("8Ki", "8Ki"),
        ("7Mi", "7Mi"),
        ("6Gi", "6Gi"),
        ("5Ti", "5Ti"),
        ("4Pi", "4Pi"),
        ("3Ei", "3Ei"),
        ("100Ti", "100Ti"),
        ("1024Mi", "1Gi"),
        ("1025Ki", "1025Ki"),
        ("1536Mi", "1536Mi"),
        ("1.5Gi", "1536Mi"),
        ("0.5Mi", "512Ki"),
        ("1.5Ki", "1536"),
        ("100.035Ki", "102435840m"),
        ("0.05Gi", "53687091200m"),
        (".001Ki", "1024m"),
        (".000001Ki", "1024u"),
        (".000000001Ki", "1024n"),
        (".000000000001Ki", "2n"),
        ("0.000000000001Ki", "2n"),
        // decimal suffixes
        ("5n", "5n"),
        ("4u", "4u"),
        ("3m", "3m"),
        ("9", "9"),
        ("8k", "8k"),
        ("50k", "50k"),
        ("7M", "7M"),
        ("6G", "6G"),
        ("5T", "5T"),
        ("40T", "40T"),
        ("300T", "300T"),
        ("2P", "2P"),
        ("1E", "1E"),
        ("1000M", "1G"),
        ("1000", "1k"),
        ("1000m", "1"),
        ("1.5", "1500m"),
        ("100.035k", "100.035k"),
        ("10.035M", "10.035M"),
        ("9.01", "9010m"),
        ("8.1k", "8100"),
        ("7.123456M", "7.123456M"),
        ("6.987654321G", "6.987654321G"),
        ("5.444T", "5.444T"),
        ("40.1T", "40100G"),
        ("2.5P", "2500T"),
        ("1.01E", "1010P"),
        ("512974848m", "512974848m"),
        ("0.5m", "500u"),
        // looks like floating point
        ("0.001", "1m"),
        ("0.0005k", "500m"),
        ("0.005", "5m"),
        ("0.05", "50m"),
        ("0.5", "500m"),
        ("0.00050k", "500m"),
        ("0.50000", "500m"),
        (".001", "1m"),
        (".0001k", "100m"),
        // exponents
        ("1e3", "1e3"),
        ("1E6", "1E6"),
        ("1e9", "1e9"),
        ("1e14", "100e12"),
        ("1e-3", "1e-3"),
        ("1E-3", "1E-3"),
        ("0.5e0", "500e-3"),
        ("0.5e-1", "50e-3"),
        ("0.5e-2", "5e-3"),
        ("1.2e3", "1200"),
        ("1.3E+6", "1300e3"),
        ("1.40e9", "1400e6"),
        ("1.53E12", "1530e9"),
        ("1.7E18", "1700e15"),
        // rounded up to the nano
        ("3.001n", "4n"),
        ("1.1E-9", "2e-9"),
        ("0.0000000001", "1n"),
        ("0.0000000005", "1n"),
        ("0.5e-9", "1e-9"),
        ("0.9n", "1n"),
        ("0.00000012345", "124n"),
        ("0.00000012354", "124n"),
        ("1e-2147483647", "1e-9"),
        // kept as written, as Kubernetes' fast path keeps them
        ("+5", "+5"),
        ("05", "05"),
        ("+1Ki", "+1Ki"),
        ("1.", "1."),
        ("1.G", "1.G"),
        (".", "0"),
        ("-.", "0"),
        ("+", "0"),
        // negative
        ("-1080m", "-1080m"),
        ("-1.08", "-1080m"),
        ("-1024Mi", "-1Gi"),
        ("-0.5", "-500m"),
    ];
    let mut wrong = Vec::new();
    for (input, want) in cases {
        if q(input).to_string() != want {
            wrong.push((input, q(input).to_string(), want));
        }
        let negated = format!("-{input}");
        if let Ok(n) = Quantity::parse(&negated) {
            assert_eq!(n.nano_value(), -q(input).nano_value(), "{negated}");
        }
    }
    assert!(wrong.is_empty(), "(input, printed, Kubernetes): {wrong:?}");
    // The canonical forms of the texts kept as written.
    for (input, canonical) in [
        ("100.035k", "100035"),
        ("10.035M", "10035k"),
        ("5.444T", "5444G"),
        ("+5", "5"),
        ("05", "5"),
        ("1E-3", "1e-3"),
        ("1.G", "1G"),
    ] {
        assert_eq!(q(input).canonical(), canonical, "{input}");
    }
}

#[test]
fn values_are_exact_and_round_up() {
    let cases: &[(&str, i128)] = &[
        ("1Ki", 1024 * NANO),
        ("3Ei", 3 * (1i128 << 60) * NANO),
        ("1Pi", (1i128 << 50) * NANO),
        ("1P", 1_000_000_000_000_000 * NANO),
        ("0.1", 100_000_000),
        ("1e-9", 1),
        ("9223372036854775807", MAX_NANOS),
        ("-9223372036854775807", -MAX_NANOS),
        ("7Ei", 7 * (1i128 << 60) * NANO),
        ("9223372036854775807000m", MAX_NANOS),
        (
            "123456789012345678901234567890e-20",
            1_234_567_890_123_456_790,
        ),
    ];
    for (s, nanos) in cases {
        assert_eq!(q(s).nano_value(), *nanos, "{s}");
    }
    // Value() and MilliValue() round up.
    assert_eq!(q("512974848m").value(), 512_975);
    assert_eq!(q("512974848m").milli_value(), 512_974_848);
    assert_eq!(q("0.5m").milli_value(), 1);
    assert_eq!(q("1n").milli_value(), 1);
    assert_eq!(q("1k").milli_value(), 1_000_000);
    assert_eq!(q("1Pi").value(), 1 << 50);
    assert_eq!(q("1.5").value(), 2);
    assert_eq!(q("-1.5").value(), -1);
    assert_eq!(q("100m").milli_value(), 100);
    assert_eq!(q("9223372036854775807").value(), i64::MAX);
    assert_eq!(
        q("9223372036854775807").milli_value(),
        i128::from(i64::MAX) * 1000
    );
}

#[test]
fn rejects_what_kubernetes_rejects_with_its_messages() {
    use QuantityError::*;
    let cases = [
        ("", Format),
        ("1.1.M", Format),
        ("1+1.0M", Format),
        ("0.1am", Format),
        ("aoeu", Format),
        (" 1", Format),
        ("1 ", Format),
        ("1x", Format),
        ("--1", Suffix),
        ("0.1mi", Suffix),
        (".5i", Suffix),
        ("1i", Suffix),
        ("-3.01i", Suffix),
        ("-3.01e-", Suffix),
        ("1e", Suffix),
        ("1K", Suffix),
        ("1KiB", Format),
        ("1e4294967297", Suffix),
        ("1E2147483648", Suffix),
        ("1E-2147483648", Suffix),
    ];
    for (s, want) in cases {
        assert_eq!(
            Quantity::parse(s).map(|q| q.to_string()),
            Err(want),
            "{s:?}"
        );
    }
    assert_eq!(
        Format.to_string(),
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    assert_eq!(Suffix.to_string(), "unable to parse quantity's suffix");
}

/// Kubernetes caps these at 2^63-1 (or keeps forms no consumer can use); Baton refuses them.
#[test]
fn past_i64_max_units_is_refused_not_capped() {
    for s in [
        "9Ei",
        "8Ei",
        "12E",
        "1e100",
        "9223372036854775808",
        "-9223372036854775808",
        "9223372036854775807Ki",
        "9223372036854775807.000000001",
        "100000000000000000000000000000000000000000000",
        "1E2147483647",
    ] {
        assert_eq!(
            Quantity::parse(s).map(|q| q.to_string()),
            Err(QuantityError::TooLarge),
            "{s}"
        );
    }
}

#[test]
fn compares_by_value() {
    assert!(q("100m") > q("50m"));
    assert!(q("10000T") > q("100Gi"));
    assert_eq!(q("1Gi"), q("1024Mi"));
    assert_eq!(q("1"), q("1000m"));
    assert_eq!(q("0"), Quantity::ZERO);
    assert!(q("-1") < q("0"));
    assert!(q("1n") > q("0"));
    assert!(q("1Ki") > q("1k"));
}

#[test]
fn json_strings_numbers_and_null() {
    assert_eq!(
        Quantity::from_json(&json!(" 2 ")).map(|q| q.to_string()),
        Ok("2".into())
    );
    assert_eq!(
        Quantity::from_json(&json!(2)).map(|q| q.to_string()),
        Ok("2".into())
    );
    assert_eq!(
        Quantity::from_json(&json!(0.5)).map(|q| q.to_string()),
        Ok("500m".into())
    );
    assert_eq!(Quantity::from_json(&json!(null)), Ok(Quantity::ZERO));
    assert_eq!(
        Quantity::from_json(&json!(true)),
        Err(QuantityError::Format)
    );
    assert_eq!(Quantity::from_json(&json!({})), Err(QuantityError::Format));
}

#[test]
fn constructed_quantities_print_canonically() {
    assert_eq!(
        Quantity::from_value(1 << 30, Format::BinarySI).to_string(),
        "1Gi"
    );
    assert_eq!(
        Quantity::from_value(1025, Format::BinarySI).to_string(),
        "1025"
    );
    assert_eq!(Quantity::from_value(5, Format::BinarySI).to_string(), "5");
    assert_eq!(
        Quantity::from_value(16_318_412 * 1024, Format::BinarySI).to_string(),
        "16318412Ki"
    );
    // Found by the property test: a binary 2000 prints without a suffix, and that text
    // reads back as decimal (Kubernetes' TestBinarySIZeroExponentString).
    let binary = Quantity::from_value(-2000, Format::BinarySI);
    assert_eq!(binary.to_string(), "-2000");
    assert_eq!(q(&binary.to_string()).to_string(), "-2k");
    assert_eq!(q(&binary.to_string()), binary);
    assert_eq!(Quantity::from_milli(250).to_string(), "250m");
    assert_eq!(Quantity::from_milli(2000).to_string(), "2");
    assert_eq!(
        Quantity::from_nanos(5_000_000, Format::DecimalSI).to_string(),
        "5m"
    );
    assert_eq!(
        Quantity::from_nanos(247_366_245, Format::DecimalSI).to_string(),
        "247366245n"
    );
    assert_eq!(
        Quantity::from_value(3000, Format::DecimalExponent).to_string(),
        "3e3"
    );
    let sum = q("100m").checked_add(&q("1Gi"));
    assert_eq!(
        sum.map(|s| s.nano_value()),
        Some(100_000_000 + (1 << 30) * NANO)
    );
    assert_eq!(
        q("0").checked_add(&q("1Gi")).map(|s| s.to_string()),
        Some("1Gi".into())
    );
    assert_eq!(q("7Ei").checked_add(&q("1Ei")), None);
}

/// Property tests: any text parses or fails without panicking; a quantity printed and parsed
/// again is the same value and prints the same; parsed values and their ordering match the
/// exact rational value of the text, computed here independently. Bounded case counts
/// (`PROPTEST_CASES` asks for more).
mod properties {
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    use super::*;

    fn config(cases: u32) -> Config {
        let mut c = Config::default();
        if std::env::var_os("PROPTEST_CASES").is_none() {
            c.cases = cases;
        }
        c
    }

    /// Text made of the grammar's pieces, so that most of it parses.
    fn grammar_text() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(
            &[
                "0", "1", "5", "9", "12", "1024", "000", ".", "-", "+", "e", "E", "i", "n", "u",
                "m", "k", "K", "M", "G", "T", "P", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "e3", "e-9",
                "E+18", "x", " ",
            ][..],
        );
        prop::collection::vec(piece, 0..8).prop_map(|p| p.concat())
    }

    /// A quantity's text with its exact value: (text, value × 10^16, or None when that
    /// overflows i128, which only values far past the range do).
    fn exact() -> impl Strategy<Value = (String, Option<i128>)> {
        let suffix = prop_oneof![
            prop::sample::select(
                &[
                    ("n", 10, -9),
                    ("u", 10, -6),
                    ("m", 10, -3),
                    ("", 10, 0),
                    ("k", 10, 3),
                    ("M", 10, 6),
                    ("G", 10, 9),
                    ("T", 10, 12),
                    ("P", 10, 15),
                    ("E", 10, 18),
                    ("Ki", 2, 10),
                    ("Mi", 2, 20),
                    ("Gi", 2, 30),
                    ("Ti", 2, 40),
                    ("Pi", 2, 50),
                    ("Ei", 2, 60),
                ][..]
            )
            .prop_map(|(s, b, e)| (s.to_string(), b, e)),
            (-12i32..=19).prop_map(|e| (format!("e{e}"), 10, e)),
        ];
        (
            any::<bool>(),
            0u64..100_000,
            0usize..5,
            0u64..10_000,
            suffix,
        )
            .prop_map(|(negative, int, frac_len, frac, (suffix, base, exp))| {
                let frac = frac % 10u64.pow(frac_len as u32);
                let frac_text = if frac_len == 0 {
                    String::new()
                } else {
                    format!(".{frac:0frac_len$}")
                };
                let sign = if negative { "-" } else { "" };
                let text = format!("{sign}{int}{frac_text}{suffix}");
                // value = (int·10^f + frac) · 10^(exp − f) · 2^b, times 10^16.
                let mantissa = i128::from(int) * 10i128.pow(frac_len as u32) + i128::from(frac);
                let (ten, two) = if base == 10 { (exp, 0) } else { (0, exp) };
                let power = ten - frac_len as i32 + 16;
                let scaled = (0..power)
                    .try_fold(mantissa, |v, _| v.checked_mul(10))
                    .and_then(|v| v.checked_mul(1i128 << two));
                let signed = scaled.map(|v| if negative { -v } else { v });
                (text, signed)
            })
    }

    /// What the parse of a text worth `x / 10^16` must give: its magnitude rounded up to the
    /// nano, or TooLarge.
    fn expected(x: Option<i128>) -> Result<i128, QuantityError> {
        let limit = MAX_NANOS * 10_000_000;
        match x {
            Some(x) if x.abs() <= limit => {
                let nanos = (x.abs() + 9_999_999) / 10_000_000;
                Ok(if x < 0 { -nanos } else { nanos })
            }
            _ => Err(QuantityError::TooLarge),
        }
    }

    fn quantity() -> impl Strategy<Value = Quantity> {
        let format = prop::sample::select(
            &[Format::DecimalSI, Format::BinarySI, Format::DecimalExponent][..],
        );
        let nanos = prop_oneof![
            -MAX_NANOS..=MAX_NANOS,
            (-1_000_000i64..1_000_000).prop_map(|v| i128::from(v) * NANO),
            (-1_000_000i64..1_000_000, 0u32..7).prop_map(|(v, p)| i128::from(v) << (10 * p)),
            (-100_000i64..100_000, 0u32..28).prop_map(|(v, p)| i128::from(v) * 10i128.pow(p)),
        ];
        (nanos, format).prop_map(|(n, f)| Quantity::from_nanos(n.clamp(-MAX_NANOS, MAX_NANOS), f))
    }

    proptest! {
        #![proptest_config(config(20_000))]

        #[test]
        fn any_text_parses_or_fails(s in prop_oneof![grammar_text(), any::<String>()]) {
            if let Ok(q) = Quantity::parse(&s) {
                let printed = q.to_string();
                let again = Quantity::parse(&printed);
                prop_assert_eq!(again.as_ref().map(|a| a.nano_value()), Ok(q.nano_value()), "{:?} printed {:?}", s, printed);
                prop_assert!(q.nano_value().abs() <= MAX_NANOS);
            }
        }

        #[test]
        fn printed_quantities_parse_back_to_themselves(q in quantity()) {
            // Stored text read back is the same value; a binary amount printed without a
            // suffix (`2000`) reads back as decimal and prints `2k` from then on, as in
            // Kubernetes, so the printed form is stable from the second round.
            let printed = q.to_string();
            prop_assert_eq!(q.canonical(), printed.clone());
            let again = Quantity::parse(&printed);
            prop_assert_eq!(again.as_ref(), Ok(&q), "printed {:?}", printed);
            let second = again.map(|a| a.to_string()).unwrap_or_default();
            let third = Quantity::parse(&second).map(|a| a.to_string());
            prop_assert_eq!(third, Ok(second.clone()), "printed {:?} then {:?}", printed, second);
        }

        #[test]
        fn values_and_order_match_the_exact_value((a, xa) in exact(), (b, xb) in exact()) {
            let qa = Quantity::parse(&a).map(|q| q.nano_value());
            let qb = Quantity::parse(&b).map(|q| q.nano_value());
            prop_assert_eq!(qa, expected(xa), "{}", a);
            prop_assert_eq!(qb, expected(xb), "{}", b);
            if let (Ok(na), Ok(nb), Some(xa), Some(xb)) = (qa, qb, xa, xb) {
                // Rounding up to the nano keeps the order, and strict order wherever both
                // values are whole nanos.
                if xa <= xb { prop_assert!(na <= nb, "{} {}", a, b); }
                if xa == xb { prop_assert_eq!(na, nb); }
                if xa % 10_000_000 == 0 && xb % 10_000_000 == 0 {
                    prop_assert_eq!(na.cmp(&nb), xa.cmp(&xb), "{} {}", a, b);
                }
            }
        }
    }
}
