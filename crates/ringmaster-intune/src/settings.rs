//! The connection settings `ringmaster connect intune` stores: the tenant,
//! the app and where its secret or certificate key is, never the secret.

use crate::auth::{Credential, Secret};
use crate::client::Endpoint;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// Directory (tenant) id or a verified domain.
    pub tenant: String,
    /// Application (client) id of the app registration.
    pub client_id: String,
    #[serde(default = "default_graph")]
    pub graph_url: String,
    #[serde(default = "default_login")]
    pub login_url: String,
    /// Environment variable holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// File holding the client secret (its first line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// PEM file with the certificate's RSA private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_key: Option<PathBuf>,
    /// The certificate's thumbprint: SHA-256 (PS256 assertions) or the
    /// SHA-1 one the portal shows (RS256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_thumbprint: Option<String>,
}

fn default_graph() -> String {
    "https://graph.microsoft.com/beta".into()
}

fn default_login() -> String {
    "https://login.microsoftonline.com".into()
}

/// Largest secret or key file read.
const MAX_SECRET_BYTES: u64 = 64 << 10;

fn read_small(p: &Path, what: &str) -> Result<String, String> {
    let meta = std::fs::metadata(p).map_err(|e| format!("{what} {}: {e}", p.display()))?;
    if meta.len() > MAX_SECRET_BYTES {
        return Err(format!("{what} {} is larger than 64 KiB", p.display()));
    }
    std::fs::read_to_string(p).map_err(|e| format!("{what} {}: {e}", p.display()))
}

impl Connection {
    pub fn new(tenant: &str, client_id: &str) -> Connection {
        Connection {
            tenant: tenant.trim().to_string(),
            client_id: client_id.trim().to_string(),
            graph_url: default_graph(),
            login_url: default_login(),
            secret_env: None,
            secret_file: None,
            certificate_key: None,
            certificate_thumbprint: None,
        }
    }

    /// Checks the settings say who and how, once.
    pub fn validate(&self) -> Result<(), String> {
        let ok_id = |s: &str| {
            !s.is_empty()
                && s.len() <= 256
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        };
        if !ok_id(&self.tenant) {
            return Err(format!(
                "tenant `{}` is not a tenant id or domain",
                self.tenant
            ));
        }
        if !ok_id(&self.client_id) {
            return Err(format!(
                "client id `{}` is not an application id",
                self.client_id
            ));
        }
        for (name, url) in [
            ("graph_url", &self.graph_url),
            ("login_url", &self.login_url),
        ] {
            if !(url.starts_with("https://")
                || url.starts_with("http://127.0.0.1")
                || url.starts_with("http://localhost"))
            {
                return Err(format!(
                    "{name} `{url}` must be https (plain http only on loopback, for tests)"
                ));
            }
        }
        let ways = usize::from(self.secret_env.is_some())
            + usize::from(self.secret_file.is_some())
            + usize::from(self.certificate_key.is_some());
        if ways != 1 {
            return Err(
                "give exactly one of a secret variable, a secret file or a certificate key".into(),
            );
        }
        if self.certificate_key.is_some() != self.certificate_thumbprint.is_some() {
            return Err("a certificate needs both its key file and its thumbprint".into());
        }
        if let Some(t) = &self.certificate_thumbprint {
            crate::auth::thumbprint_bytes(t)?;
        }
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Connection, String> {
        let text = read_small(path, "connection file")?;
        let c: Connection =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        c.validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(c)
    }

    pub fn save(&self, path: &Path) -> Result<(), String> {
        self.validate()?;
        let text = format!(
            "# ringmaster's Intune connection (ringmaster connect intune). No secret is kept here.\n{}",
            toml::to_string(self).map_err(|e| e.to_string())?
        );
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            tenant: self.tenant.clone(),
            client_id: self.client_id.clone(),
            graph_url: self.graph_url.clone(),
            login_url: self.login_url.clone(),
        }
    }

    /// The credential, read now from where the settings point.
    pub fn credential(&self) -> Result<Credential, String> {
        if let Some(var) = &self.secret_env {
            let v = std::env::var(var).map_err(|_| {
                format!("the environment variable {var} (the client secret) is not set")
            })?;
            return Ok(Credential::Secret(Secret::new(v.trim().to_string())));
        }
        if let Some(f) = &self.secret_file {
            let v = read_small(f, "secret file")?;
            let line = v.lines().next().unwrap_or("").trim().to_string();
            if line.is_empty() {
                return Err(format!("secret file {} is empty", f.display()));
            }
            return Ok(Credential::Secret(Secret::new(line)));
        }
        match (&self.certificate_key, &self.certificate_thumbprint) {
            (Some(k), Some(t)) => Ok(Credential::Certificate {
                key_pem: Secret::new(read_small(k, "certificate key")?),
                thumbprint: t.clone(),
            }),
            _ => Err("no secret or certificate is configured".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_refuse_a_secret_inline() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("intune.toml");
        let mut c = Connection::new(
            "contoso.onmicrosoft.com",
            "11111111-2222-3333-4444-555555555555",
        );
        assert!(c.save(&p).unwrap_err().contains("exactly one"));
        c.secret_env = Some("RM_TEST_SECRET_UNSET".into());
        c.save(&p).unwrap();
        assert_eq!(Connection::load(&p).unwrap(), c);
        assert!(c.credential().unwrap_err().contains("RM_TEST_SECRET_UNSET"));
        std::fs::write(
            &p,
            "tenant = \"t\"\nclient_id = \"c\"\nsecret = \"hunter2\"\n",
        )
        .unwrap();
        let e = Connection::load(&p).unwrap_err();
        assert!(e.contains("unknown field `secret`"), "{e}");
        let mut bad = Connection::new("t", "c");
        bad.secret_env = Some("X".into());
        bad.graph_url = "http://graph.example".into();
        assert!(bad.validate().unwrap_err().contains("must be https"));
        let mut cert = Connection::new("t", "c");
        cert.certificate_key = Some("app.pem".into());
        cert.certificate_thumbprint = Some("00".into());
        assert!(cert.validate().unwrap_err().contains("64 hex digits"));
        cert.certificate_thumbprint =
            Some("3A:1F:00:9C:4B:2E:77:10:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55".into());
        cert.validate().unwrap();
    }
}
