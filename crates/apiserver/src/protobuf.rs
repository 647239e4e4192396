//! Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`).
//!
//! kubectl's typed commands (`kubectl create configmap|secret|deployment|...`) and client-go
//! programs send objects in the Kubernetes protobuf encoding rather than JSON. The server works
//! on JSON, so this module turns such a body into exactly the JSON the object's JSON encoding
//! would give, and the request continues as if JSON had been sent.
//!
//! A body is the magic prefix `k8s\0` followed by a `runtime.Unknown` envelope whose `typeMeta`
//! names the kind and whose `raw` holds the typed message. Protobuf carries field numbers, not
//! names, so decoding needs the schema of every message: [`SCHEMA`] is that schema, one row per
//! message, listing each field's number, its JSON name and its type. The field numbers and JSON
//! names were taken from the `generated.proto` files of `k8s.io/api` and `k8s.io/apimachinery`
//! and the `json`/`protobuf` struct tags of the Go types they are generated from.
//!
//! The Go JSON encoding is reproduced where it differs from a plain field-by-field mapping:
//! - `,inline` structs (a `Volume`'s `VolumeSource`, a `Probe`'s `ProbeHandler`, ...) have their
//!   fields merged into the parent object;
//! - non-pointer scalars tagged `omitempty` are always present in protobuf but omitted from JSON
//!   when zero, so they are dropped when zero here too;
//! - `Time` (seconds precision) and `MicroTime` become RFC 3339 strings, a zero time `null`;
//!   `Quantity` a string; `IntOrString` a number or a string; `bytes` base64; `RawExtension` and
//!   `FieldsV1` the JSON they carry.
//!
//! Anything outside the table — an unknown kind, an unknown field number, a wrong wire type — is
//! an error, never silently dropped: the client is told to send JSON instead.

use base64::Engine as _;
use prost::encoding::{WireType, decode_key, decode_varint};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// The magic prefix of every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

/// Nesting limit for embedded messages; the deepest real object is far shallower.
const MAX_DEPTH: usize = 64;

/// Why a protobuf body could not be turned into JSON.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("protobuf body does not start with the Kubernetes magic prefix \"k8s\\0\"")]
    MissingMagic,
    #[error("malformed protobuf in {message}: {source}")]
    Malformed {
        message: &'static str,
        #[source]
        source: prost::DecodeError,
    },
    #[error("malformed protobuf in {message}: {reason}")]
    Truncated {
        message: &'static str,
        reason: &'static str,
    },
    #[error(
        "protobuf envelope has content encoding {0:?}; only unencoded objects are supported, send JSON instead"
    )]
    ContentEncoding(String),
    #[error(
        "decoding kind {kind:?} of apiVersion {api_version:?} from protobuf is not supported; send JSON instead"
    )]
    UnsupportedKind { api_version: String, kind: String },
    #[error(
        "unknown field number {number} in protobuf message {message}; this server cannot decode it, send JSON instead"
    )]
    UnknownField { message: &'static str, number: u32 },
    #[error("field {message}.{field} has protobuf wire type {found:?}, expected {expected:?}")]
    WireType {
        message: &'static str,
        field: &'static str,
        found: WireType,
        expected: WireType,
    },
    #[error("field {message}.{field} is not valid UTF-8")]
    InvalidUtf8 {
        message: &'static str,
        field: &'static str,
    },
    #[error("field {message}.{field}: {reason}")]
    InvalidValue {
        message: &'static str,
        field: &'static str,
        reason: String,
    },
    #[error("protobuf messages nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("protobuf schema has no message {0}")]
    UnknownMessage(&'static str),
}

impl ProtobufError {
    /// Whether the body may be well-formed but uses something this decoder does not know
    /// (answer 415 Unsupported Media Type) rather than being malformed (answer 400 Bad Request).
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            Self::ContentEncoding(_) | Self::UnsupportedKind { .. } | Self::UnknownField { .. }
        )
    }
}

/// Decodes a Kubernetes protobuf body (`k8s\0` + `runtime.Unknown`) into the object's JSON.
pub fn decode_object(body: &[u8]) -> Result<Value, ProtobufError> {
    decode_object_at(body, 0)
}

/// [`decode_object`] for an object embedded at `depth` (in a `RawExtension` or `FieldsV1`):
/// the nesting bound counts across embedded objects, so a chain of them cannot recurse
/// without limit.
fn decode_object_at(body: &[u8], depth: usize) -> Result<Value, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    let mut buf = body
        .strip_prefix(MAGIC)
        .ok_or(ProtobufError::MissingMagic)?;
    let mut type_meta = Map::new();
    let mut raw: &[u8] = &[];
    while !buf.is_empty() {
        let (number, wire) = decode_key(&mut buf).map_err(malformed(ENVELOPE))?;
        let field = ENVELOPE_FIELDS.iter().find(|f| f.number == number).ok_or(
            ProtobufError::UnknownField {
                message: ENVELOPE,
                number,
            },
        )?;
        let value = take_field(ENVELOPE, field.json, wire, &mut buf)?;
        let bytes = expect_delimited(ENVELOPE, field, value)?;
        match number {
            1 => type_meta = decode_message("runtime.TypeMeta", bytes, depth + 1)?,
            2 => raw = bytes,
            // Kubernetes defines no content encodings; whatever one is named, we cannot undo it.
            3 if !bytes.is_empty() => {
                return Err(ProtobufError::ContentEncoding(
                    String::from_utf8_lossy(bytes).into_owned(),
                ));
            }
            // contentType: the inner encoding, always protobuf in a protobuf body.
            _ => {}
        }
    }
    let text = |key: &str| {
        type_meta
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let message =
        root_message(&api_version, &kind).ok_or_else(|| ProtobufError::UnsupportedKind {
            api_version: api_version.clone(),
            kind: kind.clone(),
        })?;
    let fields = decode_message(message, raw, depth)?;
    let mut object = Map::with_capacity(fields.len() + 2);
    object.insert("apiVersion".into(), Value::String(api_version));
    object.insert("kind".into(), Value::String(kind));
    object.extend(fields);
    Ok(Value::Object(object))
}

/// The `runtime.Unknown` envelope: typeMeta 1, raw 2, contentEncoding 3, contentType 4.
const ENVELOPE: &str = "runtime.Unknown";
const ENVELOPE_FIELDS: &[Field] = &[
    one(1, "typeMeta", M("runtime.TypeMeta")),
    one(2, "raw", Bytes),
    one(3, "contentEncoding", Str),
    one(4, "contentType", Str),
];

/// The top-level message of each kind that can be decoded, by apiVersion and kind.
const KINDS: &[(&str, &str, &str)] = &[
    ("v1", "Binding", "core.v1.Binding"),
    ("v1", "ConfigMap", "core.v1.ConfigMap"),
    ("v1", "Endpoints", "core.v1.Endpoints"),
    ("v1", "Event", "core.v1.Event"),
    ("v1", "Namespace", "core.v1.Namespace"),
    ("v1", "Node", "core.v1.Node"),
    ("v1", "Pod", "core.v1.Pod"),
    (
        "v1",
        "ReplicationController",
        "core.v1.ReplicationController",
    ),
    ("v1", "Secret", "core.v1.Secret"),
    ("v1", "Service", "core.v1.Service"),
    ("v1", "ServiceAccount", "core.v1.ServiceAccount"),
    (
        "apps/v1",
        "ControllerRevision",
        "apps.v1.ControllerRevision",
    ),
    ("apps/v1", "Deployment", "apps.v1.Deployment"),
    ("apps/v1", "ReplicaSet", "apps.v1.ReplicaSet"),
    (
        "autoscaling/v1",
        "HorizontalPodAutoscaler",
        "autoscaling.v1.HorizontalPodAutoscaler",
    ),
    ("autoscaling/v1", "Scale", "autoscaling.v1.Scale"),
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "autoscaling.v2.HorizontalPodAutoscaler",
    ),
    ("batch/v1", "CronJob", "batch.v1.CronJob"),
    ("batch/v1", "Job", "batch.v1.Job"),
    ("coordination.k8s.io/v1", "Lease", "coordination.v1.Lease"),
    ("events.k8s.io/v1", "Event", "events.v1.Event"),
    ("networking.k8s.io/v1", "Ingress", "networking.v1.Ingress"),
    (
        "networking.k8s.io/v1",
        "IngressClass",
        "networking.v1.IngressClass",
    ),
    ("policy/v1", "Eviction", "policy.v1.Eviction"),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "rbac.v1.ClusterRole",
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "rbac.v1.ClusterRoleBinding",
    ),
    ("rbac.authorization.k8s.io/v1", "Role", "rbac.v1.Role"),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "rbac.v1.RoleBinding",
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        "authorization.v1.SelfSubjectAccessReview",
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        "authorization.v1.SelfSubjectRulesReview",
    ),
    (
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        "authorization.v1.SubjectAccessReview",
    ),
    (
        "authorization.k8s.io/v1",
        "LocalSubjectAccessReview",
        "authorization.v1.SubjectAccessReview",
    ),
    (
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        "authentication.v1.SelfSubjectReview",
    ),
    (
        "authentication.k8s.io/v1beta1",
        "SelfSubjectReview",
        "authentication.v1.SelfSubjectReview",
    ),
    (
        "policy/v1",
        "PodDisruptionBudget",
        "policy.v1.PodDisruptionBudget",
    ),
];

fn root_message(api_version: &str, kind: &str) -> Option<&'static str> {
    // `Status` and `DeleteOptions` are registered in every group version.
    match kind {
        "Status" => return Some("meta.v1.Status"),
        "DeleteOptions" => return Some("meta.v1.DeleteOptions"),
        _ => {}
    }
    KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, message)| *message)
}

/// How a field's values appear in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A single value, always present in JSON when present in protobuf.
    One,
    /// A non-pointer scalar tagged `omitempty`: omitted from JSON when zero.
    OmitZero,
    /// A repeated field: a JSON array.
    Repeated,
    /// A `map<string, T>` field: a JSON object.
    Map,
    /// An embedded `json:",inline"` message: its fields are merged into the parent.
    Inline,
}

/// The type of a field's (or map value's) values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Str,
    I32,
    I64,
    Bool,
    Bytes,
    F64,
    /// A message in [`SCHEMA`].
    M(&'static str),
    /// `resource.Quantity` {string 1}: a JSON string.
    Quantity,
    /// `intstr.IntOrString` {type 1, intVal 2, strVal 3}: a JSON number or string.
    IntOrString,
    /// `metav1.Time` {seconds 1, nanos 2}: RFC 3339 with seconds precision.
    Time,
    /// `metav1.MicroTime` {seconds 1, nanos 2}: RFC 3339 with microseconds.
    MicroTime,
    /// `runtime.RawExtension` {raw 1}: the embedded object's JSON.
    RawExtension,
    /// `metav1.FieldsV1` {Raw 1}: the embedded JSON.
    FieldsV1,
}

use Shape::*;
use Ty::*;

/// One field of a message: protobuf field number, JSON name, shape and type.
#[derive(Debug, Clone, Copy)]
struct Field {
    number: u32,
    json: &'static str,
    shape: Shape,
    ty: Ty,
}

const fn one(number: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        number,
        json,
        shape: One,
        ty,
    }
}
const fn oz(number: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        number,
        json,
        shape: OmitZero,
        ty,
    }
}
const fn rep(number: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        number,
        json,
        shape: Repeated,
        ty,
    }
}
const fn map(number: u32, json: &'static str, ty: Ty) -> Field {
    Field {
        number,
        json,
        shape: Map,
        ty,
    }
}
const fn inline(number: u32, message: &'static str) -> Field {
    Field {
        number,
        json: "",
        shape: Inline,
        ty: M(message),
    }
}

/// Every message by name, built once from [`SCHEMA`].
fn messages() -> &'static HashMap<&'static str, &'static [Field]> {
    static MESSAGES: OnceLock<HashMap<&'static str, &'static [Field]>> = OnceLock::new();
    MESSAGES.get_or_init(|| SCHEMA.iter().copied().collect())
}

/// The raw bytes of one field, by wire type.
enum FieldBytes<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Delimited(&'a [u8]),
}

impl FieldBytes<'_> {
    fn wire_type(&self) -> WireType {
        match self {
            FieldBytes::Varint(_) => WireType::Varint,
            FieldBytes::Fixed64(_) => WireType::SixtyFourBit,
            FieldBytes::Fixed32 => WireType::ThirtyTwoBit,
            FieldBytes::Delimited(_) => WireType::LengthDelimited,
        }
    }
}

fn malformed(message: &'static str) -> impl Fn(prost::DecodeError) -> ProtobufError {
    move |source| ProtobufError::Malformed { message, source }
}

/// Reads one field value of the given wire type from `buf`.
fn take_field<'a>(
    message: &'static str,
    field: &'static str,
    wire: WireType,
    buf: &mut &'a [u8],
) -> Result<FieldBytes<'a>, ProtobufError> {
    let truncated = |reason| ProtobufError::Truncated { message, reason };
    match wire {
        WireType::Varint => Ok(FieldBytes::Varint(
            decode_varint(buf).map_err(malformed(message))?,
        )),
        WireType::SixtyFourBit => {
            let (head, tail) = buf
                .split_first_chunk::<8>()
                .ok_or_else(|| truncated("truncated 64-bit value"))?;
            *buf = tail;
            Ok(FieldBytes::Fixed64(u64::from_le_bytes(*head)))
        }
        WireType::ThirtyTwoBit => {
            let (head, tail) = buf
                .split_first_chunk::<4>()
                .ok_or_else(|| truncated("truncated 32-bit value"))?;
            *buf = tail;
            let _ = head;
            Ok(FieldBytes::Fixed32)
        }
        WireType::LengthDelimited => {
            let len = decode_varint(buf).map_err(malformed(message))?;
            let len = usize::try_from(len)
                .ok()
                .filter(|len| *len <= buf.len())
                .ok_or_else(|| truncated("length-delimited field runs past the end"))?;
            let (head, tail) = buf.split_at(len);
            *buf = tail;
            Ok(FieldBytes::Delimited(head))
        }
        WireType::StartGroup | WireType::EndGroup => Err(ProtobufError::InvalidValue {
            message,
            field,
            reason: "protobuf groups are not used by Kubernetes".into(),
        }),
    }
}

/// Decodes `buf` as the named message into a JSON object.
fn decode_message(
    message: &'static str,
    buf: &[u8],
    depth: usize,
) -> Result<Map<String, Value>, ProtobufError> {
    let mut out = Map::new();
    decode_into(message, buf, depth, &mut out)?;
    Ok(out)
}

