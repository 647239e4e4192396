//! The `/openapi/v2` document as gnostic's `openapi_v2.Document` protobuf, the form kubectl
//! up to 1.2x asks for. The messages below mirror the subset of gnostic's
//! `openapiv2/OpenAPIv2.proto` Baton emits, with the same field numbers. Vendor extensions
//! (`x-kubernetes-*`) travel as `NamedAny` whose `Any.yaml` holds the value's JSON text, which
//! is valid YAML: that is where kubectl reads `x-kubernetes-group-version-kind` from.

// The oneof enums mirror gnostic's wire messages; boxing their variants buys nothing here.
#![allow(clippy::large_enum_variant)]

use prost::Message;
use serde_json::Value;

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Document {
    #[prost(string, tag = "1")]
    pub swagger: String,
    #[prost(message, optional, tag = "2")]
    pub info: Option<Info>,
    #[prost(string, repeated, tag = "5")]
    pub schemes: Vec<String>,
    #[prost(message, optional, tag = "8")]
    pub paths: Option<Paths>,
    #[prost(message, optional, tag = "9")]
    pub definitions: Option<Definitions>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Info {
    #[prost(string, tag = "1")]
    pub title: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Paths {
    #[prost(message, repeated, tag = "1")]
    pub vendor_extension: Vec<NamedAny>,
    #[prost(message, repeated, tag = "2")]
    pub path: Vec<NamedPathItem>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct NamedPathItem {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<PathItem>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct PathItem {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(message, optional, tag = "2")]
    pub get: Option<Operation>,
    #[prost(message, optional, tag = "3")]
    pub put: Option<Operation>,
    #[prost(message, optional, tag = "4")]
    pub post: Option<Operation>,
    #[prost(message, optional, tag = "5")]
    pub delete: Option<Operation>,
    #[prost(message, optional, tag = "8")]
    pub patch: Option<Operation>,
    #[prost(message, repeated, tag = "9")]
    pub parameters: Vec<ParametersItem>,
    #[prost(message, repeated, tag = "10")]
    pub vendor_extension: Vec<NamedAny>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Operation {
    #[prost(string, repeated, tag = "1")]
    pub tags: Vec<String>,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "5")]
    pub operation_id: String,
    #[prost(string, repeated, tag = "6")]
    pub produces: Vec<String>,
    #[prost(string, repeated, tag = "7")]
    pub consumes: Vec<String>,
    #[prost(message, repeated, tag = "8")]
    pub parameters: Vec<ParametersItem>,
    #[prost(message, optional, tag = "9")]
    pub responses: Option<Responses>,
    #[prost(string, repeated, tag = "10")]
    pub schemes: Vec<String>,
    #[prost(message, repeated, tag = "13")]
    pub vendor_extension: Vec<NamedAny>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ParametersItem {
    #[prost(oneof = "parameters_item::Oneof", tags = "1")]
    pub oneof: Option<parameters_item::Oneof>,
}

pub(crate) mod parameters_item {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(crate) enum Oneof {
        #[prost(message, tag = "1")]
        Parameter(super::Parameter),
    }
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Parameter {
    #[prost(oneof = "parameter::Oneof", tags = "1, 2")]
    pub oneof: Option<parameter::Oneof>,
}

pub(crate) mod parameter {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(crate) enum Oneof {
        #[prost(message, tag = "1")]
        BodyParameter(super::BodyParameter),
        #[prost(message, tag = "2")]
        NonBodyParameter(super::NonBodyParameter),
    }
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct BodyParameter {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub r#in: String,
    #[prost(bool, tag = "4")]
    pub required: bool,
    #[prost(message, optional, tag = "5")]
    pub schema: Option<Schema>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct NonBodyParameter {
    #[prost(oneof = "non_body_parameter::Oneof", tags = "3, 4")]
    pub oneof: Option<non_body_parameter::Oneof>,
}

pub(crate) mod non_body_parameter {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(crate) enum Oneof {
        #[prost(message, tag = "3")]
        QueryParameterSubSchema(super::QueryParameterSubSchema),
        #[prost(message, tag = "4")]
        PathParameterSubSchema(super::PathParameterSubSchema),
    }
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct QueryParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub r#in: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, tag = "6")]
    pub r#type: String,
    #[prost(bool, tag = "20")]
    pub unique_items: bool,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct PathParameterSubSchema {
    #[prost(bool, tag = "1")]
    pub required: bool,
    #[prost(string, tag = "2")]
    pub r#in: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(string, tag = "4")]
    pub name: String,
    #[prost(string, tag = "5")]
    pub r#type: String,
    #[prost(bool, tag = "19")]
    pub unique_items: bool,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Responses {
    #[prost(message, repeated, tag = "1")]
    pub response_code: Vec<NamedResponseValue>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct NamedResponseValue {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<ResponseValue>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ResponseValue {
    #[prost(oneof = "response_value::Oneof", tags = "1")]
    pub oneof: Option<response_value::Oneof>,
}

pub(crate) mod response_value {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(crate) enum Oneof {
        #[prost(message, tag = "1")]
        Response(super::Response),
    }
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Response {
    #[prost(string, tag = "1")]
    pub description: String,
    #[prost(message, optional, tag = "2")]
    pub schema: Option<SchemaItem>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct SchemaItem {
    #[prost(oneof = "schema_item::Oneof", tags = "1")]
    pub oneof: Option<schema_item::Oneof>,
}

pub(crate) mod schema_item {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(crate) enum Oneof {
        #[prost(message, tag = "1")]
        Schema(super::Schema),
    }
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Definitions {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct NamedSchema {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Schema>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Schema {
    #[prost(string, tag = "1")]
    pub r#ref: String,
    #[prost(string, tag = "2")]
    pub format: String,
    #[prost(string, tag = "3")]
    pub title: String,
    #[prost(string, tag = "4")]
    pub description: String,
    #[prost(message, optional, tag = "5")]
    pub default: Option<Any>,
    #[prost(string, repeated, tag = "19")]
    pub required: Vec<String>,
    #[prost(message, repeated, tag = "20")]
    pub r#enum: Vec<Any>,
    #[prost(message, optional, boxed, tag = "21")]
    pub additional_properties: Option<Box<AdditionalPropertiesItem>>,
    #[prost(message, optional, tag = "22")]
    pub r#type: Option<TypeItem>,
    #[prost(message, optional, tag = "23")]
    pub items: Option<ItemsItem>,
    #[prost(message, repeated, tag = "24")]
    pub all_of: Vec<Schema>,
    #[prost(message, optional, tag = "25")]
    pub properties: Option<Properties>,
    #[prost(bool, tag = "27")]
    pub read_only: bool,
    #[prost(message, optional, tag = "30")]
    pub example: Option<Any>,
    #[prost(message, repeated, tag = "31")]
    pub vendor_extension: Vec<NamedAny>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct AdditionalPropertiesItem {
    #[prost(oneof = "additional_properties_item::Oneof", tags = "1, 2")]
    pub oneof: Option<additional_properties_item::Oneof>,
}

pub(crate) mod additional_properties_item {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(crate) enum Oneof {
        #[prost(message, tag = "1")]
        Schema(super::Schema),
        #[prost(bool, tag = "2")]
        Boolean(bool),
    }
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct TypeItem {
    #[prost(string, repeated, tag = "1")]
    pub value: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct ItemsItem {
    #[prost(message, repeated, tag = "1")]
    pub schema: Vec<Schema>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Properties {
    #[prost(message, repeated, tag = "1")]
    pub additional_properties: Vec<NamedSchema>,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Any {
    #[prost(string, tag = "2")]
    pub yaml: String,
}

#[derive(Clone, PartialEq, Message)]
pub(crate) struct NamedAny {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<Any>,
}

/// Encodes the v2 JSON document as a gnostic `Document`.
pub(crate) fn encode_v2(doc: &Value) -> Vec<u8> {
    to_document(doc).encode_to_vec()
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn any(value: &Value) -> Any {
    Any {
        yaml: value.to_string(),
    }
}

fn vendor_extensions(v: &Value) -> Vec<NamedAny> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| k.starts_with("x-"))
                .map(|(k, v)| NamedAny {
                    name: k.clone(),
                    value: Some(any(v)),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn to_document(doc: &Value) -> Document {
    let info = doc.get("info").map(|i| Info {
        title: text(i, "title"),
        version: text(i, "version"),
    });
    let path = doc
        .get("paths")
        .and_then(Value::as_object)
        .map(|paths| {
            paths
                .iter()
                .map(|(name, item)| NamedPathItem {
                    name: name.clone(),
                    value: Some(to_path_item(item)),
                })
                .collect()
        })
        .unwrap_or_default();
    let definitions = doc
        .get("definitions")
        .and_then(Value::as_object)
        .map(|defs| {
            defs.iter()
                .map(|(name, s)| NamedSchema {
                    name: name.clone(),
                    value: Some(to_schema(s)),
                })
                .collect()
        })
        .unwrap_or_default();
    Document {
        swagger: text(doc, "swagger"),
        info,
        schemes: strings(doc, "schemes"),
        paths: Some(Paths {
            vendor_extension: Vec::new(),
            path,
        }),
        definitions: Some(Definitions {
            additional_properties: definitions,
        }),
    }
}

fn to_path_item(item: &Value) -> PathItem {
    let op = |m: &str| item.get(m).map(to_operation);
    PathItem {
        r#ref: String::new(),
        get: op("get"),
        put: op("put"),
        post: op("post"),
        delete: op("delete"),
        patch: op("patch"),
        parameters: to_parameters(item),
        vendor_extension: vendor_extensions(item),
    }
}

fn to_parameters(v: &Value) -> Vec<ParametersItem> {
    v.get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(to_parameter)
        .collect()
}

fn to_parameter(p: &Value) -> ParametersItem {
    let location = text(p, "in");
    let inner = match location.as_str() {
        "body" => parameter::Oneof::BodyParameter(BodyParameter {
            description: text(p, "description"),
            name: text(p, "name"),
            r#in: location,
            required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
            schema: p.get("schema").map(to_schema),
        }),
        "path" => parameter::Oneof::NonBodyParameter(NonBodyParameter {
            oneof: Some(non_body_parameter::Oneof::PathParameterSubSchema(
                PathParameterSubSchema {
                    required: true,
                    r#in: location,
                    description: text(p, "description"),
                    name: text(p, "name"),
                    r#type: text(p, "type"),
                    unique_items: p
                        .get("uniqueItems")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                },
            )),
        }),
        _ => parameter::Oneof::NonBodyParameter(NonBodyParameter {
            oneof: Some(non_body_parameter::Oneof::QueryParameterSubSchema(
                QueryParameterSubSchema {
                    required: p.get("required").and_then(Value::as_bool).unwrap_or(false),
                    r#in: location,
                    description: text(p, "description"),
                    name: text(p, "name"),
                    r#type: text(p, "type"),
                    unique_items: p
                        .get("uniqueItems")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                },
            )),
        }),
    };
    ParametersItem {
        oneof: Some(parameters_item::Oneof::Parameter(Parameter {
            oneof: Some(inner),
        })),
    }
}

fn to_operation(op: &Value) -> Operation {
    let response_code = op
        .get("responses")
        .and_then(Value::as_object)
        .map(|rs| {
            rs.iter()
                .map(|(code, r)| NamedResponseValue {
                    name: code.clone(),
                    value: Some(ResponseValue {
                        oneof: Some(response_value::Oneof::Response(Response {
                            description: text(r, "description"),
                            schema: r.get("schema").map(|s| SchemaItem {
                                oneof: Some(schema_item::Oneof::Schema(to_schema(s))),
                            }),
                        })),
                    }),
                })
                .collect()
        })
        .unwrap_or_default();
    Operation {
        tags: strings(op, "tags"),
        description: text(op, "description"),
        operation_id: text(op, "operationId"),
        produces: strings(op, "produces"),
        consumes: strings(op, "consumes"),
        parameters: to_parameters(op),
        responses: Some(Responses { response_code }),
        schemes: strings(op, "schemes"),
        vendor_extension: vendor_extensions(op),
    }
}

fn to_schema(s: &Value) -> Schema {
    let additional_properties = match s.get("additionalProperties") {
        Some(Value::Bool(b)) => Some(Box::new(AdditionalPropertiesItem {
            oneof: Some(additional_properties_item::Oneof::Boolean(*b)),
        })),
        Some(v @ Value::Object(_)) => Some(Box::new(AdditionalPropertiesItem {
            oneof: Some(additional_properties_item::Oneof::Schema(to_schema(v))),
        })),
        _ => None,
    };
    let r#type = match s.get("type") {
        Some(Value::String(t)) => Some(TypeItem {
            value: vec![t.clone()],
        }),
        Some(Value::Array(ts)) => Some(TypeItem {
            value: ts
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect(),
        }),
        _ => None,
    };
    let items = match s.get("items") {
        Some(v @ Value::Object(_)) => Some(ItemsItem {
            schema: vec![to_schema(v)],
        }),
        Some(Value::Array(vs)) => Some(ItemsItem {
            schema: vs.iter().map(to_schema).collect(),
        }),
        _ => None,
    };
    let properties = s
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| Properties {
            additional_properties: props
                .iter()
                .map(|(name, p)| NamedSchema {
                    name: name.clone(),
                    value: Some(to_schema(p)),
                })
                .collect(),
        });
    Schema {
        r#ref: text(s, "$ref"),
        format: text(s, "format"),
        title: text(s, "title"),
        description: text(s, "description"),
        default: s.get("default").map(any),
        required: strings(s, "required"),
        r#enum: s
            .get("enum")
            .and_then(Value::as_array)
            .map(|e| e.iter().map(any).collect())
            .unwrap_or_default(),
        additional_properties,
        r#type,
        items,
        all_of: s
            .get("allOf")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(to_schema).collect())
            .unwrap_or_default(),
        properties,
        read_only: s.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
        example: s.get("example").map(any),
        vendor_extension: vendor_extensions(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_protobuf_round_trips_paths_parameters_and_extensions() {
        let doc = Document::decode(crate::openapi::v2_protobuf()).expect("decodes");
        assert_eq!(doc.swagger, "2.0");
        let paths = doc.paths.expect("paths").path;
        let item = paths
            .iter()
            .find(|p| p.name == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
            .and_then(|p| p.value.clone())
            .expect("deployment item path");
        let patch = item.patch.expect("patch operation");
        let gvk = patch
            .vendor_extension
            .iter()
            .find(|e| e.name == "x-kubernetes-group-version-kind")
            .expect("gvk");
        let gvk: Value =
            serde_json::from_str(&gvk.value.as_ref().expect("value").yaml).expect("json text");
        assert_eq!(gvk["kind"], "Deployment");
        let has_field_validation = patch.parameters.iter().any(|p| {
            matches!(&p.oneof, Some(parameters_item::Oneof::Parameter(Parameter { oneof: Some(parameter::Oneof::NonBodyParameter(NonBodyParameter { oneof: Some(non_body_parameter::Oneof::QueryParameterSubSchema(q)) })) })) if q.name == "fieldValidation")
        });
        assert!(has_field_validation);
        let defs = doc.definitions.expect("definitions").additional_properties;
        let pod_spec = defs
            .iter()
            .find(|d| d.name == "io.k8s.api.core.v1.PodSpec")
            .and_then(|d| d.value.clone())
            .expect("PodSpec");
        let containers = pod_spec
            .properties
            .expect("properties")
            .additional_properties
            .into_iter()
            .find(|p| p.name == "containers")
            .and_then(|p| p.value)
            .expect("containers");
        assert_eq!(
            containers.r#type.map(|t| t.value),
            Some(vec!["array".to_string()])
        );
        assert!(
            containers
                .vendor_extension
                .iter()
                .any(|e| e.name == "x-kubernetes-patch-merge-key"
                    && e.value.as_ref().is_some_and(|v| v.yaml == "\"name\""))
        );
        assert_eq!(
            containers.items.map(|i| i.schema[0].r#ref.clone()),
            Some("#/definitions/io.k8s.api.core.v1.Container".to_string())
        );
    }
}
