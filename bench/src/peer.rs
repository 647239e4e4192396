//! The peer measurement: etcd's own write path for a 1 KB value, through its JSON gateway
//! (`POST /v3/kv/put`, base64 key and value) over one kept-open connection, the figure Baton's
//! create is compared with.

use std::time::Instant;

use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::conn::Conn;
use crate::procs::Etcd;
use crate::stats::Samples;

/// `ops` sequential puts of distinct keys with a 1 KB value.
pub async fn etcd_put(etcd: &Etcd, ops: usize) -> Result<Samples> {
    let mut conn = Conn::http(etcd.addr).await?;
    let value = STANDARD.encode(vec![b'v'; 1024]);
    let mut samples = Samples::with_capacity(ops);
    let start = Instant::now();
    for i in 0..ops {
        let key = STANDARD.encode(format!("/bench/put-{i}"));
        let body = serde_json::json!({ "key": key, "value": value }).to_string();
        let t = Instant::now();
        conn.expect(
            Method::POST,
            "/v3/kv/put",
            Some(Bytes::from(body)),
            StatusCode::OK,
        )
        .await?;
        samples.push(t.elapsed());
    }
    samples.wall = start.elapsed();
    Ok(samples)
}
