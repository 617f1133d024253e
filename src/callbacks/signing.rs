//! Signatures on callback deliveries.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// WebSub authenticated distribution: `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn websub_signature(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(secret, &[body])))
}

/// The Standard Webhooks key for a secret: a `whsec_` secret is base64 after the prefix; any other secret is used as its bytes.
///
/// A `whsec_` secret that is not valid base64 is used as the bytes of the whole string.
pub fn standard_webhooks_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// Standard Webhooks `webhook-signature`: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn standard_webhooks_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let mac = hmac_sha256(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", STANDARD.encode(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            websub_signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn websub_vector() {
        // python3: hmac.new(b"s3cr3t", b'{"id":"1"}', hashlib.sha256).hexdigest()
        assert_eq!(
            websub_signature(b"s3cr3t", br#"{"id":"1"}"#),
            "sha256=448e17f4aa91f0d1aa4acb9ad400b1cd5f5e8059cfe7f5994dbeee591977c5dd"
        );
    }

    #[test]
    fn standard_webhooks_published_vector() {
        let key = standard_webhooks_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(
            key,
            STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
        );
        assert_eq!(
            standard_webhooks_signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn standard_webhooks_key_without_prefix_is_raw_bytes() {
        let key = standard_webhooks_key("not-whsec");
        assert_eq!(key, b"not-whsec");
        // python3: base64.b64encode(hmac.new(b"not-whsec", b"id.1.body", hashlib.sha256).digest())
        assert_eq!(
            standard_webhooks_signature(&key, "id", 1, b"body"),
            "v1,w1AKkvF6IC4XoyhOHS1bWYtJc2wK8GMTTUdS5VmWyok="
        );
    }

    #[test]
    fn standard_webhooks_key_with_bad_base64_falls_back_to_whole_string() {
        let key = standard_webhooks_key("whsec_!!!");
        assert_eq!(key, b"whsec_!!!");
        // python3: base64.b64encode(hmac.new(b"whsec_!!!", b"id.1.body", hashlib.sha256).digest())
        assert_eq!(
            standard_webhooks_signature(&key, "id", 1, b"body"),
            "v1,NPRV4gcZcWp0aYkmos4k7DOVJ9mwLq4MzelmhkX7h0M="
        );
    }
}
