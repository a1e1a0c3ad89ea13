//! `ringmaster token create`: a new API token, shown once.

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
}

/// `ringmaster token create`: a new API token, shown once.
pub fn token_create(a: TokenArgs) -> anyhow::Result<ExitCode> {
    let role = ringmaster_store::Role::parse(&a.role).ok_or_else(|| {
        crate::UserError(format!(
            "unknown role `{}`: viewer, reporter, help-desk, operator or admin",
            a.role
        ))
    })?;
    runtime()?.block_on(async {
        let store = ringmaster_store::open(&database_url(&a.at)).await?;
        let label = if a.label.is_empty() {
            format!("{} token", role.as_str())
        } else {
            a.label.clone()
        };
        let t = store
            .create_token(role, &label, jiff::Timestamp::now())
            .await?;
        println!("{t}");
        eprintln!(
            "{} {} token for '{label}'; it is shown only now",
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
