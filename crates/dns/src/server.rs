//! The DNS server: hickory-server's UDP and TCP listeners with Baton's [`Handler`], which
//! answers names of the cluster domain from the current [`Zone`] and relays every other
//! question to the host's resolvers, as CoreDNS's `kubernetes` and `forward` plugins do.
//!
//! Forwarding relays the client's own query bytes to each upstream in turn (UDP, or TCP when
//! the client asked over TCP, e.g. after a truncated answer) and returns the upstream's answer
//! with its flags, records and response code as they came: a resolver library such as
//! hickory-resolver would resolve the name again on its own terms (its own search rules,
//! caching and error mapping) and the client would not see the upstream's answer.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, PTR, SOA, SRV};
use hickory_server::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::records::{Answer, Data, Qtype, Rec, TTL, Zone};

/// How long one upstream has to answer before the next is asked.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// Where forwarded questions go.
#[derive(Clone, Debug)]
pub enum Upstreams {
    /// The `nameserver`s of this `resolv.conf`, read at each forward (a changed file applies
    /// at once), port 53.
    ResolvConf(PathBuf),
    /// These addresses (tests).
    Fixed(Vec<SocketAddr>),
}

impl Upstreams {
    /// The upstream addresses, without `exclude` (the cluster DNS itself: a host whose
    /// `resolv.conf` names the cluster DNS must not make it ask itself).
    pub fn addrs(&self, exclude: SocketAddr) -> Vec<SocketAddr> {
        let all = match self {
            Upstreams::Fixed(a) => a.clone(),
            Upstreams::ResolvConf(path) => {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                baton_api::resolv::ResolvConf::parse(&text)
                    .nameservers
                    .iter()
                    .filter_map(|n| n.parse::<IpAddr>().ok())
                    .map(|ip| SocketAddr::new(ip, 53))
                    .collect()
            }
        };
        all.into_iter().filter(|a| *a != exclude).collect()
    }
}

/// Answers the cluster's names, forwards the rest.
pub struct Handler {
    /// The zone: `None` until the Services and EndpointSlices are first listed (cluster names
    /// then answer SERVFAIL, which clients retry, rather than a wrong NXDOMAIN).
    zone: watch::Receiver<Option<Arc<Zone>>>,
    domain: String,
    upstreams: Upstreams,
    /// The address this server answers on, never an upstream.
    this: SocketAddr,
}

impl Handler {
    pub fn new(
        domain: &str,
        zone: watch::Receiver<Option<Arc<Zone>>>,
        upstreams: Upstreams,
        this: SocketAddr,
    ) -> Handler {
        Handler {
            zone,
            domain: domain.trim_matches('.').to_ascii_lowercase(),
            upstreams,
            this,
        }
    }

    fn in_cluster_domain(&self, qname: &str) -> bool {
        let q = qname.trim_end_matches('.');
        q == self.domain || q.ends_with(&format!(".{}", self.domain))
    }

    /// The zone's SOA, which negative answers carry so resolvers cache them for its minimum.
    fn soa(&self) -> Option<Record> {
        let origin = Name::from_ascii(format!("{}.", self.domain)).ok()?;
        let mname = Name::from_ascii(format!("ns.dns.{}.", self.domain)).ok()?;
        let rname = Name::from_ascii(format!("hostmaster.{}.", self.domain)).ok()?;
        let soa = SOA::new(mname, rname, 1, 7200, 1800, 86400, TTL);
        Some(Record::from_rdata(origin, TTL, RData::SOA(soa)))
    }

    /// Relays the request to the upstreams; `None` when none answered.
    async fn forward(&self, request: &Request) -> Option<Message> {
        let tcp = request.protocol() == Protocol::Tcp;
        for up in self.upstreams.addrs(self.this) {
            let started = Instant::now();
            let got = if tcp {
                tokio::time::timeout(UPSTREAM_TIMEOUT, tcp_exchange(up, request.as_slice())).await
            } else {
                tokio::time::timeout(UPSTREAM_TIMEOUT, udp_exchange(up, request.as_slice())).await
            };
            match got {
                Ok(Ok(bytes)) => match Message::from_vec(&bytes) {
                    Ok(m) if m.metadata.id == request.metadata.id => {
                        tracing::trace!(upstream = %up, took_us = started.elapsed().as_micros() as u64, "forwarded");
                        return Some(m);
                    }
                    Ok(_) => tracing::debug!(upstream = %up, "upstream answered another id"),
                    Err(e) => {
                        tracing::debug!(upstream = %up, error = %e, "upstream answer unreadable")
                    }
                },
                Ok(Err(e)) => tracing::debug!(upstream = %up, error = %e, "upstream failed"),
                Err(_) => tracing::debug!(upstream = %up, "upstream timed out"),
            }
        }
        None
    }
}

async fn udp_exchange(up: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let bind: SocketAddr = if up.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = tokio::net::UdpSocket::bind(bind).await?;
    sock.connect(up).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; 65535];
    let n = sock.recv(&mut buf).await?;
    buf.truncate(n);
    Ok(buf)
}

