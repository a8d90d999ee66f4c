//! The token proxy's TLS server name. AKS routes identity-binding token requests by SNI, and the
//! name is derived from the cluster ID, which the API server's serving certificate carries as
//! the DNS name `hcp-kubernetes.<clusterID>.svc.cluster.local` (SPEC §4, the Go provider's
//! `internal/identitybinding`):
//! `lower("a" + base32hex_nopad(sha256("identity-binding" + clusterID)) + ".ests.aks")`.

use std::time::Duration;

use rustls_pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// How long the start-up dial of the API server may take (the Go provider's 10 s).
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

const SAN_PREFIX: &str = "hcp-kubernetes.";
const SAN_SUFFIX: &str = ".svc.cluster.local";

/// The token proxy's server name for the cluster `cluster_id`.
pub fn server_name_for_cluster(cluster_id: &str) -> String {
    let digest = Sha256::digest(format!("identity-binding{cluster_id}").as_bytes());
    format!("a{}.ests.aks", base32hex_lower_nopad(&digest))
}

/// RFC 4648 §7 "base32hex" (alphabet `0-9a-v`), lower case, without padding.
fn base32hex_lower_nopad(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The cluster ID in a DNS name `hcp-kubernetes.<id>.svc.cluster.local`, if it is one.
pub fn cluster_id_from_dns_name(name: &str) -> Option<&str> {
    let id = name.strip_prefix(SAN_PREFIX)?.strip_suffix(SAN_SUFFIX)?;
    let valid = !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    valid.then_some(id)
}

/// The cluster ID from the DNS names of a serving certificate (DER).
pub fn cluster_id_from_certificate(der: &[u8]) -> Result<String, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("its certificate does not parse ({e})"))?;
    let names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(format!("its certificate's names do not parse ({e})")),
    };
    names
        .iter()
        .find_map(|n| cluster_id_from_dns_name(n).map(str::to_owned))
        .ok_or_else(|| {
            format!(
                "its certificate has no DNS name {SAN_PREFIX}<cluster ID>{SAN_SUFFIX} (not an AKS \
                 cluster, or one without identity bindings?)"
            )
        })
}

/// Dials the API server at `host:port` with TLS, trusting only `roots`, and computes the token
/// proxy's server name from the cluster ID in its certificate. Only a handshake: no request is
/// sent and no credential is presented.
pub async fn detect(
    host: &str,
    port: u16,
    roots: &[CertificateDer<'static>],
) -> Result<String, String> {
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(roots.iter().cloned());
    if added == 0 {
        return Err("the cluster CA file holds no usable certificate".into());
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(store)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| format!("{host:?} is not a host name"))?;
    let connector = TlsConnector::from(std::sync::Arc::new(config));
    let handshake = async {
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {host}:{port} failed: {e}"))
    };
    let tls = tokio::time::timeout(DIAL_TIMEOUT, handshake)
        .await
        .map_err(|_| {
            format!(
                "no TLS answer from {host}:{port} within {}s",
                DIAL_TIMEOUT.as_secs()
            )
        })??;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .ok_or_else(|| format!("{host}:{port} presented no certificate"))?;
    let id = cluster_id_from_certificate(leaf)
        .map_err(|e| format!("the API server at {host}:{port} answered, but {e}"))?;
    Ok(server_name_for_cluster(&id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPEC §4 / the reference vectors' INDEX.md §9 (computed from the Go provider's formula
    /// for the cluster IDs of its `TestResolveServerName`).
    #[test]
    fn server_names_of_the_reference_vectors() {
        for (id, want) in [
            (
                "696995ccb303450001b31a18",
                "aeaf29ip1hi5q38ebc3u4daum81u0unk52t5bg50j25234fmuj78g.ests.aks",
            ),
            (
                "abc123def456",
                "avimke6u6l2eeq8qc1cneuaq4sl2e1av9t4clqgun97le32hub670.ests.aks",
            ),
            (
                "id1",
                "assck867kdo1hbg5suttjr100r9atmch81mepk3su35glum5eri00.ests.aks",
            ),
            (
                "id2",
                "av2a9uploik1hu9bkknbo114kphlbeh6gjq040m4n3gbgv5k5bagg.ests.aks",
            ),
        ] {
            let name = server_name_for_cluster(id);
            assert_eq!(name, want, "{id}");
            // What the Go test asserts about every name.
            let first = name.split('.').next().unwrap();
            assert_eq!(first.len(), 53);
            assert!(name.starts_with('a') && name.ends_with(".ests.aks"));
            assert_eq!(name, name.to_ascii_lowercase());
        }
    }

    #[test]
    fn base32hex_matches_rfc4648_test_vectors() {
        // RFC 4648 §10, BASE32-HEX, lower-cased, padding removed.
        for (input, want) in [
            ("", ""),
            ("f", "co"),
            ("fo", "cpng"),
            ("foo", "cpnmu"),
            ("foob", "cpnmuog"),
            ("fooba", "cpnmuoj1"),
            ("foobar", "cpnmuoj1e8"),
        ] {
            assert_eq!(base32hex_lower_nopad(input.as_bytes()), want, "{input:?}");
        }
    }

    #[test]
    fn cluster_ids_in_dns_names() {
        assert_eq!(
            cluster_id_from_dns_name("hcp-kubernetes.696995ccb303450001b31a18.svc.cluster.local"),
            Some("696995ccb303450001b31a18")
        );
        for not in [
            "kubernetes.default.svc.cluster.local",
            "hcp-kubernetes..svc.cluster.local",
            "hcp-kubernetes.a.b.svc.cluster.local",
            "hcp-kubernetes.ABC.svc.cluster.local",
            "xhcp-kubernetes.abc.svc.cluster.local",
        ] {
            assert_eq!(cluster_id_from_dns_name(not), None, "{not}");
        }
    }

    #[test]
    fn cluster_id_from_a_serving_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let with = rcgen::CertificateParams::new(vec![
            "kubernetes.default.svc.cluster.local".to_owned(),
            "hcp-kubernetes.abc123def456.svc.cluster.local".to_owned(),
        ])
        .unwrap()
        .self_signed(&key)
        .unwrap();
        assert_eq!(
            cluster_id_from_certificate(with.der()).unwrap(),
            "abc123def456"
        );
        let without =
            rcgen::CertificateParams::new(vec!["kubernetes.default.svc.cluster.local".to_owned()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
        let e = cluster_id_from_certificate(without.der()).unwrap_err();
        assert!(
            e.contains("hcp-kubernetes.<cluster ID>.svc.cluster.local"),
            "{e}"
        );
        assert!(cluster_id_from_certificate(b"not DER").is_err());
    }
}
