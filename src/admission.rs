//! The only module that knows the `admission.k8s.io/v1` AdmissionReview wire format.
//!
//! The request is decoded lean: the envelope borrows from the body, `object` / `oldObject`
//! stay raw JSON and are decoded straight into the partial typed views; a JSON tree of the
//! part a guard edits is built only when it acts (`guard_tree`). Validating a Rollout write,
//! the hot path, reads `object` into its view during the envelope's own pass (see
//! `decode_review`). The response is written directly (`Admission::encode`), with the
//! patch as base64 of an RFC 6902 patch (what the API server reads).

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use crate::catalog::{Catalog, Overlay};
use crate::cli::Mode;
use crate::finding::{Finding, Rule, Severity};
use crate::guards::{self, Guard, GuardSet};
use crate::json::{self, RawJson};
use crate::model::{
    AnalysisTemplate, Kind, ObjectMeta, ObjectRef, Rollout, RolloutState, RolloutStatus,
    canary_in_flight,
};
use crate::review::{Endpoint, Outcome, Reply, Reviewer, Summary};
use crate::rules::{Config, Evaluation, check_rollout, check_template};
use crate::version::ControllerVersion;

/// Per-object annotation: `warn`, `enforce` or `off` (skip validation for this object).
pub const MODE_ANNOTATION: &str = "rollout-guard.io/mode";
/// Per-object annotation: the guards for this object (`none`, `auto`, or a list).
pub const GUARDS_ANNOTATION: &str = "rollout-guard.io/guards";

/// Past 4096 characters (runes) of warnings in total, the API server cuts each warning to 256
/// and drops later ones; within it, it passes them on whole.
const WARNINGS_BUDGET: usize = 4096;
/// What the API server cuts each warning to once over budget; `budget` does that cut itself,
/// so it can say how many were left out.
const WARNING_MAX: usize = 256;
/// Keeps the denial readable in kubectl's one-line error.
const DENIAL_MAX: usize = 2048;

/// The identity the Argo Rollouts controller writes status as, in its standard install.
pub const DEFAULT_CONTROLLER_USER: &str = "system:serviceaccount:argo-rollouts:argo-rollouts";

/// Server-wide policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    pub version: ControllerVersion,
    /// Already resolved for the version (no `auto`).
    pub guards: GuardSet,
    pub controller_user: String,
}

impl Default for Policy {
    /// What `serve` runs with when given no flag: warn, the default controller version and
    /// its automatic guards.
    fn default() -> Self {
        let version = ControllerVersion::DEFAULT;
        Self {
            mode: Mode::Warn,
            version,
            guards: GuardSet::AUTO.resolve(version),
            controller_user: DEFAULT_CONTROLLER_USER.into(),
        }
    }
}

/// Answers admission reviews with the rule engine and the guards.
pub struct Admission {
    policy: Policy,
    catalog: Arc<dyn Catalog + Send + Sync>,
}

// ---------------------------------------------------------------------------------------------
// Wire format (request)

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn<'a> {
    /// Checked when present (`ReviewIn::version_error`); reviews built by hand often leave
    /// the envelope's type out.
    #[serde(borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    request: Option<Request<'a>>,
}

/// The only AdmissionReview version rollout-guard reads and writes.
const REVIEW_API_VERSION: &str = "admission.k8s.io/v1";

impl<'a> ReviewIn<'a> {
    /// The request of a v1 AdmissionReview that has one with a uid; otherwise what is
    /// missing, for a 400. Every answer, overloaded or not, checks the envelope here.
    fn into_request(self) -> Result<Request<'a>, Cow<'static, str>> {
        if let Some(error) = self.version_error() {
            return Err(error.into());
        }
        let Some(req) = self.request else {
            return Err("AdmissionReview has no `request`".into());
        };
        if req.uid.is_empty() {
            return Err("AdmissionReview request has no `uid`".into());
        }
        Ok(req)
    }

    /// Why the envelope is not an `admission.k8s.io/v1` AdmissionReview: the API server
    /// refuses an answer in another version than its request, so answering v1 to a v1beta1
    /// review would only move the error there.
    fn version_error(&self) -> Option<String> {
        if let Some(version) = self
            .api_version
            .as_deref()
            .filter(|v| *v != REVIEW_API_VERSION)
        {
            return Some(format!(
                "AdmissionReview apiVersion {version:?} is not supported: rollout-guard reads \
                 {REVIEW_API_VERSION} (admissionReviewVersions: [v1] in the webhook configuration)"
            ));
        }
        let kind = self.kind.as_deref().filter(|k| *k != "AdmissionReview")?;
        Some(format!("body is a {kind:?}, not an AdmissionReview"))
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Request<'a> {
    #[serde(borrow)]
    uid: Cow<'a, str>,
    #[serde(borrow)]
    kind: GroupVersionKind<'a>,
    #[serde(borrow)]
    sub_resource: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    operation: Cow<'a, str>,
    #[serde(borrow)]
    user_info: UserInfo<'a>,
    #[serde(borrow)]
    object: Option<ObjectIn<'a>>,
    #[serde(borrow)]
    old_object: Option<RawJson<'a>>,
    dry_run: Option<bool>,
    /// Decoded by the lean reader ([`decode_review`]): the raw objects are read with it too.
    #[serde(skip)]
    lean: bool,
    /// The whole review, for the rare answers that read `object` and `oldObject` again
    /// ([`Admission::spec_unchanged`]).
    #[serde(skip)]
    body: &'a [u8],
}

impl Request<'_> {
    /// The kind of a write rollout-guard judges or guards: a CREATE or UPDATE of one of the
    /// three Argo kinds. Anything else (deletes, other kinds) passes untouched.
    fn judged_kind(&self) -> Option<Kind> {
        if self.operation != "CREATE" && self.operation != "UPDATE" {
            return None;
        }
        (self.kind.group == Kind::GROUP)
            .then(|| kind_of(&self.kind.kind))
            .flatten()
    }

    fn is_status_write(&self) -> bool {
        self.sub_resource.as_deref() == Some("status")
    }

    /// A template write that [`Admission::validate_template`] checks against every Rollout
    /// that references it, as [`Admission::decide`] routes it.
    fn rechecks_rollouts(&self) -> bool {
        matches!(
            self.judged_kind(),
            Some(Kind::AnalysisTemplate | Kind::ClusterAnalysisTemplate)
        ) && !self.is_status_write()
    }
}

/// `request.object` as the envelope decode left it.
enum ObjectIn<'a> {
    /// The raw JSON, decoded when (and into what) the review needs.
    Raw(RawJson<'a>),
    /// Already the Rollout view, read in the envelope's pass by [`decode_review`].
    Rollout(Rollout),
}

impl<'de: 'a, 'a> Deserialize<'de> for ObjectIn<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RawJson::deserialize(d).map(ObjectIn::Raw)
    }
}

/// Decodes the envelope with the lean reader ([`json`]), in one pass: the API server writes
/// `kind`, `subResource` and `operation` before `object` (the field order of Go's
/// `AdmissionRequest`), and when they say a Rollout write is being validated, [`FastRequest`]
/// reads `object` straight into the Rollout view; everything the views do not read is skipped
/// 64 bytes at a time. Whatever the lean reader leaves (see [`json`]: floats, odd nesting,
/// anything malformed) is decoded again by serde_json through the plain derives below, which
/// are the reference: every answer and every error message comes from the same views either
/// way, and tests compare the two paths ([`Admission::review_reference`]).
fn decode_review(body: &[u8], endpoint: Endpoint) -> serde_json::Result<ReviewIn<'_>> {
    match json::from_slice_seed(body, FastReview { endpoint }) {
        Ok(review) => Ok(review),
        Err(_) => serde_json::from_slice(body),
    }
}

/// The top level of an AdmissionReview, for [`decode_review`]'s single pass.
struct FastReview {
    endpoint: Endpoint,
}

impl<'de> DeserializeSeed<'de> for FastReview {
    type Value = ReviewIn<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FastReview {
    type Value = ReviewIn<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an AdmissionReview")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // As `FastRequest` does: a field seen twice is an error, as serde's derive says.
        const FIELDS: [&str; 3] = ["request", "apiVersion", "kind"];
        let mut seen = [false; FIELDS.len()];
        let mut review = ReviewIn {
            api_version: None,
            kind: None,
            request: None,
        };
        while let Some(key) = map.next_key::<&'de str>()? {
            let Some(field) = FIELDS.iter().position(|f| *f == key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if std::mem::replace(&mut seen[field], true) {
                return Err(de::Error::duplicate_field(FIELDS[field]));
            }
            match field {
                0 => {
                    review.request = Some(map.next_value_seed(FastRequest {
                        endpoint: self.endpoint,
                    })?)
                }
                1 => review.api_version = map.next_value::<Option<Str<'de>>>()?.map(|t| t.0),
                _ => review.kind = map.next_value::<Option<Str<'de>>>()?.map(|t| t.0),
            }
        }
        Ok(review)
    }
}

/// `request`, reading `object` as a Rollout view when the fields before it say a Rollout write
/// is being validated.
struct FastRequest {
    endpoint: Endpoint,
}

