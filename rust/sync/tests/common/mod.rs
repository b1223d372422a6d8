//! Helpers shared by the sync tests: the real hub, in process.
#![allow(dead_code)]

use std::path::Path;

/// Serves the real hub on `listener`, its database at `db`, in the
/// background until the test ends.
pub fn serve_hub(listener: tokio::net::TcpListener, db: &Path, config: heph_hub::HubConfig) {
    let db = db.to_owned();
    tokio::spawn(async move {
        heph_hub::serve(listener, &db, config, std::future::pending())
            .await
            .unwrap();
    });
}

/// The real hub on a free loopback port, its database at `db`; its URL.
pub async fn start_hub(db: &Path) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    serve_hub(listener, db, heph_hub::HubConfig::default());
    url
}
