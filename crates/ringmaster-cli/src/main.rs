//! `ringmaster`: plans and explains phased rollouts of Intune policies.
//! Each subcommand lives in `commands/<name>.rs` and exposes `run`.

mod commands;
mod progress;

use clap::{Parser, Subcommand};

// Imports allocate on parsing threads and free on the applying thread;
// mimalloc handles that pattern far better than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use ringmaster_core::wave::{Event, Reason};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ringmaster",
    version,
    about = "Plan, check and explain phased rollouts of Intune device policies"
)]
struct Cli {
    /// Log lines as text or as JSON objects (one per line).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "RINGMASTER_LOG_FORMAT"
    )]
    log_format: LogFormat,
    /// Import the exports every time: neither read nor write the import snapshot.
    #[arg(long, global = true, env = "RINGMASTER_NO_SNAPSHOT")]
    no_snapshot: bool,
    /// Folder of ringmaster's cache; import snapshots go to its `snapshots/`
    /// [default: $XDG_CACHE_HOME/ringmaster, else ~/.cache/ringmaster].
    #[arg(long, global = true, value_name = "DIR", env = "RINGMASTER_CACHE_DIR")]
    cache_dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

/// Structured logs to stderr, or to `file` (the demo's, so they stay out of
/// its tour); `RUST_LOG` chooses what (default: info, and for `bench` only
/// warnings: its served instance would log every request and its bulk
/// statements are slow by design). Colours only on a terminal.
fn init_logs(
    format: LogFormat,
    default: &str,
    file: Option<&std::path::Path>,
) -> Result<(), String> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let b = tracing_subscriber::fmt().with_env_filter(filter);
    let writer = match file {
        None => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
        Some(path) => {
            let open = || {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::File::create(path)
            };
            let f = open().map_err(|e| format!("writing the log file {}: {e}", path.display()))?;
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::sync::Mutex::new(f))
        }
    };
    let b = b
        .with_ansi(file.is_none() && std::io::stderr().is_terminal())
        .with_writer(writer);
    match format {
        LogFormat::Json => b.json().init(),
        LogFormat::Text => b.with_target(false).init(),
    }
    Ok(())
}

