//! Where mail goes: an SMTP server (`SMTP_URL`, parsed in `config::mail`) or, without one, `.eml`
//! files under `MAIL_DIR`. Built from the mail settings alone, never the whole configuration.

use std::path::PathBuf;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::mail::{SmtpSettings, TlsMode};

/// A message could not be handed over.
#[derive(Debug)]
pub struct SendError {
    pub message: String,
    /// The server refused it for good (5xx): sending it again cannot help.
    pub permanent: bool,
}

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

impl Transport {
    /// The SMTP transport of `smtp`, or `.eml` files under `dir` without one.
    pub fn new(smtp: Option<&SmtpSettings>, dir: PathBuf) -> Result<Transport, String> {
        let Some(s) = smtp else {
            return Ok(Transport::Files(dir));
        };
        let params = || {
            TlsParameters::new(s.host.clone()).map_err(|e| format!("SMTP TLS for {}: {e}", s.host))
        };
        let tls = match s.tls {
            TlsMode::Wrapper => Tls::Wrapper(params()?),
            TlsMode::StartTls => Tls::Required(params()?),
            TlsMode::Opportunistic => Tls::Opportunistic(params()?),
            TlsMode::None => Tls::None,
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.as_str())
            .port(s.port)
            .tls(tls)
            .timeout(Some(std::time::Duration::from_secs(20)));
        if let Some(user) = &s.user {
            b = b.credentials(Credentials::new(
                user.clone(),
                s.password
                    .as_ref()
                    .map(|p| p.expose_secret().to_string())
                    .unwrap_or_default(),
            ));
        }
        Ok(Transport::Smtp(b.build()))
    }

    /// Hands `msg` over; where it went (the server, or the file written).
    pub async fn send(&self, msg: Message) -> Result<String, SendError> {
        match self {
            Transport::Smtp(t) => match t.send(msg).await {
                Ok(_) => Ok("smtp".into()),
                Err(e) => Err(SendError {
                    message: format!("SMTP: {e}"),
                    permanent: e.is_permanent(),
                }),
            },
            Transport::Files(dir) => {
                let io = |e: std::io::Error| SendError {
                    message: format!("writing to {}: {e}", dir.display()),
                    permanent: false,
                };
                tokio::fs::create_dir_all(dir).await.map_err(io)?;
                let name = format!(
                    "{}-{}.eml",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                );
                let path = dir.join(name);
                tokio::fs::write(&path, msg.formatted()).await.map_err(io)?;
                Ok(path.display().to_string())
            }
        }
    }
}
