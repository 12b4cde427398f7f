//! One web page asked for over IPv4 and over IPv6 at the same time: whether a name with addresses of
//! both families serves the same site on both (internet.nl's "same website on IPv6 and IPv4"). A
//! site that answers on one family only, or differently, fails its visitors on the other.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What one family's address answered the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FamilyAnswer {
    /// The address asked (the name's first vetted address of the family).
    pub address: SocketAddr,
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    /// The kept headers of the answer, as the HTTP probe keeps them (lower-case names; repeats joined
    /// with ", "; `location` included, so a redirect's target is compared too).
    pub headers: BTreeMap<String, String>,
    /// For HTTPS: the certificate presented was valid for the name.
    pub certificate_valid: Option<bool>,
    /// Why no answer came (connection failed, timeout, TLS failure).
    pub error: Option<String>,
}

impl FamilyAnswer {
    /// The server answered over this family.
    pub fn answered(&self) -> bool {
        self.status.is_some()
    }
}

/// The same request to one web origin's start page over each family (version 1); redirects are not
/// followed, so the first answer itself is compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DualStackObservation {
    pub url: String,
    pub ipv4: FamilyAnswer,
    pub ipv6: FamilyAnswer,
}