#[derive(Subcommand)]
enum Command {
    /// A tour on a generated organization: import, rules, explain, conflicts, plan, a simulated run.
    #[command(after_help = "Example:\n  ringmaster demo --devices 20000")]
    Demo(commands::demo::Args),
    /// Setting conflicts and not-applicable devices where policy targets meet.
    #[command(
        after_help = "Exit 0 when clean, 1 when conflicts are found, 2 on bad input.\n\nExamples:\n  ringmaster conflicts --org exports/\n  ringmaster conflicts --org fleet/ --proposed baseline/ --assume-all-devices --format markdown\n  ringmaster conflicts --org exports/ --isolated \"Win - LAPS\" --format json"
    )]
    Conflicts(commands::conflicts::Args),
    /// Why policies do or do not reach a device, or what is assigned to a group.
    #[command(
        after_help = "Examples:\n  ringmaster explain --org exports/ --device PC-0042\n  ringmaster explain --org exports/ --device PC-0042 --policy \"Win - OIB - ES - Windows LAPS\" --json\n  ringmaster explain --org exports/ --group \"Sales devices\""
    )]
    Explain(commands::explain::Args),
    /// Check or evaluate an Entra, Intune filter or Conditional Access rule.
    #[command(subcommand)]
    Rules(commands::rules::Cmd),
    /// Summarise an imported organization and report what is wrong in it.
    #[command(after_help = "Example:\n  ringmaster org --org exports/")]
    Org(commands::org::Args),
    /// Write a realistic synthetic organization in Graph export format.
    #[command(after_help = "Example:\n  ringmaster gen --devices 20000 --seed 7 demo-org/")]
    Gen(commands::gen_org::Args),
    /// Compute the rollout plan in ringmaster.toml: phases, waves, dates, pilot, goals, messages.
    #[command(
        after_help = "Exit 0 when the plan is ready, 1 when its checks found errors, 2 on bad input.\n\nExamples:\n  ringmaster plan\n  ringmaster plan rollout/ringmaster.toml --format html --out plan.html\n  ringmaster plan --format markdown --out plan.md --comms messages/\n  ringmaster plan --schema > ringmaster.schema.json"
    )]
    Plan(commands::plan::Args),
    /// Drive the rollout of ringmaster.toml (today: on the simulated fleet).
    #[command(
        after_help = "Exit 0 when every wave passed, 1 when it waits for an operator or stopped, 2 on bad input.\n\nExamples:\n  ringmaster run --simulate\n  ringmaster run --simulate --speed 86400 --fault wave=4,error=0.3"
    )]
    Run(commands::run::RunArgs),
    /// A first ringmaster.toml from an import: targeted groups that cover the fleet, the usual phases.
    #[command(
        after_help = "Exit 0 when the written plan plans, 1 when it needs more (it says what), 2 on bad input.\n\nExamples:\n  ringmaster init --org exports/ --new baseline/ --name \"Windows baseline 2027\" --time-zone Europe/Amsterdam\n  ringmaster init --org exports/ --policy \"Win - OIB - ES - Windows LAPS\" --out rollouts/laps.toml"
    )]
    Init(commands::init::Args),
    /// Waves of the rollout and where each stands; with --run-state, the service levels and drift.
    #[command(
        after_help = "Examples:\n  ringmaster status\n  ringmaster status rollout/ringmaster.toml --json\n  ringmaster status --run-state"
    )]
    Status(commands::run::StatusArgs),
    /// Every transition of the rollout, with who and why.
    #[command(
        after_help = "Examples:\n  ringmaster history\n  ringmaster history rollout/ringmaster.toml --json"
    )]
    History(commands::run::Where),
    /// Read device states, help-desk tickets or pilot feedback from a file.
    #[command(
        after_help = "Exit 0 when every record was kept, 1 when some were rejected (the rest are kept), 2 on bad input.\n\nExamples:\n  ringmaster ingest status device-status.csv --policy \"Win - Security Baseline 2027\"\n  ringmaster ingest tickets incidents.json --hint bitlocker --hint password\n  ringmaster ingest feedback answers.csv"
    )]
    Ingest(commands::run::IngestArgs),
    /// Save how to reach an MDM (Microsoft Intune through Graph).
    #[command(subcommand)]
    Connect(commands::intune::ConnectCmd),
    /// Read an MDM tenant into a folder of exports (Microsoft Intune through Graph).
    #[command(subcommand)]
    Import(commands::intune::ImportCmd),
    /// Serve the HTTP API; the scheduler drives the rollout inside the server.
    #[command(after_help = "Example:\n  ringmaster serve --simulate --listen 127.0.0.1:8080")]
    Serve(commands::run::ServeArgs),
    /// API tokens: `ringmaster token create --role operator --label \"ops team\"`.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Approve a wave that waits for approval.
    #[command(
        after_help = "Example:\n  ringmaster approve --wave 3 --actor \"jane (change 4711)\""
    )]
    Approve(commands::run::WaveArgs),
    /// Promote a wave that passed and waits for promotion.
    #[command(
        after_help = "Example:\n  ringmaster promote --wave 3 --actor \"jane (change 4711)\""
    )]
    Promote(commands::run::WaveArgs),
    /// Pause a wave.
    #[command(
        after_help = "Example:\n  ringmaster pause --wave 3 --for 2d --actor \"jane (change 4711)\""
    )]
    Pause(commands::run::WaveArgs),
    /// Resume a wave an operator paused.
    #[command(after_help = "Example:\n  ringmaster resume --wave 3 --actor \"jane (change 4711)\"")]
    Resume(commands::run::WaveArgs),
    /// Abort a wave (what was applied stays until rolled back).
    #[command(after_help = "Example:\n  ringmaster abort --wave 3 --actor \"jane (change 4711)\"")]
    Abort(commands::run::WaveArgs),
    /// Roll a wave back: remove its assignment.
    #[command(
        after_help = "Example:\n  ringmaster rollback --wave 3 --actor \"jane (change 4711)\""
    )]
    Rollback(commands::run::WaveArgs),
    /// Retry a failed or rolled-back wave.
    #[command(after_help = "Example:\n  ringmaster retry --wave 3 --actor \"jane (change 4711)\"")]
    Retry(commands::run::WaveArgs),
    /// Release a stratum a wave's gates held: its devices may join the
    /// waves that start from now on.
    #[command(
        after_help = "Example:\n  ringmaster release --wave 4 --stratum \"model Latitude 7440\" --actor \"jane (fixed in BIOS 1.20)\""
    )]
    Release(commands::run::ReleaseArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Example:\n  ringmaster completions bash > /etc/bash_completion.d/ringmaster"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Measure speed and memory (targeting, conflicts, pilot) on a generated organization.
    #[command(after_help = "Example:\n  ringmaster bench targeting --devices 1000000")]
    Bench(commands::bench::Args),
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Make a token for a role; it is printed once and kept only as a hash.
    #[command(
        after_help = "Examples:\n  ringmaster token create --role operator --label jane\n  ringmaster token create --role reporter --label \"status export job\""
    )]
    Create(commands::run::TokenArgs),
    /// List tokens: id, role, label, created, expires, last used (never the secret).
    #[command(after_help = "Example:\n  ringmaster token list")]
    List(commands::run::TokenListArgs),
    /// Revoke a token by its id: it is refused from then on.
    #[command(after_help = "Example:\n  ringmaster token revoke 3 --actor jane")]
    Revoke(commands::run::TokenRevokeArgs),
}

