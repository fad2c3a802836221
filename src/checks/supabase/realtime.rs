//! Realtime, asked the way every supabase-js client connects: the WebSocket
//! opening handshake on `/realtime/v1/websocket`, closed at once.
//!
//! Realtime resolves the project and checks the key before it upgrades, so
//! `101 Switching Protocols` with the `Sec-WebSocket-Accept` that our
//! `Sec-WebSocket-Key` demands proves a WebSocket server of this project
//! answered — not a gateway page or a cache. Nothing is sent over the
//! socket but a close frame, so no WebSocket library is needed. (Realtime's
//! `api/ping` route is answered by local and self-hosted stacks only.)

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::header::{HeaderValue, CONNECTION, UPGRADE};
use reqwest::{Client, StatusCode, Version};
use tokio::io::AsyncWriteExt;

use super::http::status_verdict;
use crate::https::transport_failure;
use super::keys::with_key;
use crate::failure::Failure;
use crate::outcome::{Reason, Verdict};

/// RFC 6455's GUID, appended to the key before hashing.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The Phoenix protocol version supabase-js asks for.
const PHOENIX_VSN: &str = "1.0.0";

/// The close frame a client sends: FIN + close opcode, masked, status 1000
/// (normal closure) under a zero mask.
const CLOSE_FRAME: [u8; 8] = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8];

/// The `Sec-WebSocket-Accept` a server must answer to `key`.
fn accept_for(key: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{WEBSOCKET_GUID}").as_bytes(),
    );
    STANDARD.encode(digest.as_ref())
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64.
fn new_key() -> Result<String, Failure> {
    let mut nonce = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
        .map_err(|_| Failure::new(Reason::NotConfigured, "no randomness for a WebSocket key"))?;
    Ok(STANDARD.encode(nonce))
}

pub(super) async fn handshake(
    client: &Client,
    mut url: reqwest::Url,
    key: &str,
) -> Result<Verdict, Failure> {
    url.query_pairs_mut()
        .append_pair("apikey", key)
        .append_pair("vsn", PHOENIX_VSN);
    let websocket_key = new_key()?;
    let request = client
        .get(url)
        .version(Version::HTTP_11)
        .header(CONNECTION, HeaderValue::from_static("Upgrade"))
        .header(UPGRADE, HeaderValue::from_static("websocket"))
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", &websocket_key);
    let response = with_key(request, key)?
        .send()
        .await
        .map_err(|e| transport_failure(&e))?;
    let status = response.status();
    if status != StatusCode::SWITCHING_PROTOCOLS {
        let mut verdict = status_verdict(status, None);
        if status.is_success() {
            verdict.text = Some(format!("HTTP {} instead of 101 Switching Protocols", status.as_u16()));
        }
        return Ok(verdict);
    }
    let accepted = response
        .headers()
        .get("sec-websocket-accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == accept_for(&websocket_key));
    close(response);
    if accepted {
        Ok(Verdict::healthy())
    } else {
        Err(Failure::new(
            Reason::BadResponse,
            "101 without the Sec-WebSocket-Accept our key demands: not a WebSocket server",
        ))
    }
}

/// Closes the upgraded connection politely (a close frame, then FIN) in
/// the background: the answer is already known, and Realtime then logs a
/// normal closure rather than a dropped socket.
fn close(response: reqwest::Response) {
    tokio::spawn(async move {
        let closing = async {
            let mut socket = response.upgrade().await.ok()?;
            socket.write_all(&CLOSE_FRAME).await.ok()?;
            socket.shutdown().await.ok()
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), closing).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_matches_rfc_6455s_example() {
        assert_eq!(accept_for("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(new_key().unwrap().len(), 24);
    }
}
