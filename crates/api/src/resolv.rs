//! `resolv.conf` as glibc reads it, reduced to what Baton uses: `nameserver`, `search` (and
//! the older `domain`, which is a one-entry search list) and `options`. The node agent writes
//! each pod's from it (the kubelet's `dns.go`), and the cluster DNS forwards other names to the
//! host's `nameserver`s.

/// The parts of a `resolv.conf`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl ResolvConf {
    /// Reads `text`; unknown lines and comments (`#`, `;`) are skipped. As glibc, the last
    /// `search` or `domain` line wins.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ns) = words.next() {
                        conf.nameservers.push(ns.to_string());
                    }
                }
                Some("search") | Some("domain") => {
                    conf.searches = words
                        .map(|w| w.trim_end_matches('.').to_string())
                        .filter(|w| !w.is_empty())
                        .collect();
                }
                Some("options") => conf.options.extend(words.map(str::to_string)),
                _ => {}
            }
        }
        conf
    }

    /// The file's text, as the kubelet writes it: `nameserver` lines, then one `search` and one
    /// `options` line when there are any.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for ns in &self.nameservers {
            out.push_str(&format!("nameserver {ns}\n"));
        }
        if !self.searches.is_empty() {
            out.push_str(&format!("search {}\n", self.searches.join(" ")));
        }
        if !self.options.is_empty() {
            out.push_str(&format!("options {}\n", self.options.join(" ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders() {
        let c = ResolvConf::parse(
            "# generated\nnameserver 10.0.0.2\nnameserver 127.0.0.53 # stub\ndomain old.example\nsearch corp.example. lab.example\noptions edns0 trust-ad\noptions ndots:2\nsortlist 1.2.3.4\n",
        );
        assert_eq!(c.nameservers, ["10.0.0.2", "127.0.0.53"]);
        assert_eq!(c.searches, ["corp.example", "lab.example"]);
        assert_eq!(c.options, ["edns0", "trust-ad", "ndots:2"]);
        assert_eq!(
            c.render(),
            "nameserver 10.0.0.2\nnameserver 127.0.0.53\nsearch corp.example lab.example\noptions edns0 trust-ad ndots:2\n"
        );
        assert_eq!(ResolvConf::parse("").render(), "");
    }
}
