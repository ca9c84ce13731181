use std::future::IntoFuture;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dispensary::clock::Clock;
use dispensary::config::{AppEnv, Config, LogFormat};

#[derive(Parser)]
#[command(
    name = "dispensary",
    version,
    about = "Dispensary commerce API (GraphQL + REST)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (default). Applies pending migrations first unless AUTO_MIGRATE=false.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load the idempotent demo seed (admin from SEED_ADMIN_EMAIL / SEED_ADMIN_PASSWORD).
    Seed,
    /// Print the GraphQL schema (SDL) to stdout.
    PrintSchema,
    /// Print the OpenAPI document (YAML) to stdout.
    PrintOpenapi,
    /// Report stored rows that break a rule the API now enforces on input (an email that is not
    /// a bare address, ...): one line each, nothing rewritten. Exit status 1 when any is found.
    CheckData,
    /// Copy the files under UPLOAD_DIR into the bucket STORAGE_URL names (idempotent and
    /// resumable: a file already there with the same size is skipped). Prints the counts; exit
    /// status 1 when any file could not be copied.
    MigrateFiles,
    /// Ask the providers about payments still initiated or pending, and apply their answers.
    Reconcile {
        /// Only this provider (webpay, flow, mp).
        #[arg(long)]
        provider: Option<String>,
        /// How far back to look: 30m, 12h, 7d (default 7d).
        #[arg(long, default_value = "7d")]
        since: String,
        /// Leave payments younger than this alone (the buyer may still be paying): 0s, 90s, 5m.
        #[arg(long, default_value = "5m")]
        min_age: String,
    },
}

/// Logs go to stderr through a non-blocking writer: requests only format their line and queue it;
/// a worker thread writes the queue out through a buffer, flushed whenever the queue runs dry, so
/// a burst of lines costs a few writes and no request waits on the log's file or pipe. When the
/// queue is full (128,000 lines behind) new lines are dropped rather than stalling requests. The
/// returned guard flushes what is queued when dropped: keep it until the process ends.
fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .thread_name("log-writer")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
    guard
}

/// mimalloc rather than glibc's allocator: a catalogue page allocates thousands of small,
/// short-lived values (GraphQL values, JSON strings), and glibc's malloc/free/consolidate were
/// about a fifth of the server's CPU on the uncached list (benches/load.sh with BENCH_PERF).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::PrintSchema) => {
            print!("{}", dispensary::graphql::sdl());
            return ExitCode::SUCCESS;
        }
        Some(Command::PrintOpenapi) => {
            print!("{}", dispensary::rest::openapi::yaml());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let _ = dotenvy::dotenv();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dispensary: {e}");
            return ExitCode::from(2);
        }
    };
    // Dropped last, at the end of `main`: flushes the log lines still queued.
    let _log_guard = init_logging(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dispensary: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Migrate => migrate(config).await,
            Command::Seed => seed(config).await,
            Command::CheckData => check_data(config).await,
            Command::MigrateFiles => migrate_files(config).await,
            Command::Reconcile {
                provider,
                since,
                min_age,
            } => reconcile(config, provider, &since, &min_age).await,
            _ => serve(config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "fatal");
            eprintln!("dispensary: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One connection to the configured database, for the commands that need no more.
async fn connect_one(config: &Config) -> anyhow::Result<dispensary::db::Db> {
    let metrics = dispensary::metrics::Metrics::new();
    let db = dispensary::db::connect(
        &config.database.url,
        1,
        config.database.plan_cache_mode,
        &metrics,
    )
    .await?;
    Ok(db)
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let db = connect_one(&config).await?;
    dispensary::db::migrate(&db).await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn seed(mut config: Config) -> anyhow::Result<()> {
    config.database.auto_migrate = true;
    let (_, state) = dispensary::build_app(config, Clock::default()).await?;
    let report = dispensary::seed::run(&state).await?;
    tracing::info!(
        created = report.created,
        updated = report.updated,
        unchanged = report.unchanged,
        "seed loaded"
    );
    Ok(())
}

async fn check_data(config: Config) -> anyhow::Result<()> {
    let db = connect_one(&config).await?;
    let findings = dispensary::services::accounts::data_check::run(&db)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    for f in &findings {
        println!("{f}");
    }
    println!("check-data: {} finding(s)", findings.len());
    if findings.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} stored value(s) break today's input rules",
            findings.len()
        )
    }
}

