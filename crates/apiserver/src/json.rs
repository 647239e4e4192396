//! JSON bytes as Kubernetes writes them (Go's `json.Encoder`), for every body and watch
//! event; below both `errors` and `response`, which use it.

use serde_json::Value;

/// JSON as Kubernetes' serializer writes it (Go's `json.Encoder`): `<`, `>`, `&`, U+2028 and
/// U+2029 escaped as `\u003c`…, and a newline after the value. Every body and watch event goes
/// through here, so clients that compare bytes see what Kubernetes would send.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    if serde::Serialize::serialize(v, &mut ser).is_err() {
        return Vec::new();
    }
    out.push(b'\n');
    out
}

/// `serde_json`'s compact output plus the escapes Go's encoder adds (`SetEscapeHTML(true)`,
/// its default, and the JavaScript line separators).
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escaped.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}
