//! The DNS server over real sockets on loopback: cluster answers encoded, NXDOMAIN with the
//! zone's SOA, SERVFAIL before the first list, and forwarding over UDP and TCP to a stand-in
//! upstream that must see the client's own question.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use baton_dns::{Handler, Upstreams, Zone};
use hickory_server::proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::rdata::A;
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

fn service(ns: &str, name: &str, ip: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some(ip.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn query(id: u16, name: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), t));
    m.to_vec().expect("encode")
}

async fn ask_udp(server: SocketAddr, id: u16, name: &str, t: RecordType) -> Message {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    sock.send_to(&query(id, name, t), server)
        .await
        .expect("send");
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("an answer within 5 s")
        .expect("recv");
    let m = Message::from_vec(&buf[..n]).expect("decode");
    assert_eq!(m.metadata.id, id);
    m
}

async fn ask_tcp(server: SocketAddr, id: u16, name: &str, t: RecordType) -> Message {
    let mut c = tokio::net::TcpStream::connect(server)
        .await
        .expect("connect");
    let q = query(id, name, t);
    let mut out = (q.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&q);
    c.write_all(&out).await.expect("write");
    let n = tokio::time::timeout(Duration::from_secs(5), c.read_u16())
        .await
        .expect("an answer within 5 s")
        .expect("length");
    let mut buf = vec![0u8; usize::from(n)];
    c.read_exact(&mut buf).await.expect("body");
    Message::from_vec(&buf).expect("decode")
}

fn addresses(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

/// A stand-in upstream on UDP and TCP: `outside.test` A 192.0.2.77, REFUSED otherwise.
/// Returns its address (same port on both) and the names it was asked.
async fn upstream() -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = udp.local_addr().expect("addr");
    let tcp = TcpListener::bind(addr).await.expect("bind tcp");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let answer = {
        let seen = seen.clone();
        move |bytes: &[u8]| -> Vec<u8> {
            let q = Message::from_vec(bytes).expect("query");
            let name = q.queries[0].name().to_ascii();
            seen.lock().expect("lock").push(name.clone());
            let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            r.metadata.recursion_available = true;
            r.add_query(q.queries[0].clone());
            if name == "outside.test." {
                r.answers.push(Record::from_rdata(
                    Name::from_ascii("outside.test.").expect("name"),
                    60,
                    RData::A(A::new(192, 0, 2, 77)),
                ));
            } else {
                r.metadata.response_code = ResponseCode::Refused;
            }
            r.to_vec().expect("encode")
        }
    };
    let a = answer.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
            let _ = udp.send_to(&a(&buf[..n]), peer).await;
        }
    });
    tokio::spawn(async move {
        while let Ok((mut c, _)) = tcp.accept().await {
            let Ok(n) = c.read_u16().await else { continue };
            let mut buf = vec![0u8; usize::from(n)];
            if c.read_exact(&mut buf).await.is_err() {
                continue;
            }
            let r = answer(&buf);
            let mut out = (r.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(&r);
            let _ = c.write_all(&out).await;
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn answers_the_cluster_and_forwards_the_rest() {
    let (up, seen) = upstream().await;
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = udp.local_addr().expect("addr");
    let tcp = TcpListener::bind(addr).await.expect("bind tcp");
    let (tx, rx) = watch::channel(None);
    // The DNS's own address among the upstreams is skipped.
    let handler = Handler::new("cluster.local", rx, Upstreams::Fixed(vec![addr, up]), addr);
    let mut server = hickory_server::Server::new(handler);
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 64 * 1024);

    // Before the first list: cluster names SERVFAIL, others are forwarded already.
    let m = ask_udp(addr, 1, "web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    let m = ask_udp(addr, 2, "outside.test.", RecordType::A).await;
    assert_eq!(addresses(&m), ["192.0.2.77"]);

    let services = [
        service("default", "web", "10.96.0.20"),
        service("default", "kubernetes", "10.96.0.1"),
    ];
    tx.send_replace(Some(Arc::new(Zone::build("cluster.local", &services, &[]))));
    let m = ask_udp(addr, 3, "web.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert!(m.metadata.recursion_available);
    assert_eq!(addresses(&m), ["10.96.0.20"]);
    assert_eq!(m.answers[0].ttl, 5);
    // Over TCP too.
    let m = ask_tcp(
        addr,
        4,
        "kubernetes.default.svc.cluster.local.",
        RecordType::A,
    )
    .await;
    assert_eq!(addresses(&m), ["10.96.0.1"]);
    // Unknown cluster name: NXDOMAIN with the zone's SOA; AAAA of a v4 Service: NODATA.
    let m = ask_udp(addr, 5, "nope.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities.len(), 1);
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    let m = ask_udp(addr, 6, "web.default.svc.cluster.local.", RecordType::AAAA).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    // Forwarded over TCP when asked over TCP; the upstream's rcode comes back as it was.
    let m = ask_tcp(addr, 7, "outside.test.", RecordType::A).await;
    assert_eq!(addresses(&m), ["192.0.2.77"]);
    let m = ask_udp(addr, 8, "elsewhere.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // The upstream saw the outside names only, never a cluster name.
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen, ["outside.test.", "outside.test.", "elsewhere.test."]);

    // No upstream answers: SERVFAIL, after the 2 s timeout.
    let dead = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let (_tx2, rx2) = watch::channel(None);
    let udp2 = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr2 = udp2.local_addr().expect("addr");
    let handler = Handler::new(
        "cluster.local",
        rx2,
        Upstreams::Fixed(vec![dead.local_addr().expect("addr")]),
        addr2,
    );
    let mut server2 = hickory_server::Server::new(handler);
    server2.register_socket(udp2);
    let m = ask_udp(addr2, 9, "outside.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
}
