//! Signed tokens for the cable endpoint (issue 11): `GET /cable/token?user=NAME`
//! hands out `NAME.MAC`, and `GET /cable?token=…` accepts a connection only
//! with a token this server signed. The MAC is HMAC-SHA-1 (RFC 2104; SHA-1
//! is already in the tree for the WebSocket handshake) keyed with the
//! `--cable-secret`, or with a random key per start.

use std::io::Read;

/// The key tokens are signed with.
#[derive(Clone)]
pub struct CableSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for CableSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CableSecret(…)")
    }
}

impl CableSecret {
    /// A secret from the operator (`--cable-secret`).
    pub fn new(secret: &str) -> Self {
        CableSecret {
            key: secret.as_bytes().to_vec(),
        }
    }

    /// A random secret for this run: tokens die with the process.
    pub fn random() -> Self {
        let mut key = vec![0u8; 32];
        let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key));
        if from_os.is_err() {
            // Without /dev/urandom: std's per-process random hasher keys.
            use std::hash::{BuildHasher, Hasher};
            for (i, chunk) in key.chunks_mut(8).enumerate() {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_usize(i);
                chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
            }
        }
        CableSecret { key }
    }

    /// The token for `user`: `user.hex(mac)`.
    pub fn sign(&self, user: &str) -> String {
        format!("{user}.{}", hex(&hmac_sha1(&self.key, user.as_bytes())))
    }

    /// The user a token names, if this secret signed it.
    pub fn verify(&self, token: &str) -> Option<String> {
        let (user, mac) = token.rsplit_once('.')?;
        let expected = hex(&hmac_sha1(&self.key, user.as_bytes()));
        // Compared in constant time: no early exit on the first difference.
        let same = mac.len() == expected.len()
            && mac
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0;
        (same && !user.is_empty()).then(|| user.to_owned())
    }
}

/// HMAC-SHA-1 of `message` under `key` (RFC 2104, 64-byte blocks).
fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..20].copy_from_slice(&sha1_smol::Sha1::from(key).digest().bytes());
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| -> [u8; 64] { block.map(|b| b ^ byte) };
    let mut inner = sha1_smol::Sha1::new();
    inner.update(&pad(0x36));
    inner.update(message);
    let mut outer = sha1_smol::Sha1::new();
    outer.update(&pad(0x5c));
    outer.update(&inner.digest().bytes());
    outer.digest().bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        assert_eq!(
            hex(&hmac_sha1(&[0x0b; 20], b"Hi There")),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        assert_eq!(
            hex(&hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        // A key longer than a block is hashed first (case 6).
        assert_eq!(
            hex(&hmac_sha1(
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }

    #[test]
    fn tokens_name_their_user_only_under_their_secret() {
        let secret = CableSecret::new("s3cret");
        let token = secret.sign("alice.smith");
        assert_eq!(secret.verify(&token).as_deref(), Some("alice.smith"));
        assert_eq!(CableSecret::new("other").verify(&token), None);
        assert_eq!(CableSecret::random().verify(&token), None);
        let forged = token.replace("alice", "admin");
        assert_eq!(secret.verify(&forged), None);
        for bad in ["", "alice", ".", "alice.", &secret.sign("")] {
            assert_eq!(secret.verify(bad), None, "{bad:?}");
        }
    }
}
