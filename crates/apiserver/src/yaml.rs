//! YAML request bodies, decoded with a bound on the size of the result.
//!
//! YAML aliases let a small body stand for an enormous document (the "billion laughs": an
//! anchor of ten aliases of an anchor of ten aliases …): a 1.6 MB body expanded until the
//! process died. `serde_yaml_ng` expands aliases while it visits them, so the bound is kept
//! here, in the visitor that builds the JSON value: every node and every byte of text costs
//! from a budget proportional to the body's own size, and the decode stops with an error as
//! soon as the budget is spent. A document without aliases never comes near it (each node
//! takes at least a byte of the body); one that repeats a little through aliases still fits.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// How many times the body's length the decoded document may weigh (nodes plus text bytes).
const EXPANSION_FACTOR: usize = 4;
/// The budget of a small body, so modest alias use in short manifests is never refused.
const MIN_BUDGET: usize = 64 * 1024;

/// Decodes one YAML document into JSON, refusing documents whose aliases expand it beyond
/// [`EXPANSION_FACTOR`] times the body's size.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let budget = Budget::new((body.len().saturating_mul(EXPANSION_FACTOR)).max(MIN_BUDGET));
    let de = serde_yaml_ng::Deserializer::from_slice(body);
    ValueSeed(&budget)
        .deserialize(de)
        .map_err(|e| e.to_string())
}

struct Budget {
    left: Cell<usize>,
    total: usize,
}

impl Budget {
    fn new(total: usize) -> Self {
        Budget {
            left: Cell::new(total),
            total,
        }
    }

    fn spend<E: de::Error>(&self, n: usize) -> Result<(), E> {
        match self.left.get().checked_sub(n) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(E::custom(format!(
                "the document expands (through YAML aliases) to more than {} nodes and bytes, \
                 {EXPANSION_FACTOR} times the size of the body",
                self.total
            ))),
        }
    }
}

#[derive(Clone, Copy)]
struct ValueSeed<'a>(&'a Budget);

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.0.spend(1)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.0.spend(1)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.0.spend(1)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.0.spend(1)?;
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a number JSON can hold")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.0.spend(1 + v.len())?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.0.spend(1 + v.len())?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.0.spend(1)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.0.spend(1)?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.0.spend(1)?;
        let mut out = Map::new();
        while let Some(k) = map.next_key_seed(KeySeed(self.0))? {
            let v = map.next_value_seed(self)?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// Map keys are strings in JSON (and in every Kubernetes object).
struct KeySeed<'a>(&'a Budget);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.0.spend(1 + v.len())?;
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        self.0.spend(1 + v.len())?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_manifests_with_modest_aliases() {
        let body = b"kind: ConfigMap\nmetadata: {name: x, labels: &l {app: web, tier: \"1\"}}\n\
                     data: {a: '1', b: \"two\", n: null}\nx: *l\ny: *l\nlist: [1, 2.5, true]\n";
        let v = decode(body).expect("decodes");
        assert_eq!(v["x"], json!({"app": "web", "tier": "1"}));
        assert_eq!(v["y"], v["x"]);
        assert_eq!(v["data"]["n"], Value::Null);
        assert_eq!(v["list"], json!([1, 2.5, true]));
    }

    #[test]
    fn refuses_an_alias_bomb() {
        let mut body = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let mut prev = 'a';
        for c in 'b'..='i' {
            body.push_str(&format!(
                "{c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
            ));
            prev = c;
        }
        let err = decode(body.as_bytes()).expect_err("a bomb is refused");
        assert!(err.contains("expands (through YAML aliases)"), "{err}");
    }

    #[test]
    fn refuses_a_large_string_repeated_by_aliases() {
        let big = "x".repeat(100_000);
        let mut body = format!("s: &s {big}\nl: [");
        for _ in 0..1000 {
            body.push_str("*s,");
        }
        body.push_str("]\n");
        assert!(decode(body.as_bytes()).is_err());
    }

    #[test]
    fn scalar_keys_are_text_and_bad_yaml_is_an_error() {
        // As sigs.k8s.io/yaml does, a scalar key is taken as its text.
        assert_eq!(decode(b"{1: x}").expect("decodes"), json!({"1": "x"}));
        assert!(decode(b"a: [").is_err());
        assert!(decode(b"a: *nope").is_err());
    }
}
