//! Randomness as an input. The core never draws randomness on its own: the
//! host gives it an [`Entropy`] source (the adapters use the operating
//! system's through `getrandom`; tests use a seeded one).

use core::fmt;

/// A source of cryptographically secure random bytes, supplied by the host.
///
/// Used for DPoP `jti` values, PKCE verifiers, `state`/`nonce` and key
/// generation. ES256 signatures themselves are deterministic (RFC 6979) and
/// draw nothing.
pub trait Entropy {
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> Entropy for F {
    fn fill(&mut self, dest: &mut [u8]) {
        self(dest)
    }
}

/// A deterministic, *insecure* byte stream for tests and fuzzing: the same
/// seed always gives the same bytes (SplitMix64).
#[derive(Clone)]
pub struct SeededEntropy {
    state: u64,
}

impl SeededEntropy {
    /// A stream starting from `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        SeededEntropy { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Entropy for SeededEntropy {
    fn fill(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

impl fmt::Debug for SeededEntropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeededEntropy")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_reproducible_and_differs_by_seed() {
        let (mut a, mut b, mut c) = (
            SeededEntropy::new(7),
            SeededEntropy::new(7),
            SeededEntropy::new(8),
        );
        let (mut x, mut y, mut z) = ([0u8; 21], [0u8; 21], [0u8; 21]);
        a.fill(&mut x);
        b.fill(&mut y);
        c.fill(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert!(x.iter().any(|&v| v != 0));
    }

    #[test]
    fn closures_are_entropy() {
        let mut counter = 0u8;
        let mut source = |dest: &mut [u8]| {
            for b in dest {
                counter += 1;
                *b = counter;
            }
        };
        let mut buf = [0u8; 3];
        source.fill(&mut buf);
        assert_eq!(buf, [1, 2, 3]);
    }
}
