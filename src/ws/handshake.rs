//! The opening handshake: is this request a WebSocket upgrade, may it be
//! (origin, subprotocol), and the response that accepts it.
//!
//! * HTTP/1.1 (RFC 6455 §4.2): `GET` with `Upgrade: websocket`,
//!   `Connection: upgrade`, `Sec-WebSocket-Version: 13` and a 16-byte
//!   base64 `Sec-WebSocket-Key`; answered `101 Switching Protocols` with
//!   `Sec-WebSocket-Accept`.
//! * HTTP/2 (RFC 8441): an extended `CONNECT` with `:protocol websocket`
//!   and `Sec-WebSocket-Version: 13`; answered `200`.

use base64::Engine;
use http::{header, Extensions, HeaderMap, HeaderValue, Method, StatusCode, Version};

use super::{error::UpgradeError, WsOptions};
use crate::response::Response;

/// The GUID RFC 6455 appends to the client's key.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// An accepted handshake: what the response must say.
#[derive(Debug)]
pub(crate) struct Accepted {
    /// `Sec-WebSocket-Accept` (HTTP/1.1 only).
    accept: Option<HeaderValue>,
    /// The subprotocol chosen, echoed in `Sec-WebSocket-Protocol`.
    pub(crate) protocol: Option<HeaderValue>,
}

/// Checks a request against RFC 6455 (or RFC 8441) and the endpoint's
/// options.
pub(crate) fn accept(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
    extensions: &Extensions,
    options: &WsOptions,
) -> Result<Accepted, UpgradeError> {
    let h2 = version == Version::HTTP_2;
    if h2 {
        let protocol = extensions.get::<hyper::ext::Protocol>();
        if method != Method::CONNECT || protocol.is_none_or(|p| p.as_str() != "websocket") {
            return Err(UpgradeError::NotWebSocket);
        }
    } else if method != Method::GET
        || !has_token(headers, header::UPGRADE, "websocket")
        || !has_token(headers, header::CONNECTION, "upgrade")
    {
        return Err(UpgradeError::NotWebSocket);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(UpgradeError::UnsupportedVersion);
    }
    let accept = if h2 {
        None
    } else {
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .ok_or(UpgradeError::InvalidKey)?;
        Some(accept_key(key.as_bytes())?)
    };
    if let (Some(allowed), Some(origin)) = (&options.origin, headers.get(header::ORIGIN)) {
        let origin = origin.to_str().map_err(|_| UpgradeError::OriginRefused)?;
        if !allowed(origin) {
            return Err(UpgradeError::OriginRefused);
        }
    }
    let protocol = choose_protocol(headers, &options.protocols);
    if protocol.is_none() && options.require_protocol {
        return Err(UpgradeError::NoProtocol);
    }
    Ok(Accepted { accept, protocol })
}

/// The response that accepts the handshake.
pub(crate) fn response(accepted: &Accepted) -> Response {
    let mut response = match &accepted.accept {
        Some(accept) => {
            let mut r = Response::status_only(StatusCode::SWITCHING_PROTOCOLS);
            let headers = r.headers_mut();
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept.clone());
            r
        }
        None => Response::status_only(StatusCode::OK),
    };
    if let Some(protocol) = &accepted.protocol {
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, protocol.clone());
    }
    response
}

/// The answer to a refused handshake.
pub(crate) fn refusal(error: &UpgradeError) -> Response {
    let mut response = Response::text(format!("{error}\n")).with_status(error.status());
    if matches!(
        error,
        UpgradeError::UnsupportedVersion | UpgradeError::NotWebSocket
    ) {
        let headers = response.headers_mut();
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    response
}

/// `Sec-WebSocket-Accept` for a client key: base64(SHA-1(key + GUID)).
fn accept_key(key: &[u8]) -> Result<HeaderValue, UpgradeError> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| UpgradeError::InvalidKey)?;
    if decoded.len() != 16 {
        return Err(UpgradeError::InvalidKey);
    }
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(ACCEPT_GUID);
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes());
    HeaderValue::from_str(&accept).map_err(|_| UpgradeError::InvalidKey)
}

/// Whether a comma-separated header holds `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The first subprotocol the client offers that the endpoint supports.
fn choose_protocol(headers: &HeaderMap, supported: &[String]) -> Option<HeaderValue> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|offered| supported.iter().any(|s| s == offered))
        .and_then(|chosen| HeaderValue::from_str(chosen).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of RFC 6455 §1.3.
    #[test]
    fn accept_key_of_the_rfc() {
        let accept = accept_key(b"dGhlIHNhbXBsZSBub25jZQ==").unwrap();
        assert_eq!(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(accept_key(b"short").is_err());
        assert!(accept_key(b"not base64!").is_err());
    }

    #[test]
    fn the_first_offered_supported_protocol_is_chosen() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("a, b"),
        );
        headers.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("c"),
        );
        let supported = ["c".to_owned(), "b".to_owned()];
        assert_eq!(choose_protocol(&headers, &supported).unwrap(), "b");
        assert!(choose_protocol(&headers, &["z".to_owned()]).is_none());
    }
}
