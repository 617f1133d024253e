//! The Seed Identity Store (spec/peers.md §3): where a subscriber's phone number is.

use reqwest::Method;
use serde::Deserialize;
use uuid::Uuid;

use super::{Error, PeerClient};

#[derive(Debug, Clone)]
pub struct IdentityStore(pub PeerClient);

#[derive(Deserialize)]
struct Addresses {
    #[serde(default)]
    results: Vec<Address>,
}

#[derive(Deserialize)]
struct Address {
    address: Option<String>,
}

impl IdentityStore {
    /// The identity's default MSISDN (through its `communicate_through` identity, if any), or
    /// `None` when it has no usable address.
    #[tracing::instrument(skip_all, fields(peer = "identity_store", identity = %identity))]
    pub async fn msisdn(&self, identity: Uuid) -> Result<Option<String>, Error> {
        let path = format!(
            "/identities/{identity}/addresses/msisdn?default=True&use_communicate_through=True"
        );
        let response = self.0.send(self.0.request(Method::GET, &path)).await?;
        let addresses: Addresses = response.json().await?;
        Ok(addresses
            .results
            .into_iter()
            .filter_map(|a| a.address)
            .find(|a| !a.trim().is_empty()))
    }
}
