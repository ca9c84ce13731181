//! The mail section of the configuration: `SMTP_URL` parsed, the sender, and where messages go
//! without SMTP. The transport that uses it lives in `infra::mail`; this file only knows what the
//! operator wrote.

use secrecy::SecretString;

use super::reader::Reader;
use super::ConfigError;

#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `SMTP_URL`: where mail goes; `None` writes `.eml` files under `dir`.
    pub smtp: Option<SmtpSettings>,
    /// `EMAIL_FROM`: the sender of every message (`Name <address>`).
    pub from: String,
    /// `MAIL_DIR`: where messages are written without `SMTP_URL`.
    pub dir: std::path::PathBuf,
}

impl MailConfig {
    pub(super) fn parse(r: &Reader<'_>) -> Result<Self, ConfigError> {
        let from = r.text("EMAIL_FROM", "Dispensario <no-reply@dispensario.local>");
        from.parse::<lettre::message::Mailbox>().map_err(|e| {
            ConfigError(format!(
                "EMAIL_FROM must be an address or \"Name <address>\" (got {from:?}: {e})"
            ))
        })?;
        Ok(MailConfig {
            smtp: r
                .raw("SMTP_URL")
                .map(|u| SmtpSettings::parse(&u))
                .transpose()
                .map_err(ConfigError)?,
            from,
            dir: r.text("MAIL_DIR", "data/mail").into(),
        })
    }
}

/// How an SMTP connection is secured: `smtps://` (TLS from the start), `?tls=starttls` (the
/// default for `smtp://`: STARTTLS required), `?tls=opportunistic`, `?tls=none` (plain; for a
/// relay on the same host or a test server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Wrapper,
    StartTls,
    Opportunistic,
    None,
}

/// `SMTP_URL`, parsed: `smtp[s]://[user[:password]@]host[:port][?tls=starttls|opportunistic|none]`.
/// Its `Debug` never shows the password (a [`SecretString`], like every other secret).
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub user: Option<String>,
    pub password: Option<SecretString>,
}

impl SmtpSettings {
    /// Parses `SMTP_URL`; the message never repeats the password.
    pub fn parse(raw: &str) -> Result<SmtpSettings, String> {
        let url = url::Url::parse(raw.trim()).map_err(|e| {
            format!("SMTP_URL is not a URL ({e}); expected smtp://user:pass@host:587")
        })?;
        let mut tls = match url.scheme() {
            "smtp" => TlsMode::StartTls,
            "smtps" => TlsMode::Wrapper,
            other => {
                return Err(format!(
                    "SMTP_URL: scheme must be smtp or smtps, not {other:?}"
                ))
            }
        };
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("tls", "starttls" | "required") if tls != TlsMode::Wrapper => tls = TlsMode::StartTls,
                ("tls", "opportunistic") if tls != TlsMode::Wrapper => tls = TlsMode::Opportunistic,
                ("tls", "none") if tls != TlsMode::Wrapper => tls = TlsMode::None,
                ("tls", other) => {
                    return Err(format!(
                        "SMTP_URL: tls must be starttls, opportunistic or none with smtp:// (got {other:?})"
                    ))
                }
                (other, _) => return Err(format!("SMTP_URL: unknown parameter {other:?}")),
            }
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("SMTP_URL has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port().unwrap_or(match tls {
            TlsMode::Wrapper => 465,
            TlsMode::None => 25,
            _ => 587,
        });
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| "SMTP_URL: the user or password is not UTF-8".to_string())
        };
        let user = Some(url.username())
            .filter(|u| !u.is_empty())
            .map(decode)
            .transpose()?;
        let password = url
            .password()
            .map(decode)
            .transpose()?
            .map(SecretString::from);
        if password.is_some() && user.is_none() {
            return Err("SMTP_URL has a password without a user".into());
        }
        Ok(SmtpSettings {
            host,
            port,
            tls,
            user,
            password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn smtp_urls() {
        let s =
            SmtpSettings::parse("smtp://ana%40tienda.cl:p%40ss@mail.example.cl:2525?tls=starttls")
                .unwrap();
        assert_eq!(
            (
                s.host.as_str(),
                s.port,
                s.tls,
                s.user.as_deref(),
                s.password.as_ref().map(|p| p.expose_secret())
            ),
            (
                "mail.example.cl",
                2525,
                TlsMode::StartTls,
                Some("ana@tienda.cl"),
                Some("p@ss")
            )
        );
        assert!(!format!("{s:?}").contains("p@ss"));
        let s = SmtpSettings::parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!((s.port, s.tls, s.user), (2525, TlsMode::None, None));
        assert_eq!(
            SmtpSettings::parse("smtp://mail.example.cl").unwrap().port,
            587
        );
        let s = SmtpSettings::parse("smtps://u:p@mail.example.cl").unwrap();
        assert_eq!((s.port, s.tls), (465, TlsMode::Wrapper));
        for bad in [
            "mail.example.cl",
            "http://mail.example.cl",
            "smtp://mail.example.cl?tls=maybe",
            "smtp://mail.example.cl?pool=2",
            "smtp://:secret@mail.example.cl",
        ] {
            let e = SmtpSettings::parse(bad).unwrap_err();
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
