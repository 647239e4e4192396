//! The etcd backend: the [`Store`] over etcd's v3 API, for clusters that outgrow one machine.
//!
//! The mapping is direct, since the [`Store`] model is etcd's: a store key `k` is the etcd key
//! `prefix + k` ([`DEFAULT_PREFIX`] unless configured); revisions are etcd's (`mod_revision`,
//! `create_revision`, the response header's revision); each write is one etcd transaction that
//! compares the key's `create_revision` (exists or not) or `mod_revision` (the `expected`
//! revision) and, when the comparison fails, reads the key in the same transaction to say why
//! (`AlreadyExists`, `NotFound`, `Conflict` with the current revision). A refused write changes
//! nothing, so it uses no revision.
//!
//! Lists read one range at one revision: a page (`limit`) is one range request; an unlimited
//! list is read in chunks of [`LIST_CHUNK`] keys, every chunk at the revision of the first.
//!
//! Watches are etcd watches (with previous values) from `after + 1`, each on its own gRPC
//! stream of the one connection. A watch from a revision etcd has compacted fails with
//! [`StoreError::Compacted`] (found with a range read at that revision before the watch is
//! opened; a compaction racing the open ends the stream with the same error). Like the
//! embedded store's history window, [`EtcdOptions::history`] bounds how far back a watch may
//! resume even when etcd still has the revisions (as kube-apiserver's watch cache answers
//! `410 Gone` for versions older than it holds), so a client cannot make etcd replay hours of
//! history.
//!
//! Compaction, as kube-apiserver does it: every [`EtcdOptions::compaction_interval`] (default
//! [`DEFAULT_COMPACTION_INTERVAL`], 5 minutes) the store compacts etcd to the revision it saw at
//! the previous interval, so at least one interval of history remains. Servers sharing an etcd
//! take turns through the etcd key [`COMPACT_KEY`] (outside every prefix, since compaction is
//! etcd-wide): a server compacts only when the key's version is the one it last saw, bumping
//! it in the same transaction, so one compaction happens per interval however many servers run.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType as EtcdEvent,
    GetOptions, Identity, KvClient, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse, TxnResponse,
    WatchClient, WatchOptions, WatchResponse,
};

use crate::{
    EventType, KeyValue, ListResult, Result, Revision, Store, StoreError, WatchEvent, WatchStream,
};

/// The etcd key prefix of Baton's keys unless configured (`--etcd-prefix`): Baton's own store
/// keys start with `/registry/`, so objects live at `/baton/registry/{group}/{resource}/…`,
/// clear of a kube-apiserver's `/registry/…` on the same etcd.
pub const DEFAULT_PREFIX: &str = "/baton";
/// How often the store compacts etcd's history unless configured
/// (kube-apiserver's `--etcd-compaction-interval` default).
pub const DEFAULT_COMPACTION_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// The etcd key through which servers sharing an etcd take turns compacting (its version
/// counts compactions); the name kube-apiserver uses for the same purpose.
pub const COMPACT_KEY: &str = "compact_rev_key";
/// Keys read per range request of an unlimited list.
pub const LIST_CHUNK: i64 = 500;
/// How long one etcd request may take before it fails (an unreachable etcd would otherwise
/// hold requests for as long as the connection retries).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest gRPC message accepted from etcd: a list chunk or a watch response of large objects
/// (objects up to 3 MiB, with their previous values) must fit.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024 * 1024;
/// While a request has failed for want of etcd, how often the store checks it is back
/// ([`Store::health`]).
const PROBE_EVERY: Duration = Duration::from_secs(2);

/// Where etcd is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdOptions {
    /// `host:port` of each member (several for a cluster; the client balances over them).
    pub endpoints: Vec<String>,
    /// Prepended to every store key ([`DEFAULT_PREFIX`]).
    pub prefix: String,
    /// Client TLS: with it the endpoints are reached over HTTPS.
    pub tls: Option<EtcdTls>,
    /// How many revisions back a watch may resume (0: as far as etcd keeps). The server's
    /// `--watch-history`, the same bound as the embedded store's history.
    pub history: u64,
    /// How often to compact etcd ([`DEFAULT_COMPACTION_INTERVAL`]); `None` never compacts
    /// (etcd's own `--auto-compaction-*` may).
    pub compaction_interval: Option<Duration>,
}

