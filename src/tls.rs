//! TLS on both sides of the proxy: Consentry's CA and the leaf certificates it mints for
//! intercepted tunnels, and the verifying client configuration used towards origins.
//!
//! The CA (ECDSA P-256) is created in `data_dir` on first start (`ca.key.pem` with mode 0600).
//! Leaves share one P-256 key generated at start-up and get random 16-byte serials (a shared key
//! with the default serial would repeat serials). Minted leaves are kept in a bounded cache whose
//! loads are coalesced, so a burst of tunnels to one host mints once.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

const CA_CERT_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca.key.pem";
/// Minted leaves live at most this long in the cache, well inside their validity.
const LEAF_CACHE_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot create {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not a usable CA ({problem})")]
    BadCa { path: PathBuf, problem: String },
    #[error("cannot generate a key or certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The process-wide crypto provider: aws-lc-rs (ring is kept out of the tree).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Consentry's certificate authority.
pub struct CertificateAuthority {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl CertificateAuthority {
    /// Loads the CA from `data_dir`, creating it (and the directory, mode 0700) if missing.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, TlsSetupError> {
        create_private_dir(data_dir)?;
        let cert_path = data_dir.join(CA_CERT_FILE);
        let key_path = data_dir.join(CA_KEY_FILE);
        if !key_path.exists() {
            let (cert_pem, key_pem) = generate_ca()?;
            // Publish the key first, without clobbering: a concurrent `consentry ca` or a second
            // node sharing the directory may have won the race, and then its CA is the CA.
            if publish_new(&key_path, key_pem.as_bytes(), 0o600)? {
                publish_new(&cert_path, cert_pem.as_bytes(), 0o644)?;
            }
        }
        wait_for(&cert_path);
        let cert_pem = read_to_string(&cert_path)?;
        let key_pem = read_to_string(&key_path)?;
        let bad = |problem: String| TlsSetupError::BadCa { path: cert_path.clone(), problem };
        let key = KeyPair::from_pem(&key_pem).map_err(|e| bad(format!("key: {e}")))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| bad(e.to_string()))?;
        let cert_der = first_certificate(&cert_pem).ok_or_else(|| bad("no PEM certificate".into()))?;
        Ok(Self { cert_pem, cert_der, issuer })
    }

    /// The CA certificate crawlers must trust, PEM-encoded.
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }
}

fn generate_ca() -> Result<(String, String), TlsSetupError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Consentry interception CA");
    name.push(DnType::OrganizationName, "Consentry");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.serial_number = Some(random_serial());
    let now = time_now();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Mints and caches leaf certificates for intercepted hosts.
pub struct LeafMinter {
    ca: CertificateAuthority,
    leaf_key: KeyPair,
    signing_key: Arc<dyn rustls::sign::SigningKey>,
    cache: moka::sync::Cache<String, Arc<CertifiedKey>>,
}

impl LeafMinter {
    pub fn new(ca: CertificateAuthority, cache_size: u64) -> Result<Self, TlsSetupError> {
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let key_der = PrivateKeyDer::try_from(leaf_key.serialize_der())
            .map_err(|e| TlsSetupError::Rustls(rustls::Error::General(e.to_string())))?;
        let signing_key = provider().key_provider.load_private_key(key_der)?;
        let cache = moka::sync::Cache::builder().max_capacity(cache_size).time_to_live(LEAF_CACHE_TTL).build();
        Ok(Self { ca, leaf_key, signing_key, cache })
    }

    /// Leaf certificates cached now.
    pub fn cached_leaves(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// The certified key for `host` (a DNS name or an IP literal), minted once and cached.
    pub fn leaf_for(&self, host: &str) -> Result<Arc<CertifiedKey>, Arc<rcgen::Error>> {
        self.cache.try_get_with(host.to_ascii_lowercase(), || self.mint(host).map(Arc::new))
    }

    fn mint(&self, host: &str) -> Result<CertifiedKey, rcgen::Error> {
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, host);
        params.distinguished_name = name;
        params.subject_alt_names = vec![match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.try_into()?),
        }];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.serial_number = Some(random_serial());
        let now = time_now();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(30);
        let cert = params.signed_by(&self.leaf_key, &self.ca.issuer)?;
        let chain = vec![cert.der().clone(), self.ca.cert_der.clone()];
        Ok(CertifiedKey::new(chain, self.signing_key.clone()))
    }
}

