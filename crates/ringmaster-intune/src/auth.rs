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
    /// The certificate's RSA private key (PEM) and its thumbprint in hex:
    /// SHA-256 (64 digits; signs PS256 with `x5t#S256`, the identity
    /// platform's current form) or SHA-1 (40 digits, as the portal shows
    /// it; signs the older RS256 with `x5t`, still accepted).
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

/// A certificate's thumbprint in hex (maybe with spaces or colons), as
/// bytes: 20 for SHA-1, 32 for SHA-256.
pub fn thumbprint_bytes(thumbprint: &str) -> Result<Vec<u8>, String> {
    let hex: String = thumbprint
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if !(hex.len() == 40 || hex.len() == 64) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(
            "the certificate thumbprint must be 64 hex digits (SHA-256) or 40 (SHA-1)".into(),
        );
    }
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

/// The header of a client assertion: PS256 naming the certificate by its
/// SHA-256 thumbprint when known, else RS256 by its SHA-1 one (Microsoft
/// identity platform, "Certificate credentials": header `alg`, `x5t#S256`).
pub fn assertion_header(thumbprint: &str) -> Result<jsonwebtoken::Header, String> {
    let bytes = thumbprint_bytes(thumbprint)?;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
    Ok(if bytes.len() == 32 {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
        h.x5t_s256 = Some(encoded);
        h
    } else {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        h.x5t = Some(encoded);
        h
    })
}

/// A client assertion: signed with the certificate's key, valid for 10
/// minutes.
fn assertion(
    key_pem: &Secret,
    thumbprint: &str,
    client_id: &str,
    aud: &str,
) -> Result<String, String> {
    let header = assertion_header(thumbprint)?;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.expose().as_bytes())
        .map_err(|_| "the certificate key is not an RSA private key in PEM form".to_string())?;
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
        assert!(k.form("c", "u").unwrap_err().contains("64 hex digits"));
    }

    #[test]
    fn a_sha256_thumbprint_signs_ps256_with_x5t_s256() {
        let key = include_str!("../tests/fixtures/test-app-key.pem");
        let public = include_str!("../tests/fixtures/test-app-key.pub.pem");
        let thumb = "3a1f009c4b2e7710aabbccddeeff00112233445566778899aabbccddeeff0011";
        let jwt = assertion(&Secret::new(key.into()), thumb, "app", "https://login/t").unwrap();
        let h = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(h.alg, jsonwebtoken::Algorithm::PS256);
        assert_eq!(
            h.x5t_s256.as_deref(),
            Some("Oh8AnEsudxCqu8zd7v8AESIzRFVmd4iZqrvM3e7_ABE")
        );
        let raw: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(jwt.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert!(raw.get("x5t#S256").is_some(), "{raw}");
        let dk = jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).unwrap();
        let verify = |alg| {
            let mut v = jsonwebtoken::Validation::new(alg);
            v.set_audience(&["https://login/t"]);
            v.set_issuer(&["app"]);
            jsonwebtoken::decode::<serde_json::Value>(&jwt, &dk, &v)
        };
        let claims = verify(jsonwebtoken::Algorithm::PS256).unwrap().claims;
        assert_eq!(claims["sub"], "app");
        assert!(claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap() <= 600);
        // PSS, not PKCS#1 v1.5: an RS256 check refuses it.
        assert!(verify(jsonwebtoken::Algorithm::RS256).is_err());
        // A wrong signature is refused.
        let mut bad = jwt.clone();
        bad.pop();
        bad.push(if jwt.ends_with('A') { 'B' } else { 'A' });
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::PS256);
        v.set_audience(&["https://login/t"]);
        assert!(jsonwebtoken::decode::<serde_json::Value>(&bad, &dk, &v).is_err());
    }
}
