//! SPDY/3.1 as Kubernetes uses it: a multiplexing layer over an upgraded HTTP/1.1 connection,
//! where the client (kubectl, through `moby/spdystream`) opens every stream and the server only
//! replies, writes data and closes. There is no flow control in practice (spdystream ignores
//! WINDOW_UPDATE and never sends one), so none is enforced here either.
//!
//! [`Session::start`] splits an upgraded connection into a reader task (frames in, PINGs
//! answered, header blocks inflated) and a writer task (frames out, header blocks deflated with
//! the SPDY/3 dictionary); the caller receives [`Event`]s and answers through a [`Sender`].

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// The zlib dictionary SPDY/3 header blocks are compressed with (a protocol constant).
const DICTIONARY: &[u8] = include_bytes!("spdy_dictionary.bin");

const VERSION: u16 = 3;
const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const FLAG_FIN: u8 = 0x01;

/// RST_STREAM status codes used here.
pub const RST_CANCEL: u32 = 5;
pub const RST_PROTOCOL_ERROR: u32 = 1;

/// Largest frame payload accepted (the 24-bit length allows 16 MiB; nothing Kubernetes sends
/// comes close).
const MAX_FRAME: usize = 1 << 24;
/// Largest data frame written; output is split into frames of at most this size.
pub const MAX_DATA_CHUNK: usize = 32 * 1024;
/// Largest inflated header block accepted.
const MAX_HEADER_BLOCK: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("reading or writing the connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("frame of {0} bytes is too large")]
    TooLarge(usize),
    #[error("malformed {what} frame")]
    Malformed { what: &'static str },
    #[error("header block: {0}")]
    Headers(String),
}

/// Stream headers, names lower-cased; a value may repeat.
pub type Headers = Vec<(String, String)>;

/// The first value of header `name` (lower-case).
pub fn header<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// One frame, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    SynStream {
        id: u32,
        headers: Headers,
        fin: bool,
    },
    SynReply {
        id: u32,
        headers: Headers,
        fin: bool,
    },
    Headers {
        id: u32,
        headers: Headers,
        fin: bool,
    },
    Data {
        id: u32,
        data: Bytes,
        fin: bool,
    },
    RstStream {
        id: u32,
        status: u32,
    },
    Ping(u32),
    GoAway {
        last_good: u32,
        status: u32,
    },
    /// SETTINGS, WINDOW_UPDATE, NOOP and anything newer: read and ignored.
    Other(u16),
}

/// Header-block compression state for one direction of one connection (SPDY keeps a single
/// zlib stream per direction for the connection's lifetime).
pub struct Deflater(Compress);
pub struct Inflater(Decompress);

impl Default for Deflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Deflater {
    pub fn new() -> Self {
        let mut c = Compress::new(Compression::default(), true);
        // Only fails on a stream already started; this one is new.
        let _ = c.set_dictionary(DICTIONARY);
        Self(c)
    }

    fn deflate(&mut self, input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(input.len() + 64);
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.0.total_in();
            self.0
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Headers(e.to_string()))?;
            consumed += (self.0.total_in() - before) as usize;
            // A sync flush is complete once all input is taken and output space remains.
            if consumed == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    pub fn new() -> Self {
        Self(Decompress::new(true))
    }

    fn inflate(&mut self, input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(input.len() * 4 + 64);
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(1024);
            }
            if out.len() > MAX_HEADER_BLOCK {
                return Err(SpdyError::Headers("header block too large".into()));
            }
            let before = self.0.total_in();
            let res = self
                .0
                .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync);
            consumed += (self.0.total_in() - before) as usize;
            match res {
                Ok(Status::StreamEnd) => return Ok(out),
                Ok(_) => {
                    if consumed == input.len() && out.len() < out.capacity() {
                        return Ok(out);
                    }
                }
                Err(e) if e.needs_dictionary().is_some() => {
                    self.0
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| SpdyError::Headers(e.to_string()))?;
                }
                Err(e) => return Err(SpdyError::Headers(e.to_string())),
            }
        }
    }
}

