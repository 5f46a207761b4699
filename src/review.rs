//! The seam between the HTTPS transport (`server`) and the admission logic (`admission`):
//! the server owns sockets, TLS, limits and metrics; a [`Reviewer`] turns one request body
//! into one answer. Tests and benchmarks can plug in their own reviewer.

use compact_str::CompactString;
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

/// What the server logs about one review (object contents never appear here). Texts up to 24
/// bytes (all but the uid, in practice) are stored inline.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub uid: CompactString,
    pub kind: CompactString,
    pub namespace: CompactString,
    pub name: CompactString,
    pub operation: CompactString,
    pub sub_resource: CompactString,
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

    /// The review, run on an async worker; or `None` when this one's cost grows with the
    /// cluster rather than the body, and the server should run [`Reviewer::review`] on the
    /// blocking pool instead. The default never declines.
    fn review_inline(&self, endpoint: Endpoint, body: &[u8]) -> Option<Reply> {
        Some(self.review(endpoint, body))
    }

    /// An answer for a review that could not get a slot before its deadline. It still echoes
    /// the uid when the body has one, so the API server applies its failurePolicy knowingly.
    fn overloaded(&self, endpoint: Endpoint, body: &[u8]) -> Reply;

    /// True once the template source has synced (readiness).
    fn ready(&self) -> bool;

    /// Sizes of the in-memory caches, for `/metrics` (`kind` label, count).
    fn cache_sizes(&self) -> Vec<(&'static str, usize)>;
}

/// The do-nothing baseline: allows every review without parsing the body, so load tests can
/// measure what the transport alone costs. It finds `request.uid` by scanning bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullReviewer;

const ALLOW_PREFIX: &[u8] =
    br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":""#;
const ALLOW_SUFFIX: &[u8] = br#"","allowed":true}}"#;

impl NullReviewer {
    /// The raw JSON text of `request.uid` (still escaped), found without parsing: the first
    /// `"uid"` key after `"request"`. The API server writes `uid` as the first field of
    /// `request`, before `object`, so an object's `metadata.uid` does not come first.
    pub fn find_uid(body: &[u8]) -> Option<&[u8]> {
        let after_request = find(body, b"\"request\"")? + b"\"request\"".len();
        let rest = &body[after_request..];
        let key_end = find(rest, b"\"uid\"")? + b"\"uid\"".len();
        let rest = &rest[key_end..];
        let mut i = 0;
        while rest.get(i)?.is_ascii_whitespace() {
            i += 1;
        }
        if rest[i] != b':' {
            return None;
        }
        i += 1;
        while rest.get(i)?.is_ascii_whitespace() {
            i += 1;
        }
        if rest[i] != b'"' {
            return None;
        }
        let start = i + 1;
        let mut j = start;
        loop {
            match *rest.get(j)? {
                b'"' => return Some(&rest[start..j]),
                b'\\' => j += 2,
                c if c < 0x20 => return None,
                _ => j += 1,
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Reviewer for NullReviewer {
    fn review(&self, _endpoint: Endpoint, body: &[u8]) -> Reply {
        let Some(uid) = Self::find_uid(body) else {
            return Reply::bad_request("body is not an AdmissionReview with a request.uid");
        };
        let mut out = Vec::with_capacity(ALLOW_PREFIX.len() + uid.len() + ALLOW_SUFFIX.len());
        out.extend_from_slice(ALLOW_PREFIX);
        out.extend_from_slice(uid);
        out.extend_from_slice(ALLOW_SUFFIX);
        Reply {
            status: 200,
            body: out,
            outcome: Outcome::Allowed,
            summary: Some(Summary {
                uid: String::from_utf8_lossy(uid).into(),
                ..Summary::default()
            }),
        }
    }

    fn overloaded(&self, _endpoint: Endpoint, _body: &[u8]) -> Reply {
        // A 5xx makes the API server apply the webhook's failurePolicy.
        Reply {
            status: 503,
            body: br#"{"error":"too many concurrent reviews"}"#.to_vec(),
            outcome: Outcome::Error,
            summary: None,
        }
    }

    fn ready(&self) -> bool {
        true
    }

    fn cache_sizes(&self) -> Vec<(&'static str, usize)> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_reviewer_echoes_the_request_uid() {
        let body = br#"{"kind":"AdmissionReview","request":{"uid" : "705ab4f5-6393-11e8-b7cc-42010a800002","object":{"metadata":{"uid":"other"}}}}"#;
        let reply = NullReviewer.review(Endpoint::Validate, body);
        assert_eq!(reply.status, 200);
        let value: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
                "response":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true}})
        );
        assert_eq!(
            reply.summary.unwrap().uid,
            "705ab4f5-6393-11e8-b7cc-42010a800002"
        );
    }

    #[test]
    fn null_reviewer_answers_400_without_a_uid() {
        for body in [
            &b""[..],
            b"{}",
            br#"{"request":{"uid":123}}"#,
            br#"{"request":{"uid":"unterminated"#,
            br#"{"request":{"uid""#,
            br#"{"request":{"uid":"a\"#,
        ] {
            let reply = NullReviewer.review(Endpoint::Mutate, body);
            assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(body));
            assert_eq!(reply.outcome, Outcome::Error);
        }
    }

    #[test]
    fn null_reviewer_answers_the_captured_gke_review() {
        let body = include_bytes!(
            "../tests/fixtures/admission-reviews/gke_pod_create_admissionreview_v1.json"
        );
        let request: serde_json::Value = serde_json::from_slice(body).unwrap();
        let reply = NullReviewer.review(Endpoint::Validate, body);
        let response: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(response["response"]["uid"], request["request"]["uid"]);
    }
}
