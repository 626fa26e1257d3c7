//! [`DecodeLimits`]: bounds on what one profile may cost to decode.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Limits applied before and while decoding a profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeLimits {
    /// Largest accepted body, compressed or not. Default: 16 MiB.
    pub max_body_bytes: u64,
    /// Largest accepted decompressed profile. Default: 64 MiB.
    pub max_decompressed_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_body_bytes: 16 << 20,
            max_decompressed_bytes: 64 << 20,
        }
    }
}

impl DecodeLimits {
    /// Checks that both limits are positive.
    pub fn validate(&self) -> Result<()> {
        if self.max_body_bytes == 0 || self.max_decompressed_bytes == 0 {
            return Err(Error::InvalidProfile(
                "decode limits must be greater than 0".into(),
            ));
        }
        Ok(())
    }
}
