//! Discovery metadata (OIDC / RFC 8414) from any server.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenkeeper::discovery::{AuthorizationServerMetadata, DiscoveryCache, DiscoveryKind};
use tokenkeeper::{HttpResponse, UnixTime};

fuzz_target!(|input: (u16, &[u8])| {
    let (status, body) = input;
    let response = HttpResponse::new(status, body.to_vec());
    if let Ok(metadata) =
        AuthorizationServerMetadata::parse(&response, "https://as.example", &Default::default())
    {
        assert_eq!(metadata.issuer, "https://as.example");
        let _ = metadata.endpoints();
    }
    let mut cache = DiscoveryCache::new("https://as.example", DiscoveryKind::OpenIdConnect)
        .expect("a valid issuer");
    let _ = cache.handle_response(&response, UnixTime::from_secs(10), &Default::default());
    let _ = cache.poll_timeout();
});
