//! The cluster-backed template cache against a local fake of the Kubernetes list/watch API.
//!
//! The fake serves `GET /apis/argoproj.io/v1alpha1/<plural>` (and `/api/v1/namespaces`, as
//! metadata) as a list, and with `watch=1` as
//! a stream of JSON watch events it can push, cut (a disconnect) or end with `410 Expired`
//! (which makes the client relist). What this proves: the kube-runtime watcher as we drive it
//! syncs late when the API server is unreachable at start, keeps the last complete view
//! across disconnects, applies live events, and replaces a kind on relist; readiness follows;
//! the request path answers throughout. What it does not prove: real API server behaviour
//! (pagination, bookmarks, RBAC, timeouts of real watches) or anything about a real network.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use futures::StreamExt;
use rollout_guard::catalog::{Catalog, SharedStore};
use rollout_guard::cluster::spawn_watchers;
use rollout_guard::templates::TemplateStore;
use serde_json::{Value, json};
use tokio::sync::broadcast;

#[derive(Clone)]
struct Fake {
    items: Arc<Mutex<HashMap<String, Vec<Value>>>>,
    events: broadcast::Sender<(String, Option<Value>)>,
    version: Arc<Mutex<u64>>,
    /// Watch requests served so far (the fake has no event history, so tests wait for a
    /// watch to be open before sending).
    watches: Arc<std::sync::atomic::AtomicUsize>,
    /// The `Accept` header of each namespace request.
    namespace_accepts: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn new() -> Self {
        Self {
            items: Arc::default(),
            events: broadcast::channel(64).0,
            version: Arc::new(Mutex::new(1)),
            watches: Arc::default(),
            namespace_accepts: Arc::default(),
        }
    }

    fn next_version(&self) -> String {
        let mut v = self.version.lock().unwrap();
        *v += 1;
        v.to_string()
    }

    fn put(&self, plural: &str, object: Value) {
        self.items
            .lock()
            .unwrap()
            .entry(plural.into())
            .or_default()
            .push(object);
    }

    fn remove(&self, plural: &str, name: &str) {
        if let Some(list) = self.items.lock().unwrap().get_mut(plural) {
            list.retain(|o| o["metadata"]["name"] != name);
        }
    }

    /// Sends a watch event to every open watch of `plural`.
    fn send(&self, plural: &str, kind: &str, mut object: Value) {
        object["metadata"]["resourceVersion"] = json!(self.next_version());
        let _ = self
            .events
            .send((plural.into(), Some(json!({"type": kind, "object": object}))));
    }

    /// Ends every open watch stream (a dropped connection).
    fn disconnect(&self) {
        let _ = self.events.send((String::new(), None));
    }

    /// Tells watches of `plural` their resource version is too old: the client relists.
    fn expire(&self, plural: &str) {
        let status = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "too old resource version", "reason": "Expired", "code": 410}});
        let _ = self.events.send((plural.into(), Some(status)));
    }

    async fn serve(self, listener: tokio::net::TcpListener) {
        let app = axum::Router::new()
            .route("/apis/argoproj.io/v1alpha1/{plural}", get(handle))
            .route("/api/v1/{plural}", get(handle))
            .with_state(self);
        axum::serve(listener, app).await.unwrap();
    }
}

async fn handle(
    State(fake): State<Fake>,
    Path(plural): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    if plural == "namespaces" {
        let accept = headers.get("accept").and_then(|v| v.to_str().ok());
        let accept = accept.unwrap_or_default().to_owned();
        fake.namespace_accepts.lock().unwrap().push(accept);
    }
    let watching = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    if !watching {
        let items = fake
            .items
            .lock()
            .unwrap()
            .get(&plural)
            .cloned()
            .unwrap_or_default();
        let list = json!({"apiVersion": "v1", "kind": "List",
            "metadata": {"resourceVersion": fake.next_version()}, "items": items});
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(list.to_string()))
            .unwrap();
    }
    let rx = fake.events.subscribe();
    fake.watches
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let stream = futures::stream::unfold(rx, move |mut rx| {
        let plural = plural.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok((_, None)) | Err(_) => return None,
                    Ok((p, Some(event))) if p == plural => {
                        let mut line = event.to_string();
                        line.push('\n');
                        return Some((Ok::<_, Infallible>(Bytes::from(line)), rx));
                    }
                    Ok(_) => continue,
                }
            }
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream.boxed()))
        .unwrap()
}

