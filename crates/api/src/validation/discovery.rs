//! EndpointSlice validation (`pkg/apis/discovery/validation`): the address type, up to 1000
//! endpoints of 1 to 100 addresses each, addresses that parse as the slice's type and are
//! not special (unspecified, loopback, link-local), and ports with unique names.

use std::net::IpAddr;

use serde_json::{Value, json};

use super::{FieldError, names};

const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20_000;

pub(super) fn endpoint_slice(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let address_type = obj
        .get("addressType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut errs = Vec::new();
    if address_type.is_empty() {
        errs.push(FieldError::required("addressType", ""));
    } else if !ADDRESS_TYPES.contains(&address_type) {
        errs.push(FieldError::not_supported(
            "addressType",
            json!(address_type),
            ADDRESS_TYPES,
        ));
    }
    errs.extend(endpoints(obj.get("endpoints"), address_type));
    errs.extend(ports(obj.get("ports")));
    if let Some(old) = old {
        let before = old.get("addressType").unwrap_or(&Value::Null);
        if obj.get("addressType").unwrap_or(&Value::Null) != before {
            errs.push(FieldError::invalid(
                "addressType",
                json!(address_type),
                "field is immutable",
            ));
        }
    }
    errs
}

fn endpoints(list: Option<&Value>, address_type: &str) -> Vec<FieldError> {
    let list = list
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if list.len() > MAX_ENDPOINTS {
        return vec![FieldError::too_many("endpoints", list.len(), MAX_ENDPOINTS)];
    }
    let mut errs = Vec::new();
    for (i, endpoint) in list.iter().enumerate() {
        let at = format!("endpoints[{i}]");
        let addresses = endpoint
            .get("addresses")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        if addresses.is_empty() {
            errs.push(FieldError::required(
                format!("{at}.addresses"),
                "must contain at least 1 address",
            ));
        } else if addresses.len() > MAX_ADDRESSES {
            errs.push(FieldError::too_many(
                format!("{at}.addresses"),
                addresses.len(),
                MAX_ADDRESSES,
            ));
        }
        for (j, address) in addresses.iter().enumerate() {
            let path = format!("{at}.addresses[{j}]");
            let address = address.as_str().unwrap_or_default();
            errs.extend(match address_type {
                "IPv4" | "IPv6" => ip_address(&path, address, address_type),
                "FQDN" => fqdn(&path, address),
                // An unknown type is reported once, on addressType.
                _ => Vec::new(),
            });
        }
        if let Some(node) = endpoint.get("nodeName").and_then(Value::as_str) {
            for msg in names::dns1123_subdomain(node) {
                errs.push(FieldError::invalid(
                    format!("{at}.nodeName"),
                    json!(node),
                    msg,
                ));
            }
        }
        if let Some(host) = endpoint.get("hostname").and_then(Value::as_str) {
            for msg in names::dns1123_label(host) {
                errs.push(FieldError::invalid(
                    format!("{at}.hostname"),
                    json!(host),
                    msg,
                ));
            }
        }
    }
    errs
}

/// `IsValidIPv4Address` / `IsValidIPv6Address`, then `ValidateEndpointIP`.
fn ip_address(path: &str, address: &str, address_type: &str) -> Vec<FieldError> {
    let ip = address.parse::<IpAddr>().ok();
    let ip = match (address_type, ip) {
        ("IPv4", Some(ip @ IpAddr::V4(_))) | ("IPv6", Some(ip @ IpAddr::V6(_))) => ip,
        _ => {
            return vec![FieldError::invalid(
                path,
                json!(address),
                format!("must be a valid {address_type} address"),
            )];
        }
    };
    let mut errs = Vec::new();
    let mut reject = |msg: String| errs.push(FieldError::invalid(path, json!(address), msg));
    if ip.is_unspecified() {
        reject(format!("may not be unspecified ({address})"));
    }
    if ip.is_loopback() {
        reject("may not be in the loopback range (127.0.0.0/8, ::1/128)".into());
    }
    let (link_local, link_local_multicast) = match ip {
        IpAddr::V4(v4) => (v4.is_link_local(), v4.octets()[..3] == [224, 0, 0]),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            (s[0] & 0xffc0 == 0xfe80, s[0] & 0xff0f == 0xff02)
        }
    };
    if link_local {
        reject("may not be in the link-local range (169.254.0.0/16, fe80::/10)".into());
    }
    if link_local_multicast {
        reject("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)".into());
    }
    errs
}

/// `IsFullyQualifiedDomainName`: a DNS subdomain (a trailing dot allowed) of at least two
/// labels.
fn fqdn(path: &str, address: &str) -> Vec<FieldError> {
    if address.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let name = address.strip_suffix('.').unwrap_or(address);
    let errs = names::dns1123_subdomain(name);
    if !errs.is_empty() {
        return vec![FieldError::invalid(path, json!(name), errs.join(","))];
    }
    if !name.contains('.') {
        return vec![FieldError::invalid(
            path,
            json!(name),
            "should be a domain with at least two segments separated by dots",
        )];
    }
    for label in name.split('.') {
        let errs = names::dns1123_label(label);
        if !errs.is_empty() {
            return vec![FieldError::invalid(path, json!(label), errs.join(","))];
        }
    }
    Vec::new()
}

fn ports(list: Option<&Value>) -> Vec<FieldError> {
    let list = list
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if list.len() > MAX_PORTS {
        return vec![FieldError::too_many("ports", list.len(), MAX_PORTS)];
    }
    let mut errs = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, p) in list.iter().enumerate() {
        let at = format!("ports[{i}]");
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
        if !name.is_empty() {
            for msg in names::dns1123_label(name) {
                errs.push(FieldError::invalid(format!("{at}.name"), json!(name), msg));
            }
        }
        if seen.contains(&name) {
            errs.push(FieldError::duplicate(format!("{at}.name"), json!(name)));
        } else {
            seen.push(name);
        }
        errs.extend(super::pod::protocol(
            p.get("protocol"),
            &format!("{at}.protocol"),
        ));
        if let Some(app) = p.get("appProtocol").and_then(Value::as_str) {
            for msg in names::qualified_name(app) {
                errs.push(FieldError::invalid(
                    format!("{at}.appProtocol"),
                    json!(app),
                    msg,
                ));
            }
        }
    }
    errs
}
