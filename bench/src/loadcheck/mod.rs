//! `baton-loadcheck`'s parts (the binary's doc comment says what it is for):
//! - `http`: the hand-written HTTP/1.1 client (one connection, one request at a time).
//! - `run`: workers, stop conditions, the stale keep-alive resend.
//! - `tally`: the counts, bodies, transitions and latencies, and the JSON summary.

pub mod http;
pub mod run;
pub mod tally;
