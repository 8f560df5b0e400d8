//! A local axum receiver for the webhook transport: records every POST and answers a fixed status.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct Post {
    pub content_type: String,
    pub body: Value,
}

#[derive(Clone)]
struct Shared {
    posts: Arc<Mutex<Vec<Post>>>,
    count: Arc<watch::Sender<usize>>,
    status: StatusCode,
}

pub struct WebhookReceiver {
    address: String,
    shared: Shared,
    server: JoinHandle<()>,
}

impl WebhookReceiver {
    /// Starts a receiver that answers every POST with `status`.
    pub async fn start(status: u16) -> WebhookReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let shared = Shared {
            posts: Arc::default(),
            count: Arc::new(watch::channel(0).0),
            status: StatusCode::from_u16(status).unwrap(),
        };
        let app = Router::new()
            .route("/hooks/{token}", post(receive))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        WebhookReceiver {
            address,
            shared,
            server,
        }
    }

    /// The URL to configure, with a token in its path as many chat webhooks have.
    pub fn url(&self, token: &str) -> String {
        format!("http://{}/hooks/{token}", self.address)
    }

    pub fn posts(&self) -> Vec<Post> {
        self.shared.posts.lock().unwrap().clone()
    }

    /// Waits until at least `n` POSTs have arrived, or panics at the deadline.
    pub async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Post> {
        let mut count = self.shared.count.subscribe();
        let arrived = tokio::time::timeout(deadline, count.wait_for(|&c| c >= n)).await;
        assert!(
            matches!(arrived, Ok(Ok(_))),
            "expected {n} POSTs within {deadline:?}, got {:?}",
            self.posts()
        );
        self.posts()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: String) -> StatusCode {
    let post = Post {
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        body: serde_json::from_str(&body).unwrap_or(Value::String(body)),
    };
    let mut posts = shared.posts.lock().unwrap();
    posts.push(post);
    shared.count.send_replace(posts.len());
    shared.status
}
