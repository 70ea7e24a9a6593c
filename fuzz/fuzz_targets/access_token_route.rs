//! The access-token endpoint contract: parsing its responses on the client
//! side, and its query on the server side.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenkeeper::HttpResponse;
use tokenkeeper::route::{AccessTokenQuery, parse_access_token_response};

fuzz_target!(|input: (u16, &[u8], &str)| {
    let (status, body, query) = input;
    let response = HttpResponse::new(status, body.to_vec());
    let _ = parse_access_token_response(&response, &Default::default());
    let parsed = AccessTokenQuery::parse(query);
    let _ = parsed.token_request();
    let again = AccessTokenQuery::parse(&parsed.to_query_string());
    assert_eq!(again.to_query_string(), parsed.to_query_string());
});