/// PEM files for TLS to etcd (`--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdTls {
    /// The CA that signed etcd's serving certificate (required with TLS).
    pub ca: Option<PathBuf>,
    /// A client certificate and its key, for etcd's `--client-cert-auth`.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl EtcdOptions {
    /// Options for the endpoints of `etcd://HOST:PORT[,HOST:PORT…]`, with the defaults.
    pub fn from_url(url: &str) -> std::result::Result<EtcdOptions, String> {
        let rest = url
            .strip_prefix("etcd://")
            .ok_or_else(|| format!("{url:?}: an etcd store is etcd://HOST:PORT[,HOST:PORT…]"))?;
        let endpoints: Vec<String> = rest
            .trim_end_matches('/')
            .split(',')
            .map(str::trim)
            .map(str::to_owned)
            .collect();
        for e in &endpoints {
            let port = e
                .rsplit_once(':')
                .map(|(host, port)| (host, port.parse::<u16>()));
            if !matches!(port, Some((host, Ok(_))) if !host.is_empty() && !host.contains('/')) {
                return Err(format!(
                    "{url:?}: {e:?} is not HOST:PORT (an etcd store is etcd://HOST:PORT[,HOST:PORT…])"
                ));
            }
        }
        Ok(EtcdOptions {
            endpoints,
            prefix: DEFAULT_PREFIX.to_owned(),
            tls: None,
            history: 0,
            compaction_interval: Some(DEFAULT_COMPACTION_INTERVAL),
        })
    }
}

