//! The app's credential: a client secret or a certificate (a signed client
//! assertion, RFC 7523, as the Microsoft identity platform asks). Neither
//! is ever printed: `Secret` shows as `[redacted]`.

use base64::Engine as _;

/// Text that must not reach a log, an error or a file.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone)]
pub enum Credential {
    Secret(Secret),
    /// The certificate's RSA private key (PEM) and its SHA-1 thumbprint
    /// (hex, as the portal shows it).
    Certificate {
        key_pem: Secret,
        thumbprint: String,
    },
}

impl Credential {
    /// The form fields that prove who the app is, for `token_url`.
    pub fn form(
        &self,
        client_id: &str,
        token_url: &str,
    ) -> Result<Vec<(&'static str, String)>, String> {
        match self {
            Credential::Secret(s) => Ok(vec![("client_secret", s.expose().to_string())]),
            Credential::Certificate {
                key_pem,
                thumbprint,
            } => Ok(vec![
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ),
                (
                    "client_assertion",
                    assertion(key_pem, thumbprint, client_id, token_url)?,
                ),
            ]),
        }
    }
}

/// A certificate's SHA-1 thumbprint as the portal shows it (hex, maybe
/// with spaces or colons), as bytes.
pub fn thumbprint_bytes(thumbprint: &str) -> Result<[u8; 20], String> {
    let hex: String = thumbprint
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("the certificate thumbprint must be 40 hex digits (SHA-1)".into());
    }
    let mut out = [0u8; 20];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// A client assertion: signed with the certificate's key, valid for 10
/// minutes, naming the certificate by its thumbprint (`x5t`).
fn assertion(
    key_pem: &Secret,
    thumbprint: &str,
    client_id: &str,
    aud: &str,
) -> Result<String, String> {
    let bytes = thumbprint_bytes(thumbprint)?;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.expose().as_bytes())
        .map_err(|_| "the certificate key is not an RSA private key in PEM form".to_string())?;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5t = Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let now = jiff::Timestamp::now().as_second();
    let jti = format!(
        "{:x}-{:x}",
        now,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let claims = serde_json::json!({
        "aud": aud, "iss": client_id, "sub": client_id, "jti": jti,
        "nbf": now, "iat": now, "exp": now + 600,
    });
    jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|e| format!("signing the client assertion: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let c = Credential::Secret(Secret::new("hunter2".into()));
        assert!(!format!("{c:?}").contains("hunter2"));
        let k = Credential::Certificate {
            key_pem: Secret::new("-----BEGIN PRIVATE KEY-----".into()),
            thumbprint: "00".into(),
        };
        assert!(!format!("{k:?}").contains("BEGIN"));
        assert!(k.form("c", "u").unwrap_err().contains("40 hex digits"));
    }
}
