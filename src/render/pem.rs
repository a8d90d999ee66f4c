//! PEM exactly as Go's `encoding/pem.EncodeToMemory` writes it: `-----BEGIN X-----\n`, headers
//! (`Proc-Type` first, the rest sorted, then a blank line), standard base64 in 64-column lines,
//! `-----END X-----\n`, no blank lines between blocks. Written by hand into one pre-sized
//! zeroizing buffer so no unzeroized copy of key material is left behind by reallocation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::RenderError;

/// One PEM block to write.
#[derive(Clone)]
pub(crate) struct Block<'a> {
    label: &'a str,
    headers: &'a [(String, String)],
    der: &'a [u8],
}

impl<'a> Block<'a> {
    pub(crate) fn new(label: &'a str, der: &'a [u8]) -> Self {
        Block {
            label,
            headers: &[],
            der,
        }
    }
}

/// Concatenates the blocks in order.
pub(crate) fn encode(blocks: &[Block<'_>]) -> Zeroizing<Vec<u8>> {
    let capacity: usize = blocks.iter().map(encoded_len).sum();
    let mut out = Zeroizing::new(Vec::with_capacity(capacity));
    for block in blocks {
        write_block(&mut out, block);
    }
    debug_assert_eq!(out.len(), capacity);
    out
}

fn header_order(headers: &[(String, String)]) -> Vec<&(String, String)> {
    let mut sorted: Vec<&(String, String)> = headers.iter().collect();
    sorted.sort_by(|a, b| {
        (a.0 != "Proc-Type", a.0.as_str()).cmp(&(b.0 != "Proc-Type", b.0.as_str()))
    });
    sorted
}

fn encoded_len(block: &Block<'_>) -> usize {
    let b64 = block.der.len().div_ceil(3) * 4;
    let lines = b64.div_ceil(64);
    let headers: usize = block
        .headers
        .iter()
        .map(|(k, v)| k.len() + 2 + v.len() + 1)
        .sum::<usize>()
        + usize::from(!block.headers.is_empty());
    let frame = "-----BEGIN -----\n".len() + "-----END -----\n".len() + 2 * block.label.len();
    frame + headers + b64 + lines
}

fn write_block(out: &mut Vec<u8>, block: &Block<'_>) {
    out.extend_from_slice(b"-----BEGIN ");
    out.extend_from_slice(block.label.as_bytes());
    out.extend_from_slice(b"-----\n");
    if !block.headers.is_empty() {
        for (k, v) in header_order(block.headers) {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    let mut b64 = Zeroizing::new(vec![0u8; block.der.len().div_ceil(3) * 4]);
    let written = STANDARD
        .encode_slice(block.der, &mut b64[..])
        .unwrap_or_default();
    for line in b64[..written].chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(b"-----END ");
    out.extend_from_slice(block.label.as_bytes());
    out.extend_from_slice(b"-----\n");
}

/// `(.crt text, .key text)`.
pub(crate) type CertAndKey = (Zeroizing<Vec<u8>>, Zeroizing<Vec<u8>>);

/// The reference's `splitCertAndKey`: `CERTIFICATE` blocks into the `.crt` text, every other
/// block into the `.key` text, each re-encoded.
pub(crate) fn split_cert_and_key(text: &str, object: &str) -> Result<CertAndKey, RenderError> {
    struct Owned {
        label: String,
        headers: Vec<(String, String)>,
        der: Zeroizing<Vec<u8>>,
    }
    let parsed = ::pem::parse_many(text.as_bytes()).map_err(|e| RenderError::Pem {
        object: object.to_owned(),
        reason: pem_reason(&e),
    })?;
    let owned: Vec<Owned> = parsed
        .into_iter()
        .map(|p| {
            let label = p.tag().to_owned();
            let mut headers: Vec<(String, String)> = Vec::new();
            for (k, v) in p.headers().iter() {
                // Go's pem.Decode keeps the last value of a repeated header.
                headers.retain(|(key, _)| key != k);
                headers.push((k.to_owned(), v.to_owned()));
            }
            let der = Zeroizing::new(p.into_contents());
            Owned {
                label,
                headers,
                der,
            }
        })
        .collect();
    fn block(o: &Owned) -> Block<'_> {
        Block {
            label: &o.label,
            headers: &o.headers,
            der: &o.der,
        }
    }
    let certs: Vec<Block<'_>> = owned
        .iter()
        .filter(|o| o.label == "CERTIFICATE")
        .map(block)
        .collect();
    let keys: Vec<Block<'_>> = owned
        .iter()
        .filter(|o| o.label != "CERTIFICATE")
        .map(block)
        .collect();
    Ok((encode(&certs), encode(&keys)))
}

/// The pem crate's error, without any of the input.
pub(crate) fn pem_reason(e: &::pem::PemError) -> String {
    use ::pem::PemError::*;
    match e {
        MismatchedTags(..) => "a BEGIN line does not match its END line".into(),
        MalformedFraming | MissingBeginTag | MissingEndTag | MissingData => {
            "a PEM block is not framed by -----BEGIN/-----END lines".into()
        }
        InvalidData(_) => "a PEM block's body is not valid base64".into(),
        _ => "a PEM block is malformed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_go_encoding() {
        let der: Vec<u8> = (0u8..=100).collect();
        let out = encode(&[Block::new("CERTIFICATE", &der), Block::new("X", &[])]);
        let text = std::str::from_utf8(&out).unwrap();
        let body = STANDARD.encode(&der);
        let want = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n{}\n{}\n-----END CERTIFICATE-----\n\
             -----BEGIN X-----\n-----END X-----\n",
            &body[..64],
            &body[64..128],
            &body[128..]
        );
        assert_eq!(text, want);
        for n in 0..200 {
            let der = vec![7u8; n];
            let b = Block::new("PRIVATE KEY", &der);
            assert_eq!(
                encode(std::slice::from_ref(&b)).len(),
                encoded_len(&b),
                "{n}"
            );
        }
    }

    #[test]
    fn headers_like_go() {
        let headers = vec![
            ("Zeta".to_owned(), "1".to_owned()),
            ("DEK-Info".to_owned(), "AES-128-CBC,00".to_owned()),
            ("Proc-Type".to_owned(), "4,ENCRYPTED".to_owned()),
        ];
        let b = Block {
            label: "RSA PRIVATE KEY",
            headers: &headers,
            der: &[1, 2, 3],
        };
        let out = encode(std::slice::from_ref(&b));
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\
             Zeta: 1\n\nAQID\n-----END RSA PRIVATE KEY-----\n"
        );
        assert_eq!(out.len(), encoded_len(&b));
    }

    #[test]
    fn splits_certificates_from_keys() {
        let text = "junk\n-----BEGIN PRIVATE KEY-----\r\nAQID\r\n-----END PRIVATE KEY-----\r\n\
                    -----BEGIN CERTIFICATE-----\nBAUG\n-----END CERTIFICATE-----\n\n\
                    -----BEGIN CERTIFICATE-----\nBwgJ\n-----END CERTIFICATE-----\n";
        let (crt, key) = split_cert_and_key(text, "o").unwrap();
        assert_eq!(
            std::str::from_utf8(&crt).unwrap(),
            "-----BEGIN CERTIFICATE-----\nBAUG\n-----END CERTIFICATE-----\n\
             -----BEGIN CERTIFICATE-----\nBwgJ\n-----END CERTIFICATE-----\n"
        );
        assert_eq!(
            std::str::from_utf8(&key).unwrap(),
            "-----BEGIN PRIVATE KEY-----\nAQID\n-----END PRIVATE KEY-----\n"
        );
        assert!(split_cert_and_key("-----BEGIN A-----\n!!\n-----END A-----\n", "o").is_err());
    }
}