impl<'de> DeserializeSeed<'de> for FastRequest {
    type Value = Request<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

/// A string borrowed from the body when it has no escapes (as `#[serde(borrow)]` does).
#[derive(Deserialize)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de> Visitor<'de> for FastRequest {
    type Value = Request<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an AdmissionReview request")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        const FIELDS: [&str; 10] = [
            "uid",
            "kind",
            "subResource",
            "name",
            "namespace",
            "operation",
            "userInfo",
            "object",
            "oldObject",
            "dryRun",
        ];
        let mut r = Request {
            lean: true,
            ..Request::default()
        };
        let mut seen = [false; FIELDS.len()];
        while let Some(key) = map.next_key::<&'de str>()? {
            let Some(field) = FIELDS.iter().position(|f| *f == key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if std::mem::replace(&mut seen[field], true) {
                return Err(de::Error::duplicate_field(FIELDS[field]));
            }
            match FIELDS[field] {
                "uid" => r.uid = map.next_value::<Str<'de>>()?.0,
                "kind" => r.kind = map.next_value()?,
                "subResource" => {
                    r.sub_resource = map.next_value::<Option<Str<'de>>>()?.map(|t| t.0)
                }
                "name" => r.name = map.next_value::<Option<Str<'de>>>()?.map(|t| t.0),
                "namespace" => r.namespace = map.next_value::<Option<Str<'de>>>()?.map(|t| t.0),
                "operation" => r.operation = map.next_value::<Str<'de>>()?.0,
                "userInfo" => r.user_info = map.next_value()?,
                "object" => {
                    let rollout_write = self.endpoint == Endpoint::Validate
                        && r.judged_kind() == Some(Kind::Rollout)
                        && !r.is_status_write();
                    r.object = Some(if rollout_write {
                        ObjectIn::Rollout(map.next_value::<Rollout>()?)
                    } else {
                        match map.next_value::<Option<ObjectIn<'de>>>()? {
                            Some(object) => object,
                            None => continue,
                        }
                    });
                }
                "oldObject" => r.old_object = map.next_value()?,
                _ => r.dry_run = map.next_value()?,
            }
        }
        Ok(r)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct GroupVersionKind<'a> {
    #[serde(borrow)]
    group: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UserInfo<'a> {
    #[serde(borrow)]
    username: Cow<'a, str>,
}

// ---------------------------------------------------------------------------------------------
// Wire format (response)

/// Why a request is refused.
struct Denial {
    code: u16,
    reason: &'static str,
    message: String,
}

impl Denial {
    /// Findings at or above the deny threshold in `enforce` mode.
    fn invalid(message: String) -> Self {
        Self {
            code: 422,
            reason: "Invalid",
            message,
        }
    }
}

/// What a review decided, before encoding.
#[derive(Default)]
struct Decision {
    denied: Option<Denial>,
    patch: Option<json_patch::Patch>,
    warnings: Vec<String>,
    rules: Vec<&'static str>,
    /// The object could not be read into its view.
    unreadable: bool,
}

impl Decision {
    fn outcome(&self) -> Outcome {
        if self.denied.is_some() {
            Outcome::Denied
        } else if self.patch.is_some() {
            Outcome::Mutated
        } else if !self.warnings.is_empty() {
            Outcome::Warned
        } else {
            Outcome::Allowed
        }
    }
}

impl Admission {
    pub fn new(policy: Policy, catalog: Arc<dyn Catalog + Send + Sync>) -> Self {
        Self { policy, catalog }
    }

    fn config(&self) -> Config {
        // Warnings are one line each: the long explanations are never sent.
        Config {
            version: self.policy.version,
            explain: false,
        }
    }

    /// The rules on a Rollout, against one view of the templates.
    fn evaluate(&self, rollout: &Rollout) -> Evaluation {
        let config = self.config();
        let mut eval = Evaluation::default();
        self.catalog
            .with_templates(&mut |store| eval = check_rollout(rollout, store, &config));
        eval
    }

    fn decide(&self, endpoint: Endpoint, req: &mut Request<'_>) -> Decision {
        // Never patch or judge deletes (a patch on DELETE is a 500 for the user).
        let Some(kind) = req.judged_kind() else {
            return Decision::default();
        };
        let Some(object) = req.object.take() else {
            return Decision {
                warnings: vec![
                    "rollout-guard: the review carries no object; nothing was checked".into(),
                ],
                ..Decision::default()
            };
        };
        let req = &*req;
        let status_write = req.is_status_write();
        // What the settings' annotations said that was not understood.
        let mut notes = Vec::new();
        let result = match (endpoint, kind, status_write, object) {
            (Endpoint::Validate, _, true, _) => Ok(Decision::default()),
            (Endpoint::Validate, Kind::Rollout, false, object) => {
                self.validate_rollout(object, req, &mut notes)
            }
            // A view is read ahead only when validating a Rollout write (`decode_review`).
            (_, _, _, ObjectIn::Rollout(_)) => Ok(Decision::default()),
            (Endpoint::Validate, _, false, ObjectIn::Raw(raw)) => {
                self.validate_template(raw, kind, req, &mut notes)
            }
            (Endpoint::Mutate, Kind::Rollout, true, ObjectIn::Raw(raw)) => {
                self.guard_status(raw, req, &mut notes)
            }
            (Endpoint::Mutate, Kind::Rollout, false, ObjectIn::Raw(raw)) => {
                self.guard_rollout(raw, req, &mut notes)
            }
            (Endpoint::Mutate, _, true, _) => Ok(Decision::default()),
            (Endpoint::Mutate, _, false, ObjectIn::Raw(raw)) => {
                self.guard_template(raw, req, &mut notes)
            }
        };
        // serde's message quotes the offending value, which can be any length: cut here, since
        // within the budget warnings go out whole.
        let mut decision = result.unwrap_or_else(|e| Decision {
            warnings: vec![truncate(
                format!("rollout-guard: could not read the {kind}: {e}; it was not checked"),
                WARNING_MAX,
            )],
            unreadable: true,
            ..Decision::default()
        });
        // Every line once through the budget: the notes first, then what the review said.
        let said = std::mem::take(&mut decision.warnings);
        decision.warnings = budget(notes.into_iter().chain(said));
        decision
    }

