//! Trust for the token proxy: the cluster CA file (kubelet's `kube-root-ca.crt`), re-read on
//! every use so a rotated CA is picked up without a restart. A file that is empty, unreadable or
//! holds no certificate (as it can be mid-rotation) keeps the last good roots; only with no good
//! roots yet is it an error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// One good reading of the CA file.
#[derive(Debug)]
pub struct Roots {
    /// The file's bytes, to tell a changed file from an unchanged one.
    pem: Vec<u8>,
    /// Its certificates (at least one).
    pub certificates: Vec<CertificateDer<'static>>,
}

impl Roots {
    /// Whether two readings hold the same file content.
    pub fn same_as(&self, other: &Roots) -> bool {
        self.pem == other.pem
    }
}

/// The cluster CA file and its last good reading.
#[derive(Debug)]
pub struct Trust {
    path: PathBuf,
    last_good: Mutex<Option<Arc<Roots>>>,
}

impl Trust {
    /// Trust from the CA bundle at `path` (nothing is read yet).
    pub fn new(path: PathBuf) -> Self {
        Trust {
            path,
            last_good: Mutex::new(None),
        }
    }

    /// The file this trusts.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file now: its roots when it holds certificates, else the last good roots.
    pub async fn current(&self) -> Result<Arc<Roots>, String> {
        let problem = match tokio::fs::read(&self.path).await {
            Ok(pem) => match parse(pem) {
                Ok(roots) => return Ok(self.keep(roots)),
                Err(problem) => problem,
            },
            Err(e) => format!("cannot read it: {e}"),
        };
        let last = self
            .last_good
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match last {
            Some(roots) => {
                tracing::debug!(path = %self.path.display(), %problem, "cluster CA file unusable for now; keeping the last good one");
                Ok(roots)
            }
            None => Err(problem),
        }
    }

    fn keep(&self, roots: Roots) -> Arc<Roots> {
        let mut last = self.last_good.lock().unwrap_or_else(|e| e.into_inner());
        match last.as_ref() {
            Some(old) if old.same_as(&roots) => old.clone(),
            _ => {
                if last.is_some() {
                    tracing::info!(path = %self.path.display(), "cluster CA file changed; trusting its new content");
                }
                let roots = Arc::new(roots);
                *last = Some(roots.clone());
                roots
            }
        }
    }
}

fn parse(pem: Vec<u8>) -> Result<Roots, String> {
    if pem.iter().all(u8::is_ascii_whitespace) {
        return Err("it is empty".into());
    }
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certificates.is_empty() {
        return Err("it holds no PEM certificate".into());
    }
    Ok(Roots { pem, certificates })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    #[tokio::test]
    async fn rereads_and_keeps_the_last_good_roots() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        let trust = Trust::new(path.clone());
        // Nothing yet: an error naming the problem.
        assert!(trust.current().await.unwrap_err().contains("cannot read"));
        std::fs::write(&path, "").unwrap();
        assert!(trust.current().await.unwrap_err().contains("empty"));

        let (first, second) = (ca_pem(), ca_pem());
        std::fs::write(&path, &first).unwrap();
        let a = trust.current().await.unwrap();
        assert_eq!(a.certificates.len(), 1);
        // Unchanged: the same reading.
        assert!(Arc::ptr_eq(&a, &trust.current().await.unwrap()));
        // Mid-rotation (empty, garbage, gone): the last good one.
        for bad in [&b""[..], b"\n", b"-----BEGIN CERTIFICATE-----\ntruncated"] {
            std::fs::write(&path, bad).unwrap();
            assert!(Arc::ptr_eq(&a, &trust.current().await.unwrap()));
        }
        std::fs::remove_file(&path).unwrap();
        assert!(Arc::ptr_eq(&a, &trust.current().await.unwrap()));
        // Rotated: the new content, two CAs during the overlap.
        std::fs::write(&path, format!("{first}{second}")).unwrap();
        let b = trust.current().await.unwrap();
        assert!(!b.same_as(&a));
        assert_eq!(b.certificates.len(), 2);
    }
}