impl std::fmt::Debug for LeafMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafMinter").field("cached", &self.cache.entry_count()).finish()
    }
}

/// Resolves the certificate from the client's SNI (the common case: SNI equals the CONNECT host).
#[derive(Debug)]
pub struct SniResolver(pub Arc<LeafMinter>);

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let host = hello.server_name()?;
        self.0.leaf_for(host).ok()
    }
}

/// Always presents the certificate for one host (tunnels whose client sent no SNI).
#[derive(Debug)]
pub struct FixedResolver(pub Arc<CertifiedKey>);

impl ResolvesServerCert for FixedResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// The one server configuration for intercepted tunnels: SNI-resolved leaves, ALPN h2 + http/1.1.
pub fn interception_config(minter: Arc<LeafMinter>) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver(minter)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The verifying client configuration for origins: webpki roots plus `tls.upstream_roots`.
pub fn upstream_client_config(extra_roots: &[PathBuf]) -> Result<rustls::ClientConfig, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for path in extra_roots {
        for cert in read_pem_certificates(path).map_err(|source| TlsSetupError::Read { path: path.clone(), source })? {
            roots.add(cert).map_err(|e| TlsSetupError::BadCa { path: path.clone(), problem: e.to_string() })?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Every certificate in a PEM file.
pub fn read_pem_certificates(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let mut reader = io::BufReader::new(std::fs::File::open(path)?);
    rustls_pemfile::certs(&mut reader).collect()
}

fn first_certificate(pem: &str) -> Option<CertificateDer<'static>> {
    rustls_pemfile::certs(&mut pem.as_bytes()).next()?.ok()
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // keep the DER integer positive
    bytes[0] |= 0x01; // and of full length
    SerialNumber::from_slice(&bytes)
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

pub(crate) fn read_to_string(path: &Path) -> Result<String, TlsSetupError> {
    std::fs::read_to_string(path).map_err(|source| TlsSetupError::Read { path: path.into(), source })
}

/// Creates `dir` (and parents) with mode 0700 when it does not exist yet.
pub fn create_private_dir(dir: &Path) -> Result<(), TlsSetupError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| TlsSetupError::Write { path: dir.into(), source })
}

/// Writes `contents` to a temporary file and links it to `path` only if `path` does not exist
/// yet, so readers never see a half-written file. `Ok(false)`: someone else published first.
pub(crate) fn publish_new(path: &Path, contents: &[u8], mode: u32) -> Result<bool, TlsSetupError> {
    use std::io::Write;
    let write_error = |source| TlsSetupError::Write { path: path.into(), source };
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&temporary).map_err(write_error)?;
    file.write_all(contents).and_then(|()| file.sync_all()).map_err(write_error)?;
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(write_error(e)),
    }
}

/// Gives a concurrent creator a moment to publish the certificate after its key.
fn wait_for(path: &Path) {
    for _ in 0..50 {
        if path.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_created_once_with_private_key_mode_and_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let first = CertificateAuthority::load_or_create(&data).expect("create");
        let second = CertificateAuthority::load_or_create(&data).expect("reload");
        assert_eq!(first.certificate_pem(), second.certificate_pem());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key_mode = std::fs::metadata(data.join(CA_KEY_FILE)).expect("key").permissions().mode();
            assert_eq!(key_mode & 0o777, 0o600);
            let dir_mode = std::fs::metadata(&data).expect("dir").permissions().mode();
            assert_eq!(dir_mode & 0o777, 0o700);
        }
    }

    #[test]
    fn leaves_are_cached_and_have_distinct_serials_per_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::load_or_create(dir.path()).expect("ca");
        let minter = LeafMinter::new(ca, 100).expect("minter");
        let a1 = minter.leaf_for("a.example").expect("a");
        let a2 = minter.leaf_for("A.example").expect("a again");
        let b = minter.leaf_for("b.example").expect("b");
        let ip = minter.leaf_for("127.0.0.1").expect("ip");
        assert!(Arc::ptr_eq(&a1, &a2), "a cached leaf is reused (host is case-insensitive)");
        assert_ne!(a1.cert[0], b.cert[0]);
        assert_eq!(ip.cert.len(), 2, "leaf followed by the CA");
    }
}