async fn tcp_exchange(up: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut conn = tokio::net::TcpStream::connect(up).await?;
    let len = u16::try_from(query.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "query too long"))?;
    let mut out = Vec::with_capacity(query.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(query);
    conn.write_all(&out).await?;
    let n = conn.read_u16().await?;
    let mut buf = vec![0u8; usize::from(n)];
    conn.read_exact(&mut buf).await?;
    Ok(buf)
}

fn qtype(t: RecordType) -> Qtype {
    match t {
        RecordType::A => Qtype::A,
        RecordType::AAAA => Qtype::Aaaa,
        RecordType::SRV => Qtype::Srv,
        RecordType::PTR => Qtype::Ptr,
        RecordType::CNAME => Qtype::Cname,
        RecordType::ANY => Qtype::Any,
        _ => Qtype::Other,
    }
}

/// A zone record as hickory's; `None` for a name that is not a valid domain name.
fn record(r: &Rec) -> Option<Record> {
    let name = Name::from_ascii(format!("{}.", r.name)).ok()?;
    let fq = |n: &str| Name::from_ascii(format!("{n}.")).ok();
    let data = match &r.data {
        Data::A(ip) => RData::A(A(*ip)),
        Data::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        Data::Cname(t) => RData::CNAME(CNAME(fq(t)?)),
        Data::Ptr(t) => RData::PTR(PTR(fq(t)?)),
        Data::Srv {
            priority,
            weight,
            port,
            target,
        } => RData::SRV(SRV::new(*priority, *weight, *port, fq(target)?)),
    };
    Some(Record::from_rdata(name, TTL, data))
}

async fn respond<R: ResponseHandler>(
    request: &Request,
    edns: Option<&Edns>,
    mut handle: R,
    metadata: Metadata,
    answers: &[Record],
    authorities: &[Record],
    additionals: &[Record],
) -> ResponseInfo {
    let mut builder = MessageResponseBuilder::new(&request.queries, None);
    if let Some(e) = edns {
        builder.edns(e);
    }
    let response = builder.build(
        metadata,
        answers.iter(),
        authorities.iter(),
        std::iter::empty(),
        additionals.iter(),
    );
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "sending a DNS answer failed");
            let mut m = Metadata::response_from_request(&request.metadata);
            m.response_code = ResponseCode::ServFail;
            hickory_server::proto::op::Header {
                metadata: m,
                counts: Default::default(),
            }
            .into()
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        handle: R,
    ) -> ResponseInfo {
        let response_edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512));
            e.set_version(0);
            e
        });
        let edns = response_edns.as_ref();
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.recursion_available = true;
        if request.metadata.message_type != MessageType::Query
            || request.metadata.op_code != OpCode::Query
        {
            meta.response_code = ResponseCode::NotImp;
            return respond(request, edns, handle, meta, &[], &[], &[]).await;
        }
        let Ok(info) = request.request_info() else {
            meta.response_code = ResponseCode::FormErr;
            return respond(request, edns, handle, meta, &[], &[], &[]).await;
        };
        let qname = info.query.name().to_string();
        let zone = self.zone.borrow().clone();
        let answer = match zone.as_deref() {
            _ if info.query.query_class() != DNSClass::IN => Answer::NotOurs,
            Some(z) => z.answer(&qname, qtype(info.query.query_type())),
            None if self.in_cluster_domain(&qname) => {
                meta.response_code = ResponseCode::ServFail;
                return respond(request, edns, handle, meta, &[], &[], &[]).await;
            }
            None => Answer::NotOurs,
        };
        match answer {
            Answer::NotOurs => match self.forward(request).await {
                Some(up) => {
                    let mut m = up.metadata;
                    m.id = request.metadata.id;
                    respond(
                        request,
                        edns,
                        handle,
                        m,
                        &up.answers,
                        &up.authorities,
                        &up.additionals,
                    )
                    .await
                }
                None => {
                    meta.response_code = ResponseCode::ServFail;
                    respond(request, edns, handle, meta, &[], &[], &[]).await
                }
            },
            Answer::NxDomain => {
                meta.authoritative = true;
                meta.response_code = ResponseCode::NXDomain;
                let soa: Vec<Record> = self.soa().into_iter().collect();
                respond(request, edns, handle, meta, &[], &soa, &[]).await
            }
            Answer::Records {
                answers,
                additionals,
            } => {
                meta.authoritative = true;
                let answers: Vec<Record> = answers.iter().filter_map(record).collect();
                let additionals: Vec<Record> = additionals.iter().filter_map(record).collect();
                let soa: Vec<Record> = if answers.is_empty() {
                    self.soa().into_iter().collect()
                } else {
                    Vec::new()
                };
                respond(request, edns, handle, meta, &answers, &soa, &additionals).await
            }
        }
    }
}
