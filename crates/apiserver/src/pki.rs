//! First-start security material in the data dir: a CA, a serving certificate signed by it,
//! the admin bearer token, and the kubeconfig that ties them together for kubectl. Secrets are
//! written mode 0600 inside a 0700 data dir.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use rand::RngCore;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("generating certificates: {0}")]
    Cert(#[from] rcgen::Error),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What the server needs to serve TLS and check tokens.
pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub token: String,
    pub kubeconfig: PathBuf,
}

/// Creates the data dir (0700) if needed.
pub fn ensure_data_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))
}

/// Writes `data` to `path` with mode 0600, replacing it atomically.
pub fn write_secret(path: &Path, data: &[u8]) -> Result<(), PkiError> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        f.write_all(data).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn read_opt(path: &Path) -> Result<Option<String>, PkiError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PkiError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

fn ca_params() -> Result<CertificateParams, PkiError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, "baton-ca");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

/// The host a client should dial for a listen address (`0.0.0.0` → `127.0.0.1`).
pub fn client_host(listen: &SocketAddr) -> String {
    match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".into(),
        ip if ip.is_unspecified() => "::1".into(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    }
}

/// Loads the PKI from `dir`, generating whatever is missing; the serving certificate is
/// re-issued when the listen address is not among its names.
pub fn load_or_create(dir: &Path, listen: &SocketAddr) -> Result<Pki, PkiError> {
    ensure_data_dir(dir)?;
    let ca_key_path = dir.join("ca.key");
    let ca_crt_path = dir.join("ca.crt");
    let (ca_key, ca_pem) = match (read_opt(&ca_key_path)?, read_opt(&ca_crt_path)?) {
        (Some(k), Some(c)) => (KeyPair::from_pem(&k)?, c),
        _ => {
            let key = KeyPair::generate()?;
            let cert = ca_params()?.self_signed(&key)?;
            write_secret(&ca_key_path, key.serialize_pem().as_bytes())?;
            write_secret(&ca_crt_path, cert.pem().as_bytes())?;
            (key, cert.pem())
        }
    };

    let mut names: Vec<String> = vec![
        "127.0.0.1".into(),
        "::1".into(),
        "localhost".into(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "10.96.0.1".into(),
    ];
    let ip = listen.ip().to_string();
    if !listen.ip().is_unspecified() && !names.contains(&ip) {
        names.push(ip);
    }
    let names_line = names.join(",");
    let crt_path = dir.join("server.crt");
    let key_path = dir.join("server.key");
    let names_path = dir.join("server.names");
    let (cert_pem, key_pem) = match (
        read_opt(&crt_path)?,
        read_opt(&key_path)?,
        read_opt(&names_path)?,
    ) {
        (Some(c), Some(k), Some(n)) if n == names_line => (c, k),
        _ => {
            let key = KeyPair::generate()?;
            let mut p = CertificateParams::new(names)?;
            p.distinguished_name
                .push(DnType::CommonName, "baton-apiserver");
            p.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
            let issuer = Issuer::new(ca_params()?, &ca_key);
            let cert = p.signed_by(&key, &issuer)?;
            write_secret(&crt_path, cert.pem().as_bytes())?;
            write_secret(&key_path, key.serialize_pem().as_bytes())?;
            write_secret(&names_path, names_line.as_bytes())?;
            (cert.pem(), key.serialize_pem())
        }
    };

    let token_path = dir.join("admin.token");
    let token = match read_opt(&token_path)? {
        Some(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            let mut b = [0u8; 32];
            rand::rng().fill_bytes(&mut b);
            let t: String = b.iter().map(|x| format!("{x:02x}")).collect();
            write_secret(&token_path, t.as_bytes())?;
            t
        }
    };

    let kubeconfig = dir.join("kubeconfig");
    let server = format!("https://{}:{}", client_host(listen), listen.port());
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let kc = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: baton\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca_b64}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: baton\n  context:\n    cluster: baton\n    user: admin\n    namespace: default\ncurrent-context: baton\npreferences: {{}}\n"
    );
    write_secret(&kubeconfig, kc.as_bytes())?;
    Ok(Pki {
        ca_pem,
        cert_pem,
        key_pem,
        token,
        kubeconfig,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn material_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let addr: SocketAddr = "127.0.0.1:6443".parse().expect("addr");
        let a = load_or_create(dir.path(), &addr).expect("first");
        let b = load_or_create(dir.path(), &addr).expect("second");
        assert_eq!(a.ca_pem, b.ca_pem);
        assert_eq!(a.cert_pem, b.cert_pem);
        assert_eq!(a.token, b.token);
        let mode = fs::metadata(&a.kubeconfig)
            .expect("kubeconfig")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = fs::metadata(dir.path()).expect("dir").permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700);
        // A new listen address re-issues the serving cert under the same CA.
        let other: SocketAddr = "127.0.0.2:6443".parse().expect("addr");
        let c = load_or_create(dir.path(), &other).expect("third");
        assert_eq!(a.ca_pem, c.ca_pem);
        assert_ne!(a.cert_pem, c.cert_pem);
    }
}
