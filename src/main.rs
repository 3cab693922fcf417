//! The `consentry` command line: a thin layer over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use consentry::app::{self, App, Listeners};
use consentry::config::Config;
use consentry::tls::CertificateAuthority;

/// Consentry: a forward proxy for crawlers that honours creators' opt-outs.
#[derive(Debug, Parser)]
#[command(name = "consentry", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the proxy and admin listeners.
    Run {
        /// Config file; default ./consentry.toml if present, else the built-in defaults.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Fetch the policy for URL live and print the decision with every reason
    /// (exit 0 allowed, 3 blocked, 1 error).
    Check {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The crawler profile to judge the URL for.
        #[arg(long)]
        crawler: String,
        /// Print the decision as JSON (the block answer's shape) instead of text.
        #[arg(long)]
        json: bool,
        url: String,
    },
    /// List decisions from the audit log, newest first (a table, or JSON Lines with --json).
    Log {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// allow, block or would-block.
        #[arg(long)]
        verdict: Option<String>,
        #[arg(long)]
        crawler: Option<String>,
        #[arg(long)]
        host: Option<String>,
        /// A blocking source, e.g. robots.
        #[arg(long)]
        source: Option<String>,
        /// Epoch milliseconds, an RFC 3339 time, or a duration back from now (1h, 7d).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Print the CA certificate (PEM) crawlers must trust; creates the CA if missing.
    Ca {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Print the transparency log's verifier key instead (C2SP note key: name+id+key).
        #[arg(long)]
        tlog_key: bool,
    },
    /// Check transparency-log evidence offline: a creator's receipt, or that a newer checkpoint
    /// extends an older one (exit 0 verified, 1 not verified or error).
    Verify {
        #[command(subcommand)]
        command: VerifyCommand,
    },
    /// Work with config files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The creators' registry: import, list and remove objections.
    Registry {
        #[arg(short, long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: RegistryCommand,
    },
}

#[derive(Debug, Subcommand)]
enum RegistryCommand {
    /// Import a JSON Lines or CSV file (all or nothing: any invalid line imports nothing).
    Import { path: PathBuf },
    /// List entries (tab-separated, or JSON Lines with --json).
    List {
        /// Only entries for this domain and its subdomains.
        #[arg(long)]
        domain: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove one entry by id.
    Remove { id: String },
}

#[derive(Debug, Subcommand)]
enum VerifyCommand {
    /// Verify a receipt downloaded from /v1/domains/{domain}/receipt.
    Receipt {
        receipt: PathBuf,
        /// The log's verifier key (`consentry ca --tlog-key`, or GET /tlog/key), or a file holding it.
        #[arg(long)]
        key: String,
    },
    /// Verify that the checkpoint NEW extends the checkpoint OLD (no fork, no rewritten history).
    Consistency {
        #[arg(long)]
        key: String,
        /// A checkpoint saved earlier from GET /tlog/checkpoint.
        #[arg(long)]
        old: PathBuf,
        #[arg(long)]
        new: PathBuf,
        /// The log's public listener, e.g. http://127.0.0.1:9129, to fetch the proof from.
        #[arg(long)]
        from: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a config file; every problem is reported with file, key and reason.
    Check { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => with_config(config.as_deref(), run),
        Command::Ca { config, tlog_key: false } => with_config(config.as_deref(), print_ca),
        Command::Ca { config, tlog_key: true } => with_config(config.as_deref(), |config| {
            run_tool("consentry ca", async move { consentry::tlog::verify::verifier_key(&config).await })
        }),
        Command::Verify { command } => verify(command),
        Command::Log { config, verdict, crawler, host, source, since, limit, json } => {
            let query = consentry::logview::LogQuery { verdict, crawler, host, source, since, limit, json };
            with_config(config.as_deref(), move |config| print_log(config, &query))
        }
        Command::Check { config, crawler, json, url } => {
            with_config(config.as_deref(), move |config| check(config, &crawler, json, &url))
        }
        Command::Registry { config, command } => {
            with_config(config.as_deref(), move |config| registry(config, command))
        }
        Command::Config { command: ConfigCommand::Check { file } } => match Config::load(&file) {
            Ok(_) => {
                println!("{}: valid", file.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Loads `-c FILE`, else `./consentry.toml` if present, else the built-in config.
fn with_config(path: Option<&Path>, then: impl FnOnce(Config) -> ExitCode) -> ExitCode {
    let default_path = Path::new("consentry.toml");
    let path = path.or_else(|| default_path.exists().then_some(default_path));
    let config = match path {
        Some(path) => match Config::load(path) {
            Ok(config) => config,
            Err(errors) => {
                eprintln!("{errors}");
                return ExitCode::FAILURE;
            }
        },
        None => match Config::from_environment() {
            Ok(config) => config,
            Err(errors) => {
                eprintln!("{errors}");
                return ExitCode::FAILURE;
            }
        },
    };
    then(config)
}

/// Exit status of `consentry check` for a blocked URL.
const EXIT_BLOCKED: u8 = 3;

fn check(config: Config, crawler: &str, json: bool, url: &str) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("consentry check: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(consentry::check::check(config, crawler, url)) {
        Ok(report) => {
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            if report.blocked() { ExitCode::from(EXIT_BLOCKED) } else { ExitCode::SUCCESS }
        }
        Err(e) => {
            eprintln!("consentry check: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_log(config: Config, query: &consentry::logview::LogQuery) -> ExitCode {
    run_tool("consentry log", consentry::logview::render(&config, query))
}

fn registry(config: Config, command: RegistryCommand) -> ExitCode {
    use consentry::registry::cli;
    run_tool("consentry registry", async {
        match &command {
            RegistryCommand::Import { path } => cli::import(&config, path).await,
            RegistryCommand::List { domain, json } => cli::list(&config, domain.as_deref(), *json).await,
            RegistryCommand::Remove { id } => cli::remove(&config, id).await,
        }
    })
}

/// Runs a command's future on a single-threaded runtime: its text on stdout (exit 0), or its
/// error on stderr prefixed with `name` (exit 1).
fn run_tool<E: std::fmt::Display>(name: &str, work: impl Future<Output = Result<String, E>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_ca(config: Config) -> ExitCode {
    match CertificateAuthority::load_or_create(&config.data_dir) {
        Ok(ca) => {
            print!("{}", ca.certificate_pem());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("consentry ca: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> ExitCode {
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("consentry: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let listeners = Listeners::bind(&config).await?;
        let app = App::new(config).await?;
        let proxy_addr = listeners.proxy.local_addr().ok();
        let admin_addr = listeners.admin.local_addr().ok();
        let public_addr = listeners.public.local_addr().ok();
        if let (Some(proxy), Some(admin), Some(public)) = (proxy_addr, admin_addr, public_addr) {
            tracing::info!(%proxy, %admin, %public, "consentry listening");
            // One machine-readable line on stdout: scripts and tests wait for it.
            println!("consentry ready proxy={proxy} admin={admin} public={public}");
        }
        app.run(listeners, shutdown_signal()).await;
        Ok::<(), app::RunError>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("consentry: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `consentry verify`: prints what was checked; exit 0 only when every check passed.
fn verify(command: VerifyCommand) -> ExitCode {
    use consentry::tlog::verify::{consistency_report, receipt_report, render};
    let report = match command {
        VerifyCommand::Receipt { receipt, key } => receipt_report(&receipt, &key),
        VerifyCommand::Consistency { key, old, new, from } => {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime.block_on(consistency_report(&key, &old, &new, from.as_deref())),
                Err(e) => {
                    eprintln!("consentry verify: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    match report {
        Ok(report) => {
            print!("{}", render(&report));
            if report.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(e) => {
            eprintln!("consentry verify: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// Logs to stderr; `RUST_LOG` filters, `CONSENTRY_LOG_FORMAT=json` switches to JSON lines.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("CONSENTRY_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