/// Decodes `buf` as the named message, adding its fields to `out` (shared with inline parents).
fn decode_into(
    message: &'static str,
    mut buf: &[u8],
    depth: usize,
    out: &mut Map<String, Value>,
) -> Result<(), ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    let fields = *messages()
        .get(message)
        .ok_or(ProtobufError::UnknownMessage(message))?;
    while !buf.is_empty() {
        let (number, wire) = decode_key(&mut buf).map_err(malformed(message))?;
        let field = fields
            .iter()
            .find(|f| f.number == number)
            .ok_or(ProtobufError::UnknownField { message, number })?;
        let value = take_field(message, field.json, wire, &mut buf)?;
        match field.shape {
            Inline => {
                let M(inner) = field.ty else {
                    return Err(ProtobufError::UnknownMessage(message));
                };
                let bytes = expect_delimited(message, field, value)?;
                decode_into(inner, bytes, depth + 1, out)?;
            }
            One | OmitZero => {
                let v = decode_value(message, field, field.ty, value, depth)?;
                if field.shape == OmitZero && is_zero(&v) {
                    out.remove(field.json);
                } else {
                    out.insert(field.json.into(), v);
                }
            }
            Repeated => {
                let items = repeated_values(message, field, value, depth)?;
                let entry = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(array) = entry {
                    array.extend(items);
                }
            }
            Map => {
                let bytes = expect_delimited(message, field, value)?;
                let (key, v) = decode_map_entry(message, field, bytes, depth)?;
                let entry = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(object) = entry {
                    object.insert(key, v);
                }
            }
        }
    }
    Ok(())
}

/// The values of one occurrence of a repeated field: one value, or several if packed.
fn repeated_values(
    message: &'static str,
    field: &Field,
    value: FieldBytes<'_>,
    depth: usize,
) -> Result<Vec<Value>, ProtobufError> {
    let packable = matches!(field.ty, I32 | I64 | Bool | F64);
    match value {
        FieldBytes::Delimited(mut bytes) if packable => {
            let wire = if field.ty == F64 {
                WireType::SixtyFourBit
            } else {
                WireType::Varint
            };
            let mut items = Vec::new();
            while !bytes.is_empty() {
                let item = take_field(message, field.json, wire, &mut bytes)?;
                items.push(decode_value(message, field, field.ty, item, depth)?);
            }
            Ok(items)
        }
        value => Ok(vec![decode_value(message, field, field.ty, value, depth)?]),
    }
}

/// A map entry message: key 1 (string), value 2 (of the field's type).
fn decode_map_entry(
    message: &'static str,
    field: &Field,
    mut buf: &[u8],
    depth: usize,
) -> Result<(String, Value), ProtobufError> {
    let mut key = String::new();
    let mut value = None;
    while !buf.is_empty() {
        let (number, wire) = decode_key(&mut buf).map_err(malformed(message))?;
        let bytes = take_field(message, field.json, wire, &mut buf)?;
        match number {
            1 => {
                if let Value::String(k) = decode_value(message, field, Str, bytes, depth)? {
                    key = k;
                }
            }
            2 => value = Some(decode_value(message, field, field.ty, bytes, depth)?),
            number => return Err(ProtobufError::UnknownField { message, number }),
        }
    }
    // An absent value is the type's zero value.
    let value = match value {
        Some(v) => v,
        None => decode_value(message, field, field.ty, zero_of(field.ty), depth)?,
    };
    Ok((key, value))
}

/// The protobuf encoding of a type's zero value, for map entries that omit their value.
fn zero_of(ty: Ty) -> FieldBytes<'static> {
    match ty {
        I32 | I64 | Bool => FieldBytes::Varint(0),
        F64 => FieldBytes::Fixed64(0),
        _ => FieldBytes::Delimited(&[]),
    }
}

fn expect_delimited<'a>(
    message: &'static str,
    field: &Field,
    value: FieldBytes<'a>,
) -> Result<&'a [u8], ProtobufError> {
    match value {
        FieldBytes::Delimited(bytes) => Ok(bytes),
        other => Err(ProtobufError::WireType {
            message,
            field: field.json,
            found: other.wire_type(),
            expected: WireType::LengthDelimited,
        }),
    }
}

/// Decodes one value of type `ty` into JSON.
fn decode_value(
    message: &'static str,
    field: &Field,
    ty: Ty,
    value: FieldBytes<'_>,
    depth: usize,
) -> Result<Value, ProtobufError> {
    let wrong = |found: &FieldBytes<'_>, expected| ProtobufError::WireType {
        message,
        field: field.json,
        found: found.wire_type(),
        expected,
    };
    let invalid = |reason: String| ProtobufError::InvalidValue {
        message,
        field: field.json,
        reason,
    };
    match (ty, value) {
        (I32, FieldBytes::Varint(v)) => Ok(Value::from(v as i32)),
        (I64, FieldBytes::Varint(v)) => Ok(Value::from(v as i64)),
        (Bool, FieldBytes::Varint(v)) => Ok(Value::Bool(v != 0)),
        (I32 | I64 | Bool, other) => Err(wrong(&other, WireType::Varint)),
        (F64, FieldBytes::Fixed64(bits)) => serde_json::Number::from_f64(f64::from_bits(bits))
            .map(Value::Number)
            .ok_or_else(|| invalid("not a finite number".into())),
        (F64, other) => Err(wrong(&other, WireType::SixtyFourBit)),
        (ty, FieldBytes::Delimited(bytes)) => match ty {
            Str => std::str::from_utf8(bytes)
                .map(|s| Value::String(s.to_string()))
                .map_err(|_| ProtobufError::InvalidUtf8 {
                    message,
                    field: field.json,
                }),
            Bytes => Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(bytes),
            )),
            M(inner) => Ok(Value::Object(decode_message(inner, bytes, depth + 1)?)),
            Quantity => {
                let q = decode_message("resource.Quantity", bytes, depth + 1)?;
                Ok(q.get("string")
                    .cloned()
                    .unwrap_or_else(|| Value::String("0".into())))
            }
            IntOrString => {
                let v = decode_message("intstr.IntOrString", bytes, depth + 1)?;
                match v.get("type").and_then(Value::as_i64).unwrap_or(0) {
                    0 => Ok(v.get("intVal").cloned().unwrap_or(Value::from(0))),
                    1 => Ok(v
                        .get("strVal")
                        .cloned()
                        .unwrap_or_else(|| Value::String(String::new()))),
                    other => Err(invalid(format!("IntOrString has unknown type {other}"))),
                }
            }
            Time | MicroTime => {
                // A zero time is marshalled as an empty message and is `null` in JSON.
                if bytes.is_empty() {
                    return Ok(Value::Null);
                }
                let t = decode_message("meta.v1.Timestamp", bytes, depth + 1)?;
                let seconds = t.get("seconds").and_then(Value::as_i64).unwrap_or(0);
                let nanos = t.get("nanos").and_then(Value::as_i64).unwrap_or(0);
                format_time(ty == MicroTime, seconds, nanos)
                    .map(Value::String)
                    .ok_or_else(|| invalid(format!("time {seconds}s {nanos}ns is out of range")))
            }
            RawExtension | FieldsV1 => {
                let name = if ty == RawExtension {
                    "runtime.RawExtension"
                } else {
                    "meta.v1.FieldsV1"
                };
                let mut inner = bytes;
                let mut raw: &[u8] = &[];
                while !inner.is_empty() {
                    let (number, wire) = decode_key(&mut inner).map_err(malformed(name))?;
                    let value = take_field(name, "raw", wire, &mut inner)?;
                    match (number, value) {
                        (1, FieldBytes::Delimited(bytes)) => raw = bytes,
                        (1, other) => return Err(wrong(&other, WireType::LengthDelimited)),
                        (number, _) => {
                            return Err(ProtobufError::UnknownField {
                                message: name,
                                number,
                            });
                        }
                    }
                }
                embedded_json(raw, depth + 1).map_err(|e| match e {
                    Embedded::TooDeep => ProtobufError::TooDeep,
                    Embedded::Invalid(reason) => invalid(reason),
                })
            }
            I32 | I64 | Bool | F64 => Err(invalid("scalar in a length-delimited field".into())),
        },
        (_, other) => Err(wrong(&other, WireType::LengthDelimited)),
    }
}

/// The JSON carried by a `RawExtension` or `FieldsV1`: JSON text, or a nested protobuf object.
fn embedded_json(raw: &[u8], depth: usize) -> Result<Value, Embedded> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if raw.starts_with(MAGIC) {
        return decode_object_at(raw, depth).map_err(|e| match e {
            ProtobufError::TooDeep => Embedded::TooDeep,
            e => Embedded::Invalid(format!("embedded object: {e}")),
        });
    }
    serde_json::from_slice(raw)
        .map_err(|e| Embedded::Invalid(format!("embedded object is not JSON: {e}")))
}

/// Why an embedded object could not be decoded.
enum Embedded {
    TooDeep,
    Invalid(String),
}

/// RFC 3339 in UTC as Go's `metav1.Time` (whole seconds) or `metav1.MicroTime` prints it.
fn format_time(micro: bool, seconds: i64, nanos: i64) -> Option<String> {
    let nanos = u32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000)?;
    let t = chrono::DateTime::from_timestamp(seconds, if micro { nanos } else { 0 })?;
    Some(if micro {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    })
}

/// Whether a decoded scalar is its type's zero value (dropped for `omitempty` fields).
fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Null => true,
        _ => false,
    }
}