fn encode_header_block(h: &Headers) -> Vec<u8> {
    // Repeated names are joined with NUL into one entry, as SPDY requires unique names.
    let mut merged: Vec<(String, String)> = Vec::new();
    for (k, v) in h {
        let k = k.to_ascii_lowercase();
        match merged.iter_mut().find(|(n, _)| *n == k) {
            Some((_, val)) => {
                val.push('\0');
                val.push_str(v);
            }
            None => merged.push((k, v.clone())),
        }
    }
    let mut b = Vec::new();
    b.put_u32(merged.len() as u32);
    for (k, v) in merged {
        b.put_u32(k.len() as u32);
        b.put_slice(k.as_bytes());
        b.put_u32(v.len() as u32);
        b.put_slice(v.as_bytes());
    }
    b
}

fn decode_header_block(mut b: &[u8]) -> Result<Headers, SpdyError> {
    let bad = || SpdyError::Headers("truncated header block".into());
    let take = |b: &mut &[u8]| -> Result<String, SpdyError> {
        if b.remaining() < 4 {
            return Err(bad());
        }
        let n = b.get_u32() as usize;
        if b.remaining() < n {
            return Err(bad());
        }
        let s = String::from_utf8_lossy(&b[..n]).into_owned();
        b.advance(n);
        Ok(s)
    };
    if b.remaining() < 4 {
        return Err(bad());
    }
    let count = b.get_u32() as usize;
    let mut out = Vec::new();
    for _ in 0..count {
        let name = take(&mut b)?.to_ascii_lowercase();
        let value = take(&mut b)?;
        for v in value.split('\0') {
            out.push((name.clone(), v.to_string()));
        }
    }
    Ok(out)
}

/// Encodes one frame (compressing its header block, if any, with `deflater`).
pub fn encode(frame: &Frame, deflater: &mut Deflater) -> Result<Bytes, SpdyError> {
    let mut b = BytesMut::new();
    let control = |b: &mut BytesMut, ty: u16, flags: u8, payload: &[u8]| {
        b.put_u16(0x8000 | VERSION);
        b.put_u16(ty);
        b.put_u32((u32::from(flags) << 24) | payload.len() as u32);
        b.put_slice(payload);
    };
    let fin_flag = |fin: bool| if fin { FLAG_FIN } else { 0 };
    match frame {
        Frame::SynStream { id, headers, fin } => {
            let mut p = Vec::new();
            p.put_u32(id & 0x7fff_ffff);
            p.put_u32(0);
            p.put_u16(0);
            p.extend(deflater.deflate(&encode_header_block(headers))?);
            control(&mut b, TYPE_SYN_STREAM, fin_flag(*fin), &p);
        }
        Frame::SynReply { id, headers, fin } | Frame::Headers { id, headers, fin } => {
            let ty = if matches!(frame, Frame::SynReply { .. }) {
                TYPE_SYN_REPLY
            } else {
                TYPE_HEADERS
            };
            let mut p = Vec::new();
            p.put_u32(id & 0x7fff_ffff);
            p.extend(deflater.deflate(&encode_header_block(headers))?);
            control(&mut b, ty, fin_flag(*fin), &p);
        }
        Frame::Data { id, data, fin } => {
            if data.len() >= MAX_FRAME {
                return Err(SpdyError::TooLarge(data.len()));
            }
            b.put_u32(id & 0x7fff_ffff);
            b.put_u32((u32::from(fin_flag(*fin)) << 24) | data.len() as u32);
            b.put_slice(data);
        }
        Frame::RstStream { id, status } => {
            let mut p = Vec::new();
            p.put_u32(id & 0x7fff_ffff);
            p.put_u32(*status);
            control(&mut b, TYPE_RST_STREAM, 0, &p);
        }
        Frame::Ping(id) => control(&mut b, TYPE_PING, 0, &id.to_be_bytes()),
        Frame::GoAway { last_good, status } => {
            let mut p = Vec::new();
            p.put_u32(last_good & 0x7fff_ffff);
            p.put_u32(*status);
            control(&mut b, TYPE_GOAWAY, 0, &p);
        }
        Frame::Other(_) => {}
    }
    Ok(b.freeze())
}