/// The etcd [`Store`].
pub struct EtcdStore {
    kv: KvClient,
    watch: WatchClient,
    prefix: String,
    history: u64,
    /// `host:port,…`, for messages.
    endpoints: String,
    /// The last request's failure to reach etcd, until one succeeds ([`Store::health`]).
    fault: Arc<Mutex<Option<StoreError>>>,
    /// The compactor and the health probe, stopped when the store is dropped.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl EtcdStore {
    /// Connects to etcd and checks it answers, failing with a message naming the endpoints if
    /// it does not within [`REQUEST_TIMEOUT`]. Starts the compactor; must run in a Tokio runtime.
    pub async fn connect(opts: EtcdOptions) -> Result<EtcdStore> {
        let endpoints = opts.endpoints.join(",");
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Backend(format!("etcd at {endpoints}: {what}: {e}"))
        };
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(true)
            // A member cut off from the others fails requests and ends watches, so clients
            // move on instead of reading stale data.
            .with_require_leader(true);
        let mut urls = opts.endpoints.clone();
        if let Some(tls) = &opts.tls {
            connect = connect.with_tls(tls_options(tls).map_err(|e| fail("TLS settings", &e))?);
            urls = urls.iter().map(|e| format!("https://{e}")).collect();
        }
        let client = Client::connect(&urls, Some(connect))
            .await
            .map_err(|e| fail("connecting", &e))?;
        let mut store = EtcdStore {
            kv: client
                .kv_client()
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            watch: client
                .watch_client()
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            prefix: opts.prefix.clone(),
            history: opts.history,
            endpoints: endpoints.clone(),
            fault: Arc::default(),
            tasks: Vec::new(),
        };
        let revision = store.current_revision().await?;
        tracing::info!(%endpoints, prefix = %opts.prefix, revision, "connected to etcd");
        let mut tasks = vec![tokio::spawn(probe_loop(
            store.kv.clone(),
            store.fault.clone(),
            endpoints.clone(),
        ))];
        if let Some(interval) = opts.compaction_interval {
            tasks.push(tokio::spawn(compactor(
                store.kv.clone(),
                interval,
                endpoints,
            )));
        }
        store.tasks = tasks;
        Ok(store)
    }

    fn full_key(&self, key: &str) -> Vec<u8> {
        format!("{}{key}", self.prefix).into_bytes()
    }

    /// The store key of an etcd key in our range.
    fn store_key(&self, key: &[u8]) -> Result<String> {
        key.strip_prefix(self.prefix.as_bytes())
            .and_then(|k| std::str::from_utf8(k).ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                StoreError::Backend(format!(
                    "etcd at {}: key {:?} is not a Baton key under prefix {:?}",
                    self.endpoints,
                    String::from_utf8_lossy(key),
                    self.prefix
                ))
            })
    }

    fn key_value(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue> {
        Ok(KeyValue {
            key: self.store_key(kv.key())?,
            value: kv.value().to_vec(),
            create_revision: revision(kv.create_revision()),
            mod_revision: revision(kv.mod_revision()),
        })
    }

    /// Runs one etcd request with [`REQUEST_TIMEOUT`], recording whether etcd was reachable.
    async fn call<T>(
        &self,
        what: &str,
        request: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Ok(Ok(v)) => {
                if let Some(fault) = lock(&self.fault).take() {
                    tracing::info!(endpoints = %self.endpoints, was = %fault, "etcd answers again");
                }
                Ok(v)
            }
            Ok(Err(e)) => {
                let error = self.error(what, &e);
                if unreachable(&e) {
                    *lock(&self.fault) = Some(error.clone());
                }
                Err(error)
            }
            Err(_) => {
                let error = StoreError::Backend(format!(
                    "etcd at {}: {what}: no answer within {} s",
                    self.endpoints,
                    REQUEST_TIMEOUT.as_secs()
                ));
                *lock(&self.fault) = Some(error.clone());
                Err(error)
            }
        }
    }

    fn error(&self, what: &str, e: &etcd_client::Error) -> StoreError {
        let message = match e {
            etcd_client::Error::GRpcStatus(status) => status.message().to_owned(),
            other => other.to_string(),
        };
        StoreError::Backend(format!("etcd at {}: {what}: {message}", self.endpoints))
    }

    /// One transaction that does `then` if `when` holds, else reads `key` (to say why not).
    async fn txn(&self, what: &str, key: &[u8], when: Compare, then: TxnOp) -> Result<TxnResponse> {
        let txn = Txn::new()
            .when([when])
            .and_then([then])
            .or_else([TxnOp::get(key.to_vec(), None)]);
        self.call(what, self.kv.clone().txn(txn)).await
    }

    /// Why a conditional write on `key` was refused, from the read in its `else` branch.
    fn refusal(&self, key: &str, expected: Option<Revision>, resp: &TxnResponse) -> StoreError {
        let current = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(get) => get.kvs().first().map(|kv| revision(kv.mod_revision())),
            _ => None,
        });
        match (current, expected) {
            (None, _) => StoreError::NotFound { key: key.into() },
            (Some(current), Some(expected)) => StoreError::Conflict {
                key: key.into(),
                expected,
                current,
            },
            // The key exists, so an unconditional write cannot have been refused.
            (Some(_), None) => StoreError::Backend(format!(
                "etcd at {}: a write of {key} was refused although the key exists",
                self.endpoints
            )),
        }
    }

    /// Whether `after + 1` is still in etcd's history: a read at that revision fails once
    /// etcd has compacted past it. Returns the revision compacted to if it has.
    async fn compacted_past(&self, prefix: &[u8], after: Revision) -> Result<Option<Revision>> {
        let at = GetOptions::new()
            .with_revision(signed(after + 1))
            .with_keys_only()
            .with_limit(1);
        match tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.kv.clone().get(prefix.to_vec(), Some(at)),
        )
        .await
        {
            Ok(Err(etcd_client::Error::GRpcStatus(s)))
                if s.code() == tonic::Code::OutOfRange && s.message().contains("compacted") =>
            {
                Ok(Some(self.compaction_revision(prefix, after).await))
            }
            Ok(Err(e)) => Err(self.error("reading at a past revision", &e)),
            Ok(Ok(_)) => Ok(None),
            Err(_) => Err(StoreError::Backend(format!(
                "etcd at {}: reading at a past revision: no answer within {} s",
                self.endpoints,
                REQUEST_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The revision etcd compacted to, which a watch from a compacted revision reports (etcd
    /// has no other way to ask). `after + 1` if it does not say in time.
    async fn compaction_revision(&self, prefix: &[u8], after: Revision) -> Revision {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(signed(after + 1));
        let asked = async {
            let mut stream = self
                .watch
                .clone()
                .watch(prefix.to_vec(), Some(options))
                .await?;
            while let Some(resp) = stream.message().await? {
                if resp.compact_revision() > 0 {
                    return Ok(revision(resp.compact_revision()));
                }
            }
            Ok::<_, etcd_client::Error>(after + 1)
        };
        match tokio::time::timeout(Duration::from_secs(5), asked).await {
            Ok(Ok(r)) => r,
            _ => after + 1,
        }
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let resp = self
            .call(
                "reading a key",
                self.kv.clone().get(self.full_key(key), None),
            )
            .await?;
        resp.kvs().first().map(|kv| self.key_value(kv)).transpose()
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ListResult> {
        let full = self.full_key(prefix);
        let end = prefix_end(&full);
        let mut start = match start_after {
            Some(after) if after >= prefix => {
                let mut k = self.full_key(after);
                k.push(0);
                k
            }
            _ => full.clone(),
        };
        // Kubernetes treats limit=0 as "no limit".
        let page = limit
            .filter(|&n| n > 0)
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let mut items = Vec::new();
        let mut at: Option<i64> = None;
        loop {
            if !end.is_empty() && start >= end {
                // Nothing can follow: still report the revision read at.
                let revision = match at {
                    Some(r) => revision(r),
                    None => self.current_revision().await?,
                };
                return Ok(ListResult {
                    items,
                    revision,
                    more: false,
                });
            }
            let mut options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(page.unwrap_or(LIST_CHUNK));
            if let Some(r) = at {
                options = options.with_revision(r);
            }
            let resp = self
                .call(
                    "listing keys",
                    self.kv.clone().get(start.clone(), Some(options)),
                )
                .await?;
            let read_at = resp.header().map_or(0, |h| h.revision());
            let read_at = *at.get_or_insert(read_at);
            for kv in resp.kvs() {
                items.push(self.key_value(kv)?);
            }
            if page.is_some() || !resp.more() {
                return Ok(ListResult {
                    items,
                    revision: revision(read_at),
                    more: page.is_some() && resp.more(),
                });
            }
            match resp.kvs().last() {
                Some(last) => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                None => {
                    return Ok(ListResult {
                        items,
                        revision: revision(read_at),
                        more: false,
                    });
                }
            }
        }
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision> {
        let full = self.full_key(key);
        let resp = self
            .txn(
                "creating a key",
                &full,
                Compare::create_revision(full.clone(), CompareOp::Equal, 0),
                TxnOp::put(full.clone(), value, None),
            )
            .await?;
        if resp.succeeded() {
            Ok(header_revision(&resp))
        } else {
            Err(StoreError::AlreadyExists { key: key.into() })
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Option<Revision>,
    ) -> Result<Revision> {
        let full = self.full_key(key);
        let resp = self
            .txn(
                "updating a key",
                &full,
                precondition(&full, expected),
                TxnOp::put(full.clone(), value, None::<PutOptions>),
            )
            .await?;
        if resp.succeeded() {
            Ok(header_revision(&resp))
        } else {
            Err(self.refusal(key, expected, &resp))
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)> {
        let full = self.full_key(key);
        let resp = self
            .txn(
                "deleting a key",
                &full,
                precondition(&full, expected),
                TxnOp::delete(full.clone(), Some(DeleteOptions::new().with_prev_key())),
            )
            .await?;
        if !resp.succeeded() {
            return Err(self.refusal(key, expected, &resp));
        }
        let old = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Delete(d) => d.prev_kvs().first().cloned(),
            _ => None,
        });
        match old {
            Some(old) => Ok((header_revision(&resp), self.key_value(&old)?)),
            None => Err(StoreError::Backend(format!(
                "etcd at {}: the delete of {key} returned no previous value",
                self.endpoints
            ))),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let full = self.full_key(prefix);
        let mut options = WatchOptions::new()
            .with_range(prefix_end(&full))
            .with_prev_key();
        if after > 0 {
            let current = self.current_revision().await?;
            if self.history > 0 && current.saturating_sub(after) > self.history {
                return Err(StoreError::Compacted {
                    requested: after,
                    oldest: current - self.history,
                });
            }
            if after < current
                && let Some(compacted) = self.compacted_past(&full, after).await?
            {
                return Err(StoreError::Compacted {
                    requested: after,
                    oldest: compacted.saturating_sub(1).max(after + 1),
                });
            }
            options = options.with_start_revision(signed(after + 1));
        }
        let mut stream = self
            .call(
                "opening a watch",
                self.watch.clone().watch(full, Some(options)),
            )
            .await?;
        // Events written once this returns must reach the watch: wait until etcd has made it.
        let first = self.call("opening a watch", stream.message()).await?;
        if !first.as_ref().is_some_and(WatchResponse::created) {
            let reason = first
                .as_ref()
                .map_or("the stream ended", |r| r.cancel_reason());
            return Err(StoreError::Backend(format!(
                "etcd at {}: opening a watch: etcd did not confirm it ({reason})",
                self.endpoints
            )));
        }
        let feed = Feed {
            stream,
            pending: VecDeque::new(),
            prefix: self.prefix.clone(),
            endpoints: self.endpoints.clone(),
            last: after,
            done: false,
        };
        Ok(Box::pin(futures::stream::unfold(
            feed,
            |mut feed| async move { feed.next().await.map(|item| (item, feed)) },
        )))
    }

    async fn current_revision(&self) -> Result<Revision> {
        let resp = self
            .call(
                "reading the revision",
                self.kv.clone().get(
                    self.full_key("/"),
                    Some(GetOptions::new().with_count_only()),
                ),
            )
            .await?;
        Ok(resp.header().map_or(0, |h| revision(h.revision())))
    }

    fn health(&self) -> Result<()> {
        match lock(&self.fault).as_ref() {
            Some(fault) => Err(fault.clone()),
            None => Ok(()),
        }
    }
}

/// One watch's etcd stream, unpacked into single events.
struct Feed {
    stream: etcd_client::WatchStream,
    pending: VecDeque<WatchEvent>,
    prefix: String,
    endpoints: String,
    /// The revision of the last event delivered (or the one the watch started after).
    last: Revision,
    done: bool,
}

impl Feed {
    async fn next(&mut self) -> Option<Result<WatchEvent>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.last = event.kv.mod_revision;
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            let resp = match self.stream.message().await {
                Ok(Some(resp)) => resp,
                Ok(None) => {
                    self.done = true;
                    return Some(Err(StoreError::Backend(format!(
                        "etcd at {}: the watch stream ended",
                        self.endpoints
                    ))));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(StoreError::Backend(format!(
                        "etcd at {}: watch: {e}",
                        self.endpoints
                    ))));
                }
            };
            if resp.compact_revision() > 0 {
                // etcd compacted past what this watch still had to deliver.
                self.done = true;
                return Some(Err(StoreError::Compacted {
                    requested: self.last,
                    oldest: revision(resp.compact_revision()).saturating_sub(1),
                }));
            }
            if resp.canceled() {
                self.done = true;
                return Some(Err(StoreError::Backend(format!(
                    "etcd at {}: watch canceled: {}",
                    self.endpoints,
                    resp.cancel_reason()
                ))));
            }
            for event in resp.events() {
                match self.event(event) {
                    Ok(e) => self.pending.push_back(e),
                    Err(error) => {
                        // What came before the bad event is still delivered, then the error.
                        self.done = true;
                        self.pending.clear();
                        return Some(Err(error));
                    }
                }
            }
        }
    }

    fn event(&self, event: &etcd_client::Event) -> Result<WatchEvent> {
        let bad = |what: &str| {
            StoreError::Backend(format!("etcd at {}: watch event {what}", self.endpoints))
        };
        let kv = event.kv().ok_or_else(|| bad("without a key"))?;
        let key = kv
            .key()
            .strip_prefix(self.prefix.as_bytes())
            .and_then(|k| std::str::from_utf8(k).ok())
            .ok_or_else(|| bad("for a key outside the prefix"))?
            .to_owned();
        let prev = event.prev_kv();
        Ok(match event.event_type() {
            EtcdEvent::Put => WatchEvent {
                kind: if kv.version() == 1 {
                    EventType::Added
                } else {
                    EventType::Modified
                },
                kv: KeyValue {
                    key,
                    value: kv.value().to_vec(),
                    create_revision: revision(kv.create_revision()),
                    mod_revision: revision(kv.mod_revision()),
                },
                prev_value: prev.map(|p| p.value().to_vec()),
            },
            EtcdEvent::Delete => {
                // A delete carries its last value only as the previous value; without it
                // (compacted meanwhile) the watcher cannot be told what went, so it re-lists.
                let prev = prev.ok_or(StoreError::WatcherLagged)?;
                WatchEvent {
                    kind: EventType::Deleted,
                    kv: KeyValue {
                        key,
                        value: prev.value().to_vec(),
                        create_revision: revision(prev.create_revision()),
                        mod_revision: revision(kv.mod_revision()),
                    },
                    prev_value: Some(prev.value().to_vec()),
                }
            }
        })
    }
}

/// The comparison of a conditional write: the key's `mod_revision` is `expected`, or (with
/// none) the key exists.
fn precondition(key: &[u8], expected: Option<Revision>) -> Compare {
    match expected {
        Some(r) => Compare::mod_revision(key.to_vec(), CompareOp::Equal, signed(r)),
        None => Compare::create_revision(key.to_vec(), CompareOp::Greater, 0),
    }
}

/// The first key after every key starting with `prefix` (etcd's range end for a prefix);
/// empty (to the end of the key space) when there is none.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn header_revision(resp: &TxnResponse) -> Revision {
    resp.header().map_or(0, |h| revision(h.revision()))
}

/// etcd revisions are positive `i64`s.
fn revision(r: i64) -> Revision {
    Revision::try_from(r).unwrap_or(0)
}

/// A store revision as etcd's `i64`; one beyond it matches no revision etcd has.
fn signed(r: Revision) -> i64 {
    i64::try_from(r).unwrap_or(i64::MAX)
}

/// Whether an error means etcd could not be reached (as opposed to refusing a request).
fn unreachable(e: &etcd_client::Error) -> bool {
    use tonic::Code;
    match e {
        etcd_client::Error::GRpcStatus(s) => matches!(
            s.code(),
            Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
        ),
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        _ => false,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn tls_options(tls: &EtcdTls) -> std::result::Result<TlsOptions, String> {
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("reading {}: {e}", p.display()));
    let mut options = TlsOptions::new();
    let ca = tls
        .ca
        .as_ref()
        .ok_or("TLS to etcd needs the CA that signed its certificate (--etcd-cafile)")?;
    options = options.ca_certificate(Certificate::from_pem(read(ca)?));
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            options = options.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        (None, None) => {}
        _ => return Err("a client certificate needs its key, and a key its certificate".into()),
    }
    Ok(options)
}

/// While etcd is unreachable, checks every [`PROBE_EVERY`] whether it answers again, so
/// [`Store::health`] recovers without waiting for a client's request.
async fn probe_loop(kv: KvClient, fault: Arc<Mutex<Option<StoreError>>>, endpoints: String) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        if lock(&fault).is_none() {
            continue;
        }
        let mut kv = kv.clone();
        let probe = kv.get(COMPACT_KEY, Some(GetOptions::new().with_count_only()));
        if let Ok(Ok(_)) = tokio::time::timeout(REQUEST_TIMEOUT, probe).await
            && let Some(was) = lock(&fault).take()
        {
            tracing::info!(%endpoints, %was, "etcd answers again");
        }
    }
}

/// Compacts etcd every `interval` to the revision seen one interval before, taking turns with
/// other servers through [`COMPACT_KEY`] (see the module documentation).
async fn compactor(kv: KvClient, interval: Duration, endpoints: String) {
    // The version of COMPACT_KEY this server last saw, and the revision it saw it at.
    let mut seen = 0i64;
    let mut previous = 0i64;
    loop {
        tokio::time::sleep(interval).await;
        match compact_once(&kv, seen, previous).await {
            Ok((version, revision)) => (seen, previous) = (version, revision),
            Err(error) => tracing::warn!(%endpoints, %error, "compacting etcd failed"),
        }
    }
}

/// One turn of the compactor: claims this interval (COMPACT_KEY's version is still `seen`),
/// and if claimed compacts to `previous`. Returns the key's version and etcd's revision now.
async fn compact_once(
    kv: &KvClient,
    seen: i64,
    previous: i64,
) -> std::result::Result<(i64, i64), etcd_client::Error> {
    let claim = Txn::new()
        .when([Compare::version(COMPACT_KEY, CompareOp::Equal, seen)])
        .and_then([TxnOp::put(COMPACT_KEY, previous.to_string(), None)])
        .or_else([TxnOp::get(COMPACT_KEY, None)]);
    let resp = tokio::time::timeout(REQUEST_TIMEOUT, kv.clone().txn(claim))
        .await
        .map_err(|_| etcd_client::Error::WatchError("no answer".into()))??;
    let now = resp.header().map_or(0, |h| h.revision());
    if !resp.succeeded() {
        // Another server compacted in this interval: follow its count.
        let version = resp
            .op_responses()
            .into_iter()
            .find_map(|op| match op {
                TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.version()),
                _ => None,
            })
            .unwrap_or(0);
        return Ok((version, now));
    }
    if previous > 0 {
        match kv.clone().compact(previous, None).await {
            Ok(_) => tracing::info!(revision = previous, "compacted etcd"),
            // Compacted further already (etcd's own auto-compaction, an operator).
            Err(etcd_client::Error::GRpcStatus(s)) if s.message().contains("compacted") => {}
            Err(e) => return Err(e),
        }
    }
    Ok((seen + 1, now))
}