/// The schema: every message that can be reached from [`KINDS`], with its fields by number.
/// The envelope's `TypeMeta` and the messages behind the special types come first.
#[rustfmt::skip]
static SCHEMA: &[(&str, &[Field])] = &[
    ("runtime.TypeMeta", &[
        one(1, "apiVersion", Str),
        one(2, "kind", Str),
    ]),
    ("resource.Quantity", &[
        one(1, "string", Str),
    ]),
    ("intstr.IntOrString", &[
        one(1, "type", I64),
        one(2, "intVal", I32),
        one(3, "strVal", Str),
    ]),
    ("meta.v1.Timestamp", &[
        one(1, "seconds", I64),
        one(2, "nanos", I32),
    ]),
    ("authentication.v1.SelfSubjectReview", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "status", M("authentication.v1.SelfSubjectReviewStatus")),
    ]),
    ("authentication.v1.SelfSubjectReviewStatus", &[
        one(1, "userInfo", M("authentication.v1.UserInfo")),
    ]),
    ("authentication.v1.UserInfo", &[
        oz(1, "username", Str),
        oz(2, "uid", Str),
        rep(3, "groups", Str),
        map(4, "extra", M("authentication.v1.ExtraValue")),
    ]),
    ("authentication.v1.ExtraValue", &[
        rep(1, "items", Str),
    ]),
    ("authorization.v1.ExtraValue", &[
        rep(1, "items", Str),
    ]),
    ("authorization.v1.NonResourceAttributes", &[
        oz(1, "path", Str),
        oz(2, "verb", Str),
    ]),
    ("authorization.v1.ResourceAttributes", &[
        oz(1, "namespace", Str),
        oz(2, "verb", Str),
        oz(3, "group", Str),
        oz(4, "version", Str),
        oz(5, "resource", Str),
        oz(6, "subresource", Str),
        oz(7, "name", Str),
    ]),
    ("authorization.v1.SelfSubjectAccessReview", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("authorization.v1.SelfSubjectAccessReviewSpec")),
        one(3, "status", M("authorization.v1.SubjectAccessReviewStatus")),
    ]),
    ("authorization.v1.SelfSubjectAccessReviewSpec", &[
        one(1, "resourceAttributes", M("authorization.v1.ResourceAttributes")),
        one(2, "nonResourceAttributes", M("authorization.v1.NonResourceAttributes")),
    ]),
    ("authorization.v1.SelfSubjectRulesReview", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("authorization.v1.SelfSubjectRulesReviewSpec")),
        one(3, "status", M("authorization.v1.SubjectRulesReviewStatus")),
    ]),
    ("authorization.v1.SelfSubjectRulesReviewSpec", &[
        oz(1, "namespace", Str),
    ]),
    ("authorization.v1.SubjectAccessReview", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("authorization.v1.SubjectAccessReviewSpec")),
        one(3, "status", M("authorization.v1.SubjectAccessReviewStatus")),
    ]),
    ("authorization.v1.SubjectAccessReviewSpec", &[
        one(1, "resourceAttributes", M("authorization.v1.ResourceAttributes")),
        one(2, "nonResourceAttributes", M("authorization.v1.NonResourceAttributes")),
        oz(3, "user", Str),
        rep(4, "groups", Str),
        map(5, "extra", M("authorization.v1.ExtraValue")),
        oz(6, "uid", Str),
    ]),
    ("authorization.v1.SubjectAccessReviewStatus", &[
        one(1, "allowed", Bool),
        oz(2, "reason", Str),
        oz(3, "evaluationError", Str),
        oz(4, "denied", Bool),
    ]),
    ("authorization.v1.SubjectRulesReviewStatus", &[
        rep(1, "resourceRules", M("authorization.v1.ResourceRule")),
        rep(2, "nonResourceRules", M("authorization.v1.NonResourceRule")),
        one(3, "incomplete", Bool),
        oz(4, "evaluationError", Str),
    ]),
    ("authorization.v1.ResourceRule", &[
        rep(1, "verbs", Str),
        rep(2, "apiGroups", Str),
        rep(3, "resources", Str),
        rep(4, "resourceNames", Str),
    ]),
    ("authorization.v1.NonResourceRule", &[
        rep(1, "verbs", Str),
        rep(2, "nonResourceURLs", Str),
    ]),
    ("apps.v1.ControllerRevision", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "data", RawExtension),
        one(3, "revision", I64),
    ]),
    ("apps.v1.Deployment", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("apps.v1.DeploymentSpec")),
        one(3, "status", M("apps.v1.DeploymentStatus")),
    ]),
    ("apps.v1.DeploymentCondition", &[
        one(1, "type", Str),
        one(2, "status", Str),
        oz(4, "reason", Str),
        oz(5, "message", Str),
        one(6, "lastUpdateTime", Time),
        one(7, "lastTransitionTime", Time),
    ]),
    ("apps.v1.DeploymentSpec", &[
        one(1, "replicas", I32),
        one(2, "selector", M("meta.v1.LabelSelector")),
        one(3, "template", M("core.v1.PodTemplateSpec")),
        one(4, "strategy", M("apps.v1.DeploymentStrategy")),
        oz(5, "minReadySeconds", I32),
        one(6, "revisionHistoryLimit", I32),
        oz(7, "paused", Bool),
        one(9, "progressDeadlineSeconds", I32),
    ]),
    ("apps.v1.DeploymentStatus", &[
        oz(1, "observedGeneration", I64),
        oz(2, "replicas", I32),
        oz(3, "updatedReplicas", I32),
        oz(4, "availableReplicas", I32),
        oz(5, "unavailableReplicas", I32),
        rep(6, "conditions", M("apps.v1.DeploymentCondition")),
        oz(7, "readyReplicas", I32),
        one(8, "collisionCount", I32),
        one(9, "terminatingReplicas", I32),
    ]),
    ("apps.v1.DeploymentStrategy", &[
        oz(1, "type", Str),
        one(2, "rollingUpdate", M("apps.v1.RollingUpdateDeployment")),
    ]),
    ("apps.v1.ReplicaSet", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("apps.v1.ReplicaSetSpec")),
        one(3, "status", M("apps.v1.ReplicaSetStatus")),
    ]),
    ("apps.v1.ReplicaSetCondition", &[
        one(1, "type", Str),
        one(2, "status", Str),
        one(3, "lastTransitionTime", Time),
        oz(4, "reason", Str),
        oz(5, "message", Str),
    ]),
    ("apps.v1.ReplicaSetSpec", &[
        one(1, "replicas", I32),
        one(2, "selector", M("meta.v1.LabelSelector")),
        one(3, "template", M("core.v1.PodTemplateSpec")),
        oz(4, "minReadySeconds", I32),
    ]),
    ("apps.v1.ReplicaSetStatus", &[
        one(1, "replicas", I32),
        oz(2, "fullyLabeledReplicas", I32),
        oz(3, "observedGeneration", I64),
        oz(4, "readyReplicas", I32),
        oz(5, "availableReplicas", I32),
        rep(6, "conditions", M("apps.v1.ReplicaSetCondition")),
        one(7, "terminatingReplicas", I32),
    ]),
    ("apps.v1.RollingUpdateDeployment", &[
        one(1, "maxUnavailable", IntOrString),
        one(2, "maxSurge", IntOrString),
    ]),
    ("autoscaling.v1.CrossVersionObjectReference", &[
        one(1, "kind", Str),
        one(2, "name", Str),
        oz(3, "apiVersion", Str),
    ]),
    ("autoscaling.v1.HorizontalPodAutoscaler", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("autoscaling.v1.HorizontalPodAutoscalerSpec")),
        one(3, "status", M("autoscaling.v1.HorizontalPodAutoscalerStatus")),
    ]),
    ("autoscaling.v1.HorizontalPodAutoscalerSpec", &[
        one(1, "scaleTargetRef", M("autoscaling.v1.CrossVersionObjectReference")),
        one(2, "minReplicas", I32),
        one(3, "maxReplicas", I32),
        one(4, "targetCPUUtilizationPercentage", I32),
    ]),
    ("autoscaling.v1.HorizontalPodAutoscalerStatus", &[
        one(1, "observedGeneration", I64),
        one(2, "lastScaleTime", Time),
        one(3, "currentReplicas", I32),
        one(4, "desiredReplicas", I32),
        one(5, "currentCPUUtilizationPercentage", I32),
    ]),
    ("autoscaling.v1.Scale", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("autoscaling.v1.ScaleSpec")),
        one(3, "status", M("autoscaling.v1.ScaleStatus")),
    ]),
    ("autoscaling.v1.ScaleSpec", &[
        oz(1, "replicas", I32),
    ]),
    ("autoscaling.v1.ScaleStatus", &[
        one(1, "replicas", I32),
        oz(2, "selector", Str),
    ]),
    ("autoscaling.v2.ContainerResourceMetricSource", &[
        one(1, "name", Str),
        one(2, "target", M("autoscaling.v2.MetricTarget")),
        one(3, "container", Str),
    ]),
    ("autoscaling.v2.ContainerResourceMetricStatus", &[
        one(1, "name", Str),
        one(2, "current", M("autoscaling.v2.MetricValueStatus")),
        one(3, "container", Str),
    ]),
    ("autoscaling.v2.CrossVersionObjectReference", &[
        one(1, "kind", Str),
        one(2, "name", Str),
        oz(3, "apiVersion", Str),
    ]),
    ("autoscaling.v2.ExternalMetricSource", &[
        one(1, "metric", M("autoscaling.v2.MetricIdentifier")),
        one(2, "target", M("autoscaling.v2.MetricTarget")),
    ]),
    ("autoscaling.v2.ExternalMetricStatus", &[
        one(1, "metric", M("autoscaling.v2.MetricIdentifier")),
        one(2, "current", M("autoscaling.v2.MetricValueStatus")),
    ]),
    ("autoscaling.v2.HPAScalingPolicy", &[
        one(1, "type", Str),
        one(2, "value", I32),
        one(3, "periodSeconds", I32),
    ]),
    ("autoscaling.v2.HPAScalingRules", &[
        one(1, "selectPolicy", Str),
        rep(2, "policies", M("autoscaling.v2.HPAScalingPolicy")),
        one(3, "stabilizationWindowSeconds", I32),
        one(4, "tolerance", Quantity),
    ]),
    ("autoscaling.v2.HorizontalPodAutoscaler", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("autoscaling.v2.HorizontalPodAutoscalerSpec")),
        one(3, "status", M("autoscaling.v2.HorizontalPodAutoscalerStatus")),
    ]),
    ("autoscaling.v2.HorizontalPodAutoscalerBehavior", &[
        one(1, "scaleUp", M("autoscaling.v2.HPAScalingRules")),
        one(2, "scaleDown", M("autoscaling.v2.HPAScalingRules")),
    ]),
    ("autoscaling.v2.HorizontalPodAutoscalerCondition", &[
        one(1, "type", Str),
        one(2, "status", Str),
        one(3, "lastTransitionTime", Time),
        oz(4, "reason", Str),
        oz(5, "message", Str),
        one(6, "observedGeneration", I64),
    ]),
    ("autoscaling.v2.HorizontalPodAutoscalerSpec", &[
        one(1, "scaleTargetRef", M("autoscaling.v2.CrossVersionObjectReference")),
        one(2, "minReplicas", I32),
        one(3, "maxReplicas", I32),
        rep(4, "metrics", M("autoscaling.v2.MetricSpec")),
        one(5, "behavior", M("autoscaling.v2.HorizontalPodAutoscalerBehavior")),
    ]),
    ("autoscaling.v2.HorizontalPodAutoscalerStatus", &[
        one(1, "observedGeneration", I64),
        one(2, "lastScaleTime", Time),
        oz(3, "currentReplicas", I32),
        one(4, "desiredReplicas", I32),
        rep(5, "currentMetrics", M("autoscaling.v2.MetricStatus")),
        rep(6, "conditions", M("autoscaling.v2.HorizontalPodAutoscalerCondition")),
    ]),
    ("autoscaling.v2.MetricIdentifier", &[
        one(1, "name", Str),
        one(2, "selector", M("meta.v1.LabelSelector")),
    ]),
    ("autoscaling.v2.MetricSpec", &[
        one(1, "type", Str),
        one(2, "object", M("autoscaling.v2.ObjectMetricSource")),
        one(3, "pods", M("autoscaling.v2.PodsMetricSource")),
        one(4, "resource", M("autoscaling.v2.ResourceMetricSource")),
        one(5, "external", M("autoscaling.v2.ExternalMetricSource")),
        one(7, "containerResource", M("autoscaling.v2.ContainerResourceMetricSource")),
    ]),
    ("autoscaling.v2.MetricStatus", &[
        one(1, "type", Str),
        one(2, "object", M("autoscaling.v2.ObjectMetricStatus")),
        one(3, "pods", M("autoscaling.v2.PodsMetricStatus")),
        one(4, "resource", M("autoscaling.v2.ResourceMetricStatus")),
        one(5, "external", M("autoscaling.v2.ExternalMetricStatus")),
        one(7, "containerResource", M("autoscaling.v2.ContainerResourceMetricStatus")),
    ]),
    ("autoscaling.v2.MetricTarget", &[
        one(1, "type", Str),
        one(2, "value", Quantity),
        one(3, "averageValue", Quantity),
        one(4, "averageUtilization", I32),
    ]),
    ("autoscaling.v2.MetricValueStatus", &[
        one(1, "value", Quantity),
        one(2, "averageValue", Quantity),
        one(3, "averageUtilization", I32),
    ]),
    ("autoscaling.v2.ObjectMetricSource", &[
        one(1, "describedObject", M("autoscaling.v2.CrossVersionObjectReference")),
        one(2, "target", M("autoscaling.v2.MetricTarget")),
        one(3, "metric", M("autoscaling.v2.MetricIdentifier")),
    ]),
    ("autoscaling.v2.ObjectMetricStatus", &[
        one(1, "metric", M("autoscaling.v2.MetricIdentifier")),
        one(2, "current", M("autoscaling.v2.MetricValueStatus")),
        one(3, "describedObject", M("autoscaling.v2.CrossVersionObjectReference")),
    ]),
    ("autoscaling.v2.PodsMetricSource", &[
        one(1, "metric", M("autoscaling.v2.MetricIdentifier")),
        one(2, "target", M("autoscaling.v2.MetricTarget")),
    ]),
    ("autoscaling.v2.PodsMetricStatus", &[
        one(1, "metric", M("autoscaling.v2.MetricIdentifier")),
        one(2, "current", M("autoscaling.v2.MetricValueStatus")),
    ]),
    ("autoscaling.v2.ResourceMetricSource", &[
        one(1, "name", Str),
        one(2, "target", M("autoscaling.v2.MetricTarget")),
    ]),
    ("autoscaling.v2.ResourceMetricStatus", &[
        one(1, "name", Str),
        one(2, "current", M("autoscaling.v2.MetricValueStatus")),
    ]),
    ("batch.v1.CronJob", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("batch.v1.CronJobSpec")),
        one(3, "status", M("batch.v1.CronJobStatus")),
    ]),
    ("batch.v1.CronJobSpec", &[
        one(1, "schedule", Str),
        one(2, "startingDeadlineSeconds", I64),
        oz(3, "concurrencyPolicy", Str),
        one(4, "suspend", Bool),
        one(5, "jobTemplate", M("batch.v1.JobTemplateSpec")),
        one(6, "successfulJobsHistoryLimit", I32),
        one(7, "failedJobsHistoryLimit", I32),
        one(8, "timeZone", Str),
    ]),
    ("batch.v1.CronJobStatus", &[
        rep(1, "active", M("core.v1.ObjectReference")),
        one(4, "lastScheduleTime", Time),
        one(5, "lastSuccessfulTime", Time),
    ]),
    ("batch.v1.Job", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("batch.v1.JobSpec")),
        one(3, "status", M("batch.v1.JobStatus")),
    ]),
    ("batch.v1.JobCondition", &[
        one(1, "type", Str),
        one(2, "status", Str),
        one(3, "lastProbeTime", Time),
        one(4, "lastTransitionTime", Time),
        oz(5, "reason", Str),
        oz(6, "message", Str),
    ]),
    ("batch.v1.JobSpec", &[
        one(1, "parallelism", I32),
        one(2, "completions", I32),
        one(3, "activeDeadlineSeconds", I64),
        one(4, "selector", M("meta.v1.LabelSelector")),
        one(5, "manualSelector", Bool),
        one(6, "template", M("core.v1.PodTemplateSpec")),
        one(7, "backoffLimit", I32),
        one(8, "ttlSecondsAfterFinished", I32),
        one(9, "completionMode", Str),
        one(10, "suspend", Bool),
        one(11, "podFailurePolicy", M("batch.v1.PodFailurePolicy")),
        one(12, "backoffLimitPerIndex", I32),
        one(13, "maxFailedIndexes", I32),
        one(14, "podReplacementPolicy", Str),
        one(15, "managedBy", Str),
        one(16, "successPolicy", M("batch.v1.SuccessPolicy")),
    ]),
    ("batch.v1.JobStatus", &[
        rep(1, "conditions", M("batch.v1.JobCondition")),
        one(2, "startTime", Time),
        one(3, "completionTime", Time),
        oz(4, "active", I32),
        oz(5, "succeeded", I32),
        oz(6, "failed", I32),
        oz(7, "completedIndexes", Str),
        one(8, "uncountedTerminatedPods", M("batch.v1.UncountedTerminatedPods")),
        one(9, "ready", I32),
        one(10, "failedIndexes", Str),
        one(11, "terminating", I32),
    ]),
    ("batch.v1.JobTemplateSpec", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("batch.v1.JobSpec")),
    ]),
    ("batch.v1.PodFailurePolicy", &[
        rep(1, "rules", M("batch.v1.PodFailurePolicyRule")),
    ]),
    ("batch.v1.PodFailurePolicyOnExitCodesRequirement", &[
        one(1, "containerName", Str),
        one(2, "operator", Str),
        rep(3, "values", I32),
    ]),
    ("batch.v1.PodFailurePolicyOnPodConditionsPattern", &[
        one(1, "type", Str),
        one(2, "status", Str),
    ]),
    ("batch.v1.PodFailurePolicyRule", &[
        one(1, "action", Str),
        one(2, "onExitCodes", M("batch.v1.PodFailurePolicyOnExitCodesRequirement")),
        rep(3, "onPodConditions", M("batch.v1.PodFailurePolicyOnPodConditionsPattern")),
    ]),
    ("batch.v1.SuccessPolicy", &[
        rep(1, "rules", M("batch.v1.SuccessPolicyRule")),
    ]),
    ("batch.v1.SuccessPolicyRule", &[
        one(1, "succeededIndexes", Str),
        one(2, "succeededCount", I32),
    ]),
    ("batch.v1.UncountedTerminatedPods", &[
        rep(1, "succeeded", Str),
        rep(2, "failed", Str),
    ]),
    ("coordination.v1.Lease", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("coordination.v1.LeaseSpec")),
    ]),
    ("coordination.v1.LeaseSpec", &[
        one(1, "holderIdentity", Str),
        one(2, "leaseDurationSeconds", I32),
        one(3, "acquireTime", MicroTime),
        one(4, "renewTime", MicroTime),
        one(5, "leaseTransitions", I32),
        one(6, "strategy", Str),
        one(7, "preferredHolder", Str),
    ]),
    ("core.v1.AWSElasticBlockStoreVolumeSource", &[
        one(1, "volumeID", Str),
        oz(2, "fsType", Str),
        oz(3, "partition", I32),
        oz(4, "readOnly", Bool),
    ]),
    ("core.v1.Affinity", &[
        one(1, "nodeAffinity", M("core.v1.NodeAffinity")),
        one(2, "podAffinity", M("core.v1.PodAffinity")),
        one(3, "podAntiAffinity", M("core.v1.PodAntiAffinity")),
    ]),
    ("core.v1.AppArmorProfile", &[
        one(1, "type", Str),
        one(2, "localhostProfile", Str),
    ]),
    ("core.v1.AttachedVolume", &[
        one(1, "name", Str),
        one(2, "devicePath", Str),
    ]),
    ("core.v1.AzureDiskVolumeSource", &[
        one(1, "diskName", Str),
        one(2, "diskURI", Str),
        one(3, "cachingMode", Str),
        one(4, "fsType", Str),
        one(5, "readOnly", Bool),
        one(6, "kind", Str),
    ]),
    ("core.v1.AzureFileVolumeSource", &[
        one(1, "secretName", Str),
        one(2, "shareName", Str),
        oz(3, "readOnly", Bool),
    ]),
    ("core.v1.Binding", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "target", M("core.v1.ObjectReference")),
    ]),
    ("core.v1.CSIVolumeSource", &[
        one(1, "driver", Str),
        one(2, "readOnly", Bool),
        one(3, "fsType", Str),
        map(4, "volumeAttributes", Str),
        one(5, "nodePublishSecretRef", M("core.v1.LocalObjectReference")),
    ]),
    ("core.v1.Capabilities", &[
        rep(1, "add", Str),
        rep(2, "drop", Str),
    ]),
    ("core.v1.CephFSVolumeSource", &[
        rep(1, "monitors", Str),
        oz(2, "path", Str),
        oz(3, "user", Str),
        oz(4, "secretFile", Str),
        one(5, "secretRef", M("core.v1.LocalObjectReference")),
        oz(6, "readOnly", Bool),
    ]),
    ("core.v1.CinderVolumeSource", &[
        one(1, "volumeID", Str),
        oz(2, "fsType", Str),
        oz(3, "readOnly", Bool),
        one(4, "secretRef", M("core.v1.LocalObjectReference")),
    ]),
    ("core.v1.ClientIPConfig", &[
        one(1, "timeoutSeconds", I32),
    ]),
    ("core.v1.ClusterTrustBundleProjection", &[
        one(1, "name", Str),
        one(2, "signerName", Str),
        one(3, "labelSelector", M("meta.v1.LabelSelector")),
        one(4, "path", Str),
        one(5, "optional", Bool),
        one(6, "user", I64),
    ]),
    ("core.v1.ConfigMap", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        map(2, "data", Str),
        map(3, "binaryData", Bytes),
        one(4, "immutable", Bool),
    ]),
    ("core.v1.ConfigMapEnvSource", &[
        inline(1, "core.v1.LocalObjectReference"),
        one(2, "optional", Bool),
    ]),
    ("core.v1.ConfigMapKeySelector", &[
        inline(1, "core.v1.LocalObjectReference"),
        one(2, "key", Str),
        one(3, "optional", Bool),
    ]),
    ("core.v1.ConfigMapNodeConfigSource", &[
        one(1, "namespace", Str),
        one(2, "name", Str),
        oz(3, "uid", Str),
        oz(4, "resourceVersion", Str),
        one(5, "kubeletConfigKey", Str),
    ]),
    ("core.v1.ConfigMapProjection", &[
        inline(1, "core.v1.LocalObjectReference"),
        rep(2, "items", M("core.v1.KeyToPath")),
        one(4, "optional", Bool),
    ]),
    ("core.v1.ConfigMapVolumeSource", &[
        inline(1, "core.v1.LocalObjectReference"),
        rep(2, "items", M("core.v1.KeyToPath")),
        one(3, "defaultMode", I32),
        one(4, "optional", Bool),
        one(5, "defaultUser", I64),
    ]),
    ("core.v1.Container", &[
        one(1, "name", Str),
        oz(2, "image", Str),
        rep(3, "command", Str),
        rep(4, "args", Str),
        oz(5, "workingDir", Str),
        rep(6, "ports", M("core.v1.ContainerPort")),
        rep(7, "env", M("core.v1.EnvVar")),
        one(8, "resources", M("core.v1.ResourceRequirements")),
        rep(9, "volumeMounts", M("core.v1.VolumeMount")),
        one(10, "livenessProbe", M("core.v1.Probe")),
        one(11, "readinessProbe", M("core.v1.Probe")),
        one(12, "lifecycle", M("core.v1.Lifecycle")),
        oz(13, "terminationMessagePath", Str),
        oz(14, "imagePullPolicy", Str),
        one(15, "securityContext", M("core.v1.SecurityContext")),
        oz(16, "stdin", Bool),
        oz(17, "stdinOnce", Bool),
        oz(18, "tty", Bool),
        rep(19, "envFrom", M("core.v1.EnvFromSource")),
        oz(20, "terminationMessagePolicy", Str),
        rep(21, "volumeDevices", M("core.v1.VolumeDevice")),
        one(22, "startupProbe", M("core.v1.Probe")),
        rep(23, "resizePolicy", M("core.v1.ContainerResizePolicy")),
        one(24, "restartPolicy", Str),
        rep(25, "restartPolicyRules", M("core.v1.ContainerRestartRule")),
    ]),
    ("core.v1.ContainerExtendedResourceRequest", &[
        one(1, "containerName", Str),
        one(2, "resourceName", Str),
        one(3, "requestName", Str),
    ]),
    ("core.v1.ContainerImage", &[
        rep(1, "names", Str),
        oz(2, "sizeBytes", I64),
    ]),
    ("core.v1.ContainerPort", &[
        oz(1, "name", Str),
        oz(2, "hostPort", I32),
        one(3, "containerPort", I32),
        oz(4, "protocol", Str),
        oz(5, "hostIP", Str),
    ]),
    ("core.v1.ContainerResizePolicy", &[
        one(1, "resourceName", Str),
        one(2, "restartPolicy", Str),
    ]),
    ("core.v1.ContainerRestartRule", &[
        oz(1, "action", Str),
        one(2, "exitCodes", M("core.v1.ContainerRestartRuleOnExitCodes")),
    ]),
    ("core.v1.ContainerRestartRuleOnExitCodes", &[
        oz(1, "operator", Str),
        rep(2, "values", I32),
    ]),
    ("core.v1.ContainerState", &[
        one(1, "waiting", M("core.v1.ContainerStateWaiting")),
        one(2, "running", M("core.v1.ContainerStateRunning")),
        one(3, "terminated", M("core.v1.ContainerStateTerminated")),
    ]),
    ("core.v1.ContainerStateRunning", &[
        one(1, "startedAt", Time),
    ]),
    ("core.v1.ContainerStateTerminated", &[
        one(1, "exitCode", I32),
        oz(2, "signal", I32),
        oz(3, "reason", Str),
        oz(4, "message", Str),
        one(5, "startedAt", Time),
        one(6, "finishedAt", Time),
        oz(7, "containerID", Str),
    ]),
    ("core.v1.ContainerStateWaiting", &[
        oz(1, "reason", Str),
        oz(2, "message", Str),
    ]),
    ("core.v1.ContainerStatus", &[
        one(1, "name", Str),
        one(2, "state", M("core.v1.ContainerState")),
        one(3, "lastState", M("core.v1.ContainerState")),
        one(4, "ready", Bool),
        one(5, "restartCount", I32),
        one(6, "image", Str),
        one(7, "imageID", Str),
        oz(8, "containerID", Str),
        one(9, "started", Bool),
        map(10, "allocatedResources", Quantity),
        one(11, "resources", M("core.v1.ResourceRequirements")),
        rep(12, "volumeMounts", M("core.v1.VolumeMountStatus")),
        one(13, "user", M("core.v1.ContainerUser")),
        rep(14, "allocatedResourcesStatus", M("core.v1.ResourceStatus")),
        one(15, "stopSignal", Str),
    ]),
    ("core.v1.ContainerUser", &[
        one(1, "linux", M("core.v1.LinuxContainerUser")),
    ]),
    ("core.v1.DaemonEndpoint", &[
        one(1, "Port", I32),
    ]),
    ("core.v1.DownwardAPIProjection", &[
        rep(1, "items", M("core.v1.DownwardAPIVolumeFile")),
    ]),
    ("core.v1.DownwardAPIVolumeFile", &[
        one(1, "path", Str),
        one(2, "fieldRef", M("core.v1.ObjectFieldSelector")),
        one(3, "resourceFieldRef", M("core.v1.ResourceFieldSelector")),
        one(4, "mode", I32),
        one(5, "user", I64),
    ]),
    ("core.v1.DownwardAPIVolumeSource", &[
        rep(1, "items", M("core.v1.DownwardAPIVolumeFile")),
        one(2, "defaultMode", I32),
        one(3, "defaultUser", I64),
    ]),
    ("core.v1.EmptyDirVolumeSource", &[
        oz(1, "medium", Str),
        one(2, "sizeLimit", Quantity),
        one(3, "mode", I32),
    ]),
    ("core.v1.EndpointAddress", &[
        one(1, "ip", Str),
        one(2, "targetRef", M("core.v1.ObjectReference")),
        oz(3, "hostname", Str),
        one(4, "nodeName", Str),
    ]),
    ("core.v1.EndpointPort", &[
        oz(1, "name", Str),
        one(2, "port", I32),
        oz(3, "protocol", Str),
        one(4, "appProtocol", Str),
    ]),
    ("core.v1.EndpointSubset", &[
        rep(1, "addresses", M("core.v1.EndpointAddress")),
        rep(2, "notReadyAddresses", M("core.v1.EndpointAddress")),
        rep(3, "ports", M("core.v1.EndpointPort")),
    ]),
    ("core.v1.Endpoints", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        rep(2, "subsets", M("core.v1.EndpointSubset")),
    ]),
    ("core.v1.EnvFromSource", &[
        oz(1, "prefix", Str),
        one(2, "configMapRef", M("core.v1.ConfigMapEnvSource")),
        one(3, "secretRef", M("core.v1.SecretEnvSource")),
    ]),
    ("core.v1.EnvVar", &[
        one(1, "name", Str),
        oz(2, "value", Str),
        one(3, "valueFrom", M("core.v1.EnvVarSource")),
    ]),
    ("core.v1.EnvVarSource", &[
        one(1, "fieldRef", M("core.v1.ObjectFieldSelector")),
        one(2, "resourceFieldRef", M("core.v1.ResourceFieldSelector")),
        one(3, "configMapKeyRef", M("core.v1.ConfigMapKeySelector")),
        one(4, "secretKeyRef", M("core.v1.SecretKeySelector")),
        one(5, "fileKeyRef", M("core.v1.FileKeySelector")),
    ]),
    ("core.v1.EphemeralContainer", &[
        inline(1, "core.v1.EphemeralContainerCommon"),
        oz(2, "targetContainerName", Str),
    ]),
    ("core.v1.EphemeralContainerCommon", &[
        one(1, "name", Str),
        oz(2, "image", Str),
        rep(3, "command", Str),
        rep(4, "args", Str),
        oz(5, "workingDir", Str),
        rep(6, "ports", M("core.v1.ContainerPort")),
        rep(7, "env", M("core.v1.EnvVar")),
        one(8, "resources", M("core.v1.ResourceRequirements")),
        rep(9, "volumeMounts", M("core.v1.VolumeMount")),
        one(10, "livenessProbe", M("core.v1.Probe")),
        one(11, "readinessProbe", M("core.v1.Probe")),
        one(12, "lifecycle", M("core.v1.Lifecycle")),
        oz(13, "terminationMessagePath", Str),
        oz(14, "imagePullPolicy", Str),
        one(15, "securityContext", M("core.v1.SecurityContext")),
        oz(16, "stdin", Bool),
        oz(17, "stdinOnce", Bool),
        oz(18, "tty", Bool),
        rep(19, "envFrom", M("core.v1.EnvFromSource")),
        oz(20, "terminationMessagePolicy", Str),
        rep(21, "volumeDevices", M("core.v1.VolumeDevice")),
        one(22, "startupProbe", M("core.v1.Probe")),
        rep(23, "resizePolicy", M("core.v1.ContainerResizePolicy")),
        one(24, "restartPolicy", Str),
        rep(25, "restartPolicyRules", M("core.v1.ContainerRestartRule")),
    ]),
    ("core.v1.EphemeralVolumeSource", &[
        one(1, "volumeClaimTemplate", M("core.v1.PersistentVolumeClaimTemplate")),
    ]),
    ("core.v1.Event", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "involvedObject", M("core.v1.ObjectReference")),
        oz(3, "reason", Str),
        oz(4, "message", Str),
        one(5, "source", M("core.v1.EventSource")),
        one(6, "firstTimestamp", Time),
        one(7, "lastTimestamp", Time),
        oz(8, "count", I32),
        oz(9, "type", Str),
        one(10, "eventTime", MicroTime),
        one(11, "series", M("core.v1.EventSeries")),
        oz(12, "action", Str),
        one(13, "related", M("core.v1.ObjectReference")),
        one(14, "reportingComponent", Str),
        one(15, "reportingInstance", Str),
    ]),
    ("core.v1.EventSeries", &[
        oz(1, "count", I32),
        one(2, "lastObservedTime", MicroTime),
    ]),
    ("core.v1.EventSource", &[
        oz(1, "component", Str),
        oz(2, "host", Str),
    ]),
    ("core.v1.EvictionResponder", &[
        one(1, "name", Str),
        one(2, "priority", I32),
    ]),
    ("core.v1.ExecAction", &[
        rep(1, "command", Str),
    ]),
    ("core.v1.FCVolumeSource", &[
        rep(1, "targetWWNs", Str),
        one(2, "lun", I32),
        oz(3, "fsType", Str),
        oz(4, "readOnly", Bool),
        rep(5, "wwids", Str),
    ]),
    ("core.v1.FileKeySelector", &[
        one(1, "volumeName", Str),
        one(2, "path", Str),
        one(3, "key", Str),
        one(4, "optional", Bool),
    ]),
    ("core.v1.FlexVolumeSource", &[
        one(1, "driver", Str),
        oz(2, "fsType", Str),
        one(3, "secretRef", M("core.v1.LocalObjectReference")),
        oz(4, "readOnly", Bool),
        map(5, "options", Str),
    ]),
    ("core.v1.FlockerVolumeSource", &[
        oz(1, "datasetName", Str),
        oz(2, "datasetUUID", Str),
    ]),
    ("core.v1.GCEPersistentDiskVolumeSource", &[
        one(1, "pdName", Str),
        oz(2, "fsType", Str),
        oz(3, "partition", I32),
        oz(4, "readOnly", Bool),
    ]),
    ("core.v1.GRPCAction", &[
        one(1, "port", I32),
        one(2, "service", Str),
        one(3, "mode", Str),
    ]),
    ("core.v1.GitRepoVolumeSource", &[
        one(1, "repository", Str),
        oz(2, "revision", Str),
        oz(3, "directory", Str),
    ]),
    ("core.v1.GlusterfsVolumeSource", &[
        one(1, "endpoints", Str),
        one(2, "path", Str),
        oz(3, "readOnly", Bool),
    ]),
    ("core.v1.HTTPGetAction", &[
        oz(1, "path", Str),
        one(2, "port", IntOrString),
        oz(3, "host", Str),
        oz(4, "scheme", Str),
        rep(5, "httpHeaders", M("core.v1.HTTPHeader")),
        one(6, "protocol", Str),
    ]),
    ("core.v1.HTTPHeader", &[
        one(1, "name", Str),
        one(2, "value", Str),
    ]),
    ("core.v1.HostAlias", &[
        one(1, "ip", Str),
        rep(2, "hostnames", Str),
    ]),
    ("core.v1.HostIP", &[
        one(1, "ip", Str),
    ]),
    ("core.v1.HostPathVolumeSource", &[
        one(1, "path", Str),
        one(2, "type", Str),
    ]),
    ("core.v1.ISCSIVolumeSource", &[
        one(1, "targetPortal", Str),
        one(2, "iqn", Str),
        one(3, "lun", I32),
        oz(4, "iscsiInterface", Str),
        oz(5, "fsType", Str),
        oz(6, "readOnly", Bool),
        rep(7, "portals", Str),
        oz(8, "chapAuthDiscovery", Bool),
        one(10, "secretRef", M("core.v1.LocalObjectReference")),
        oz(11, "chapAuthSession", Bool),
        one(12, "initiatorName", Str),
    ]),
    ("core.v1.ImageVolumeSource", &[
        oz(1, "reference", Str),
        oz(2, "pullPolicy", Str),
    ]),
    ("core.v1.ImageVolumeStatus", &[
        oz(1, "imageRef", Str),
    ]),
    ("core.v1.KeyToPath", &[
        one(1, "key", Str),
        one(2, "path", Str),
        one(3, "mode", I32),
        one(4, "user", I64),
    ]),
    ("core.v1.Lifecycle", &[
        one(1, "postStart", M("core.v1.LifecycleHandler")),
        one(2, "preStop", M("core.v1.LifecycleHandler")),
        one(3, "stopSignal", Str),
    ]),
    ("core.v1.LifecycleHandler", &[
        one(1, "exec", M("core.v1.ExecAction")),
        one(2, "httpGet", M("core.v1.HTTPGetAction")),
        one(3, "tcpSocket", M("core.v1.TCPSocketAction")),
        one(4, "sleep", M("core.v1.SleepAction")),
    ]),
    ("core.v1.LinuxContainerUser", &[
        one(1, "uid", I64),
        one(2, "gid", I64),
        rep(3, "supplementalGroups", I64),
    ]),
    ("core.v1.LoadBalancerIngress", &[
        oz(1, "ip", Str),
        oz(2, "hostname", Str),
        one(3, "ipMode", Str),
        rep(4, "ports", M("core.v1.PortStatus")),
    ]),
    ("core.v1.LoadBalancerStatus", &[
        rep(1, "ingress", M("core.v1.LoadBalancerIngress")),
    ]),
    ("core.v1.LocalObjectReference", &[
        oz(1, "name", Str),
    ]),
    ("core.v1.NFSVolumeSource", &[
        one(1, "server", Str),
        one(2, "path", Str),
        oz(3, "readOnly", Bool),
    ]),
    ("core.v1.Namespace", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("core.v1.NamespaceSpec")),
        one(3, "status", M("core.v1.NamespaceStatus")),
    ]),
    ("core.v1.NamespaceCondition", &[
        one(1, "type", Str),
        one(2, "status", Str),
        one(4, "lastTransitionTime", Time),
        oz(5, "reason", Str),
        oz(6, "message", Str),
    ]),
    ("core.v1.NamespaceSpec", &[
        rep(1, "finalizers", Str),
    ]),
    ("core.v1.NamespaceStatus", &[
        oz(1, "phase", Str),
        rep(2, "conditions", M("core.v1.NamespaceCondition")),
    ]),
    ("core.v1.Node", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("core.v1.NodeSpec")),
        one(3, "status", M("core.v1.NodeStatus")),
    ]),
    ("core.v1.NodeAddress", &[
        one(1, "type", Str),
        one(2, "address", Str),
    ]),
    ("core.v1.NodeAffinity", &[
        one(1, "requiredDuringSchedulingIgnoredDuringExecution", M("core.v1.NodeSelector")),
        rep(2, "preferredDuringSchedulingIgnoredDuringExecution", M("core.v1.PreferredSchedulingTerm")),
    ]),
    ("core.v1.NodeAllocatableMappedResources", &[
        one(1, "name", Str),
        one(2, "quantity", Quantity),
    ]),
    ("core.v1.NodeAllocatableOverheadResources", &[
        one(1, "name", Str),
        one(2, "perPod", Quantity),
        one(3, "perContainer", Quantity),
    ]),
    ("core.v1.NodeAllocatableResourceClaimStatus", &[
        one(1, "resourceClaimName", Str),
        rep(2, "containers", Str),
        rep(4, "mapping", M("core.v1.NodeAllocatableMappedResources")),
        rep(5, "overhead", M("core.v1.NodeAllocatableOverheadResources")),
    ]),
    ("core.v1.NodeCondition", &[
        one(1, "type", Str),
        one(2, "status", Str),
        one(3, "lastHeartbeatTime", Time),
        one(4, "lastTransitionTime", Time),
        oz(5, "reason", Str),
        oz(6, "message", Str),
    ]),
    ("core.v1.NodeConfigSource", &[
        one(2, "configMap", M("core.v1.ConfigMapNodeConfigSource")),
    ]),
    ("core.v1.NodeConfigStatus", &[
        one(1, "assigned", M("core.v1.NodeConfigSource")),
        one(2, "active", M("core.v1.NodeConfigSource")),
        one(3, "lastKnownGood", M("core.v1.NodeConfigSource")),
        oz(4, "error", Str),
    ]),
    ("core.v1.NodeDaemonEndpoints", &[
        one(1, "kubeletEndpoint", M("core.v1.DaemonEndpoint")),
    ]),
    ("core.v1.NodeFeatures", &[
        one(1, "supplementalGroupsPolicy", Bool),
    ]),
    ("core.v1.NodePodPreemptionPolicy", &[
        rep(1, "disableResizePreemption", Str),
    ]),
    ("core.v1.NodeRuntimeHandler", &[
        one(1, "name", Str),
        one(2, "features", M("core.v1.NodeRuntimeHandlerFeatures")),
    ]),
    ("core.v1.NodeRuntimeHandlerFeatures", &[
        one(1, "recursiveReadOnlyMounts", Bool),
        one(2, "userNamespaces", Bool),
    ]),
    ("core.v1.NodeSelector", &[
        rep(1, "nodeSelectorTerms", M("core.v1.NodeSelectorTerm")),
    ]),
    ("core.v1.NodeSelectorRequirement", &[
        one(1, "key", Str),
        one(2, "operator", Str),
        rep(3, "values", Str),
    ]),
    ("core.v1.NodeSelectorTerm", &[
        rep(1, "matchExpressions", M("core.v1.NodeSelectorRequirement")),
        rep(2, "matchFields", M("core.v1.NodeSelectorRequirement")),
    ]),
    ("core.v1.NodeSpec", &[
        oz(1, "podCIDR", Str),
        oz(2, "externalID", Str),
        oz(3, "providerID", Str),
        oz(4, "unschedulable", Bool),
        rep(5, "taints", M("core.v1.Taint")),
        one(6, "configSource", M("core.v1.NodeConfigSource")),
        rep(7, "podCIDRs", Str),
        one(8, "podPreemptionPolicy", M("core.v1.NodePodPreemptionPolicy")),
    ]),
    ("core.v1.NodeStatus", &[
        map(1, "capacity", Quantity),
        map(2, "allocatable", Quantity),
        oz(3, "phase", Str),
        rep(4, "conditions", M("core.v1.NodeCondition")),
        rep(5, "addresses", M("core.v1.NodeAddress")),
        one(6, "daemonEndpoints", M("core.v1.NodeDaemonEndpoints")),
        one(7, "nodeInfo", M("core.v1.NodeSystemInfo")),
        rep(8, "images", M("core.v1.ContainerImage")),
        rep(9, "volumesInUse", Str),
        rep(10, "volumesAttached", M("core.v1.AttachedVolume")),
        one(11, "config", M("core.v1.NodeConfigStatus")),
        rep(12, "runtimeHandlers", M("core.v1.NodeRuntimeHandler")),
        one(13, "features", M("core.v1.NodeFeatures")),
        rep(14, "declaredFeatures", Str),
    ]),
    ("core.v1.NodeSwapStatus", &[
        one(1, "capacity", I64),
    ]),
    ("core.v1.NodeSystemInfo", &[
        one(1, "machineID", Str),
        one(2, "systemUUID", Str),
        one(3, "bootID", Str),
        one(4, "kernelVersion", Str),
        one(5, "osImage", Str),
        one(6, "containerRuntimeVersion", Str),
        one(7, "kubeletVersion", Str),
        one(8, "kubeProxyVersion", Str),
        one(9, "operatingSystem", Str),
        one(10, "architecture", Str),
        one(11, "swap", M("core.v1.NodeSwapStatus")),
    ]),
    ("core.v1.ObjectFieldSelector", &[
        oz(1, "apiVersion", Str),
        one(2, "fieldPath", Str),
    ]),
    ("core.v1.ObjectReference", &[
        oz(1, "kind", Str),
        oz(2, "namespace", Str),
        oz(3, "name", Str),
        oz(4, "uid", Str),
        oz(5, "apiVersion", Str),
        oz(6, "resourceVersion", Str),
        oz(7, "fieldPath", Str),
    ]),
    ("core.v1.PersistentVolumeClaimSpec", &[
        rep(1, "accessModes", Str),
        one(2, "resources", M("core.v1.VolumeResourceRequirements")),
        oz(3, "volumeName", Str),
        one(4, "selector", M("meta.v1.LabelSelector")),
        one(5, "storageClassName", Str),
        one(6, "volumeMode", Str),
        one(7, "dataSource", M("core.v1.TypedLocalObjectReference")),
        one(8, "dataSourceRef", M("core.v1.TypedObjectReference")),
        one(9, "volumeAttributesClassName", Str),
    ]),
    ("core.v1.PersistentVolumeClaimTemplate", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("core.v1.PersistentVolumeClaimSpec")),
    ]),
    ("core.v1.PersistentVolumeClaimVolumeSource", &[
        one(1, "claimName", Str),
        oz(2, "readOnly", Bool),
    ]),
    ("core.v1.PhotonPersistentDiskVolumeSource", &[
        one(1, "pdID", Str),
        oz(2, "fsType", Str),
    ]),
    ("core.v1.Pod", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("core.v1.PodSpec")),
        one(3, "status", M("core.v1.PodStatus")),
    ]),
    ("core.v1.PodAffinity", &[
        rep(1, "requiredDuringSchedulingIgnoredDuringExecution", M("core.v1.PodAffinityTerm")),
        rep(2, "preferredDuringSchedulingIgnoredDuringExecution", M("core.v1.WeightedPodAffinityTerm")),
    ]),
    ("core.v1.PodAffinityTerm", &[
        one(1, "labelSelector", M("meta.v1.LabelSelector")),
        rep(2, "namespaces", Str),
        one(3, "topologyKey", Str),
        one(4, "namespaceSelector", M("meta.v1.LabelSelector")),
        rep(5, "matchLabelKeys", Str),
        rep(6, "mismatchLabelKeys", Str),
    ]),
    ("core.v1.PodAntiAffinity", &[
        rep(1, "requiredDuringSchedulingIgnoredDuringExecution", M("core.v1.PodAffinityTerm")),
        rep(2, "preferredDuringSchedulingIgnoredDuringExecution", M("core.v1.WeightedPodAffinityTerm")),
    ]),
    ("core.v1.PodCertificateProjection", &[
        oz(1, "signerName", Str),
        oz(2, "keyType", Str),
        one(3, "maxExpirationSeconds", I32),
        oz(4, "credentialBundlePath", Str),
        oz(5, "keyPath", Str),
        oz(6, "certificateChainPath", Str),
        map(7, "userAnnotations", Str),
        one(8, "user", I64),
    ]),
    ("core.v1.PodCondition", &[
        one(1, "type", Str),
        one(2, "status", Str),
        one(3, "lastProbeTime", Time),
        one(4, "lastTransitionTime", Time),
        oz(5, "reason", Str),
        oz(6, "message", Str),
        oz(7, "observedGeneration", I64),
    ]),
    ("core.v1.PodDNSConfig", &[
        rep(1, "nameservers", Str),
        rep(2, "searches", Str),
        rep(3, "options", M("core.v1.PodDNSConfigOption")),
    ]),
    ("core.v1.PodDNSConfigOption", &[
        oz(1, "name", Str),
        one(2, "value", Str),
    ]),
    ("core.v1.PodExtendedResourceClaimStatus", &[
        rep(1, "requestMappings", M("core.v1.ContainerExtendedResourceRequest")),
        one(2, "resourceClaimName", Str),
    ]),
    ("core.v1.PodIP", &[
        one(1, "ip", Str),
    ]),
    ("core.v1.PodOS", &[
        one(1, "name", Str),
    ]),
    ("core.v1.PodReadinessGate", &[
        one(1, "conditionType", Str),
    ]),
    ("core.v1.PodResourceClaim", &[
        one(1, "name", Str),
        one(3, "resourceClaimName", Str),
        one(4, "resourceClaimTemplateName", Str),
    ]),
    ("core.v1.PodResourceClaimStatus", &[
        one(1, "name", Str),
        one(2, "resourceClaimName", Str),
    ]),
    ("core.v1.PodSchedulingGate", &[
        one(1, "name", Str),
    ]),
    ("core.v1.PodSchedulingGroup", &[
        one(1, "podGroupName", Str),
    ]),
    ("core.v1.PodSecurityContext", &[
        one(1, "seLinuxOptions", M("core.v1.SELinuxOptions")),
        one(2, "runAsUser", I64),
        one(3, "runAsNonRoot", Bool),
        rep(4, "supplementalGroups", I64),
        one(5, "fsGroup", I64),
        one(6, "runAsGroup", I64),
        rep(7, "sysctls", M("core.v1.Sysctl")),
        one(8, "windowsOptions", M("core.v1.WindowsSecurityContextOptions")),
        one(9, "fsGroupChangePolicy", Str),
        one(10, "seccompProfile", M("core.v1.SeccompProfile")),
        one(11, "appArmorProfile", M("core.v1.AppArmorProfile")),
        one(12, "supplementalGroupsPolicy", Str),
        one(13, "seLinuxChangePolicy", Str),
    ]),
    ("core.v1.PodSpec", &[
        rep(1, "volumes", M("core.v1.Volume")),
        rep(2, "containers", M("core.v1.Container")),
        oz(3, "restartPolicy", Str),
        one(4, "terminationGracePeriodSeconds", I64),
        one(5, "activeDeadlineSeconds", I64),
        oz(6, "dnsPolicy", Str),
        map(7, "nodeSelector", Str),
        oz(8, "serviceAccountName", Str),
        oz(9, "serviceAccount", Str),
        oz(10, "nodeName", Str),
        oz(11, "hostNetwork", Bool),
        oz(12, "hostPID", Bool),
        oz(13, "hostIPC", Bool),
        one(14, "securityContext", M("core.v1.PodSecurityContext")),
        rep(15, "imagePullSecrets", M("core.v1.LocalObjectReference")),
        oz(16, "hostname", Str),
        oz(17, "subdomain", Str),
        one(18, "affinity", M("core.v1.Affinity")),
        oz(19, "schedulerName", Str),
        rep(20, "initContainers", M("core.v1.Container")),
        one(21, "automountServiceAccountToken", Bool),
        rep(22, "tolerations", M("core.v1.Toleration")),
        rep(23, "hostAliases", M("core.v1.HostAlias")),
        oz(24, "priorityClassName", Str),
        one(25, "priority", I32),
        one(26, "dnsConfig", M("core.v1.PodDNSConfig")),
        one(27, "shareProcessNamespace", Bool),
        rep(28, "readinessGates", M("core.v1.PodReadinessGate")),
        one(29, "runtimeClassName", Str),
        one(30, "enableServiceLinks", Bool),
        one(31, "preemptionPolicy", Str),
        map(32, "overhead", Quantity),
        rep(33, "topologySpreadConstraints", M("core.v1.TopologySpreadConstraint")),
        rep(34, "ephemeralContainers", M("core.v1.EphemeralContainer")),
        one(35, "setHostnameAsFQDN", Bool),
        one(36, "os", M("core.v1.PodOS")),
        one(37, "hostUsers", Bool),
        rep(38, "schedulingGates", M("core.v1.PodSchedulingGate")),
        rep(39, "resourceClaims", M("core.v1.PodResourceClaim")),
        one(40, "resources", M("core.v1.ResourceRequirements")),
        one(41, "hostnameOverride", Str),
        one(43, "schedulingGroup", M("core.v1.PodSchedulingGroup")),
        rep(44, "evictionResponders", M("core.v1.EvictionResponder")),
    ]),
    ("core.v1.PodStatus", &[
        oz(1, "phase", Str),
        rep(2, "conditions", M("core.v1.PodCondition")),
        oz(3, "message", Str),
        oz(4, "reason", Str),
        oz(5, "hostIP", Str),
        oz(6, "podIP", Str),
        one(7, "startTime", Time),
        rep(8, "containerStatuses", M("core.v1.ContainerStatus")),
        oz(9, "qosClass", Str),
        rep(10, "initContainerStatuses", M("core.v1.ContainerStatus")),
        oz(11, "nominatedNodeName", Str),
        rep(12, "podIPs", M("core.v1.PodIP")),
        rep(13, "ephemeralContainerStatuses", M("core.v1.ContainerStatus")),
        oz(14, "resize", Str),
        rep(15, "resourceClaimStatuses", M("core.v1.PodResourceClaimStatus")),
        rep(16, "hostIPs", M("core.v1.HostIP")),
        oz(17, "observedGeneration", I64),
        one(18, "extendedResourceClaimStatus", M("core.v1.PodExtendedResourceClaimStatus")),
        map(19, "allocatedResources", Quantity),
        one(20, "resources", M("core.v1.ResourceRequirements")),
        rep(21, "nodeAllocatableResourceClaimStatuses", M("core.v1.NodeAllocatableResourceClaimStatus")),
        rep(22, "volumeHealth", M("core.v1.PodVolumeHealth")),
    ]),
    ("core.v1.PodTemplateSpec", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("core.v1.PodSpec")),
    ]),
    ("core.v1.PodVolumeHealth", &[
        one(1, "name", Str),
        rep(2, "healthConditions", M("core.v1.VolumeHealthCondition")),
        one(3, "lastTransitionTime", Time),
    ]),
    ("core.v1.PortStatus", &[
        one(1, "port", I32),
        one(2, "protocol", Str),
        one(3, "error", Str),
    ]),
    ("core.v1.PortworxVolumeSource", &[
        one(1, "volumeID", Str),
        oz(2, "fsType", Str),
        oz(3, "readOnly", Bool),
    ]),
    ("core.v1.PreferredSchedulingTerm", &[
        one(1, "weight", I32),
        one(2, "preference", M("core.v1.NodeSelectorTerm")),
    ]),
    ("core.v1.Probe", &[
        inline(1, "core.v1.ProbeHandler"),
        oz(2, "initialDelaySeconds", I32),
        oz(3, "timeoutSeconds", I32),
        oz(4, "periodSeconds", I32),
        oz(5, "successThreshold", I32),
        oz(6, "failureThreshold", I32),
        one(7, "terminationGracePeriodSeconds", I64),
    ]),
    ("core.v1.ProbeHandler", &[
        one(1, "exec", M("core.v1.ExecAction")),
        one(2, "httpGet", M("core.v1.HTTPGetAction")),
        one(3, "tcpSocket", M("core.v1.TCPSocketAction")),
        one(4, "grpc", M("core.v1.GRPCAction")),
    ]),
    ("core.v1.ProjectedVolumeSource", &[
        rep(1, "sources", M("core.v1.VolumeProjection")),
        one(2, "defaultMode", I32),
        one(3, "defaultUser", I64),
    ]),
    ("core.v1.QuobyteVolumeSource", &[
        one(1, "registry", Str),
        one(2, "volume", Str),
        oz(3, "readOnly", Bool),
        oz(4, "user", Str),
        oz(5, "group", Str),
        oz(6, "tenant", Str),
    ]),
    ("core.v1.RBDVolumeSource", &[
        rep(1, "monitors", Str),
        one(2, "image", Str),
        oz(3, "fsType", Str),
        oz(4, "pool", Str),
        oz(5, "user", Str),
        oz(6, "keyring", Str),
        one(7, "secretRef", M("core.v1.LocalObjectReference")),
        oz(8, "readOnly", Bool),
    ]),
    ("core.v1.ReplicationController", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("core.v1.ReplicationControllerSpec")),
        one(3, "status", M("core.v1.ReplicationControllerStatus")),
    ]),
    ("core.v1.ReplicationControllerCondition", &[
        one(1, "type", Str),
        one(2, "status", Str),
        one(3, "lastTransitionTime", Time),
        oz(4, "reason", Str),
        oz(5, "message", Str),
    ]),
    ("core.v1.ReplicationControllerSpec", &[
        one(1, "replicas", I32),
        map(2, "selector", Str),
        one(3, "template", M("core.v1.PodTemplateSpec")),
        oz(4, "minReadySeconds", I32),
    ]),
    ("core.v1.ReplicationControllerStatus", &[
        one(1, "replicas", I32),
        oz(2, "fullyLabeledReplicas", I32),
        oz(3, "observedGeneration", I64),
        oz(4, "readyReplicas", I32),
        oz(5, "availableReplicas", I32),
        rep(6, "conditions", M("core.v1.ReplicationControllerCondition")),
    ]),
    ("core.v1.ResourceClaim", &[
        one(1, "name", Str),
        oz(2, "request", Str),
    ]),
    ("core.v1.ResourceFieldSelector", &[
        oz(1, "containerName", Str),
        one(2, "resource", Str),
        one(3, "divisor", Quantity),
    ]),
    ("core.v1.ResourceHealth", &[
        one(1, "resourceID", Str),
        oz(2, "health", Str),
        one(6, "message", Str),
    ]),
    ("core.v1.ResourceRequirements", &[
        map(1, "limits", Quantity),
        map(2, "requests", Quantity),
        rep(3, "claims", M("core.v1.ResourceClaim")),
    ]),
    ("core.v1.ResourceStatus", &[
        one(1, "name", Str),
        rep(2, "resources", M("core.v1.ResourceHealth")),
    ]),
    ("core.v1.SELinuxOptions", &[
        oz(1, "user", Str),
        oz(2, "role", Str),
        oz(3, "type", Str),
        oz(4, "level", Str),
    ]),
    ("core.v1.ScaleIOVolumeSource", &[
        one(1, "gateway", Str),
        one(2, "system", Str),
        one(3, "secretRef", M("core.v1.LocalObjectReference")),
        oz(4, "sslEnabled", Bool),
        oz(5, "protectionDomain", Str),
        oz(6, "storagePool", Str),
        oz(7, "storageMode", Str),
        oz(8, "volumeName", Str),
        oz(9, "fsType", Str),
        oz(10, "readOnly", Bool),
    ]),
    ("core.v1.SeccompProfile", &[
        one(1, "type", Str),
        one(2, "localhostProfile", Str),
    ]),
    ("core.v1.Secret", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        map(2, "data", Bytes),
        oz(3, "type", Str),
        map(4, "stringData", Str),
        one(5, "immutable", Bool),
    ]),
    ("core.v1.SecretEnvSource", &[
        inline(1, "core.v1.LocalObjectReference"),
        one(2, "optional", Bool),
    ]),
    ("core.v1.SecretKeySelector", &[
        inline(1, "core.v1.LocalObjectReference"),
        one(2, "key", Str),
        one(3, "optional", Bool),
    ]),
    ("core.v1.SecretProjection", &[
        inline(1, "core.v1.LocalObjectReference"),
        rep(2, "items", M("core.v1.KeyToPath")),
        one(4, "optional", Bool),
    ]),
    ("core.v1.SecretVolumeSource", &[
        oz(1, "secretName", Str),
        rep(2, "items", M("core.v1.KeyToPath")),
        one(3, "defaultMode", I32),
        one(4, "optional", Bool),
        one(5, "defaultUser", I64),
    ]),
    ("core.v1.SecurityContext", &[
        one(1, "capabilities", M("core.v1.Capabilities")),
        one(2, "privileged", Bool),
        one(3, "seLinuxOptions", M("core.v1.SELinuxOptions")),
        one(4, "runAsUser", I64),
        one(5, "runAsNonRoot", Bool),
        one(6, "readOnlyRootFilesystem", Bool),
        one(7, "allowPrivilegeEscalation", Bool),
        one(8, "runAsGroup", I64),
        one(9, "procMount", Str),
        one(10, "windowsOptions", M("core.v1.WindowsSecurityContextOptions")),
        one(11, "seccompProfile", M("core.v1.SeccompProfile")),
        one(12, "appArmorProfile", M("core.v1.AppArmorProfile")),
    ]),
    ("core.v1.Service", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("core.v1.ServiceSpec")),
        one(3, "status", M("core.v1.ServiceStatus")),
    ]),
    ("core.v1.ServiceAccount", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        rep(2, "secrets", M("core.v1.ObjectReference")),
        rep(3, "imagePullSecrets", M("core.v1.LocalObjectReference")),
        one(4, "automountServiceAccountToken", Bool),
    ]),
    ("core.v1.ServiceAccountTokenProjection", &[
        oz(1, "audience", Str),
        one(2, "expirationSeconds", I64),
        one(3, "path", Str),
        one(4, "user", I64),
    ]),
    ("core.v1.ServicePort", &[
        oz(1, "name", Str),
        oz(2, "protocol", Str),
        one(3, "port", I32),
        one(4, "targetPort", IntOrString),
        oz(5, "nodePort", I32),
        one(6, "appProtocol", Str),
    ]),
    ("core.v1.ServiceSpec", &[
        rep(1, "ports", M("core.v1.ServicePort")),
        map(2, "selector", Str),
        oz(3, "clusterIP", Str),
        oz(4, "type", Str),
        rep(5, "externalIPs", Str),
        oz(7, "sessionAffinity", Str),
        oz(8, "loadBalancerIP", Str),
        rep(9, "loadBalancerSourceRanges", Str),
        oz(10, "externalName", Str),
        oz(11, "externalTrafficPolicy", Str),
        oz(12, "healthCheckNodePort", I32),
        oz(13, "publishNotReadyAddresses", Bool),
        one(14, "sessionAffinityConfig", M("core.v1.SessionAffinityConfig")),
        one(17, "ipFamilyPolicy", Str),
        rep(18, "clusterIPs", Str),
        rep(19, "ipFamilies", Str),
        one(20, "allocateLoadBalancerNodePorts", Bool),
        one(21, "loadBalancerClass", Str),
        one(22, "internalTrafficPolicy", Str),
        one(23, "trafficDistribution", Str),
    ]),
    ("core.v1.ServiceStatus", &[
        one(1, "loadBalancer", M("core.v1.LoadBalancerStatus")),
        rep(2, "conditions", M("meta.v1.Condition")),
    ]),
    ("core.v1.SessionAffinityConfig", &[
        one(1, "clientIP", M("core.v1.ClientIPConfig")),
    ]),
    ("core.v1.SleepAction", &[
        one(1, "seconds", I64),
    ]),
    ("core.v1.StorageOSVolumeSource", &[
        oz(1, "volumeName", Str),
        oz(2, "volumeNamespace", Str),
        oz(3, "fsType", Str),
        oz(4, "readOnly", Bool),
        one(5, "secretRef", M("core.v1.LocalObjectReference")),
    ]),
    ("core.v1.Sysctl", &[
        one(1, "name", Str),
        one(2, "value", Str),
    ]),
    ("core.v1.TCPSocketAction", &[
        one(1, "port", IntOrString),
        oz(2, "host", Str),
    ]),
    ("core.v1.Taint", &[
        one(1, "key", Str),
        oz(2, "value", Str),
        one(3, "effect", Str),
        one(4, "timeAdded", Time),
    ]),
    ("core.v1.Toleration", &[
        oz(1, "key", Str),
        oz(2, "operator", Str),
        oz(3, "value", Str),
        oz(4, "effect", Str),
        one(5, "tolerationSeconds", I64),
    ]),
    ("core.v1.TopologySpreadConstraint", &[
        one(1, "maxSkew", I32),
        one(2, "topologyKey", Str),
        one(3, "whenUnsatisfiable", Str),
        one(4, "labelSelector", M("meta.v1.LabelSelector")),
        one(5, "minDomains", I32),
        one(6, "nodeAffinityPolicy", Str),
        one(7, "nodeTaintsPolicy", Str),
        rep(8, "matchLabelKeys", Str),
    ]),
    ("core.v1.TypedLocalObjectReference", &[
        one(1, "apiGroup", Str),
        one(2, "kind", Str),
        one(3, "name", Str),
    ]),
    ("core.v1.TypedObjectReference", &[
        one(1, "apiGroup", Str),
        one(2, "kind", Str),
        one(3, "name", Str),
        one(4, "namespace", Str),
    ]),
    ("core.v1.Volume", &[
        one(1, "name", Str),
        inline(2, "core.v1.VolumeSource"),
    ]),
    ("core.v1.VolumeDevice", &[
        one(1, "name", Str),
        one(2, "devicePath", Str),
    ]),
    ("core.v1.VolumeHealthCondition", &[
        one(1, "status", Str),
        one(2, "reason", Str),
        oz(3, "message", Str),
    ]),
    ("core.v1.VolumeMount", &[
        one(1, "name", Str),
        oz(2, "readOnly", Bool),
        one(3, "mountPath", Str),
        oz(4, "subPath", Str),
        one(5, "mountPropagation", Str),
        oz(6, "subPathExpr", Str),
        one(7, "recursiveReadOnly", Str),
        rep(8, "bindMountOptions", Str),
    ]),
    ("core.v1.VolumeMountStatus", &[
        one(1, "name", Str),
        one(2, "mountPath", Str),
        oz(3, "readOnly", Bool),
        one(4, "recursiveReadOnly", Str),
        one(5, "volumeStatus", M("core.v1.VolumeStatus")),
    ]),
    ("core.v1.VolumeProjection", &[
        one(1, "secret", M("core.v1.SecretProjection")),
        one(2, "downwardAPI", M("core.v1.DownwardAPIProjection")),
        one(3, "configMap", M("core.v1.ConfigMapProjection")),
        one(4, "serviceAccountToken", M("core.v1.ServiceAccountTokenProjection")),
        one(5, "clusterTrustBundle", M("core.v1.ClusterTrustBundleProjection")),
        one(6, "podCertificate", M("core.v1.PodCertificateProjection")),
    ]),
    ("core.v1.VolumeResourceRequirements", &[
        map(1, "limits", Quantity),
        map(2, "requests", Quantity),
    ]),
    ("core.v1.VolumeSource", &[
        one(1, "hostPath", M("core.v1.HostPathVolumeSource")),
        one(2, "emptyDir", M("core.v1.EmptyDirVolumeSource")),
        one(3, "gcePersistentDisk", M("core.v1.GCEPersistentDiskVolumeSource")),
        one(4, "awsElasticBlockStore", M("core.v1.AWSElasticBlockStoreVolumeSource")),
        one(5, "gitRepo", M("core.v1.GitRepoVolumeSource")),
        one(6, "secret", M("core.v1.SecretVolumeSource")),
        one(7, "nfs", M("core.v1.NFSVolumeSource")),
        one(8, "iscsi", M("core.v1.ISCSIVolumeSource")),
        one(9, "glusterfs", M("core.v1.GlusterfsVolumeSource")),
        one(10, "persistentVolumeClaim", M("core.v1.PersistentVolumeClaimVolumeSource")),
        one(11, "rbd", M("core.v1.RBDVolumeSource")),
        one(12, "flexVolume", M("core.v1.FlexVolumeSource")),
        one(13, "cinder", M("core.v1.CinderVolumeSource")),
        one(14, "cephfs", M("core.v1.CephFSVolumeSource")),
        one(15, "flocker", M("core.v1.FlockerVolumeSource")),
        one(16, "downwardAPI", M("core.v1.DownwardAPIVolumeSource")),
        one(17, "fc", M("core.v1.FCVolumeSource")),
        one(18, "azureFile", M("core.v1.AzureFileVolumeSource")),
        one(19, "configMap", M("core.v1.ConfigMapVolumeSource")),
        one(20, "vsphereVolume", M("core.v1.VsphereVirtualDiskVolumeSource")),
        one(21, "quobyte", M("core.v1.QuobyteVolumeSource")),
        one(22, "azureDisk", M("core.v1.AzureDiskVolumeSource")),
        one(23, "photonPersistentDisk", M("core.v1.PhotonPersistentDiskVolumeSource")),
        one(24, "portworxVolume", M("core.v1.PortworxVolumeSource")),
        one(25, "scaleIO", M("core.v1.ScaleIOVolumeSource")),
        one(26, "projected", M("core.v1.ProjectedVolumeSource")),
        one(27, "storageos", M("core.v1.StorageOSVolumeSource")),
        one(28, "csi", M("core.v1.CSIVolumeSource")),
        one(29, "ephemeral", M("core.v1.EphemeralVolumeSource")),
        one(30, "image", M("core.v1.ImageVolumeSource")),
    ]),
    ("core.v1.VolumeStatus", &[
        one(1, "image", M("core.v1.ImageVolumeStatus")),
    ]),
    ("core.v1.VsphereVirtualDiskVolumeSource", &[
        one(1, "volumePath", Str),
        oz(2, "fsType", Str),
        oz(3, "storagePolicyName", Str),
        oz(4, "storagePolicyID", Str),
    ]),
    ("core.v1.WeightedPodAffinityTerm", &[
        one(1, "weight", I32),
        one(2, "podAffinityTerm", M("core.v1.PodAffinityTerm")),
    ]),
    ("core.v1.WindowsSecurityContextOptions", &[
        one(1, "gmsaCredentialSpecName", Str),
        one(2, "gmsaCredentialSpec", Str),
        one(3, "runAsUserName", Str),
        one(4, "hostProcess", Bool),
    ]),
    ("events.v1.Event", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "eventTime", MicroTime),
        one(3, "series", M("events.v1.EventSeries")),
        oz(4, "reportingController", Str),
        oz(5, "reportingInstance", Str),
        oz(6, "action", Str),
        oz(7, "reason", Str),
        one(8, "regarding", M("core.v1.ObjectReference")),
        one(9, "related", M("core.v1.ObjectReference")),
        oz(10, "note", Str),
        oz(11, "type", Str),
        one(12, "deprecatedSource", M("core.v1.EventSource")),
        one(13, "deprecatedFirstTimestamp", Time),
        one(14, "deprecatedLastTimestamp", Time),
        oz(15, "deprecatedCount", I32),
    ]),
    ("events.v1.EventSeries", &[
        one(1, "count", I32),
        one(2, "lastObservedTime", MicroTime),
    ]),
    ("meta.v1.Condition", &[
        one(1, "type", Str),
        one(2, "status", Str),
        oz(3, "observedGeneration", I64),
        one(4, "lastTransitionTime", Time),
        one(5, "reason", Str),
        one(6, "message", Str),
    ]),
    ("meta.v1.DeleteOptions", &[
        one(1, "gracePeriodSeconds", I64),
        one(2, "preconditions", M("meta.v1.Preconditions")),
        one(3, "orphanDependents", Bool),
        one(4, "propagationPolicy", Str),
        rep(5, "dryRun", Str),
        one(6, "ignoreStoreReadErrorWithClusterBreakingPotential", Bool),
    ]),
    ("meta.v1.LabelSelector", &[
        map(1, "matchLabels", Str),
        rep(2, "matchExpressions", M("meta.v1.LabelSelectorRequirement")),
    ]),
    ("meta.v1.LabelSelectorRequirement", &[
        one(1, "key", Str),
        one(2, "operator", Str),
        rep(3, "values", Str),
    ]),
    ("meta.v1.ListMeta", &[
        oz(1, "selfLink", Str),
        oz(2, "resourceVersion", Str),
        oz(3, "continue", Str),
        one(4, "remainingItemCount", I64),
        one(5, "shardInfo", M("meta.v1.ShardInfo")),
    ]),
    ("meta.v1.ManagedFieldsEntry", &[
        oz(1, "manager", Str),
        oz(2, "operation", Str),
        oz(3, "apiVersion", Str),
        one(4, "time", Time),
        oz(6, "fieldsType", Str),
        one(7, "fieldsV1", FieldsV1),
        oz(8, "subresource", Str),
    ]),
    ("meta.v1.ObjectMeta", &[
        oz(1, "name", Str),
        oz(2, "generateName", Str),
        oz(3, "namespace", Str),
        oz(4, "selfLink", Str),
        oz(5, "uid", Str),
        oz(6, "resourceVersion", Str),
        oz(7, "generation", I64),
        one(8, "creationTimestamp", Time),
        one(9, "deletionTimestamp", Time),
        one(10, "deletionGracePeriodSeconds", I64),
        map(11, "labels", Str),
        map(12, "annotations", Str),
        rep(13, "ownerReferences", M("meta.v1.OwnerReference")),
        rep(14, "finalizers", Str),
        rep(17, "managedFields", M("meta.v1.ManagedFieldsEntry")),
    ]),
    ("meta.v1.OwnerReference", &[
        one(1, "kind", Str),
        one(3, "name", Str),
        one(4, "uid", Str),
        one(5, "apiVersion", Str),
        one(6, "controller", Bool),
        one(7, "blockOwnerDeletion", Bool),
    ]),
    ("meta.v1.Preconditions", &[
        one(1, "uid", Str),
        one(2, "resourceVersion", Str),
    ]),
    ("meta.v1.ShardInfo", &[
        one(1, "selector", Str),
    ]),
    ("meta.v1.Status", &[
        one(1, "metadata", M("meta.v1.ListMeta")),
        oz(2, "status", Str),
        oz(3, "message", Str),
        oz(4, "reason", Str),
        one(5, "details", M("meta.v1.StatusDetails")),
        oz(6, "code", I32),
    ]),
    ("meta.v1.StatusCause", &[
        oz(1, "reason", Str),
        oz(2, "message", Str),
        oz(3, "field", Str),
    ]),
    ("meta.v1.StatusDetails", &[
        oz(1, "name", Str),
        oz(2, "group", Str),
        oz(3, "kind", Str),
        rep(4, "causes", M("meta.v1.StatusCause")),
        oz(5, "retryAfterSeconds", I32),
        oz(6, "uid", Str),
    ]),
    ("networking.v1.HTTPIngressPath", &[
        oz(1, "path", Str),
        one(2, "backend", M("networking.v1.IngressBackend")),
        one(3, "pathType", Str),
    ]),
    ("networking.v1.HTTPIngressRuleValue", &[
        rep(1, "paths", M("networking.v1.HTTPIngressPath")),
    ]),
    ("networking.v1.Ingress", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("networking.v1.IngressSpec")),
        one(3, "status", M("networking.v1.IngressStatus")),
    ]),
    ("networking.v1.IngressBackend", &[
        one(3, "resource", M("core.v1.TypedLocalObjectReference")),
        one(4, "service", M("networking.v1.IngressServiceBackend")),
    ]),
    ("networking.v1.IngressClass", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("networking.v1.IngressClassSpec")),
    ]),
    ("networking.v1.IngressClassParametersReference", &[
        one(1, "apiGroup", Str),
        one(2, "kind", Str),
        one(3, "name", Str),
        one(4, "scope", Str),
        one(5, "namespace", Str),
    ]),
    ("networking.v1.IngressClassSpec", &[
        oz(1, "controller", Str),
        one(2, "parameters", M("networking.v1.IngressClassParametersReference")),
    ]),
    ("networking.v1.IngressLoadBalancerIngress", &[
        oz(1, "ip", Str),
        oz(2, "hostname", Str),
        rep(4, "ports", M("networking.v1.IngressPortStatus")),
    ]),
    ("networking.v1.IngressLoadBalancerStatus", &[
        rep(1, "ingress", M("networking.v1.IngressLoadBalancerIngress")),
    ]),
    ("networking.v1.IngressPortStatus", &[
        one(1, "port", I32),
        one(2, "protocol", Str),
        one(3, "error", Str),
    ]),
    ("networking.v1.IngressRule", &[
        oz(1, "host", Str),
        inline(2, "networking.v1.IngressRuleValue"),
    ]),
    ("networking.v1.IngressRuleValue", &[
        one(1, "http", M("networking.v1.HTTPIngressRuleValue")),
    ]),
    ("networking.v1.IngressServiceBackend", &[
        one(1, "name", Str),
        one(2, "port", M("networking.v1.ServiceBackendPort")),
    ]),
    ("networking.v1.IngressSpec", &[
        one(1, "defaultBackend", M("networking.v1.IngressBackend")),
        rep(2, "tls", M("networking.v1.IngressTLS")),
        rep(3, "rules", M("networking.v1.IngressRule")),
        one(4, "ingressClassName", Str),
    ]),
    ("networking.v1.IngressStatus", &[
        one(1, "loadBalancer", M("networking.v1.IngressLoadBalancerStatus")),
    ]),
    ("networking.v1.IngressTLS", &[
        rep(1, "hosts", Str),
        oz(2, "secretName", Str),
    ]),
    ("networking.v1.ServiceBackendPort", &[
        oz(1, "name", Str),
        oz(2, "number", I32),
    ]),
    ("policy.v1.Eviction", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "deleteOptions", M("meta.v1.DeleteOptions")),
    ]),
    ("policy.v1.PodDisruptionBudget", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        one(2, "spec", M("policy.v1.PodDisruptionBudgetSpec")),
        one(3, "status", M("policy.v1.PodDisruptionBudgetStatus")),
    ]),
    ("policy.v1.PodDisruptionBudgetSpec", &[
        one(1, "minAvailable", IntOrString),
        one(2, "selector", M("meta.v1.LabelSelector")),
        one(3, "maxUnavailable", IntOrString),
        one(4, "unhealthyPodEvictionPolicy", Str),
    ]),
    ("policy.v1.PodDisruptionBudgetStatus", &[
        oz(1, "observedGeneration", I64),
        map(2, "disruptedPods", Time),
        one(3, "disruptionsAllowed", I32),
        one(4, "currentHealthy", I32),
        one(5, "desiredHealthy", I32),
        one(6, "expectedPods", I32),
        rep(7, "conditions", M("meta.v1.Condition")),
    ]),
    ("rbac.v1.AggregationRule", &[
        rep(1, "clusterRoleSelectors", M("meta.v1.LabelSelector")),
    ]),
    ("rbac.v1.ClusterRole", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        rep(2, "rules", M("rbac.v1.PolicyRule")),
        one(3, "aggregationRule", M("rbac.v1.AggregationRule")),
    ]),
    ("rbac.v1.ClusterRoleBinding", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        rep(2, "subjects", M("rbac.v1.Subject")),
        one(3, "roleRef", M("rbac.v1.RoleRef")),
    ]),
    ("rbac.v1.PolicyRule", &[
        rep(1, "verbs", Str),
        rep(2, "apiGroups", Str),
        rep(3, "resources", Str),
        rep(4, "resourceNames", Str),
        rep(5, "nonResourceURLs", Str),
    ]),
    ("rbac.v1.Role", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        rep(2, "rules", M("rbac.v1.PolicyRule")),
    ]),
    ("rbac.v1.RoleBinding", &[
        one(1, "metadata", M("meta.v1.ObjectMeta")),
        rep(2, "subjects", M("rbac.v1.Subject")),
        one(3, "roleRef", M("rbac.v1.RoleRef")),
    ]),
    ("rbac.v1.RoleRef", &[
        one(1, "apiGroup", Str),
        one(2, "kind", Str),
        one(3, "name", Str),
    ]),
    ("rbac.v1.Subject", &[
        one(1, "kind", Str),
        oz(2, "apiGroup", Str),
        one(3, "name", Str),
        oz(4, "namespace", Str),
    ]),
];

