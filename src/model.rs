//! Partial, read-only serde views of the Argo Rollouts objects (`argoproj.io/v1alpha1`):
//! exactly the fields the rules read, every other field skipped without being materialised.
//! Writes never go through these views: guards edit the raw JSON so unknown fields survive.

use std::collections::BTreeMap;
use std::fmt;

use compact_str::CompactString;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::duration::PauseDuration;

/// Kubernetes `IntOrString`; strings may still hold `{{args.x}}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrStr {
    Int(i64),
    /// Inline up to 24 bytes, like every short text of the views: durations, names and
    /// arguments cost no allocation.
    Str(CompactString),
}

impl<'de> Deserialize<'de> for IntOrStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrStr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrStr, E> {
                i64::try_from(v)
                    .map(IntOrStr::Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<IntOrStr, E> {
                if v.fract() == 0.0 && v.abs() < 9.0e15 {
                    Ok(IntOrStr::Int(v as i64))
                } else {
                    Err(E::custom(format!("expected an integer, found {v}")))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Str(v.into()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<IntOrStr, E> {
                Ok(IntOrStr::Str(v.into()))
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for IntOrStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(n) => write!(f, "{n}"),
            Self::Str(s) => f.write_str(s),
        }
    }
}

/// A string field that a hand-written YAML file may spell as a number or boolean
/// (`interval: 30`, `value: 5`). The API server would reject those; the linter reads them as
/// text so the rule about the value, not a parse error, explains what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text(pub CompactString);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.into()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string().into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string().into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string().into()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string().into()))
            }
        }
        d.deserialize_any(V)
    }
}

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `null` reads as the default: YAML's `steps:` with nothing after it is `null`.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The only annotations the views keep: nothing reads any other, and the others include
/// kubectl's `last-applied-configuration`, a copy of the whole object (escaped) that would
/// otherwise be unescaped and copied on every review and held by every cached object.
pub const OWN_ANNOTATION_PREFIX: &str = "rollout-guard.io/";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: Option<CompactString>,
    pub generate_name: Option<CompactString>,
    pub namespace: Option<CompactString>,
    /// Only the annotations under [`OWN_ANNOTATION_PREFIX`]; other values are skipped unread.
    #[serde(deserialize_with = "own_annotations")]
    pub annotations: BTreeMap<String, Text>,
}

/// `steps` (or `null`, read as none), with room for eight made at the first step: a canary has
/// a handful, and growing from four to eight would copy the first four on the way.
fn steps<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Step>, D::Error> {
    struct Steps;
    impl<'de> Visitor<'de> for Steps {
        type Value = Vec<Step>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_seq(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut steps = Vec::new();
            while let Some(step) = seq.next_element()? {
                if steps.is_empty() {
                    steps.reserve(8);
                }
                steps.push(step);
            }
            Ok(steps)
        }
    }
    d.deserialize_option(Steps)
}

/// `annotations` (or `null`), keeping only the keys under [`OWN_ANNOTATION_PREFIX`].
fn own_annotations<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Text>, D::Error> {
    struct Own;
    impl<'de> Visitor<'de> for Own {
        type Value = BTreeMap<String, Text>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of annotations")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_map(self)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut kept = BTreeMap::new();
            while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                if key.starts_with(OWN_ANNOTATION_PREFIX) {
                    kept.insert(key.into_owned(), map.next_value::<Text>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(kept)
        }
    }
    d.deserialize_option(Own)
}

/// A map key, borrowed from the input when it can be (no allocation for skipped keys).
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(v.to_owned().into()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(v.into()))
            }
        }
        d.deserialize_str(V)
    }
}

impl ObjectMeta {
    /// The name, or the `generateName` prefix, or empty.
    pub fn display_name(&self) -> &str {
        self.name
            .as_deref()
            .or(self.generate_name.as_deref())
            .unwrap_or_default()
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(Text::as_str)
    }
}

// ---------------------------------------------------------------------------------------------
// Rollout

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Rollout {
    #[serde(deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    #[serde(deserialize_with = "nullable")]
    pub spec: RolloutSpec,
}

/// What the status guard reads of a Rollout: its metadata (for the per-object annotations)
/// and its status. The rules never read the status, so [`Rollout`], the view every validation
/// reads and the cache keeps, skips it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RolloutState {
    #[serde(deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    pub status: Option<RolloutStatus>,
}

impl RolloutState {
    /// Paused by the controller because an analysis ended Inconclusive.
    pub fn paused_inconclusive(&self) -> bool {
        self.status
            .as_ref()
            .is_some_and(RolloutStatus::paused_inconclusive)
    }
}