/// Reads one frame; `Ok(None)` at a clean end of the connection.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    inflater: &mut Inflater,
) -> Result<Option<Frame>, SpdyError> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let first = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let flags = head[4];
    let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
    if len >= MAX_FRAME {
        return Err(SpdyError::TooLarge(len));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    let fin = flags & FLAG_FIN != 0;
    if first & 0x8000_0000 == 0 {
        return Ok(Some(Frame::Data {
            id: first & 0x7fff_ffff,
            data: Bytes::from(payload),
            fin,
        }));
    }
    let version = ((first >> 16) & 0x7fff) as u16;
    if version != VERSION {
        return Err(SpdyError::Version(version));
    }
    let ty = (first & 0xffff) as u16;
    let mut p = payload.as_slice();
    let need = |p: &[u8], n: usize, what: &'static str| {
        if p.len() < n {
            Err(SpdyError::Malformed { what })
        } else {
            Ok(())
        }
    };
    Ok(Some(match ty {
        TYPE_SYN_STREAM => {
            need(p, 10, "SYN_STREAM")?;
            let id = p.get_u32() & 0x7fff_ffff;
            p.advance(6); // associated stream, priority, slot
            Frame::SynStream {
                id,
                headers: decode_header_block(&inflater.inflate(p)?)?,
                fin,
            }
        }
        TYPE_SYN_REPLY | TYPE_HEADERS => {
            need(p, 4, "SYN_REPLY")?;
            let id = p.get_u32() & 0x7fff_ffff;
            let headers = decode_header_block(&inflater.inflate(p)?)?;
            if ty == TYPE_SYN_REPLY {
                Frame::SynReply { id, headers, fin }
            } else {
                Frame::Headers { id, headers, fin }
            }
        }
        TYPE_RST_STREAM => {
            need(p, 8, "RST_STREAM")?;
            Frame::RstStream {
                id: p.get_u32() & 0x7fff_ffff,
                status: p.get_u32(),
            }
        }
        TYPE_PING => {
            need(p, 4, "PING")?;
            Frame::Ping(p.get_u32())
        }
        TYPE_GOAWAY => {
            need(p, 4, "GOAWAY")?;
            let last_good = p.get_u32() & 0x7fff_ffff;
            let status = if p.len() >= 4 { p.get_u32() } else { 0 };
            Frame::GoAway { last_good, status }
        }
        other => Frame::Other(other),
    }))
}

/// What the peer did, as seen by the server session.
#[derive(Debug)]
pub enum Event {
    /// The client opened a stream (already answered with SYN_REPLY).
    Opened { id: u32, headers: Headers },
    /// Data on a stream; `fin` marks the client's half-close.
    Data { id: u32, data: Bytes, fin: bool },
    /// The client reset a stream.
    Reset { id: u32 },
}

/// Writes frames on the session (cheap to clone).
#[derive(Clone)]
pub struct Sender(mpsc::Sender<Frame>);

impl Sender {
    /// Writes `data` on stream `id`, split into frames; errors once the connection is gone.
    pub async fn data(&self, id: u32, data: Bytes) -> Result<(), SpdyError> {
        let mut data = data;
        while !data.is_empty() {
            let chunk = data.split_to(data.len().min(MAX_DATA_CHUNK));
            self.send(Frame::Data {
                id,
                data: chunk,
                fin: false,
            })
            .await?;
        }
        Ok(())
    }

    /// Half-closes stream `id` (an empty data frame with FIN).
    pub async fn close(&self, id: u32) -> Result<(), SpdyError> {
        self.send(Frame::Data {
            id,
            data: Bytes::new(),
            fin: true,
        })
        .await
    }

    pub async fn reset(&self, id: u32, status: u32) -> Result<(), SpdyError> {
        self.send(Frame::RstStream { id, status }).await
    }

    pub async fn send(&self, f: Frame) -> Result<(), SpdyError> {
        self.0.send(f).await.map_err(|_| {
            SpdyError::Io(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "SPDY connection closed",
            ))
        })
    }
}

/// A server-side SPDY session over an upgraded connection.
pub struct Session {
    pub events: mpsc::Receiver<Event>,
    pub sender: Sender,
    writer: tokio::task::JoinHandle<()>,
}

