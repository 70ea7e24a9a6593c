//! Sessions read back from storage (the Next.js SDK's JSON shape).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenkeeper::Session;

fuzz_target!(|data: &[u8]| {
    if let Ok(session) = Session::from_json(data, &Default::default()) {
        // What we write we can read, and it is stable.
        let json = session.to_json();
        let again = Session::from_json(json.as_bytes(), &Default::default())
            .expect("a written session reads back");
        assert_eq!(again.to_json(), json);
    }
});
