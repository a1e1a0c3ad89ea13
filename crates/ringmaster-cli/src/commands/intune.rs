//! `ringmaster connect intune` and `ringmaster import intune`: the stored
//! connection to a tenant, and a snapshot of it in the import format.

use ringmaster_intune::client::Graph;
use ringmaster_intune::connector::{Collection, Fleet, Intune, PolicyRef};
use ringmaster_intune::settings::Connection;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Where `connect` saves and the other commands look by default.
pub const DEFAULT_CONNECTION: &str = "intune.toml";

#[derive(clap::Subcommand)]
pub enum ConnectCmd {
    /// Save how to reach a tenant through Microsoft Graph (an app registration
    /// with client credentials); the secret itself stays in a variable or a file.
    #[command(
        after_help = "The app needs the Graph application permissions DeviceManagementConfiguration.ReadWrite.All,\nDeviceManagementManagedDevices.Read.All, Group.ReadWrite.All, GroupMember.ReadWrite.All,\nDevice.ReadWrite.All (adding devices to groups needs it) and User.Read.All. Signing in, connect\nreads the roles the token grants and says per feature what is missing.\n\nExamples:\n  export RINGMASTER_INTUNE_SECRET=…\n  ringmaster connect intune --tenant contoso.onmicrosoft.com --client-id 1111… --secret-env RINGMASTER_INTUNE_SECRET\n  ringmaster connect intune --tenant 7f… --client-id 1111… --certificate-key app.pem --thumbprint 3A1F…"
    )]
    Intune(ConnectArgs),
}

#[derive(clap::Args)]
pub struct ConnectArgs {
    /// Directory (tenant) id or verified domain.
    #[arg(long)]
    pub tenant: String,
    /// Application (client) id of the app registration.
    #[arg(long)]
    pub client_id: String,
    /// Environment variable that holds the client secret.
    #[arg(long, value_name = "VAR")]
    pub secret_env: Option<String>,
    /// File whose first line is the client secret.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// PEM file with the certificate's RSA private key (instead of a secret).
    #[arg(long, value_name = "FILE")]
    pub certificate_key: Option<PathBuf>,
    /// The certificate's SHA-256 thumbprint (`openssl x509 -noout -fingerprint
    /// -sha256`): assertions are signed PS256 with `x5t#S256`. The SHA-1
    /// thumbprint the portal shows also works (the older RS256 form).
    #[arg(long)]
    pub thumbprint: Option<String>,
    /// Graph's base URL with its version.
    #[arg(long, default_value = "https://graph.microsoft.com/beta")]
    pub graph_url: String,
    /// The identity platform's URL.
    #[arg(long, default_value = "https://login.microsoftonline.com")]
    pub login_url: String,
    /// Where to save the connection.
    #[arg(long, default_value = DEFAULT_CONNECTION)]
    pub out: PathBuf,
    /// Save without signing in to check it.
    #[arg(long)]
    pub no_check: bool,
}

#[derive(clap::Subcommand)]
pub enum ImportCmd {
    /// Read the tenant (users, groups and members, managed and Entra devices,
    /// filters, policies with settings and assignments) into a folder that
    /// `--org` and the plan's sources read like any export.
    #[command(
        after_help = "Example:\n  ringmaster import intune snapshot/ && ringmaster conflicts --org snapshot/"
    )]
    Intune(ImportArgs),
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The folder to write (made if missing; its snapshot files are replaced).
    pub dir: PathBuf,
    /// The connection saved by `ringmaster connect intune`.
    #[arg(long, default_value = DEFAULT_CONNECTION, env = "RINGMASTER_INTUNE")]
    pub connection: PathBuf,
}

/// The Graph client for a saved connection.
pub fn graph(path: &std::path::Path) -> anyhow::Result<Graph> {
    let c = Connection::load(path).map_err(|e| {
        crate::UserError(format!(
            "the Intune connection: {e}; `ringmaster connect intune` saves one"
        ))
    })?;
    let cred = c.credential().map_err(crate::UserError)?;
    Ok(Graph::new(c.endpoint(), cred)?)
}