/// A failure the user caused (bad input); exits 2 after its message.
#[derive(Debug)]
pub struct UserError(pub String);

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_logs = match cli.command {
        Command::Bench(_) => "warn,sqlx=error",
        _ => "info",
    };
    let log_file = match &cli.command {
        Command::Demo(a) => Some(a.log_file()),
        _ => None,
    };
    if let Err(e) = init_logs(cli.log_format, default_logs, log_file.as_deref()) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    quiet_on_closed_pipe();
    commands::use_snapshots(!cli.no_snapshot, cli.cache_dir);
    let result = match cli.command {
        Command::Conflicts(a) => commands::conflicts::run(a),
        Command::Demo(a) => commands::demo::run(a),
        Command::Explain(a) => commands::explain::run(a),
        Command::Rules(c) => commands::rules::run(c),
        Command::Org(a) => commands::org::run(a),
        Command::Gen(a) => commands::gen_org::run(a),
        Command::Bench(a) => commands::bench::run(a),
        Command::Plan(a) => commands::plan::run(a),
        Command::Run(a) => commands::run::run(a),
        Command::Init(a) => commands::init::run(a),
        Command::Status(a) if a.run_state => commands::run::run_state(a.at),
        Command::Status(a) => commands::run::status(a.at),
        Command::Ingest(a) => commands::run::ingest(a),
        Command::Serve(a) => commands::run::serve(a),
        Command::Connect(c) => commands::intune::connect(c),
        Command::Import(c) => commands::intune::import(c),
        Command::Token(TokenCmd::Create(a)) => commands::run::token_create(a),
        Command::Token(TokenCmd::List(a)) => commands::run::token_list(a),
        Command::Token(TokenCmd::Revoke(a)) => commands::run::token_revoke(a),
        Command::History(a) => commands::run::history(a),
        Command::Approve(a) => commands::run::operate(a, Event::Approve),
        Command::Promote(a) => commands::run::operate(a, Event::Promote),
        Command::Pause(a) => commands::run::operate(a, Event::Pause),
        Command::Resume(a) => commands::run::operate(a, Event::Resume(Reason::Manual)),
        Command::Abort(a) => commands::run::operate(a, Event::Abort),
        Command::Rollback(a) => commands::run::operate(a, Event::Rollback),
        Command::Retry(a) => commands::run::operate(a, Event::Retry),
        Command::Release(a) => commands::run::release(a),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "ringmaster",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            match e.downcast_ref::<UserError>() {
                // Already rendered with its place in a file.
                Some(u) if u.0.starts_with("error:") => eprintln!("{}", u.0.trim_end()),
                _ => eprintln!("error: {e:#}"),
            }
            ExitCode::from(2)
        }
    }
}

/// `ringmaster history | head` closes the pipe early; `println!` then
/// panics. A reader that stopped reading is not an error: end quietly with
/// the shell's code for SIGPIPE (128 + 13), as other Unix tools do. A
/// damaged snapshot part ends the command with its message and code 2.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.starts_with("failed printing to std") && text.contains("Broken pipe") {
            std::process::exit(141);
        }
        // A snapshot part that failed its checksum: bad input, not a fault.
        // Several threads may meet it at once; one says so.
        if text.starts_with(ringmaster_core::lazy::DAMAGED) {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| eprintln!("error: {text}"));
            std::process::exit(2);
        }
        default(info);
    }));
}