#[cfg(test)]
mod tests {
    use super::*;
    use prost::encoding::{encode_key, encode_varint};
    use serde_json::json;

    // A tiny protobuf writer: each helper returns the bytes of one field.
    fn varint(number: u32, value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key(number, WireType::Varint, &mut out);
        encode_varint(value, &mut out);
        out
    }
    fn bytes(number: u32, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key(number, WireType::LengthDelimited, &mut out);
        encode_varint(value.len() as u64, &mut out);
        out.extend_from_slice(value);
        out
    }
    fn string(number: u32, value: &str) -> Vec<u8> {
        bytes(number, value.as_bytes())
    }
    fn message(number: u32, fields: &[Vec<u8>]) -> Vec<u8> {
        bytes(number, &fields.concat())
    }
    fn entry(number: u32, key: &str, value: Vec<u8>) -> Vec<u8> {
        message(number, &[string(1, key), value])
    }
    fn envelope(api_version: &str, kind: &str, fields: &[Vec<u8>]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend(message(1, &[string(1, api_version), string(2, kind)]));
        out.extend(message(2, fields));
        out.extend(string(3, ""));
        out.extend(string(4, ""));
        out
    }
    /// ObjectMeta as Go marshals it: non-pointer fields always present, zero time empty.
    fn metadata(name: &str, labels: &[(&str, &str)]) -> Vec<u8> {
        let mut fields = vec![
            string(1, name),
            string(2, ""),
            string(3, ""),
            string(5, ""),
            string(6, ""),
            varint(7, 0),
            bytes(8, &[]),
        ];
        fields.extend(labels.iter().map(|(k, v)| entry(11, k, string(2, v))));
        message(1, &fields)
    }