pub fn connect(cmd: ConnectCmd) -> anyhow::Result<ExitCode> {
    let ConnectCmd::Intune(a) = cmd;
    let mut c = Connection::new(&a.tenant, &a.client_id);
    c.graph_url = a.graph_url.trim_end_matches('/').to_string();
    c.login_url = a.login_url.trim_end_matches('/').to_string();
    c.secret_env = a.secret_env;
    c.secret_file = a.secret_file;
    c.certificate_key = a.certificate_key;
    c.certificate_thumbprint = a.thumbprint;
    c.validate().map_err(crate::UserError)?;
    if !a.no_check {
        let cred = c.credential().map_err(crate::UserError)?;
        let g = Graph::new(c.endpoint(), cred)?;
        super::run::threaded_runtime()?.block_on(async {
            let roles = g
                .granted_roles()
                .await
                .map_err(|e| crate::UserError(format!("checking the connection: {e}")))?;
            println!("signed in to {} as app {}", c.tenant, c.client_id);
            print_features(roles.as_ref());
            g.get("/deviceManagement/managedDevices?$top=1&$select=id")
                .await
                .map_err(|e| crate::UserError(format!("checking the connection: {e}")))?;
            anyhow::Ok(())
        })?;
        println!("managed devices can be read");
    }
    c.save(&a.out).map_err(crate::UserError)?;
    println!("saved {} (no secret in it)", a.out.display());
    Ok(ExitCode::SUCCESS)
}

/// What the token's application roles allow, per feature.
fn print_features(roles: Option<&std::collections::BTreeSet<String>>) {
    use ringmaster_intune::permissions::{FEATURES, missing};
    let Some(granted) = roles else {
        println!(
            "  the access token does not show its roles; docs/intune.md lists what each feature needs"
        );
        return;
    };
    let mut lacking = false;
    for f in FEATURES {
        let m = missing(f.needs, granted);
        lacking |= !m.is_empty();
        let said = if m.is_empty() {
            "ok".to_string()
        } else {
            format!("missing {}", m.join(", "))
        };
        println!("  {:<31} {said}", f.name);
    }
    if lacking {
        println!(
            "  add the missing application permissions to the app registration and grant admin consent"
        );
    }
}

pub fn import(cmd: ImportCmd) -> anyhow::Result<ExitCode> {
    let ImportCmd::Intune(a) = cmd;
    let g = graph(&a.connection)?;
    let began = std::time::Instant::now();
    let w = super::run::threaded_runtime()?
        .block_on(ringmaster_intune::snapshot::read_tenant(&g, &a.dir))
        .map_err(|e| crate::UserError(format!("reading the tenant: {e}")))?;
    for (f, n) in &w.files {
        println!("  {:<32} {n:>9} records", f);
    }
    println!(
        "read {} in {:.1} s: {} requests to Graph, {} throttled and waited out",
        a.dir.display(),
        began.elapsed().as_secs_f64(),
        w.requests,
        w.throttled
    );
    // The snapshot must load as an import does; say so now, not at plan time.
    let loaded = super::import(std::slice::from_ref(&a.dir))
        .map_err(|e| crate::UserError(format!("the snapshot does not import: {e}")))?;
    println!(
        "imports as {} users, {} devices, {} groups, {} policies",
        loaded.org.users.rows,
        loaded.org.devices.rows,
        loaded.org.groups.len(),
        loaded.org.policies.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// The engine's connector for a plan: the plan's new policies are assigned
/// to each wave's group; existing policies that set the same settings are
/// the ones a pilot is isolated from.
pub fn connector(
    connection: &std::path::Path,
    rollout: &str,
    loaded: &super::plan::Loaded,
) -> anyhow::Result<Intune> {
    let g = graph(connection)?;
    let org = &loaded.org;
    let of = |id: &str| {
        org.policies.iter().find(|p| p.id == id).map(|p| PolicyRef {
            id: p.id.clone(),
            collection: Collection::of_type(Some(&p.odata_type)),
        })
    };
    let new: Vec<PolicyRef> = loaded
        .plan
        .scope
        .new_policies
        .iter()
        .filter_map(|p| of(&p.id))
        .collect();
    let mut overlapping: Vec<PolicyRef> = Vec::new();
    for f in &loaded.plan.conflicts.findings {
        for v in &f.values {
            if new.iter().all(|n| n.id != v.policy_id)
                && overlapping.iter().all(|o| o.id != v.policy_id)
                && let Some(r) = of(&v.policy_id)
            {
                overlapping.push(r);
            }
        }
    }
    let tags = loaded
        .plan
        .scope_tags
        .iter()
        .map(|t| (t.name.clone(), t.id.clone()))
        .collect();
    Ok(Intune::new(Arc::new(g), rollout, new, overlapping, Fleet::of(org)).with_scope_tags(tags))
}