    fn validate_rollout(
        &self,
        object: ObjectIn<'_>,
        req: &Request<'_>,
        notes: &mut Vec<String>,
    ) -> serde_json::Result<Decision> {
        let mut rollout = match object {
            ObjectIn::Rollout(view) => view,
            ObjectIn::Raw(raw) => view::<Rollout>(raw, req.lean)?,
        };
        fill_namespace(&mut rollout.metadata, req);
        let Some(mut mode) = self.mode_for(&rollout.metadata, req, notes) else {
            return Ok(Decision::default());
        };
        // The controller only carries out a spec someone else wrote (it sets the revision
        // annotation on each new revision, for one): refusing its writes would stall the
        // rollout, not change the spec. It gets the findings as warnings.
        if req.user_info.username == self.policy.controller_user {
            mode = Mode::Warn;
        }
        let findings = self.evaluate(&rollout).findings;
        let subject = ObjectRef::new(Kind::Rollout, &rollout.metadata);
        // With hold on, the mutating webhook has already held the timed pauses the old spec
        // trapped: the old spec is also compared as hold leaves it, which is what a no-op edit
        // would store. Hold skips a canary in flight (changing its steps restarts it), so
        // there a no-op edit stores the old spec itself. Its notes were said on the mutating
        // side.
        let hold = |old_raw: RawJson<'_>, old_tree: &mut Value| {
            let on = self
                .guards_for(&rollout.metadata, req, &mut Vec::new())
                .contains(Guard::Hold);
            on && view::<Rollout>(old_raw, req.lean).is_ok_and(|mut old| {
                fill_namespace(&mut old.metadata, req);
                let Some(trap) = self.evaluate(&old).trap else {
                    return false;
                };
                let before = old_tree.clone();
                guards::hold(old_tree, &trap).is_some()
                    && !would_restart_canary(&before, old_tree, &before)
            })
        };
        let unchanged = would_deny(&findings, mode) && spec_unchanged(req, Kind::Rollout, hold)?;
        Ok(judge(&findings, unchanged, &subject, mode, Vec::new()))
    }

    fn validate_template(
        &self,
        raw: RawJson<'_>,
        kind: Kind,
        req: &Request<'_>,
        notes: &mut Vec<String>,
    ) -> serde_json::Result<Decision> {
        let mut template: AnalysisTemplate = view(raw, req.lean)?;
        if kind == Kind::AnalysisTemplate {
            fill_namespace(&mut template.metadata, req);
        }
        let Some(mode) = self.mode_for(&template.metadata, req, notes) else {
            return Ok(Decision::default());
        };
        let cfg = self.config();
        let findings = check_template(&template, kind, self.catalog.as_ref(), &cfg);
        let subject = ObjectRef::new(kind, &template.metadata);
        // With fail-closed on, the mutating webhook has already edited this object: its spec
        // is compared with the old one as fail-closed would leave it too. The guard's own
        // notes were said on the mutating side.
        let fail_closed = |_: RawJson<'_>, old_tree: &mut Value| {
            self.guards_for(&template.metadata, req, &mut Vec::new())
                .contains(Guard::FailClosed)
                && guards::fail_closed(old_tree).is_some()
        };
        let unchanged = would_deny(&findings, mode) && spec_unchanged(req, kind, fail_closed)?;
        let namespace = template.metadata.namespace.clone().unwrap_or_default();
        let name = subject.name.clone();
        // Templates are read when a run starts, so an edit can make existing Rollouts
        // dangerous: re-check the ones that use it, as they would be with this version.
        let overlay = Overlay {
            base: self.catalog.as_ref(),
            kind,
            namespace: &namespace,
            template: Arc::new(template),
        };
        let mut extra = Vec::new();
        let trap = |f: &&Finding| {
            matches!(
                f.rule,
                Rule::InconclusiveTimedPause | Rule::InconclusivePromotion
            )
        };
        for rollout in self.catalog.rollouts_referencing(kind, &namespace, &name) {
            let after = check_rollout(&rollout, &overlay, &cfg);
            if !after.findings.iter().any(|f| trap(&f)) {
                continue;
            }
            let before = check_rollout(&rollout, self.catalog.as_ref(), &cfg);
            for f in after.findings.iter().filter(trap) {
                let already = before
                    .findings
                    .iter()
                    .any(|b| b.rule == f.rule && b.path == f.path);
                let verb = if already {
                    "stays dangerous"
                } else {
                    "becomes dangerous"
                };
                extra.push((
                    f.rule,
                    format!(
                        "{}: {} {verb} with this template: {}: {}",
                        f.rule, f.object, f.path, f.message
                    ),
                ));
            }
        }
        Ok(judge(&findings, unchanged, &subject, mode, extra))
    }

    fn guard_rollout(
        &self,
        raw: RawJson<'_>,
        req: &Request<'_>,
        notes: &mut Vec<String>,
    ) -> serde_json::Result<Decision> {
        let mut rollout: Rollout = view(raw, req.lean)?;
        fill_namespace(&mut rollout.metadata, req);
        if !self
            .guards_for(&rollout.metadata, req, notes)
            .contains(Guard::Hold)
        {
            return Ok(Decision::default());
        }
        let eval = self.evaluate(&rollout);
        // A record of held pauses is kept to the steps still held, also when there is nothing
        // (more) to hold; without one and without a trap there is nothing to do.
        let recorded = rollout
            .metadata
            .annotations
            .contains_key(guards::HELD_PAUSES_ANNOTATION);
        // In flight, a record only the stored object still has matters too (a replace that
        // drops it): `hold_as_stored` below. Its metadata and status are all that says so.
        let stored_record = || {
            req.old_object.is_some_and(|old| {
                view::<RolloutState>(old, req.lean).is_ok_and(|old| {
                    old.status.as_ref().is_some_and(RolloutStatus::in_flight)
                        && old
                            .metadata
                            .annotations
                            .contains_key(guards::HELD_PAUSES_ANNOTATION)
                })
            })
        };
        if eval.trap.is_none() && !recorded && !stored_record() {
            return Ok(Decision::default());
        }
        let original = guard_tree(raw, Part::RolloutSpec)?;
        let old = match req.old_object {
            Some(old_raw) => Some((
                old_raw,
                guard_tree(old_raw, Part::RolloutSpec).map_err(before_change)?,
            )),
            None => None,
        };
        // A record the edit of the steps left as it was follows its steps first.
        let mut base = original.clone();
        let carried = old
            .as_ref()
            .and_then(|(_, old)| guards::carry_held(&mut base, old));
        let with_carried = |said: Option<String>| {
            let said: Vec<String> = carried.iter().cloned().chain(said).collect();
            said.join("; ")
        };
        // The steps are left as they are: only the record changes, if it has to.
        let record_only = || {
            let mut pruned = base.clone();
            let said = with_carried(guards::prune_held(&mut pruned));
            patched(&original, &pruned, &said)
        };
        let mut held = base.clone();
        let trapped = eval.trap.is_some();
        let said = eval.trap.and_then(|trap| guards::hold(&mut held, &trap));
        if let Some((old_raw, old)) = &old {
            // The pod templates last: only read when the steps and status leave it open.
            if said.is_some()
                && would_restart_canary(&original, &held, old)
                && pod_templates_agree(raw, *old_raw, req.lean, Zeros::Absent)?
            {
                // Sanitized with every other line in `decide`'s budget.
                let skipped = format!(
                    "{}: hold skipped: converting the pauses now would restart the in-flight canary; it applies to the next revision",
                    Rule::InconclusiveTimedPause
                );
                let mut decision = record_only();
                decision.warnings.push(skipped);
                decision.rules = vec![Rule::InconclusiveTimedPause.id()];
                return Ok(decision);
            }
            // A sync sending Git's steps to a canary in flight, also one no longer matching
            // D1: the pauses the stored record holds are held again when that keeps the steps
            // as stored (any change of them restarts the canary).
            let steps = guards::STEPS;
            if in_flight(old)
                && held.pointer(steps) != old.pointer(steps)
                && original.pointer(steps) != old.pointer(steps)
                && let Some((as_stored, said)) = guards::hold_as_stored(&base, old, trapped)
                && pod_templates_agree(raw, *old_raw, req.lean, Zeros::Absent)?
            {
                return Ok(patched(&original, &as_stored, &said));
            }
        }
        let Some(said) = said else {
            return Ok(record_only());
        };
        Ok(patched(&original, &held, &with_carried(Some(said))))
    }

    fn guard_status(
        &self,
        raw: RawJson<'_>,
        req: &Request<'_>,
        notes: &mut Vec<String>,
    ) -> serde_json::Result<Decision> {
        // Humans (kubectl argo rollouts promote, the dashboard, Argo CD actions) pass through.
        if req.operation != "UPDATE" || req.user_info.username != self.policy.controller_user {
            return Ok(Decision::default());
        }
        let Some(old_raw) = req.old_object else {
            return Ok(Decision::default());
        };
        let new_view: RolloutState = view(raw, req.lean)?;
        if !self
            .guards_for(&new_view.metadata, req, notes)
            .contains(Guard::Status)
        {
            return Ok(Decision::default());
        }
        let old_view: RolloutState = view(old_raw, req.lean).map_err(before_change)?;
        if !new_view.paused_inconclusive() && !old_view.paused_inconclusive() {
            return Ok(Decision::default());
        }
        let original = guard_tree(raw, Part::Status)?;
        let old = guard_tree(old_raw, Part::Status).map_err(before_change)?;
        let mut guarded = original.clone();
        let Some(said) = guards::status_guard(&mut guarded, &old) else {
            return Ok(Decision::default());
        };
        Ok(patched(&original, &guarded, &said))
    }

    fn guard_template(
        &self,
        raw: RawJson<'_>,
        req: &Request<'_>,
        notes: &mut Vec<String>,
    ) -> serde_json::Result<Decision> {
        let view: AnalysisTemplate = self::view(raw, req.lean)?;
        if !self
            .guards_for(&view.metadata, req, notes)
            .contains(Guard::FailClosed)
        {
            return Ok(Decision::default());
        }
        let original = guard_tree(raw, Part::Whole)?;
        let mut closed = original.clone();
        let Some(said) = guards::fail_closed(&mut closed) else {
            return Ok(Decision::default());
        };
        Ok(patched(&original, &closed, &said))
    }

    /// The mode for an object, `None` when it opted out: its own annotation, else its
    /// namespace's, else `--mode`. A value not understood is passed over, with a note.
    fn mode_for(
        &self,
        meta: &ObjectMeta,
        req: &Request<'_>,
        notes: &mut Vec<String>,
    ) -> Option<Mode> {
        let parse = |text: &str| match text.trim().to_ascii_lowercase().as_str() {
            "off" => Some(None),
            "warn" => Some(Some(Mode::Warn)),
            "enforce" => Some(Some(Mode::Enforce)),
            _ => None,
        };
        self.setting(
            meta,
            req,
            MODE_ANNOTATION,
            parse,
            notes,
            "warn, enforce or off",
        )
        .unwrap_or(Some(self.policy.mode))
    }

    /// The guards for an object: its own annotation, else its namespace's, else `--guards`.
    fn guards_for(
        &self,
        meta: &ObjectMeta,
        req: &Request<'_>,
        notes: &mut Vec<String>,
    ) -> GuardSet {
        let parse = |text: &str| text.parse::<GuardSet>().ok();
        self.setting(
            meta,
            req,
            GUARDS_ANNOTATION,
            parse,
            notes,
            "none, auto, or a list of status, hold and fail-closed",
        )
        .map_or(self.policy.guards, |set| set.resolve(self.policy.version))
    }

    /// A setting from the object's annotation `key`, else from its namespace's. A value `parse`
    /// does not understand is passed over with a note saying so.
    fn setting<T>(
        &self,
        meta: &ObjectMeta,
        req: &Request<'_>,
        key: &str,
        parse: impl Fn(&str) -> Option<T>,
        notes: &mut Vec<String>,
        expected: &str,
    ) -> Option<T> {
        let mut not_understood = |place: &str, text: &str| {
            // Sanitized with every other line in `decide`'s budget.
            notes.push(format!(
                "rollout-guard: {place} annotation {key}: {:?} is not understood (expected {expected}); ignored",
                truncate(text.to_owned(), 64)
            ));
        };
        if let Some(text) = meta.annotation(key) {
            match parse(text) {
                Some(value) => return Some(value),
                None => not_understood("the object's", text),
            }
        }
        let namespace = meta
            .namespace
            .as_deref()
            .filter(|ns| !ns.is_empty())
            .or(req.namespace.as_deref())?;
        let text = self.catalog.namespace_annotation(namespace, key)?;
        match parse(&text) {
            Some(value) => Some(value),
            None => {
                not_understood(&format!("namespace {namespace}'s"), &text);
                None
            }
        }
    }

    /// The AdmissionReview answer, written directly: a fixed envelope around the uid, the
    /// verdict and the texts. Field names and order are those of `admission.k8s.io/v1`
    /// `AdmissionResponse`; absent fields are left out, as the API server's own encoder does.
    fn encode(&self, uid: &str, decision: &Decision) -> Vec<u8> {
        use std::io::Write as _;
        let patch = decision
            .patch
            .as_ref()
            .filter(|_| decision.denied.is_none())
            .map(|patch| {
                let bytes = serde_json::to_vec(patch).unwrap_or_else(|_| b"[]".to_vec());
                base64::engine::general_purpose::STANDARD.encode(bytes)
            });
        // Sized once: the envelope, the uid, and the texts (escapes aside).
        let texts: usize = decision.warnings.iter().map(|w| w.len() + 3).sum::<usize>()
            + decision.denied.as_ref().map_or(0, |d| d.message.len() + 96)
            + patch.as_ref().map_or(0, |p| p.len() + 40);
        let mut out = Vec::with_capacity(RESPONSE_HEAD.len() + uid.len() + 32 + texts);
        out.extend_from_slice(RESPONSE_HEAD);
        json::push_str(&mut out, uid);
        if let Some(denial) = &decision.denied {
            out.extend_from_slice(br#","allowed":false,"status":{"status":"Failure","code":"#);
            let _ = write!(out, "{}", denial.code);
            out.extend_from_slice(br#","reason":"#);
            json::push_str(&mut out, denial.reason);
            out.extend_from_slice(br#","message":"#);
            json::push_str(&mut out, &denial.message);
            out.push(b'}');
        } else {
            out.extend_from_slice(br#","allowed":true"#);
            if let Some(patch) = &patch {
                out.extend_from_slice(br#","patch":""#);
                out.extend_from_slice(patch.as_bytes());
                out.extend_from_slice(br#"","patchType":"JSONPatch""#);
            }
        }
        if let Some((first, rest)) = decision.warnings.split_first() {
            out.extend_from_slice(br#","warnings":["#);
            json::push_str(&mut out, first);
            for warning in rest {
                out.push(b',');
                json::push_str(&mut out, warning);
            }
            out.push(b']');
        }
        out.extend_from_slice(b"}}");
        out
    }
}

/// Everything of the answer up to the uid's value.
const RESPONSE_HEAD: &[u8] =
    br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"#;

impl Admission {
    /// The review with serde_json as the only reader (envelope and views): the reference the
    /// lean reader is compared with in tests and fuzzing. Same answers on every body serde_json
    /// accepts, and a 400 on every body it refuses, but for a malformed value the webhook
    /// never reads (see [`json`]).
    #[doc(hidden)]
    pub fn review_reference(&self, endpoint: Endpoint, body: &[u8]) -> Reply {
        self.answer(endpoint, body, serde_json::from_slice(body))
    }

    fn answer(
        &self,
        endpoint: Endpoint,
        body: &[u8],
        review: serde_json::Result<ReviewIn<'_>>,
    ) -> Reply {
        let review = match review {
            Ok(r) => r,
            Err(e) => return Reply::bad_request(&format!("body is not an AdmissionReview: {e}")),
        };
        let mut req = match review.into_request() {
            Ok(req) => req,
            Err(error) => return Reply::bad_request(&error),
        };
        req.body = body;
        let mut decision = self.decide(endpoint, &mut req);
        if decision.unreadable && req.lean && serde_json::from_slice::<IgnoredAny>(body).is_err() {
            // The object the lean pass skipped is not JSON after all: refuse the body as
            // serde_json does, with its message (only ever on this error path).
            return self.review_reference(endpoint, body);
        }
        let outcome = decision.outcome();
        let summary = Summary {
            uid: req.uid.as_ref().into(),
            kind: req.kind.kind.as_ref().into(),
            namespace: req.namespace.as_deref().unwrap_or_default().into(),
            name: req.name.as_deref().unwrap_or_default().into(),
            operation: req.operation.as_ref().into(),
            sub_resource: req.sub_resource.as_deref().unwrap_or_default().into(),
            dry_run: req.dry_run.unwrap_or(false),
            rules: std::mem::take(&mut decision.rules),
        };
        Reply {
            status: 200,
            body: self.encode(&req.uid, &decision),
            outcome,
            summary: Some(summary),
        }
    }
}

impl Reviewer for Admission {
    fn review(&self, endpoint: Endpoint, body: &[u8]) -> Reply {
        self.answer(endpoint, body, decode_review(body, endpoint))
    }

    /// Declines template validations: each re-checks every cached Rollout that references the
    /// template (31 ms with 10,000 of them: `template_write` in benches/engine.rs), too long
    /// for an async worker. They are rare, and a template body is small, so reading it twice
    /// costs little.
    fn review_inline(&self, endpoint: Endpoint, body: &[u8]) -> Option<Reply> {
        let review = decode_review(body, endpoint);
        let rechecks = endpoint == Endpoint::Validate
            && review
                .as_ref()
                .ok()
                .and_then(|r| r.request.as_ref())
                .is_some_and(Request::rechecks_rollouts);
        (!rechecks).then(|| self.answer(endpoint, body, review))
    }

    fn overloaded(&self, endpoint: Endpoint, body: &[u8]) -> Reply {
        // The envelope only: the objects stay raw (skipped, never read into views).
        let review = json::from_slice::<ReviewIn<'_>>(body)
            .or_else(|_| serde_json::from_slice::<ReviewIn<'_>>(body));
        match review.map(ReviewIn::into_request) {
            Err(_) => Reply::bad_request("body is not an AdmissionReview"),
            Ok(Err(error)) => Reply::bad_request(&error),
            Ok(Ok(r)) => {
                // In enforce mode an unchecked write is refused (retryable, 429), as the
                // operator asked for; otherwise it passes with a warning, like failurePolicy
                // Ignore. Guards are skipped either way: no patch without a decision. The
                // controller's writes are never refused (see `validate_rollout`), and only
                // writes that would be judged are.
                let refused = endpoint == Endpoint::Validate
                    && self.policy.mode == Mode::Enforce
                    && r.judged_kind().is_some()
                    && !r.is_status_write()
                    && r.user_info.username != self.policy.controller_user;
                let decision = if refused {
                    Decision {
                        denied: Some(Denial {
                            code: 429,
                            reason: "TooManyRequests",
                            message: "rollout-guard is overloaded and could not check this request; retry".into(),
                        }),
                        ..Decision::default()
                    }
                } else {
                    Decision {
                        warnings: vec![
                            "rollout-guard: overloaded, this request was not checked".into(),
                        ],
                        ..Decision::default()
                    }
                };
                let body = self.encode(&r.uid, &decision);
                Reply {
                    status: 200,
                    body,
                    outcome: Outcome::Error,
                    // The uid, so the log line of a review left unchecked can be matched with
                    // the API server's audit events.
                    summary: Some(Summary {
                        uid: r.uid.as_ref().into(),
                        ..Summary::default()
                    }),
                }
            }
        }
    }

    fn ready(&self) -> bool {
        self.catalog.synced()
    }

    fn cache_sizes(&self) -> Vec<(&'static str, usize)> {
        self.catalog.sizes()
    }
}

/// What of an object a guard's JSON tree holds.
#[derive(Clone, Copy)]
enum Part {
    /// `status` alone: the status guard reads and edits nothing else.
    Status,
    /// `metadata` (without `managedFields`), `spec` without `template` and `status`: what hold
    /// reads and edits, and reads of the old object (its record, steps and status). The pod
    /// template is compared on its own ([`pod_templates_agree`]).
    RolloutSpec,
    /// `spec` without `template`, and `status`: what an update's spec is compared on
    /// ([`spec_unchanged`]).
    RolloutBefore,
    /// All but `metadata.managedFields`: a template, for fail-closed.
    Whole,
}

/// The part of an object a guard edits and diffs, as a JSON tree.
///
/// A patch is the difference between two such trees, so what they leave out is never touched,
/// and no guard reads it. What is left out is what makes trees big: every small JSON map costs
/// a whole B-tree node, so FieldsV1 `managedFields` or a pod template with thousands of
/// variables take tens of times their size. A 1.4 MB object with large managedFields grew to
/// about 150 MB across the hold guard's trees when they held the whole object.
fn guard_tree(raw: RawJson<'_>, part: Part) -> serde_json::Result<Value> {
    /// Where in the object a value is read.
    #[derive(Clone, Copy)]
    enum At {
        Top(Part),
        Metadata,
        Spec(Part),
        Inside,
    }

    impl<'de> DeserializeSeed<'de> for At {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            match self {
                At::Inside => Value::deserialize(d),
                _ => d.deserialize_any(self),
            }
        }
    }
    impl<'de> Visitor<'de> for At {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(match self {
                At::Metadata => "metadata as an object",
                At::Spec(_) => "spec as an object",
                _ => "an object",
            })
        }
        fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut fields = serde_json::Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let next = match (self, key.as_str()) {
                    (At::Top(Part::Status), "status") => Some(At::Inside),
                    (At::Top(Part::Status), _) => None,
                    (At::Top(Part::RolloutBefore), "metadata") => None,
                    (At::Top(_), "metadata") => Some(At::Metadata),
                    (At::Top(part @ (Part::RolloutSpec | Part::RolloutBefore)), "spec") => {
                        Some(At::Spec(part))
                    }
                    (At::Top(Part::RolloutSpec | Part::RolloutBefore), "status") => {
                        Some(At::Inside)
                    }
                    (At::Top(Part::RolloutSpec | Part::RolloutBefore), _) => None,
                    (At::Metadata, "managedFields") => None,
                    (At::Spec(Part::RolloutSpec | Part::RolloutBefore), "template") => None,
                    _ => Some(At::Inside),
                };
                match next {
                    Some(at) => {
                        let value = map.next_value_seed(at)?;
                        fields.insert(key, value);
                    }
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(Value::Object(fields))
        }
    }

    let mut de = serde_json::Deserializer::from_str(raw.get());
    let tree = At::Top(part).deserialize(&mut de)?;
    de.end()?;
    Ok(tree)
}

/// How two pod templates are compared when their texts differ: both ways leave out nulls and
/// empty objects and lists; they differ on Go zero values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Zeros {
    /// `false`, `""`, `0` read as absent, as Go decodes them into a non-pointer field: for
    /// the hold guard, which must not restart a canary when no new revision starts.
    Absent,
    /// Zero values count: a pointer field (`automountServiceAccountToken: false`) or a map
    /// entry (a label `x: ""`) does change Argo's pod hash. For the enforce ratchet, which must
    /// not let a new revision of a flagged Rollout through as unchanged.
    Kept,
}

/// Whether two objects' pod templates (`spec.template`) are the same where it counts
/// ([`Significant`], zero values read as `zeros` says). The same text is the same template;
/// only when the texts differ are the templates read, into compact trees.
fn pod_templates_agree<'a>(
    new: RawJson<'a>,
    old: RawJson<'a>,
    lean: bool,
    zeros: Zeros,
) -> serde_json::Result<bool> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Object<'a> {
        #[serde(borrow)]
        spec: Option<Spec<'a>>,
    }
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Spec<'a> {
        #[serde(borrow)]
        template: Option<RawJson<'a>>,
    }
    let template = |raw: RawJson<'a>| -> serde_json::Result<Option<RawJson<'a>>> {
        view::<Object<'_>>(raw, lean).map(|o| o.spec.and_then(|s| s.template))
    };
    let (new, old) = (template(new)?, template(old)?);
    if let (Some(a), Some(b)) = (new, old)
        && a.get() == b.get()
    {
        return Ok(true);
    }
    let significant = |raw: Option<RawJson<'_>>| match (raw, zeros) {
        (Some(raw), Zeros::Absent) => {
            serde_json::from_str::<Significant<true>>(raw.get()).map(|s| s.0)
        }
        (Some(raw), Zeros::Kept) => {
            serde_json::from_str::<Significant<false>>(raw.get()).map(|s| s.0)
        }
        (None, _) => Ok(None),
    };
    Ok(significant(new)? == significant(old)?)
}