fn template(name: &str) -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
        "metadata": {"name": name, "namespace": "apps", "resourceVersion": "1"},
        "spec": {"metrics": [{"name": "m", "interval": "1m", "successCondition": "a", "failureCondition": "b",
            "provider": {"web": {"url": "http://x"}}}]}})
}

/// A Namespace as a metadata-only request gets it.
fn namespace(name: &str, mode: &str) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
        "metadata": {"name": name, "resourceVersion": "1",
            "annotations": {"rollout-guard.io/mode": mode, "team": "shop"}}})
}

fn client(addr: SocketAddr) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_late_keeps_its_view_across_disconnects_and_relists() {
    // A port with nothing behind it yet: the API server is unreachable at start.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let store = Arc::new(SharedStore::new());
    let watchers = spawn_watchers(client(addr), store.clone());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        !store.synced(),
        "not ready while the API server is unreachable"
    );
    assert!(store.analysis_template("apps", "a").is_none());

    let fake = Fake::new();
    fake.put("analysistemplates", template("a"));
    fake.put("analysistemplates", template("b"));
    fake.put("namespaces", namespace("apps", "enforce"));
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(fake.clone().serve(listener));
    eventually("first sync", Duration::from_secs(40), || store.synced()).await;
    assert!(
        store.analysis_template("apps", "a").is_some()
            && store.analysis_template("apps", "b").is_some()
    );
    let mode = |ns: &str| store.namespace_annotation(ns, "rollout-guard.io/mode");
    assert_eq!(mode("apps").as_deref(), Some("enforce"));
    assert_eq!(
        store.namespace_annotation("apps", "team"),
        None,
        "only our annotations are kept"
    );
    // Namespaces are read as metadata only (PartialObjectMetadata), not whole.
    let accepts = fake.namespace_accepts.lock().unwrap().clone();
    assert!(!accepts.is_empty());
    for accept in &accepts {
        assert!(accept.contains("as=PartialObjectMetadata"), "{accepts:?}");
    }

    // Live events once the watches are open.
    let opened = || fake.watches.load(std::sync::atomic::Ordering::SeqCst);
    eventually("watches open", Duration::from_secs(10), || opened() >= 4).await;
    fake.send("namespaces", "MODIFIED", namespace("apps", "off"));
    fake.send("namespaces", "ADDED", namespace("shop", "warn"));
    eventually("live namespace events", Duration::from_secs(10), || {
        mode("apps").as_deref() == Some("off") && mode("shop").as_deref() == Some("warn")
    })
    .await;
    fake.put("analysistemplates", template("c"));
    fake.send("analysistemplates", "ADDED", template("c"));
    eventually("live ADDED", Duration::from_secs(10), || {
        store.analysis_template("apps", "c").is_some()
    })
    .await;
    fake.remove("analysistemplates", "c");
    fake.send("analysistemplates", "DELETED", template("c"));
    eventually("live DELETED", Duration::from_secs(10), || {
        store.analysis_template("apps", "c").is_none()
    })
    .await;

    // A disconnect: the view stays, readiness stays, and the watch comes back.
    let before = opened();
    fake.disconnect();
    assert!(store.synced() && store.analysis_template("apps", "a").is_some());
    eventually("watches reopen", Duration::from_secs(40), || {
        opened() >= before + 3
    })
    .await;
    fake.put("analysistemplates", template("d"));
    fake.send("analysistemplates", "ADDED", template("d"));
    eventually("event after reconnect", Duration::from_secs(10), || {
        store.analysis_template("apps", "d").is_some()
    })
    .await;

    // `b` is deleted while nobody watches; a 410 makes the client relist, which drops it.
    fake.remove("analysistemplates", "b");
    fake.expire("analysistemplates");
    eventually("relist drops b", Duration::from_secs(40), || {
        store.analysis_template("apps", "b").is_none()
    })
    .await;
    assert!(
        store.analysis_template("apps", "a").is_some()
            && store.analysis_template("apps", "d").is_some()
    );
    assert!(store.synced());
    let sizes: HashMap<_, _> = store.sizes().into_iter().collect();
    assert_eq!(sizes["AnalysisTemplate"], 2);

    for w in watchers {
        w.abort();
    }
}