impl Rollout {
    /// The background analysis (`spec.strategy.canary.analysis`), if any.
    pub fn background_analysis(&self) -> Option<&AnalysisRef> {
        self.spec.strategy.canary.as_ref()?.analysis.as_deref()
    }

    /// Step analyses and blue-green pre/post-promotion analyses, with their field paths:
    /// the foreground ones, which block until their run completes.
    pub fn foreground_analyses(&self) -> impl Iterator<Item = (String, &AnalysisRef)> {
        let steps = self.spec.strategy.canary.iter().flat_map(|c| {
            c.steps.iter().enumerate().filter_map(|(i, s)| {
                let a = s.analysis.as_deref()?;
                Some((format!("spec.strategy.canary.steps[{i}].analysis"), a))
            })
        });
        let blue_green = self.spec.strategy.blue_green.iter().flat_map(|bg| {
            [
                ("prePromotionAnalysis", &bg.pre_promotion_analysis),
                ("postPromotionAnalysis", &bg.post_promotion_analysis),
            ]
            .into_iter()
            .filter_map(|(field, a)| {
                a.as_ref()
                    .map(|a| (format!("spec.strategy.blueGreen.{field}"), a))
            })
        });
        steps.chain(blue_green)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Defaults to 1 (the controller writes it).
    pub replicas: Option<i64>,
    #[serde(deserialize_with = "nullable")]
    pub strategy: Strategy,
    pub workload_ref: Option<IgnoredAny>,
    pub paused: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Strategy {
    pub canary: Option<Canary>,
    /// Boxed, like the analyses below: the view is moved whole through each layer of the
    /// decode, and most Rollouts have none of these.
    pub blue_green: Option<Box<BlueGreen>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Canary {
    #[serde(deserialize_with = "steps")]
    pub steps: Vec<Step>,
    /// Background analysis: runs while the canary walks its steps.
    pub analysis: Option<Box<AnalysisRef>>,
    pub traffic_routing: Option<IgnoredAny>,
    pub max_surge: Option<IntOrStr>,
    /// With traffic routing, a ReplicaSet whose desired count is not zero gets at least this
    /// many pods. An int32 in the CRD: kept as one (the view is moved whole through the
    /// decode, so it stays small).
    #[serde(deserialize_with = "lenient_int32")]
    pub min_pods_per_replica_set: Option<i32>,
    pub dynamic_stable_scale: Option<bool>,
    #[serde(deserialize_with = "progress_threshold")]
    pub replica_progress_threshold: Option<Box<ProgressThreshold>>,
}

/// `canary.replicaProgressThreshold` (controllers >= 1.9): how many available canary pods
/// count as enough to finish a step or promote, instead of all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgressThreshold {
    /// `Percent` or `Pod`.
    pub kind: Option<CompactString>,
    /// An integer, or a string holding one.
    pub value: Option<i64>,
}

/// Reads `replicaProgressThreshold` leniently: a shape or type Argo would refuse leaves the
/// fields it cannot read unset (no threshold is then assumed), never the Rollout unreadable.
/// Rare, so going through a `Value` costs nothing that matters.
fn progress_threshold<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Box<ProgressThreshold>>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value.map(|v| {
        let kind = v
            .get("type")
            .and_then(|t| t.as_str())
            .map(CompactString::from);
        let value = match v.get("value") {
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        Box::new(ProgressThreshold { kind, value })
    }))
}

/// An int32 field, or a string holding one; anything else (which the API server rejects) is
/// read as unset rather than failing the whole object.
fn lenient_int32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BlueGreen {
    pub pre_promotion_analysis: Option<AnalysisRef>,
    pub post_promotion_analysis: Option<AnalysisRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Step {
    pub set_weight: Option<IntOrStr>,
    pub pause: Option<Pause>,
    /// Step (foreground) analysis: blocks the step until it completes.
    pub analysis: Option<Box<AnalysisRef>>,
    pub experiment: Option<IgnoredAny>,
    pub set_canary_scale: Option<Box<SetCanaryScale>>,
    pub set_header_route: Option<IgnoredAny>,
    pub set_mirror_route: Option<IgnoredAny>,
    pub plugin: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "PauseIn")]
pub struct Pause {
    pub duration: Option<IntOrStr>,
    /// `duration` as the controller reads it, worked out once when the view is read (several
    /// rules ask). Private, so that no `Pause` holds a length its duration does not give.
    length: PauseDuration,
}

/// `pause` as written.
#[derive(Default, Deserialize)]
#[serde(default)]
struct PauseIn {
    duration: Option<IntOrStr>,
}

impl Pause {
    /// `duration` as the controller reads it.
    pub fn length(&self) -> PauseDuration {
        self.length
    }
}

impl From<PauseIn> for Pause {
    fn from(pause: PauseIn) -> Self {
        Self {
            length: PauseDuration::of(pause.duration.as_ref()),
            duration: pause.duration,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SetCanaryScale {
    pub replicas: Option<i64>,
    pub weight: Option<i64>,
    pub match_traffic_weight: Option<bool>,
}

/// The template-reference shape shared by background, step and blue-green analyses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AnalysisRef {
    #[serde(deserialize_with = "nullable")]
    pub templates: Vec<TemplateRef>,
    #[serde(deserialize_with = "nullable")]
    pub args: Vec<Arg>,
    #[serde(deserialize_with = "nullable")]
    pub dry_run: Vec<DryRun>,
    /// Background analysis only.
    pub starting_step: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct TemplateRef {
    pub template_name: Option<CompactString>,
    pub cluster_scope: Option<bool>,
}

/// An argument: in a Rollout it supplies a value; in a template it declares one (with an
/// optional default).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Arg {
    pub name: CompactString,
    pub value: Option<Text>,
    /// `podTemplateHashValue`, `fieldRef` or `secretKeyRef`: known only when the run starts.
    pub value_from: Option<IgnoredAny>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DryRun {
    pub metric_name: Text,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RolloutStatus {
    #[serde(deserialize_with = "nullable")]
    pub pause_conditions: Vec<PauseCondition>,
    pub current_step_index: Option<i64>,
    #[serde(rename = "stableRS")]
    pub stable_rs: Option<String>,
    pub current_pod_hash: Option<String>,
    pub current_step_hash: Option<String>,
    pub promote_full: Option<bool>,
    pub abort: Option<bool>,
    pub controller_pause: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PauseCondition {
    pub reason: String,
}

impl RolloutStatus {
    pub const INCONCLUSIVE_REASON: &'static str = "InconclusiveAnalysisRun";

    /// A canary in flight ([`canary_in_flight`]).
    pub fn in_flight(&self) -> bool {
        canary_in_flight(self.current_pod_hash.as_deref(), self.stable_rs.as_deref())
    }

    pub fn paused_inconclusive(&self) -> bool {
        self.pause_conditions
            .iter()
            .any(|c| c.reason == Self::INCONCLUSIVE_REASON)
    }
}

/// Whether a canary is in flight: the current pod hash (`status.currentPodHash`) is known and
/// is not the stable one (`status.stableRS`). Any change of the steps then restarts it.
pub fn canary_in_flight(current_pod_hash: Option<&str>, stable_rs: Option<&str>) -> bool {
    matches!((current_pod_hash, stable_rs), (Some(current), Some(stable)) if current != stable)
}

// ---------------------------------------------------------------------------------------------
// AnalysisTemplate and ClusterAnalysisTemplate (same spec)

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AnalysisTemplate {
    #[serde(deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    #[serde(deserialize_with = "nullable")]
    pub spec: TemplateSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TemplateSpec {
    #[serde(deserialize_with = "nullable")]
    pub metrics: Vec<Metric>,
    #[serde(deserialize_with = "nullable")]
    pub args: Vec<Arg>,
    #[serde(deserialize_with = "nullable")]
    pub dry_run: Vec<DryRun>,
    /// Nested references (v1.7+), resolved recursively.
    #[serde(deserialize_with = "nullable")]
    pub templates: Vec<TemplateRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Metric {
    pub name: String,
    pub interval: Option<Text>,
    pub initial_delay: Option<Text>,
    pub count: Option<IntOrStr>,
    pub success_condition: Option<Text>,
    pub failure_condition: Option<Text>,
    pub failure_limit: Option<IntOrStr>,
    pub inconclusive_limit: Option<IntOrStr>,
    pub consecutive_error_limit: Option<IntOrStr>,
    pub consecutive_success_limit: Option<IntOrStr>,
    pub provider: Option<Provider>,
}

/// The metric provider: which provider keys are set, plus the Kayenta thresholds, plus the
/// names of the `{{args.x}}` placeholders in any of its strings (upstream substitutes the
/// whole metric and fails the run on an argument nobody declares). The provider itself is
/// not kept: the template store holds thousands of templates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provider {
    pub kinds: Vec<String>,
    pub kayenta: Option<KayentaThreshold>,
    /// Placeholder names, each once, in order of appearance.
    pub args: Vec<CompactString>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct KayentaThreshold {
    pub pass: Option<IntOrStr>,
    pub marginal: Option<IntOrStr>,
}

impl<'de> Deserialize<'de> for Provider {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Provider;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a provider map such as {prometheus: {...}}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Provider, A::Error> {
                let mut provider = Provider::default();
                while let Some(key) = map.next_key::<String>()? {
                    add_arg_names(&mut provider.args, &key);
                    if key == "kayenta" {
                        let threshold = map.next_value_seed(Kayenta(&mut provider.args))?;
                        provider.kayenta = Some(threshold);
                    } else {
                        map.next_value_seed(ArgNames(&mut provider.args))?;
                    }
                    provider.kinds.push(key);
                }
                Ok(provider)
            }
        }
        d.deserialize_map(V)
    }
}

/// Adds the `{{args.x}}` names of `text` to `names`, each once.
fn add_arg_names(names: &mut Vec<CompactString>, text: &str) {
    for name in crate::templates::placeholders(text) {
        if !names.iter().any(|n| n == name) {
            names.push(name.into());
        }
    }
}

/// Reads any value only for the `{{args.x}}` names in its strings (keys included), keeping
/// nothing else.
struct ArgNames<'a>(&'a mut Vec<CompactString>);

impl<'de> de::DeserializeSeed<'de> for ArgNames<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ArgNames<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        add_arg_names(self.0, v);
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        Ok(())
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(ArgNames(&mut *self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(ArgNames(&mut *self.0))?.is_some() {
            map.next_value_seed(ArgNames(&mut *self.0))?;
        }
        Ok(())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A YAML tag (`!tag value`): the tag is not text of the value.
        use de::VariantAccess as _;
        data.variant::<IgnoredAny>()?.1.newtype_variant_seed(self)
    }
}

/// The Kayenta provider: its thresholds, and the `{{args.x}}` names of all its strings.
struct Kayenta<'a>(&'a mut Vec<CompactString>);

impl<'de> de::DeserializeSeed<'de> for Kayenta<'_> {
    type Value = KayentaThreshold;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<KayentaThreshold, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Kayenta<'_> {
    type Value = KayentaThreshold;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a kayenta provider map")
    }
    fn visit_unit<E: de::Error>(self) -> Result<KayentaThreshold, E> {
        Ok(KayentaThreshold::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<KayentaThreshold, E> {
        Ok(KayentaThreshold::default())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<KayentaThreshold, D::Error> {
        d.deserialize_map(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KayentaThreshold, A::Error> {
        let mut threshold = KayentaThreshold::default();
        while let Some(key) = map.next_key::<String>()? {
            add_arg_names(self.0, &key);
            if key == "threshold" {
                threshold = map
                    .next_value::<Option<KayentaThreshold>>()?
                    .unwrap_or_default();
                for value in [&threshold.pass, &threshold.marginal] {
                    if let Some(IntOrStr::Str(s)) = value {
                        add_arg_names(self.0, s);
                    }
                }
            } else {
                map.next_value_seed(ArgNames(&mut *self.0))?;
            }
        }
        Ok(threshold)
    }
}

// ---------------------------------------------------------------------------------------------
// Object identity

/// The kinds this project reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Kind {
    Rollout,
    AnalysisTemplate,
    ClusterAnalysisTemplate,
}

impl Kind {
    pub const GROUP: &'static str = "argoproj.io";
    pub const ALL: [Kind; 3] = [
        Self::Rollout,
        Self::AnalysisTemplate,
        Self::ClusterAnalysisTemplate,
    ];

    /// Recognises `kind` with an `argoproj.io/...` apiVersion (any version: the CRDs only
    /// serve v1alpha1, and a typo there is the API server's to reject).
    pub fn from_type(api_version: &str, kind: &str) -> Option<Self> {
        if !api_version.starts_with("argoproj.io/") {
            return None;
        }
        match kind {
            "Rollout" => Some(Self::Rollout),
            "AnalysisTemplate" => Some(Self::AnalysisTemplate),
            "ClusterAnalysisTemplate" => Some(Self::ClusterAnalysisTemplate),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rollout => "Rollout",
            Self::AnalysisTemplate => "AnalysisTemplate",
            Self::ClusterAnalysisTemplate => "ClusterAnalysisTemplate",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which object a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ObjectRef {
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<CompactString>,
    pub name: CompactString,
}

impl ObjectRef {
    pub fn new(kind: Kind, meta: &ObjectMeta) -> Self {
        let namespace = match kind {
            Kind::ClusterAnalysisTemplate => None,
            _ => meta.namespace.clone().filter(|n| !n.is_empty()),
        };
        let name = match meta.display_name() {
            "" => "<unnamed>".into(),
            name => name.into(),
        };
        Self {
            kind,
            namespace,
            name,
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_int_or_string_and_placeholders() {
        let m: Metric = serde_json::from_value(json!({
            "name": "m", "count": "{{args.count}}", "inconclusiveLimit": 2, "interval": 30,
            "provider": {"prometheus": {"query": "up"}}
        }))
        .unwrap();
        assert_eq!(m.count, Some(IntOrStr::Str("{{args.count}}".into())));
        assert_eq!(m.inconclusive_limit, Some(IntOrStr::Int(2)));
        assert_eq!(m.interval, Some(Text("30".into())));
        assert_eq!(m.provider.unwrap().kinds, vec!["prometheus"]);
    }

    #[test]
    fn reads_kayenta_thresholds_and_several_providers() {
        let p: Provider = serde_json::from_value(json!({
            "kayenta": {"threshold": {"pass": 90, "marginal": 75}, "scopes": []},
            "web": {"url": "x"}
        }))
        .unwrap();
        assert_eq!(p.kinds, vec!["kayenta", "web"]);
        let t = p.kayenta.unwrap();
        assert_eq!(
            (t.pass, t.marginal),
            (Some(IntOrStr::Int(90)), Some(IntOrStr::Int(75)))
        );
    }

    /// Upstream substitutes the whole metric: every `{{args.x}}` of the provider is collected
    /// (keys, nested values, Kayenta's thresholds), each once, and nothing else is kept.
    #[test]
    fn collects_provider_placeholders_with_every_reader() {
        let text = r#"{"prometheus": {"query": "sum(x{svc=\"{{args.svc}}\", ns=\"{{ args.ns }}\"})",
            "headers": [{"key": "{{args.key}}", "value": "{{args.svc}}"}], "timeout": 30,
            "safe": true, "extra": null, "other": "{{metrics.m}} {{args}}"}}"#;
        let json: Provider = serde_json::from_str(text).unwrap();
        let lean: Provider = crate::json::from_str(text).unwrap();
        let yaml: Provider = serde_yaml::from_str(text).unwrap();
        assert_eq!(json.args, ["svc", "ns", "key"]);
        assert_eq!(json, lean);
        assert_eq!(json, yaml);
        assert_eq!(json.kinds, ["prometheus"]);
        let k: Provider = serde_json::from_value(json!({"kayenta": {
            "threshold": {"pass": "{{args.pass}}", "marginal": 75},
            "scopes": [{"name": "s", "controlScope": {"scope": "{{args.scope}}"}}]}}))
        .unwrap();
        // `json!` sorts keys: `scopes` is read before `threshold`.
        assert_eq!(k.args, ["scope", "pass"]);
        assert_eq!(
            k.kayenta.unwrap().pass,
            Some(IntOrStr::Str("{{args.pass}}".into()))
        );
        let plain: Provider =
            serde_json::from_value(json!({"web": {"url": "http://x", "jsonPath": "{$.a}"}}))
                .unwrap();
        assert!(plain.args.is_empty());
        let none: Provider = serde_json::from_value(json!({"kayenta": null})).unwrap();
        assert_eq!(none.kayenta, Some(KayentaThreshold::default()));
    }

    #[test]
    fn tolerates_nulls_and_unknown_fields() {
        let t: AnalysisTemplate =
            serde_json::from_value(json!({"metadata": null, "spec": null})).unwrap();
        assert!(t.metadata.name.is_none() && t.spec.metrics.is_empty());
        let r: Rollout = serde_json::from_value(json!({
            "metadata": {"name": "r", "annotations": null, "labels": {"a": "b"}},
            "spec": {"strategy": {"canary": {"steps": null, "futureField": 1}}, "template": {}}
        }))
        .unwrap();
        assert!(r.spec.strategy.canary.unwrap().steps.is_empty());
    }

    #[test]
    fn a_pause_knows_its_length_once_read() {
        let read = |text: &str| -> Pause { serde_json::from_str(text).unwrap() };
        let lean = |text: &str| -> Pause { crate::json::from_str(text).unwrap() };
        for (text, length) in [
            (r#"{}"#, PauseDuration::Indefinite),
            (r#"{"duration": null}"#, PauseDuration::Indefinite),
            (r#"{"duration": "5m"}"#, PauseDuration::Seconds(300)),
            (r#"{"duration": 30}"#, PauseDuration::Seconds(30)),
            (r#"{"duration": "-1s"}"#, PauseDuration::Invalid),
            (r#"{"duration": "1d"}"#, PauseDuration::Invalid),
        ] {
            assert_eq!(read(text).length, length, "{text}");
            assert_eq!(lean(text).length, length, "{text}");
            assert_eq!(
                read(text).length,
                PauseDuration::of(read(text).duration.as_ref())
            );
        }
    }

    #[test]
    fn steps_read_like_a_nullable_list() {
        let steps = |canary: &str| -> Result<Vec<Step>, String> {
            let text = format!(r#"{{"spec": {{"strategy": {{"canary": {canary}}}}}}}"#);
            let lean = crate::json::from_str::<Rollout>(&text).map_err(|e| e.to_string());
            let read = serde_json::from_str::<Rollout>(&text).map_err(|e| e.to_string())?;
            let read = read.spec.strategy.canary.unwrap_or_default().steps;
            if let Ok(lean) = lean {
                let lean = lean.spec.strategy.canary.unwrap_or_default().steps;
                assert_eq!(format!("{lean:?}"), format!("{read:?}"));
            }
            Ok(read)
        };
        assert!(steps("{}").unwrap().is_empty());
        assert!(steps(r#"{"steps": null}"#).unwrap().is_empty());
        let none = steps(r#"{"steps": []}"#).unwrap();
        assert_eq!(
            (none.len(), none.capacity()),
            (0, 0),
            "no room made for no step"
        );
        let three = steps(r#"{"steps": [{"setWeight": 1}, {"pause": {}}, {"setWeight": 2}]}"#);
        assert_eq!(three.unwrap().len(), 3);
        let error = steps(r#"{"steps": "x"}"#).unwrap_err();
        assert!(error.contains("expected a sequence"), "{error}");
    }

    #[test]
    fn keeps_only_its_own_annotations() {
        let r: Rollout = serde_json::from_str(
            r#"{"metadata": {"annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"kind\":\"Rollout\"}\n",
                "rollout-guard.io/mode": "enforce", "odd": {"not": "a string"},
                "rollout-guard.io/guards": "none"}}}"#,
        )
        .unwrap();
        let keys: Vec<&str> = r.metadata.annotations.keys().map(String::as_str).collect();
        assert_eq!(keys, ["rollout-guard.io/guards", "rollout-guard.io/mode"]);
        assert_eq!(
            r.metadata.annotation("rollout-guard.io/mode"),
            Some("enforce")
        );
        let from_value: Rollout = serde_json::from_value(
            json!({"metadata": {"annotations": {"a": "b", "rollout-guard.io/mode": "off"}}}),
        )
        .unwrap();
        assert_eq!(from_value.metadata.annotations.len(), 1);
    }

    #[test]
    fn only_the_state_view_reads_the_status() {
        let object = r#"{"metadata": {"name": "r"}, "spec": {},
            "status": {"pauseConditions": [{"reason": "InconclusiveAnalysisRun"}], "currentStepIndex": "not read"}}"#;
        // The Rollout view skips the status, even one it could not read.
        assert!(serde_json::from_str::<Rollout>(object).is_ok());
        let readable = object.replace(r#""not read""#, "1");
        let state: RolloutState = serde_json::from_str(&readable).unwrap();
        assert!(state.paused_inconclusive());
        assert_eq!(state.metadata.name.as_deref(), Some("r"));
        let running: RolloutState = serde_json::from_value(
            json!({"status": {"pauseConditions": [{"reason": "CanaryPauseStep"}]}}),
        )
        .unwrap();
        assert!(!running.paused_inconclusive());
        assert!(!RolloutState::default().paused_inconclusive());
    }

    #[test]
    fn rejects_fractional_integers() {
        let err = serde_json::from_value::<IntOrStr>(json!(1.5)).unwrap_err();
        assert!(err.to_string().contains("expected an integer"));
    }

    #[test]
    fn recognises_argo_kinds_only() {
        assert_eq!(
            Kind::from_type("argoproj.io/v1alpha1", "Rollout"),
            Some(Kind::Rollout)
        );
        assert_eq!(Kind::from_type("apps/v1", "Deployment"), None);
        assert_eq!(Kind::from_type("v1", "Rollout"), None);
    }
}
