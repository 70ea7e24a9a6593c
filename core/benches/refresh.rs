//! The core's share of one refresh: building the request, applying the
//! response, saving the session through the `Keeper` into a `MemoryStore`.
//! No I/O: what an adapter adds on top of the HTTP round trip.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tokenkeeper::driver::{Ask, Keeper, Step};
use tokenkeeper::grant::ClientAuth;
use tokenkeeper::{
    ClientSecret, Completion, Config, Dispatch, HttpResponse, MemoryStore, SeededEntropy, Session,
    SessionStore, TokenManager, TokenRequest, UnixTime,
};

const RESPONSE: &str = r#"{"access_token":"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln","token_type":"Bearer","expires_in":3600,"scope":"openid profile email offline_access","refresh_token":"rt-bench"}"#;

fn bench(c: &mut Criterion) {
    let config = Config::builder("http://127.0.0.1:1/oauth/token", "client")
        .client_auth(ClientAuth::SecretPost(ClientSecret::new("secret")))
        .build()
        .unwrap();
    let manager = TokenManager::new(config, SeededEntropy::new(1));
    let session = Session::from_json(
        br#"{"tokenSet":{"accessToken":"a","refreshToken":"rt-bench","expiresAt":1}}"#,
        &Default::default(),
    )
    .unwrap();
    let store: Box<dyn SessionStore + Send> = Box::new(MemoryStore::new());
    let mut keeper: Keeper = Keeper::new(manager, store, Some(session)).unwrap();
    let response = HttpResponse::new(200, RESPONSE).with_header("Content-Type", "application/json");
    let request = TokenRequest::new().force_refresh();
    let now = UnixTime::from_secs(1_800_000_000);
    c.bench_function("core_refresh_cycle", |b| {
        b.iter(|| {
            let Step::Own(Dispatch::Send(out)) =
                keeper.step(Ask::User(&request), None, now).unwrap()
            else {
                panic!("a refresh")
            };
            black_box(&out.request.body);
            let token = match keeper
                .manager
                .handle_response(out.id, response.clone(), now)
            {
                Completion::Ready(token) => token.to_owned(),
                other => panic!("{other:?}"),
            };
            keeper.persist().unwrap();
            black_box(token)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