    #[test]
    fn configmap_with_data_and_binary_data() {
        let body = envelope(
            "v1",
            "ConfigMap",
            &[
                metadata("x", &[]),
                entry(2, "a", string(2, "b")),
                entry(2, "c", string(2, "")),
                entry(3, "bin", bytes(2, &[0, 1, 2])),
            ],
        );
        assert_eq!(
            decode_object(&body).expect("decodes"),
            json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "x", "creationTimestamp": null},
                "data": {"a": "b", "c": ""},
                "binaryData": {"bin": "AAEC"},
            })
        );
    }

    #[test]
    fn secret_bytes_are_base64() {
        let body = envelope(
            "v1",
            "Secret",
            &[
                metadata("s", &[]),
                entry(2, "password", bytes(2, b"hunter2")),
                string(3, "Opaque"),
            ],
        );
        let v = decode_object(&body).expect("decodes");
        assert_eq!(v["data"], json!({"password": "aHVudGVyMg=="}));
        assert_eq!(v["type"], "Opaque");
    }

    #[test]
    fn deployment_as_kubectl_create_deployment_sends_it() {
        // kubectl create deployment web --image=nginx --replicas=2 --port=80
        let labels = [("app", "web")];
        let container = message(
            2,
            &[
                string(1, "web"),
                string(2, "nginx"),
                message(
                    6,
                    &[string(1, ""), varint(2, 0), varint(3, 80), string(4, "")],
                ),
                message(8, &[]),
                string(13, ""),
                string(14, ""),
                varint(16, 0),
                varint(17, 0),
                varint(18, 0),
                string(20, ""),
            ],
        );
        let template = message(
            3,
            &[
                metadata("", &labels),
                message(2, &[container, string(3, ""), string(6, ""), varint(11, 0)]),
            ],
        );
        let spec = message(
            2,
            &[
                varint(1, 2),
                message(2, &[entry(1, "app", string(2, "web"))]),
                template,
                message(4, &[string(1, "")]),
                varint(5, 0),
                varint(7, 0),
            ],
        );
        let status = message(3, &[varint(1, 0), varint(2, 0), varint(3, 0)]);
        let body = envelope(
            "apps/v1",
            "Deployment",
            &[metadata("web", &labels), spec, status],
        );
        assert_eq!(
            decode_object(&body).expect("decodes"),
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                        "spec": {"containers": [{
                            "name": "web",
                            "image": "nginx",
                            "ports": [{"containerPort": 80}],
                            "resources": {},
                        }]},
                    },
                    "strategy": {},
                },
                "status": {},
            })
        );
    }

    #[test]
    fn service_target_port_is_int_or_string() {
        let port = |target: Vec<Vec<u8>>| {
            message(
                1,
                &[
                    string(1, "http"),
                    string(2, "TCP"),
                    varint(3, 80),
                    message(4, &target),
                    varint(5, 0),
                ],
            )
        };
        let body = envelope(
            "v1",
            "Service",
            &[
                metadata("svc", &[]),
                message(
                    2,
                    &[
                        port(vec![varint(1, 0), varint(2, 8080), string(3, "")]),
                        port(vec![varint(1, 1), varint(2, 0), string(3, "web")]),
                        entry(2, "app", string(2, "svc")),
                        string(4, "ClusterIP"),
                    ],
                ),
            ],
        );
        let v = decode_object(&body).expect("decodes");
        assert_eq!(v["spec"]["ports"][0]["targetPort"], 8080);
        assert_eq!(v["spec"]["ports"][1]["targetPort"], "web");
        assert_eq!(v["spec"]["ports"][0]["protocol"], "TCP");
        assert!(v["spec"]["ports"][0].get("nodePort").is_none());
        assert_eq!(v["spec"]["type"], "ClusterIP");
        assert_eq!(v["spec"]["selector"], json!({"app": "svc"}));
    }

    #[test]
    fn inline_volume_source_quantities_times_and_managed_fields() {
        let volume = message(
            1,
            &[
                string(1, "cfg"),
                message(2, &[message(19, &[message(1, &[string(1, "settings")])])]),
            ],
        );
        let limits = entry(1, "memory", message(2, &[string(1, "128Mi")]));
        let container = message(2, &[string(1, "c"), message(8, &[limits])]);
        let managed = message(
            17,
            &[
                string(1, "kubectl"),
                message(4, &[varint(1, 1_796_119_200)]),
                string(6, "FieldsV1"),
                message(7, &[string(1, r#"{"f:data":{}}"#)]),
            ],
        );
        let meta = message(
            1,
            &[
                string(1, "p"),
                message(8, &[varint(1, 1_796_119_200), varint(2, 5)]),
                managed,
            ],
        );
        let body = envelope("v1", "Pod", &[meta, message(2, &[volume, container])]);
        let v = decode_object(&body).expect("decodes");
        assert_eq!(v["metadata"]["creationTimestamp"], "2026-12-01T10:00:00Z");
        assert_eq!(
            v["metadata"]["managedFields"][0],
            json!({"manager": "kubectl", "time": "2026-12-01T10:00:00Z",
                   "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}})
        );
        assert_eq!(
            v["spec"]["volumes"][0],
            json!({"name": "cfg", "configMap": {"name": "settings"}})
        );
        assert_eq!(
            v["spec"]["containers"][0]["resources"],
            json!({"limits": {"memory": "128Mi"}})
        );
    }

    #[test]
    fn micro_time_keeps_microseconds() {
        let spec = message(
            2,
            &[
                string(1, "holder"),
                message(4, &[varint(1, 1_796_119_200), varint(2, 123_456_789)]),
            ],
        );
        let body = envelope(
            "coordination.k8s.io/v1",
            "Lease",
            &[metadata("l", &[]), spec],
        );
        let v = decode_object(&body).expect("decodes");
        assert_eq!(v["spec"]["renewTime"], "2026-12-01T10:00:00.123456Z");
    }

    #[test]
    fn negative_int32_and_packed_repeated_int64() {
        // PodSecurityContext.supplementalGroups, packed; runAsUser as a sign-extended varint.
        let mut packed = Vec::new();
        encode_varint(1000, &mut packed);
        encode_varint(2000, &mut packed);
        let sc = message(
            14,
            &[bytes(4, &packed), varint(4, 3000), varint(2, -1i64 as u64)],
        );
        let body = envelope("v1", "Pod", &[metadata("p", &[]), message(2, &[sc])]);
        let v = decode_object(&body).expect("decodes");
        assert_eq!(
            v["spec"]["securityContext"],
            json!({"supplementalGroups": [1000, 2000, 3000], "runAsUser": -1})
        );
    }

    #[test]
    fn errors_name_what_is_wrong_and_never_panic() {
        let err = |body: &[u8]| decode_object(body).expect_err("must fail");
        assert!(matches!(err(b"{}"), ProtobufError::MissingMagic));
        let unknown_kind = envelope("v1", "PersistentVolume", &[]);
        let e = err(&unknown_kind);
        assert!(e.is_unsupported());
        assert!(e.to_string().contains("PersistentVolume"), "{e}");
        let unknown_field = envelope("v1", "ConfigMap", &[string(99, "x")]);
        let e = err(&unknown_field);
        assert!(
            matches!(
                e,
                ProtobufError::UnknownField {
                    message: "core.v1.ConfigMap",
                    number: 99
                }
            ),
            "{e}"
        );
        let wrong_wire = envelope("v1", "ConfigMap", &[varint(1, 1)]);
        assert!(matches!(err(&wrong_wire), ProtobufError::WireType { .. }));
        let bad_utf8 = envelope("v1", "ConfigMap", &[message(1, &[bytes(1, &[0xff])])]);
        assert!(matches!(err(&bad_utf8), ProtobufError::InvalidUtf8 { .. }));
        // Every truncation of a valid body fails cleanly.
        let good = envelope("v1", "ConfigMap", &[metadata("x", &[("a", "b")])]);
        for len in MAGIC.len()..good.len() {
            let _ = decode_object(&good[..len]);
        }
        let mut encoded = MAGIC.to_vec();
        encoded.extend(message(1, &[string(1, "v1"), string(2, "ConfigMap")]));
        encoded.extend(string(3, "gzip"));
        assert!(matches!(err(&encoded), ProtobufError::ContentEncoding(_)));
    }

    #[test]
    fn objects_embedded_in_fields_v1_count_towards_the_depth_bound() {
        // A ConfigMap whose managedFields[0].fieldsV1 is another protobuf ConfigMap, and so
        // on: the depth count used to restart in each embedded object (a stack overflow).
        let mut body = envelope("v1", "ConfigMap", &[metadata("x", &[])]);
        for _ in 0..2_000 {
            let fields_v1 = message(7, &[bytes(1, &body)]);
            body = envelope(
                "v1",
                "ConfigMap",
                &[message(1, &[message(17, &[fields_v1])])],
            );
        }
        let e = decode_object(&body).expect_err("refused");
        assert!(matches!(e, ProtobufError::TooDeep), "{e}");
        // A few levels are fine.
        let mut body = envelope("v1", "ConfigMap", &[metadata("x", &[])]);
        for _ in 0..3 {
            let fields_v1 = message(7, &[bytes(1, &body)]);
            body = envelope(
                "v1",
                "ConfigMap",
                &[message(1, &[message(17, &[fields_v1])])],
            );
        }
        decode_object(&body).expect("three embedded levels decode");
    }

    #[test]
    fn schema_is_consistent() {
        for (name, fields) in SCHEMA {
            for (i, f) in fields.iter().enumerate() {
                assert!(
                    fields[..i].iter().all(|g| g.number != f.number),
                    "{name}: field {} twice",
                    f.number
                );
                if let M(inner) = f.ty {
                    assert!(
                        messages().contains_key(inner),
                        "{name}.{}: no {inner}",
                        f.json
                    );
                }
            }
        }
        for (_, _, message) in KINDS {
            assert!(messages().contains_key(message), "no {message}");
        }
    }
}

/// Bodies captured from `kubectl.1.33 create ... --dry-run=server -v=9` against Baton, each next
/// to the JSON the same command prints with `--dry-run=client -o json`.
#[cfg(test)]
mod captured {
    use super::decode_object;
    use serde_json::Value;
    use std::path::PathBuf;

    #[test]
    fn kubectl_create_bodies_decode_to_kubectls_own_json() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protobuf");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).expect("fixtures directory") {
            let path = entry.expect("fixture").path();
            if path.extension().is_none_or(|e| e != "pb") {
                continue;
            }
            let body = std::fs::read(&path).expect("fixture bytes");
            let decoded =
                decode_object(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let json = std::fs::read(path.with_extension("json")).expect("expected JSON");
            let expected: Value = serde_json::from_slice(&json).expect("expected JSON parses");
            assert_eq!(decoded, expected, "{}", path.display());
            count += 1;
        }
        assert!(count >= 4, "only {count} fixtures");
    }
}
