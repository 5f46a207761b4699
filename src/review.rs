//! The seam between the HTTPS transport (`server`) and the admission logic (`admission`):
//! the server owns sockets, TLS, limits and metrics; a [`Reviewer`] turns one request body
//! into one answer. Tests and benchmarks can plug in their own reviewer.

use serde::Serialize;

/// Which admission endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    Validate,
    Mutate,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::Mutate => "mutate",
        }
    }
}

/// How a review ended, for metrics (`outcome` label) and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allowed,
    Warned,
    Denied,
    Mutated,
    /// The body was not a readable review, or the review could not be answered.
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Self::Allowed,
        Self::Warned,
        Self::Denied,
        Self::Mutated,
        Self::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Warned => "warned",
            Self::Denied => "denied",
            Self::Mutated => "mutated",
            Self::Error => "error",
        }
    }
}

/// What the server logs about one review (object contents never appear here).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub uid: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub operation: String,
    pub sub_resource: String,
    pub dry_run: bool,
    /// Rule ids of the findings, deduplicated.
    pub rules: Vec<&'static str>,
}

/// One answer: an HTTP status and a JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// 200 for every well-formed review; 400 for a body that is not a review.
    pub status: u16,
    pub body: Vec<u8>,
    pub outcome: Outcome,
    pub summary: Option<Summary>,
}

impl Reply {
    /// A 400 with a JSON error saying why (for bodies that are not reviews at all).
    pub fn bad_request(message: &str) -> Self {
        let body = serde_json::to_vec(&serde_json::json!({ "error": message }))
            .unwrap_or_else(|_| b"{}".to_vec());
        Self {
            status: 400,
            body,
            outcome: Outcome::Error,
            summary: None,
        }
    }
}

/// Turns one admission request body into one answer. Pure with respect to I/O: a reviewer
/// reads only in-memory state, so it can run on the request path without blocking.
pub trait Reviewer: Send + Sync + 'static {
    fn review(&self, endpoint: Endpoint, body: &[u8]) -> Reply;

    /// An answer for a review that could not get a slot before its deadline. It still echoes
    /// the uid when the body has one, so the API server applies its failurePolicy knowingly.
    fn overloaded(&self, endpoint: Endpoint, body: &[u8]) -> Reply;

    /// True once the template source has synced (readiness).
    fn ready(&self) -> bool;

    /// Sizes of the in-memory caches, for `/metrics` (`kind` label, count).
    fn cache_sizes(&self) -> Vec<(&'static str, usize)>;
}