async fn migrate_files(config: Config) -> anyhow::Result<()> {
    use dispensary::infra::storage::Storage;
    if config.storage.s3.is_none() {
        anyhow::bail!("STORAGE_URL is not set: the files already live in UPLOAD_DIR");
    }
    let from = &config.storage.upload_dir;
    if !from.is_dir() {
        anyhow::bail!("UPLOAD_DIR {} is not a directory", from.display());
    }
    let source = Storage::local(from).map_err(|e| anyhow::anyhow!("UPLOAD_DIR: {e}"))?;
    let bucket = Storage::new(&config.storage).map_err(|e| anyhow::anyhow!("STORAGE_URL: {e}"))?;
    let report = source
        .copy_into(&bucket)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("migrate-files: {report}");
    if report.failed > 0 {
        anyhow::bail!(
            "{} file(s) could not be copied; run migrate-files again",
            report.failed
        );
    }
    Ok(())
}

async fn reconcile(
    config: Config,
    provider: Option<String>,
    since: &str,
    min_age: &str,
) -> anyhow::Result<()> {
    use dispensary::services::payments::reconcile;
    let since = reconcile::parse_duration(since).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let min_age =
        reconcile::parse_duration(min_age).map_err(|e| anyhow::anyhow!("--min-age: {e}"))?;
    let (_, state) = dispensary::build_app(config, Clock::default()).await?;
    let scope = reconcile::Scope {
        provider,
        since,
        min_age,
    };
    let report = reconcile::run(&state, &scope)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    println!(
        "reconciliation of payments still initiated or pending (provider {}, since {}s ago, min age {}s)",
        scope.provider.as_deref().unwrap_or("any"),
        scope.since.num_seconds(),
        scope.min_age.num_seconds()
    );
    println!("{report}");
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = config.http.addr;
    let auto_seed = config.app_env == AppEnv::Development;
    let (router, state) = dispensary::build_app(config, Clock::default()).await?;
    if auto_seed
        && state.config.database.auto_migrate
        && !dispensary::seed::has_users(&state).await?
    {
        let report = dispensary::seed::run(&state).await?;
        tracing::info!(
            created = report.created,
            "empty development database: demo seed loaded"
        );
    }
    // Other processes' catalogue writes (replicas, the CLI) drop this process's response cache.
    dispensary::infra::freshness::watch(
        state.db.clone(),
        state.catalogue.clone(),
        std::time::Duration::from_millis(500),
    );
    // Background jobs (JOBS=off leaves them to other processes on the same database).
    let jobs = state.config.jobs.enabled.then(|| {
        use dispensary::services::platform::jobs;
        jobs::Runner::new(
            state.clone(),
            state.jobs(),
            jobs::RunnerOptions::from_config(&state.config),
        )
        .start()
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (APP_ADDR): {e}"))?;
    tracing::info!(%addr, "listening");
    let grace = std::time::Duration::from_secs(state.config.http.shutdown_grace_seconds);
    let delay = std::time::Duration::from_secs(state.config.http.shutdown_delay_seconds);
    // SIGTERM: not ready at once (the balancer's health check takes this process out), still
    // accepting for `delay`, then no new connections while requests under way finish.
    let (signalled_tx, signalled) = tokio::sync::oneshot::channel();
    let draining = state.clone();
    let stop_accepting = async move {
        shutdown_signal().await;
        draining.begin_draining();
        let _ = signalled_tx.send(std::time::Instant::now());
        tokio::time::sleep(delay).await;
        tracing::info!("no longer accepting connections; finishing the requests under way");
    };
    let mut server = tokio::spawn(
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop_accepting)
        .into_future(),
    );
    let deadline = tokio::select! {
        ended = &mut server => {
            ended??;
            return Ok(());
        }
        at = signalled => at.unwrap_or_else(|_| std::time::Instant::now()) + grace,
    };
    let left = || deadline.saturating_duration_since(std::time::Instant::now());
    match tokio::time::timeout(left(), &mut server).await {
        Ok(ended) => ended??,
        Err(_) => {
            tracing::warn!(
                grace_seconds = grace.as_secs(),
                "requests still under way at the end of SHUTDOWN_GRACE_SECONDS: closing them"
            );
            server.abort();
        }
    }
    if let Some(jobs) = jobs {
        // Running attempts get what is left of the grace (at least a second); what is still held
        // then goes back to the queue for another process.
        jobs.shutdown(left().max(std::time::Duration::from_secs(1)))
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    }
    tracing::info!("shut down");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