/// Reads a view of an object the envelope kept raw: with the lean reader when it read the
/// envelope (and with serde_json when the lean reader leaves it, which also gives the error
/// message), else with serde_json alone.
fn view<'a, T: Deserialize<'a>>(raw: RawJson<'a>, lean: bool) -> serde_json::Result<T> {
    if lean && let Ok(view) = json::from_str(raw.get()) {
        return Ok(view);
    }
    serde_json::from_str(raw.get()).map_err(|e| at_field::<T>(raw.get(), e))
}

/// An error reading `oldObject`, said to be about it: the warning otherwise reads as if the
/// object written could not be read.
fn before_change(error: serde_json::Error) -> serde_json::Error {
    <serde_json::Error as serde::de::Error>::custom(format!(
        "its state before this change (oldObject): {error}"
    ))
}

/// A decoding error at the field it is about (`spec.strategy.canary.steps: invalid type: ...`)
/// instead of a line and column of the request body, which the user never sees. Read again
/// with the path tracked, only when the object could not be read.
fn at_field<'a, T: Deserialize<'a>>(text: &'a str, error: serde_json::Error) -> serde_json::Error {
    let mut de = serde_json::Deserializer::from_str(text);
    let Err(tracked) = serde_path_to_error::deserialize::<_, T>(&mut de) else {
        return error;
    };
    let path = tracked.path().to_string();
    let inner = tracked.into_inner();
    let message = inner.to_string();
    let position = format!(" at line {} column {}", inner.line(), inner.column());
    let message = message.strip_suffix(&position).unwrap_or(&message);
    <serde_json::Error as serde::de::Error>::custom(format!("{path}: {message}"))
}

