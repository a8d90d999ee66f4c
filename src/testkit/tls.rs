//! A certificate authority made at test time and a server certificate for every Azure host
//! name the fakes answer for. Nothing here is ever trusted outside a test's HTTP client.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio_rustls::rustls;

/// Host names (and wildcards) the fake serves.
pub const SERVED_NAMES: &[&str] = &[
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.microsoftonline.de",
    "login.stack.test",
    "adfs.local.azurestack.external",
    "*.vault.azure.net",
    "*.vault.usgovcloudapi.net",
    "*.vault.azure.cn",
    "*.vault.microsoftazure.de",
    "*.vault.stack.test",
    "*.vault.local.azurestack.external",
    "localhost",
];

/// The test CA (PEM) and the server's TLS configuration.
pub struct TestPki {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

/// Makes a fresh CA and a server certificate for [`SERVED_NAMES`], valid for HTTP/2 and 1.1.
pub fn make() -> TestPki {
    let ca_key = KeyPair::generate().unwrap_or_else(|e| panic!("CA key: {e}"));
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "akv-csi-provider test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .unwrap_or_else(|e| panic!("CA cert: {e}"));
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap_or_else(|e| panic!("server key: {e}"));
    let names: Vec<String> = SERVED_NAMES.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(names).unwrap_or_else(|e| panic!("{e}"));
    params
        .distinguished_name
        .push(DnType::CommonName, "fake azure");
    let server_cert = params
        .signed_by(&server_key, &issuer)
        .unwrap_or_else(|e| panic!("server cert: {e}"));

    let key_der = rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der())
        .unwrap_or_else(|e| panic!("server key DER: {e}"));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("TLS versions: {e}"))
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key_der)
        .unwrap_or_else(|e| panic!("server TLS config: {e}"));
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    TestPki {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    }
}

/// A cluster's PKI for the fake token proxy: its own CA (kubelet's `kube-root-ca.crt`), the
/// API server's serving certificate for `api_names`, and the proxy's certificate for
/// `server_name`; the server presents the proxy's only to clients that ask for `server_name`.
pub struct ClusterPki {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

#[derive(Debug)]
struct BySni {
    server_name: String,
    proxy: Arc<rustls::sign::CertifiedKey>,
    api_server: Arc<rustls::sign::CertifiedKey>,
}

impl rustls::server::ResolvesServerCert for BySni {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        if hello.server_name() == Some(self.server_name.as_str()) {
            Some(self.proxy.clone())
        } else {
            Some(self.api_server.clone())
        }
    }
}

/// Makes a cluster CA and the two serving certificates (see [`ClusterPki`]).
pub fn make_cluster(server_name: &str, api_names: &[String]) -> ClusterPki {
    let ca_key = KeyPair::generate().unwrap_or_else(|e| panic!("cluster CA key: {e}"));
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kubernetes (fake cluster CA)");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .unwrap_or_else(|e| panic!("cluster CA cert: {e}"));
    let issuer = Issuer::new(ca_params, ca_key);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let leaf = |names: Vec<String>, cn: &str| {
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("leaf key: {e}"));
        let mut params = CertificateParams::new(names).unwrap_or_else(|e| panic!("{e}"));
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params
            .signed_by(&key, &issuer)
            .unwrap_or_else(|e| panic!("leaf cert: {e}"));
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
            .unwrap_or_else(|e| panic!("leaf key DER: {e}"));
        let signing = provider
            .key_provider
            .load_private_key(key_der)
            .unwrap_or_else(|e| panic!("leaf signing key: {e}"));
        Arc::new(rustls::sign::CertifiedKey::new(
            vec![cert.der().clone()],
            signing,
        ))
    };
    let resolver = BySni {
        server_name: server_name.to_owned(),
        proxy: leaf(vec![server_name.to_owned()], "aks token proxy"),
        api_server: leaf(api_names.to_vec(), "apiserver"),
    };
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("TLS versions: {e}"))
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    ClusterPki {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    }
}
