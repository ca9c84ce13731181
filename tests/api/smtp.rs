//! A small SMTP server inside the test binary: it speaks enough of RFC 5321 for lettre (EHLO,
//! MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT), keeps every message it accepts, and
//! can be "down" (421 at the greeting and to every transaction).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use mail_parser::{Message, MessageParser};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

#[derive(Default)]
pub struct SmtpState {
    pub received: Vec<Received>,
    pub down: bool,
    pub sessions: usize,
}

#[derive(Clone)]
pub struct SmtpSim {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<SmtpState>>,
}

impl SmtpSim {
    pub async fn start() -> SmtpSim {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state: Arc<Mutex<SmtpState>> = Arc::default();
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, st.clone()));
            }
        });
        SmtpSim { addr, state }
    }

    /// The `SMTP_URL` of this server (plain SMTP, no TLS).
    pub fn url(&self) -> String {
        format!("smtp://{}?tls=none", self.addr)
    }

    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Every accepted message, parsed.
    pub fn messages(&self) -> Vec<Message<'static>> {
        self.received()
            .iter()
            .map(|r| {
                MessageParser::default()
                    .parse(&r.data)
                    .expect("a parsable message")
                    .into_owned()
            })
            .collect()
    }
}

fn address(arg: &str) -> String {
    arg.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(a, _)| a.to_string())
        .unwrap_or_default()
}

async fn session(stream: TcpStream, state: Arc<Mutex<SmtpState>>) {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r);
    let down = {
        let mut s = state.lock().unwrap();
        s.sessions += 1;
        s.down
    };
    if down {
        let _ = w.write_all(b"421 4.3.2 Service not available\r\n").await;
        return;
    }
    if w.write_all(b"220 sim.local ESMTP test\r\n").await.is_err() {
        return;
    }
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply: &[u8] = if state.lock().unwrap().down && !upper.starts_with("QUIT") {
            let _ = w.write_all(b"421 4.3.2 Service not available\r\n").await;
            return;
        } else if upper.starts_with("EHLO") {
            b"250-sim.local\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") {
            b"250 sim.local\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&cmd);
            to.clear();
            b"250 2.1.0 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&cmd));
            b"250 2.1.5 OK\r\n"
        } else if upper == "DATA" {
            if w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await
                .is_err()
            {
                return;
            }
            let mut data = Vec::new();
            loop {
                let mut l = Vec::new();
                match lines.read_until(b'\n', &mut l).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if l == b".\r\n" || l == b".\n" {
                    break;
                }
                // Dot-unstuffing (RFC 5321 §4.5.2).
                if l.starts_with(b"..") {
                    l.remove(0);
                }
                data.extend_from_slice(&l);
            }
            state.lock().unwrap().received.push(Received {
                from: from.clone(),
                to: std::mem::take(&mut to),
                data,
            });
            b"250 2.0.0 OK queued\r\n"
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 2.0.0 OK\r\n"
        } else if upper == "QUIT" {
            let _ = w.write_all(b"221 2.0.0 Bye\r\n").await;
            return;
        } else {
            b"502 5.5.2 Command not recognized\r\n"
        };
        if w.write_all(reply).await.is_err() {
            return;
        }
    }
}