fn kind_of(kind: &str) -> Option<Kind> {
    Kind::from_type("argoproj.io/v1alpha1", kind)
}

/// CREATE requests may lack `metadata.namespace`; the request carries it.
fn fill_namespace(meta: &mut ObjectMeta, req: &Request<'_>) {
    if meta.namespace.as_deref().unwrap_or_default().is_empty() {
        meta.namespace = req.namespace.as_deref().map(Into::into);
    }
    if meta.name.is_none() {
        meta.name = req.name.as_deref().map(Into::into);
    }
}

/// Whether `mode` refuses a finding of this severity.
fn deny_class(f: &Finding, mode: Mode) -> bool {
    mode == Mode::Enforce && f.severity >= Severity::DENY_THRESHOLD
}

fn would_deny(findings: &[Finding], mode: Mode) -> bool {
    findings.iter().any(|f| deny_class(f, mode))
}

/// Whether an UPDATE leaves the object's spec as it was, but for pausing, resuming or
/// restarting a Rollout (`spec.paused`, `spec.restartAt`): then enforce mode does not refuse
/// it for findings the object already had, like Kubernetes' validation ratcheting (see
/// [`judge`]). Anything else in the spec counts, a new revision (pod template) above all:
/// that starts a canary into the flagged pause. A pod template that only gains nulls or
/// empty values is no new revision ([`pod_templates_agree`]).
///
/// The spec also counts as unchanged when it is the old one as the object's guard leaves it:
/// `guard` applies hold (Rollouts) or fail-closed (templates) to the old object's tree, when
/// that guard is on for the object, and says whether it changed anything. The mutating webhook
/// edits the object before this review sees it, so a label edit of an object stored before
/// the guard was switched on arrives with the guard's edit in its spec.
///
/// Asked only when enforce mode would deny, so the usual review never reads `oldObject`:
/// the body is read again here, keeping both objects raw. A body serde_json refuses is an
/// error (the review is then answered as the reference reader answers it); an object or old
/// object that is not shaped like one is a change.
fn spec_unchanged(
    req: &Request<'_>,
    kind: Kind,
    guard: impl FnOnce(RawJson<'_>, &mut Value) -> bool,
) -> serde_json::Result<bool> {
    #[derive(Deserialize)]
    struct Review<'a> {
        #[serde(borrow)]
        request: Option<Objects<'a>>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Objects<'a> {
        #[serde(borrow, default)]
        object: Option<RawJson<'a>>,
        #[serde(borrow, default)]
        old_object: Option<RawJson<'a>>,
    }
    if req.operation != "UPDATE" {
        return Ok(false);
    }
    let review: Review<'_> = serde_json::from_slice(req.body)?;
    let Some((new, old)) = review.request.and_then(|r| r.object.zip(r.old_object)) else {
        return Ok(false);
    };
    let part = if kind == Kind::Rollout {
        Part::RolloutBefore
    } else {
        Part::Whole
    };
    let tree = |raw: RawJson<'_>| guard_tree(raw, part).ok();
    let spec = |tree: &Value| -> Option<Value> {
        let mut spec = tree.get("spec")?.clone();
        if kind == Kind::Rollout {
            let fields = spec.as_object_mut()?;
            fields.remove("paused");
            fields.remove("restartAt");
        }
        Some(spec)
    };
    let Some(new_spec) = tree(new).as_ref().and_then(spec) else {
        return Ok(false);
    };
    // Read once: the guard below edits this tree in place.
    let Some(mut old_tree) = tree(old) else {
        return Ok(false);
    };
    let agrees = |tree: &Value| spec(tree).is_some_and(|old_spec| old_spec == new_spec);
    let templates_agree = || {
        kind != Kind::Rollout
            || pod_templates_agree(new, old, req.lean, Zeros::Kept).unwrap_or(false)
    };
    // The guard last: for a Rollout it evaluates the old object.
    Ok(if agrees(&old_tree) {
        templates_agree()
    } else {
        templates_agree() && guard(old, &mut old_tree) && agrees(&old_tree)
    })
}

/// Turns findings into a verdict: in `enforce`, findings at or above the deny threshold deny;
/// everything else becomes a warning (one line each, rule id first, deterministic order).
/// With `unchanged` ([`spec_unchanged`]: an UPDATE that leaves the spec as it was, a promote,
/// a restart or a label edit of an object that was flagged before) nothing is refused: the
/// findings were there before the update and stay warnings, under a first line saying why.
fn judge(
    findings: &[Finding],
    unchanged: bool,
    subject: &ObjectRef,
    mode: Mode,
    extra: Vec<(Rule, String)>,
) -> Decision {
    let mut rules: Vec<&'static str> = findings
        .iter()
        .map(|f| f.rule.id())
        .chain(extra.iter().map(|(r, _)| r.id()))
        .collect();
    rules.sort_unstable();
    rules.dedup();
    // `rule: [object ]path: message`, the object named only when it is not the subject (a
    // template's metric). Written into one String per finding.
    let describe = |out: &mut String, f: &Finding| {
        use std::fmt::Write as _;
        let _ = if &f.object == subject {
            write!(out, "{}: {}", f.path, f.message)
        } else {
            write!(out, "{} {}: {}", f.object, f.path, f.message)
        };
    };
    let denies = |f: &&Finding| deny_class(f, mode) && !unchanged;
    let kept = findings
        .iter()
        .filter(|f| deny_class(f, mode) && unchanged)
        .count();
    let ratchet = (kept > 0).then(|| {
        format!(
            "rollout-guard: mode enforce: this update leaves the spec as it was (but for \
             pausing, restarting and what a guard rewrites anyway), so the {kept} finding(s) it \
             already had do not refuse it"
        )
    });
    // Budgeted once, with any other lines, in `decide`.
    let warnings = ratchet
        .into_iter()
        .chain(findings.iter().filter(|f| !denies(f)).map(|f| {
            let mut line =
                String::with_capacity(f.rule.id().len() + f.path.len() + f.message.len() + 8);
            line.push_str(f.rule.id());
            line.push_str(": ");
            describe(&mut line, f);
            line
        }))
        .chain(extra.into_iter().map(|(_, l)| l))
        .collect();
    let deny: Vec<&Finding> = findings.iter().filter(denies).collect();
    let denied = (!deny.is_empty()).then(|| {
        let mut message = format!(
            "rollout-guard denied this {} (mode enforce): ",
            subject.kind
        );
        let mut shown = 0;
        for f in &deny {
            let mut item = format!("[{}] ", f.rule);
            describe(&mut item, f);
            // Each reason is cut like a warning, so that one long text (a message quoting
            // what the user wrote) cannot crowd out every reason: the first always fits.
            let item = truncate(sanitize(item), WARNING_MAX);
            if message.len() + item.len() + 2 > DENIAL_MAX - 120 {
                break;
            }
            if shown > 0 {
                message.push_str("; ");
            }
            message.push_str(&item);
            shown += 1;
        }
        if shown < deny.len() {
            message.push_str(&format!("; and {} more", deny.len() - shown));
        }
        message.push_str(&format!(
            ". To allow it anyway, annotate the object {MODE_ANNOTATION}: warn"
        ));
        Denial::invalid(message)
    });
    Decision {
        denied,
        warnings,
        rules,
        ..Decision::default()
    }
}

/// Keeps warnings within what the API server passes on intact: single lines, exact repeats
/// dropped. When they fit the total budget they go out whole, as the API server would pass
/// them; otherwise each is cut to 256 characters, as the API server would cut them, and those
/// past the budget are replaced by a last line saying how many were left out.
fn budget(lines: impl Iterator<Item = String>) -> Vec<String> {
    // Room for the line saying how many were left out (under 100 characters).
    let limit = WARNINGS_BUDGET - 100;
    let mut lines = lines.map(sanitize);
    // Whole while they fit (`whole` holds few lines: they fit in 4K characters); past the
    // budget, all of them again, cut.
    let mut whole: Vec<String> = Vec::new();
    let mut total = 0;
    while let Some(line) = lines.next() {
        if whole.contains(&line) {
            continue;
        }
        total += runes(&line);
        whole.push(line);
        if total > limit {
            return cut(whole.into_iter().chain(lines), limit);
        }
    }
    whole
}

/// Each line cut to 256 characters, exact repeats and lines the same as a kept one once cut
/// dropped, those past `limit` replaced by a count.
fn cut(lines: impl Iterator<Item = String>, limit: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut total = 0;
    // Distinct lines left out: past the budget, or the same as a kept one once cut.
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let (mut dropped, mut full) = (0, false);
    for line in lines {
        if !seen.insert(line.clone()) {
            continue;
        }
        let line = truncate(line, WARNING_MAX);
        // The same as a kept line once cut: left out, and the budget is not spent.
        if out.contains(&line) {
            dropped += 1;
            continue;
        }
        full = full || total + runes(&line) > limit;
        if full {
            dropped += 1;
            continue;
        }
        total += runes(&line);
        out.push(line);
    }
    if dropped > 0 {
        out.push(format!("rollout-guard: {dropped} more finding(s) not shown; run `rollout-guard check` on the manifest for all"));
    }
    out
}

/// Characters as the API server counts them (runes).
fn runes(text: &str) -> usize {
    text.chars().count()
}

/// The API server silently drops warnings with control characters: each becomes a space.
fn sanitize(text: String) -> String {
    // Control characters are C0 (below 0x20), DEL, and C1 (U+0080..U+009F, UTF-8 0xC2 0x80..):
    // a text without those bytes has none.
    // (A fold without an early exit: the compiler checks many bytes per instruction.)
    let plain = !text
        .bytes()
        .fold(false, |any, b| any | (b < 0x20) | (b == 0x7f) | (b == 0xc2));
    if plain {
        return text;
    }
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Cuts `s` to at most `max` characters (at least 3), the last three `...`.
fn truncate(mut s: String, max: usize) -> String {
    let max = max.max(3);
    // A text of at most `max` bytes has at most `max` characters.
    if s.len() > max
        && let Some((cut, _)) = s.char_indices().nth(max - 3)
        && runes(&s[cut..]) > 3
    {
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// A guard's edit as a patch, with the guard's own account of it as the warning. Guards act
/// on the Inconclusive trap, so their reviews count under its rule id in metrics and logs.
fn patched(original: &Value, edited: &Value, said: &str) -> Decision {
    let patch = json_patch::diff(original, edited);
    if patch.0.is_empty() {
        return Decision::default();
    }
    Decision {
        patch: Some(patch),
        warnings: vec![format!("rollout-guard {said}")],
        rules: vec![Rule::InconclusiveTimedPause.id()],
        ..Decision::default()
    }
}

/// What of a pod template counts: Argo hashes the template it decoded into Go structs, where
/// `resources: {}`, `args: null`, `serviceAccountName: ""` or `hostNetwork: false` is the same
/// as leaving the field out, so such an edit starts no new revision. Read without nulls and
/// empty objects or lists, and with `ZEROS_ABSENT` without zero values (`false`, `""`, `0`);
/// `None` when nothing is left. Two templates agree when their `Significant`s are equal. (A
/// pointer field's zero, such as `automountServiceAccountToken: false`, a map entry with an
/// empty value, or an empty list may still change Go's hash: which side to err on is the
/// caller's, [`Zeros`].)
///
/// The tree is compact: objects are vectors sorted by key, not B-trees, whose every small map
/// costs a whole node (a template of 40,000 variables: about 45 MB as `serde_json::Value`).
struct Significant<const ZEROS_ABSENT: bool>(Option<Node>);

#[derive(Debug, PartialEq)]
enum Node {
    Bool(bool),
    Number(serde_json::Number),
    String(Box<str>),
    /// Positions matter in a list: an emptied item stays, as `Null`.
    Array(Vec<Node>),
    Null,
    /// Sorted by key, each key once (the last one given, as serde_json keeps).
    Object(Vec<(Box<str>, Node)>),
}

impl<'de, const ZEROS_ABSENT: bool> Deserialize<'de> for Significant<ZEROS_ABSENT> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SignificantVisitor::<ZEROS_ABSENT>)
            .map(Significant)
    }
}

struct SignificantVisitor<const ZEROS_ABSENT: bool>;

impl<'de, const ZEROS_ABSENT: bool> Visitor<'de> for SignificantVisitor<ZEROS_ABSENT> {
    type Value = Option<Node>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    // With ZEROS_ABSENT, zero values read as absent, as Go decodes them into a non-pointer
    // field.
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok((v || !ZEROS_ABSENT).then_some(Node::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok((v != 0 || !ZEROS_ABSENT).then(|| Node::Number(v.into())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok((v != 0 || !ZEROS_ABSENT).then(|| Node::Number(v.into())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v)
            .filter(|_| v != 0.0 || !ZEROS_ABSENT)
            .map(Node::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((!v.is_empty() || !ZEROS_ABSENT).then(|| Node::String(v.into())))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Significant::<ZEROS_ABSENT>(item)) = seq.next_element()? {
            items.push(item.unwrap_or(Node::Null));
        }
        Ok((!items.is_empty()).then_some(Node::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields: Vec<(Box<str>, Option<Node>)> = Vec::new();
        while let Some(key) = map.next_key::<Box<str>>()? {
            let Significant::<ZEROS_ABSENT>(value) = map.next_value()?;
            fields.push((key, value));
        }
        // Stable: of a key given twice, the last stays last.
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(Box<str>, Node)> = Vec::with_capacity(fields.len());
        let mut fields = fields.into_iter().peekable();
        while let Some((key, value)) = fields.next() {
            if fields.peek().is_some_and(|(next, _)| *next == key) {
                continue;
            }
            if let Some(value) = value {
                kept.push((key, value));
            }
        }
        Ok((!kept.is_empty()).then_some(Node::Object(kept)))
    }
}

/// Changing the steps changes `status.currentStepHash`, which restarts an in-flight canary
/// from step 0. The hold guard may change them only when that restarts nothing new: the
/// result equals the stored steps, the update changes the steps or the pod template anyway,
/// or no canary is in flight (a fully promoted Rollout is not restarted). The caller compares
/// the pod templates last, when this says a canary would restart.
fn would_restart_canary(new: &Value, held: &Value, old: &Value) -> bool {
    let steps = guards::STEPS;
    if held.pointer(steps) == old.pointer(steps) || new.pointer(steps) != old.pointer(steps) {
        return false;
    }
    in_flight(old)
}

/// Whether a canary is in flight in `old` ([`canary_in_flight`]), read from its tree.
fn in_flight(old: &Value) -> bool {
    let status = |f: &str| {
        old.get("status")
            .and_then(|s| s.get(f))
            .and_then(Value::as_str)
    };
    canary_in_flight(status("currentPodHash"), status("stableRS"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission() -> Admission {
        Admission::new(
            Policy::default(),
            Arc::new(crate::catalog::SharedStore::default()),
        )
    }

    fn tree(text: &str, part: Part) -> serde_json::Result<Value> {
        guard_tree(serde_json::from_str::<RawJson<'_>>(text).unwrap(), part)
    }

    #[test]
    fn guard_trees_hold_only_what_the_guard_reads_and_edits() {
        let text = r#"{"apiVersion":"argoproj.io/v1alpha1","kind":"Rollout",
            "metadata":{"name":"web","managedFields":[{"manager":"kubectl","fieldsV1":{"f:spec":{}}}],
              "annotations":{"a":"1"}},
            "spec":{"replicas":2,"template":{"spec":{"containers":[]}},
              "strategy":{"canary":{"steps":[{"pause":{"duration":"1m"}}]}},
              "managedFields":"kept: only metadata's are left out"},
            "status":{"stableRS":"abc"}}"#;
        let full: Value = serde_json::from_str(text).unwrap();
        let mut whole = full.clone();
        whole["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        assert_eq!(tree(text, Part::Whole).unwrap(), whole);
        let mut spec = whole.clone();
        spec["spec"].as_object_mut().unwrap().remove("template");
        for top in ["apiVersion", "kind"] {
            spec.as_object_mut().unwrap().remove(top);
        }
        assert_eq!(tree(text, Part::RolloutSpec).unwrap(), spec);
        assert_eq!(
            tree(text, Part::RolloutBefore).unwrap(),
            serde_json::json!({"spec": spec["spec"], "status": full["status"]}),
            "the old object's tree leaves metadata out"
        );
        assert_eq!(
            tree(text, Part::Status).unwrap(),
            serde_json::json!({"status": full["status"]})
        );

        for odd in [
            r#"{"metadata":null,"spec":null}"#,
            r#"{}"#,
            r#"{"metadata":{}}"#,
        ] {
            let expected = serde_json::from_str::<Value>(odd).unwrap();
            assert_eq!(tree(odd, Part::RolloutSpec).unwrap(), expected);
        }
        let error = tree(r#"{"metadata":[1]}"#, Part::Whole)
            .unwrap_err()
            .to_string();
        assert!(error.contains("metadata as an object"), "{error}");
    }

    /// The first form of the comparison, kept as the reference: the template copied without
    /// nulls and empty objects or lists (emptied list items as nulls).
    fn significant_copy(value: Option<&Value>, zeros: Zeros) -> Option<Value> {
        let absent = zeros == Zeros::Absent;
        match value? {
            Value::Null => None,
            Value::Object(fields) => {
                let kept: serde_json::Map<String, Value> = fields
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), significant_copy(Some(v), zeros)?)))
                    .collect();
                (!kept.is_empty()).then_some(Value::Object(kept))
            }
            Value::Array(items) if items.is_empty() => None,
            Value::Array(items) => Some(Value::Array(
                items
                    .iter()
                    .map(|v| significant_copy(Some(v), zeros).unwrap_or(Value::Null))
                    .collect(),
            )),
            Value::Bool(false) if absent => None,
            Value::String(text) if absent && text.is_empty() => None,
            Value::Number(n) if absent && n.as_f64() == Some(0.0) => None,
            other => Some(other.clone()),
        }
    }

    /// Small JSON values over few keys and scalars, so that pairs often differ only in what
    /// does not count.
    fn small_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0u8..3).prop_map(Value::from),
            Just(serde_json::json!(1.0)),
            "[ab]?".prop_map(Value::from),
            Just(serde_json::json!({})),
            Just(serde_json::json!([])),
        ];
        leaf.prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map("[abc]", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn significant_trees_agree_with_the_copying_reference(
            a in small_json(),
            b in small_json(),
        ) {
            let absent = |v: &Value| serde_json::from_str::<Significant<true>>(&v.to_string()).unwrap().0;
            let kept = |v: &Value| serde_json::from_str::<Significant<false>>(&v.to_string()).unwrap().0;
            let copy = |v: &Value, zeros| significant_copy(Some(v), zeros);
            proptest::prop_assert_eq!(
                absent(&a) == absent(&b),
                copy(&a, Zeros::Absent) == copy(&b, Zeros::Absent),
                "{} against {}", a, b
            );
            proptest::prop_assert_eq!(
                kept(&a) == kept(&b),
                copy(&a, Zeros::Kept) == copy(&b, Zeros::Kept),
                "{} against {}", a, b
            );
            // And every value against itself with what does not count added.
            let pad = |extra: Value| {
                let mut padded = a.clone();
                if let Value::Object(fields) = &mut padded {
                    fields.insert("z".into(), extra);
                }
                padded
            };
            let empty = pad(serde_json::json!({"y": null, "x": []}));
            let zeros = pad(serde_json::json!({"y": null, "x": [], "w": false, "v": "", "u": 0}));
            proptest::prop_assert!(absent(&a) == absent(&zeros) && kept(&a) == kept(&empty));
            if a.is_object() {
                proptest::prop_assert!(kept(&a) != kept(&zeros));
            }
        }
    }

    #[test]
    fn pod_templates_agree_but_for_nulls_and_empty_values() {
        let agree_with = |a: Value, b: Value, zeros| {
            let (a, b) = (a.to_string(), b.to_string());
            pod_templates_agree(
                serde_json::from_str(&a).unwrap(),
                serde_json::from_str(&b).unwrap(),
                true,
                zeros,
            )
            .unwrap()
        };
        let agree = |a: Value, b: Value| {
            let answer = agree_with(a.clone(), b.clone(), Zeros::Absent);
            // Reading zeros as absent only ever makes more templates agree.
            if agree_with(a, b, Zeros::Kept) {
                assert!(answer);
            }
            answer
        };
        let with = |template: Value| serde_json::json!({"spec": {"template": template}});
        let base = serde_json::json!({"spec": {"containers": [{"name": "c", "image": "a"}]}});
        let padded = serde_json::json!({"metadata": {}, "spec": {"containers": [
            {"name": "c", "image": "a", "resources": {}, "args": null, "env": []}]}});
        assert!(agree(with(base.clone()), with(padded.clone())));
        assert!(agree(with(padded), with(base.clone())));
        let other_image =
            serde_json::json!({"spec": {"containers": [{"name": "c", "image": "b"}]}});
        assert!(!agree(with(base.clone()), with(other_image)));
        // Positions count: an emptied item is not a removed one.
        let two = serde_json::json!({"spec": {"containers": [{"name": "c", "image": "a"}, {}]}});
        assert!(!agree(with(base.clone()), with(two)));
        // A field added in one only.
        let extra = serde_json::json!({"spec": {"containers": [{"name": "c", "image": "a"}],
            "serviceAccountName": "x"}});
        assert!(!agree(with(base.clone()), with(extra)));
        assert!(agree(
            serde_json::json!({}),
            with(serde_json::json!({"metadata": null}))
        ));
        assert!(!agree(serde_json::json!({}), with(base.clone())));
        // Go zero values are absent values; any other value counts, in place.
        let field = |key: &str, value: Value| {
            let mut t = base.clone();
            t["spec"][key] = value;
            with(t)
        };
        assert!(agree(
            with(base.clone()),
            field("hostNetwork", false.into())
        ));
        assert!(agree(
            with(base.clone()),
            field("serviceAccountName", "".into())
        ));
        assert!(agree(with(base.clone()), field("priority", 0.into())));
        assert!(!agree(
            with(base.clone()),
            field("hostNetwork", true.into())
        ));
        assert!(!agree(with(base.clone()), field("priority", 1.into())));
        let args = |args: Value| field("args", args);
        assert!(agree(
            args(serde_json::json!(["", "x"])),
            args(serde_json::json!([null, "x"]))
        ));
        assert!(!agree(
            args(serde_json::json!(["x"])),
            args(serde_json::json!(["", "x"]))
        ));
        // Where zeros are kept (the enforce ratchet), each of those is a change: a pointer
        // field or a map entry (a label `x: ""`) changes Argo's pod hash.
        for (key, value) in [
            ("hostNetwork", Value::from(false)),
            ("automountServiceAccountToken", false.into()),
            ("priority", 0.into()),
            ("nodeSelector", serde_json::json!({"pool": ""})),
        ] {
            assert!(
                !agree_with(with(base.clone()), field(key, value), Zeros::Kept),
                "{key}"
            );
        }
        assert!(agree_with(with(base.clone()), with(base), Zeros::Kept));
    }

    #[test]
    fn the_answer_is_the_admission_response_json() {
        let plain = Decision {
            warnings: vec!["d1: spec.x: `a` can end Inconclusive".into()],
            ..Decision::default()
        };
        let body = admission().encode("0c9a-uid", &plain);
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": "0c9a-uid",
                    "allowed": true,
                    "warnings": ["d1: spec.x: `a` can end Inconclusive"],
                },
            })
        );
        // Texts with nothing to escape are copied as they are, and nothing else is spent.
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"0c9a-uid","allowed":true,"warnings":["d1: spec.x: `a` can end Inconclusive"]}}"#
        );

        // Quotes, backslashes and control characters are escaped as serde_json escapes them.
        let odd = "a \"quoted\" back\\slash\tand\u{1}control";
        let denied = Decision {
            denied: Some(Denial::invalid(odd.into())),
            patch: Some(json_patch::Patch(Vec::new())),
            warnings: vec![odd.into(), "second".into()],
            ..Decision::default()
        };
        let body = admission().encode(odd, &denied);
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value["response"],
            serde_json::json!({
                "uid": odd,
                "allowed": false,
                "status": {"status": "Failure", "code": 422, "reason": "Invalid", "message": odd},
                "warnings": [odd, "second"],
            }),
            "a denial carries no patch"
        );
        let escaped = serde_json::to_string(odd).unwrap();
        assert!(std::str::from_utf8(&body).unwrap().contains(&escaped));

        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "add", "path": "/metadata/annotations/a", "value": "b"}
        ]))
        .unwrap();
        let mutated = Decision {
            patch: Some(patch.clone()),
            ..Decision::default()
        };
        let value: Value = serde_json::from_slice(&admission().encode("u", &mutated)).unwrap();
        let sent = base64::engine::general_purpose::STANDARD
            .decode(value["response"]["patch"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<json_patch::Patch>(&sent).unwrap(),
            patch
        );
        assert_eq!(value["response"]["patchType"], "JSONPatch");
        assert_eq!(value["response"]["allowed"], true);
        assert!(value["response"].get("warnings").is_none());
    }

    #[test]
    fn the_count_of_warnings_left_out_counts_each_once() {
        let long = |i: usize| format!("w{i}: {}", "x".repeat(240));
        // 20 distinct lines of 244-245 bytes, each sent twice: 16 fit, 4 are left out.
        let lines = (0..20).flat_map(|i| [long(i), long(i)]);
        let out = budget(lines);
        assert_eq!(out.len(), 17, "{out:?}");
        assert_eq!(
            out.last().unwrap(),
            "rollout-guard: 4 more finding(s) not shown; run `rollout-guard check` on the manifest for all"
        );
    }

    #[test]
    fn a_denial_names_its_reasons_however_long_they_are() {
        let subject = ObjectRef {
            kind: Kind::Rollout,
            namespace: Some("shop".into()),
            name: "checkout".into(),
        };
        let long = |i: usize| {
            Finding::new(
                Rule::InvalidDuration,
                Severity::Error,
                &subject,
                format!("spec.strategy.canary.steps[{i}].pause.duration"),
                format!("`{}` is not a duration", "y".repeat(1900)),
            )
        };
        for count in [1, 2, 40] {
            let findings: Vec<Finding> = (0..count).map(long).collect();
            let decision = judge(&findings, false, &subject, Mode::Enforce, Vec::new());
            let message = decision.denied.expect("denied").message;
            assert!(message.len() <= DENIAL_MAX, "{}", message.len());
            assert!(
                message.contains(
                    "[invalid-duration] spec.strategy.canary.steps[0].pause.duration: `yyy"
                ),
                "{message}"
            );
            assert!(!message.contains(": ; and"), "{message}");
            let shown = message.matches("[invalid-duration]").count();
            assert!(shown >= count.min(5), "{count}: {shown} shown");
            if shown < count {
                assert!(message.contains(&format!("; and {} more", count - shown)));
            }
        }
    }

    #[test]
    fn the_default_policy_is_serve_without_flags() {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(["rollout-guard", "serve"]).unwrap();
        let crate::cli::Command::Serve(args) = cli.command else {
            panic!("not the serve command");
        };
        let version = args.argo_rollouts_version;
        let default = Policy::default();
        assert_eq!(args.mode, default.mode);
        assert_eq!(version, default.version);
        assert_eq!(args.guards.resolve(version), default.guards);
        assert_eq!(args.controller_user, default.controller_user);
    }

    #[test]
    fn warnings_stay_within_the_api_server_budget() {
        let lines = (0..100).map(|i| format!("rule-{i}: {}", "x".repeat(300)));
        let out = budget(lines);
        let total: usize = out.iter().map(String::len).sum();
        assert!(total <= WARNINGS_BUDGET, "{total}");
        assert!(
            out.iter()
                .all(|l| l.len() <= WARNING_MAX && !l.contains('\n'))
        );
        assert!(out.last().unwrap().contains("more finding(s) not shown"));
    }

    #[test]
    fn validating_a_rollout_reads_its_view_in_the_envelope_pass() {
        let body = include_bytes!("../tests/fixtures/load/rollout-update-review.json");
        // The lean reader reads it all itself (no fallback to serde_json).
        let review = json::from_slice_seed(
            body,
            FastReview {
                endpoint: Endpoint::Validate,
            },
        )
        .unwrap();
        let object = review.request.unwrap().object.unwrap();
        assert!(
            matches!(&object, ObjectIn::Rollout(r) if r.metadata.name.as_deref() == Some("checkout"))
        );
        // The mutating side needs the raw object for its patches.
        let review = decode_review(body, Endpoint::Mutate).unwrap();
        assert!(matches!(
            review.request.unwrap().object,
            Some(ObjectIn::Raw(_))
        ));
    }

    #[test]
    fn warnings_that_fit_the_budget_go_out_whole() {
        // Eight warnings of 400 bytes: 3.2 KB, which the API server passes on as they are.
        let lines: Vec<String> = (0..8)
            .map(|i| format!("rule-{i}: {}", "x".repeat(392)))
            .collect();
        let out = budget(lines.clone().into_iter().chain(lines.clone()));
        assert_eq!(out, lines, "whole, each once, in order");
        // One more and they no longer fit: each is cut as the API server would cut it.
        let more = (0..10).map(|i| format!("rule-{i}: {}", "x".repeat(392)));
        let out = budget(more);
        assert!(out.iter().all(|l| l.len() <= WARNING_MAX), "{out:?}");
        assert_eq!(out.len(), 10, "ten cut lines fit: {out:?}");
    }

    #[test]
    fn the_budget_counts_characters_as_the_api_server_does() {
        // 3,540 characters in 7,000 bytes: whole.
        let lines: Vec<String> = (0..10)
            .map(|i| format!("r{i}: {}", "é".repeat(350)))
            .collect();
        assert_eq!(budget(lines.clone().into_iter()), lines);
        // Cut at 256 characters, not bytes, on a character boundary.
        let cut = truncate("é".repeat(300), WARNING_MAX);
        assert_eq!(runes(&cut), WARNING_MAX);
        assert!(cut.ends_with("..."));
        assert_eq!(truncate("é".repeat(256), WARNING_MAX), "é".repeat(256));
    }

    #[test]
    fn lines_that_become_one_when_cut_are_counted_as_left_out() {
        let long = |i: usize| format!("{}{i}", "x".repeat(300));
        let out = budget((0..20).map(long));
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[1].contains("19 more finding(s) not shown"), "{out:?}");
    }

    #[test]
    fn a_line_left_out_as_a_repeat_once_cut_spends_no_budget() {
        let mut lines = vec![format!("{}1", "x".repeat(300))];
        lines.extend((0..14).map(|i| format!("{i:02}{}", "y".repeat(248))));
        lines.push(format!("{}2", "x".repeat(300)));
        lines.push("short".into());
        let out = budget(lines.into_iter());
        assert!(out.contains(&"short".to_string()), "{out:?}");
        assert!(
            out.last().unwrap().contains("1 more finding(s) not shown"),
            "{out:?}"
        );
    }

    #[test]
    fn warnings_drop_repeats_and_control_characters() {
        let out = budget(["a\nb".to_string(), "a b".to_string(), "c".to_string()].into_iter());
        assert_eq!(out, ["a b", "c"]);
    }

    #[test]
    fn sanitize_replaces_every_control_character_and_nothing_else() {
        assert_eq!(sanitize("a\tb\u{7f}c\u{85}d\u{9f}e".into()), "a b c d e");
        let kept = "plain, caf\u{e9}, no\u{a0}break, \u{2028}, \u{1f600}";
        assert_eq!(sanitize(kept.into()), kept);
        for c in (0..0x250).filter_map(char::from_u32) {
            let expected = if c.is_control() { ' ' } else { c };
            assert_eq!(
                sanitize(c.to_string()),
                expected.to_string(),
                "{:#x}",
                c as u32
            );
        }
    }
}
