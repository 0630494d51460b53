//! `POST /hub/broadcast` bodies: any bytes get 200 (published, with an id)
//! or 400 with a reason — never a panic, never a 500.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill::{hub::Hub, Router, RouterService};
use std::sync::OnceLock;

fn service() -> &'static (Hub, RouterService) {
    static SERVICE: OnceLock<(Hub, RouterService)> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let hub = Hub::builder().http_broadcast(true).build();
        let service = hub.mount(Router::new(), "/hub").into_service();
        (hub, service)
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime for the fuzz target")
    })
}

fuzz_target!(|body: Vec<u8>| {
    let (_hub, service) = service();
    let request = http::Request::post("http://t/hub/broadcast")
        .header("host", "t")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .expect("a valid request");
    let response = runtime().block_on(service.handle(request));
    let status = response.status().as_u16();
    assert!(matches!(status, 200 | 400), "status {status}");
});