impl Session {
    /// Starts the reader and writer tasks over `io`.
    pub fn start<IO>(io: IO) -> Session
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(io);
        let (out_tx, mut out_rx) = mpsc::channel::<Frame>(64);
        let (ev_tx, ev_rx) = mpsc::channel::<Event>(64);
        let writer = tokio::spawn(async move {
            let mut deflater = Deflater::new();
            while let Some(f) = out_rx.recv().await {
                let goaway = matches!(f, Frame::GoAway { .. });
                let bytes = match encode(&f, &mut deflater) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::debug!(error = %e, "SPDY frame not encoded");
                        continue;
                    }
                };
                if wr.write_all(&bytes).await.is_err() {
                    return;
                }
                // Batch what is already queued before flushing.
                if out_rx.is_empty() && wr.flush().await.is_err() {
                    return;
                }
                if goaway {
                    break;
                }
            }
            let _ = wr.flush().await;
            let _ = wr.shutdown().await;
        });
        let replies = Sender(out_tx.clone());
        tokio::spawn(async move {
            let mut inflater = Inflater::new();
            let mut open: HashMap<u32, ()> = HashMap::new();
            loop {
                let frame = match read_frame(&mut rd, &mut inflater).await {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "SPDY read ended");
                        break;
                    }
                };
                let ev = match frame {
                    Frame::SynStream { id, headers, fin } => {
                        // spdystream waits for the reply before it writes on a stream.
                        if replies
                            .send(Frame::SynReply {
                                id,
                                headers: Vec::new(),
                                fin: false,
                            })
                            .await
                            .is_err()
                        {
                            break;
                        }
                        open.insert(id, ());
                        if ev_tx.send(Event::Opened { id, headers }).await.is_err() {
                            break;
                        }
                        if !fin {
                            continue;
                        }
                        Event::Data {
                            id,
                            data: Bytes::new(),
                            fin: true,
                        }
                    }
                    Frame::Data { id, data, fin } => {
                        if !open.contains_key(&id) {
                            continue;
                        }
                        Event::Data { id, data, fin }
                    }
                    Frame::Headers { id, fin: true, .. } => Event::Data {
                        id,
                        data: Bytes::new(),
                        fin: true,
                    },
                    Frame::RstStream { id, .. } => {
                        open.remove(&id);
                        Event::Reset { id }
                    }
                    Frame::Ping(n) => {
                        if replies.send(Frame::Ping(n)).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    Frame::GoAway { .. } => break,
                    Frame::SynReply { .. } | Frame::Headers { .. } | Frame::Other(_) => continue,
                };
                if ev_tx.send(ev).await.is_err() {
                    break;
                }
            }
        });
        Session {
            events: ev_rx,
            sender: Sender(out_tx),
            writer,
        }
    }

    /// Says goodbye (GOAWAY) and waits until everything queued has been written.
    pub async fn finish(self) {
        let Session {
            events,
            sender,
            writer,
        } = self;
        drop(events);
        let _ = sender
            .send(Frame::GoAway {
                last_good: 0,
                status: 0,
            })
            .await;
        drop(sender);
        let _ = writer.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_through_one_compression_context() {
        let frames = vec![
            Frame::SynStream {
                id: 1,
                headers: vec![
                    ("streamtype".into(), "error".into()),
                    ("port".into(), "8080".into()),
                ],
                fin: false,
            },
            Frame::SynStream {
                id: 3,
                headers: vec![("streamtype".into(), "stdout".into())],
                fin: true,
            },
            Frame::SynReply {
                id: 3,
                headers: vec![],
                fin: false,
            },
            Frame::Data {
                id: 3,
                data: Bytes::from_static(b"hello"),
                fin: true,
            },
            Frame::RstStream { id: 1, status: 5 },
            Frame::Ping(7),
            Frame::GoAway {
                last_good: 3,
                status: 0,
            },
        ];
        let mut d = Deflater::new();
        let mut wire = Vec::new();
        for f in &frames {
            wire.extend_from_slice(&encode(f, &mut d).expect("encode"));
        }
        let mut r = wire.as_slice();
        let mut i = Inflater::new();
        for f in &frames {
            assert_eq!(
                read_frame(&mut r, &mut i).await.expect("read").as_ref(),
                Some(f)
            );
        }
        assert_eq!(read_frame(&mut r, &mut i).await.expect("eof"), None);
    }

    #[test]
    fn repeated_header_names_share_one_entry() {
        let h = vec![
            ("X-A".to_string(), "1".to_string()),
            ("x-a".to_string(), "2".to_string()),
        ];
        let decoded = decode_header_block(&encode_header_block(&h)).expect("decode");
        assert_eq!(
            decoded,
            vec![("x-a".into(), "1".into()), ("x-a".into(), "2".into())]
        );
    }
}
