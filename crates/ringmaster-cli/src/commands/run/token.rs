//! `ringmaster token create|list|revoke`: API tokens. A token is shown once
//! when made; the database keeps only its hash.

use super::{Where, database_url, runtime};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub at: Where,
    /// viewer, reporter, help-desk, operator or admin.
    #[arg(long)]
    pub role: String,
    /// Who or what the token is for (shown in the audit log).
    #[arg(long, default_value = "")]
    pub label: String,
    /// How long the token lasts: `30d`, `12h`, `90d` (the default) or `never`.
    #[arg(long, default_value = "90d")]
    pub expires: String,
    /// Who makes it (kept in the audit log).
    #[arg(long, default_value = "cli")]
    pub actor: String,
}

#[derive(clap::Args)]
pub struct TokenListArgs {
    #[command(flatten)]
    pub at: Where,
}

#[derive(clap::Args)]
pub struct TokenRevokeArgs {
    /// The token's id, as `ringmaster token list` shows it.
    pub id: i64,
    #[command(flatten)]
    pub at: Where,
    /// Who revokes it (kept in the audit log).
    #[arg(long, default_value = "cli")]
    pub actor: String,
}

/// `--expires`: a number of days (`30d`) or hours (`12h`), or `never`.
fn lifetime(s: &str) -> Result<Option<jiff::SignedDuration>, crate::UserError> {
    let t = s.trim().to_ascii_lowercase();
    if t == "never" {
        return Ok(None);
    }
    let bad = || {
        crate::UserError(format!(
            "--expires `{s}`: give days (`30d`), hours (`12h`) or `never`"
        ))
    };
    let (n, hours) = if let Some(n) = t.strip_suffix('d') {
        (n, 24)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 1)
    } else {
        return Err(bad());
    };
    match n.parse::<i64>() {
        // Up to ten years: beyond that, say `never`.
        Ok(n) if n > 0 && n * hours <= 24 * 3653 => {
            Ok(Some(jiff::SignedDuration::from_hours(n * hours)))
        }
        _ => Err(bad()),
    }
}

/// `ringmaster token create`: a new API token, shown once.
pub fn token_create(a: TokenArgs) -> anyhow::Result<ExitCode> {
    let role = ringmaster_store::Role::parse(&a.role).ok_or_else(|| {
        crate::UserError(format!(
            "unknown role `{}`: viewer, reporter, help-desk, operator or admin",
            a.role
        ))
    })?;
    let life = lifetime(&a.expires)?;
    runtime()?.block_on(async {
        let store = ringmaster_store::open(&database_url(&a.at)).await?;
        let label = if a.label.is_empty() {
            format!("{} token", role.as_str())
        } else {
            a.label.clone()
        };
        let now = jiff::Timestamp::now();
        let expires = life.map(|d| now + d);
        let t = store
            .create_token_until(role, &label, now, expires, &a.actor)
            .await?;
        println!("{t}");
        let until = match expires {
            Some(e) => format!("valid until {}", e.strftime("%Y-%m-%d %H:%M UTC")),
            None => "valid until revoked".to_string(),
        };
        eprintln!(
            "{} {} token for '{label}', {until}; it is shown only now",
            if role.as_str().starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            },
            role.as_str()
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// `ringmaster token list`: every token without its secret.
pub fn token_list(a: TokenListArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let store = ringmaster_store::open(&database_url(&a.at)).await?;
        let tokens = store.tokens().await?;
        if a.at.json {
            println!("{}", serde_json::to_string_pretty(&tokens)?);
            return Ok(ExitCode::SUCCESS);
        }
        let now = jiff::Timestamp::now();
        let day = |t: Option<jiff::Timestamp>, none: &str| {
            t.map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| none.to_string())
        };
        println!(
            "{:>4}  {:<10} {:<17} {:<17} {:<17} {:<8} label",
            "id", "role", "created", "expires", "last used", "state"
        );
        for t in &tokens {
            let state = if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at.is_some_and(|e| e <= now) {
                "expired"
            } else {
                "valid"
            };
            println!(
                "{:>4}  {:<10} {:<17} {:<17} {:<17} {:<8} {}",
                t.id,
                t.role.as_str(),
                day(Some(t.created_at), ""),
                day(t.expires_at, "never"),
                day(t.last_used_at, "never"),
                state,
                t.label
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `ringmaster token revoke ID`: the token stops working at once.
pub fn token_revoke(a: TokenRevokeArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let store = ringmaster_store::open(&database_url(&a.at)).await?;
        if !store
            .revoke_token(a.id, &a.actor, jiff::Timestamp::now())
            .await?
        {
            return Err(crate::UserError(format!(
                "no token {} that is not already revoked: `ringmaster token list` shows them",
                a.id
            ))
            .into());
        }
        eprintln!("token {} revoked", a.id);
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::lifetime;

    #[test]
    fn lifetimes_read_days_hours_and_never() {
        let h = |n| Some(jiff::SignedDuration::from_hours(n));
        for (input, want) in [
            ("30d", h(720)),
            ("90D", h(2160)),
            ("12h", h(12)),
            ("never", None),
        ] {
            assert_eq!(lifetime(input).unwrap(), want, "{input}");
        }
        for bad in ["", "30", "0d", "-1d", "1w", "99999d", "d"] {
            assert!(lifetime(bad).is_err(), "{bad}");
        }
    }
}
