//! Guards: pure edits on the raw JSON of an object (the patch is built by the caller).

use std::fmt;
use std::str::FromStr;

use crate::version::ControllerVersion;

/// The guards a mutating request may apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guard {
    /// Keeps a Rollout paused where it is while `InconclusiveAnalysisRun` is present.
    Status,
    /// Turns timed pauses of D1 Rollouts into indefinite ones.
    Hold,
    /// Makes an inconclusive measurement count as a failure in templates.
    FailClosed,
}

impl Guard {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Hold => "hold",
            Self::FailClosed => "fail-closed",
        }
    }
}

/// `--guards`: `auto`, `none`, or a comma-separated list of guard names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuardSet {
    pub auto: bool,
    pub status: bool,
    pub hold: bool,
    pub fail_closed: bool,
}

impl GuardSet {
    pub const AUTO: Self = Self {
        auto: true,
        status: false,
        hold: false,
        fail_closed: false,
    };
    pub const NONE: Self = Self {
        auto: false,
        status: false,
        hold: false,
        fail_closed: false,
    };

    /// The concrete set for a controller: `auto` is the status guard on >= 1.8.2 and hold
    /// before (the only guard that holds there).
    pub fn resolve(self, version: ControllerVersion) -> Self {
        if !self.auto {
            return self;
        }
        let fixed = version.records_inconclusive_pause();
        Self {
            auto: false,
            status: fixed,
            hold: !fixed,
            fail_closed: false,
        }
    }

    pub fn contains(self, guard: Guard) -> bool {
        match guard {
            Guard::Status => self.status,
            Guard::Hold => self.hold,
            Guard::FailClosed => self.fail_closed,
        }
    }
}

impl FromStr for GuardSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = Self::NONE;
        let mut none = false;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            // `off` as in the mode annotation; any case, as people write it.
            match part.to_ascii_lowercase().as_str() {
                "auto" => set.auto = true,
                "none" | "off" => none = true,
                "status" => set.status = true,
                "hold" => set.hold = true,
                "fail-closed" => set.fail_closed = true,
                other => {
                    return Err(format!(
                        "unknown guard `{other}`: expected auto, none (or off), status, hold or fail-closed"
                    ));
                }
            }
        }
        let named = set.status || set.hold || set.fail_closed;
        if set.auto && named {
            return Err("`auto` cannot be combined with named guards".into());
        }
        if none && (named || set.auto) {
            return Err("`none` cannot be combined with other guards".into());
        }
        Ok(set)
    }
}

impl fmt::Display for GuardSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.auto {
            return f.write_str("auto");
        }
        let names: Vec<_> = [Guard::Status, Guard::Hold, Guard::FailClosed]
            .into_iter()
            .filter(|g| self.contains(*g))
            .map(Guard::as_str)
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The edits. Each takes the raw object and returns what it did in words (for a warning), or
// `None` when there is nothing to do; callers diff before/after into an RFC 6902 patch.

use serde::Deserialize as _;
use serde_json::{Map, Value};

use crate::model::RolloutStatus;
use crate::rules::Trap;

/// Annotation recording the original durations of pauses the hold guard made indefinite.
pub const HELD_PAUSES_ANNOTATION: &str = "rollout-guard.io/held-pauses";
/// Annotation beside [`HELD_PAUSES_ANNOTATION`]: a fingerprint of the steps its indices refer
/// to, so the record can follow them when they are edited ([`carry_held`]).
pub const HELD_STEPS_ANNOTATION: &str = "rollout-guard.io/held-pauses-steps";
/// Annotation recording the original conditions / thresholds the fail-closed guard changed.
pub const FAIL_CLOSED_ANNOTATION: &str = "rollout-guard.io/fail-closed";

/// Where a Rollout's canary steps are, as a JSON Pointer.
pub const STEPS: &str = "/spec/strategy/canary/steps";

/// A Rollout's canary steps (none when it has none).
fn steps_of(rollout: &Value) -> &[Value] {
    rollout
        .pointer(STEPS)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A step and a duration as the warnings name them: `3 (10m)`.
fn step_with(index: impl std::fmt::Display, duration: &Value) -> String {
    format!("{index} ({})", plain(duration))
}

/// The note for record entries whose duration was replaced (`step_with` each).
fn replaced_note(replaced: &[String]) -> String {
    format!(
        "the record's earlier durations for steps {} replaced",
        replaced.join(", ")
    )
}

/// Hold: turn the timed pauses of a D1 Rollout (at or after `startingStep`) into indefinite
/// ones, recording the original durations so the change is visible and reversible.
pub fn hold(rollout: &mut Value, trap: &Trap) -> Option<String> {
    let steps = rollout.pointer_mut(STEPS)?.as_array_mut()?;
    let mut held = Vec::new();
    for &(index, _) in &trap.timed_pauses {
        let Some(pause) = steps
            .get_mut(index)
            .and_then(|s| s.get_mut("pause"))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if let Some(original) = pause.remove("duration") {
            held.push((index, original));
        }
    }
    if held.is_empty() {
        return None;
    }
    let mut record = existing_record(rollout, HELD_PAUSES_ANNOTATION);
    // Entries for steps that are no longer held pauses (the steps were edited since) would
    // restore a duration onto a setWeight step, or onto a pause the user made indefinite.
    let dropped = retain_held(&mut record, rollout);
    let mut replaced = Vec::new();
    for (index, original) in &held {
        if let Some(before) = record.insert(index.to_string(), original.clone())
            && before != *original
        {
            replaced.push(step_with(index, &before));
        }
    }
    write_record(rollout, record);
    let list = held
        .iter()
        .map(|(i, d)| step_with(i, d))
        .collect::<Vec<_>>()
        .join(", ");
    let mut said = vec![format!(
        "hold: timed pauses at steps {list} made indefinite; promote by hand (originals: {HELD_PAUSES_ANNOTATION})"
    )];
    if !dropped.is_empty() {
        said.push(no_longer_held(&dropped));
    }
    if !replaced.is_empty() {
        said.push(replaced_note(&replaced));
    }
    Some(said.join("; "))
}

/// What a record's dropped entries are said as, with the durations they held.
fn no_longer_held(dropped: &[(String, Value)]) -> String {
    let list = dropped
        .iter()
        .map(|(i, d)| step_with(i, d))
        .collect::<Vec<_>>()
        .join(", ");
    format!("steps {list} are no longer held pauses, dropped from {HELD_PAUSES_ANNOTATION}")
}

/// Carries the record of held pauses over an edit of the steps (`kubectl edit` inserting a
/// step, a JSON patch): each entry follows its step to where the edit put it, along a longest
/// common subsequence of the old and the new steps, and an entry whose step was removed or
/// changed is dropped.
///
/// Which steps the record's indices refer to is kept beside it, as a fingerprint of the
/// steps with pause durations left out ([`HELD_STEPS_ANNOTATION`], written with every
/// record): a carry happens only when the record and that fingerprint are as in the old object
/// and name the old steps. So a record already indexed by the new steps (this guard's output
/// seen again on webhook reinvocation, or a GitOps sync that only puts durations back) is left
/// as it is, which keeps the guard idempotent, and a record the request rewrote, or one whose
/// steps changed out of the guard's sight, is taken as written.
pub fn carry_held(rollout: &mut Value, old: &Value) -> Option<String> {
    let record = read_record(rollout, HELD_PAUSES_ANNOTATION)?;
    let stamp = annotation(rollout, HELD_STEPS_ANNOTATION)?.to_owned();
    if read_record(old, HELD_PAUSES_ANNOTATION).as_ref() != Some(&record)
        || annotation(old, HELD_STEPS_ANNOTATION) != Some(stamp.as_str())
    {
        return None;
    }
    let (before, after) = (step_keys(old), step_keys(rollout));
    if stamp == fingerprint(&after) || stamp != fingerprint(&before) {
        return None;
    }
    let moved = align_steps(old, rollout, &record)?;
    let mut carried = Map::new();
    let (mut moves, mut gone) = (Vec::new(), Vec::new());
    for (key, duration) in &record {
        match step_index(key).and_then(|i| moved.get(i).copied().flatten()) {
            Some(to) if !carried.contains_key(&to.to_string()) => {
                if to.to_string() != *key {
                    moves.push(format!("{key} to {to}"));
                }
                carried.insert(to.to_string(), duration.clone());
            }
            _ => gone.push((key.clone(), duration.clone())),
        }
    }
    let mut said = vec![];
    if !moves.is_empty() {
        said.push(format!(
            "held pauses moved with the edited steps: {} (record: {HELD_PAUSES_ANNOTATION})",
            moves.join(", ")
        ));
    }
    if !gone.is_empty() {
        said.push(no_longer_held(&gone));
    }
    if said.is_empty() {
        said.push(format!(
            "the steps were edited and no held pause moved: {HELD_STEPS_ANNOTATION} updated"
        ));
    }
    write_record(rollout, carried);
    Some(format!("hold: {}", said.join("; ")))
}

/// In flight, the steps as stored: a sync that sends Git's steps to a canary in flight puts
/// durations back on the pauses the stored record holds (or changes them), and a replace may
/// drop the record too; any change of the steps restarts the canary. When holding those
/// pauses again, and nothing else, gives exactly the stored steps, this is the Rollout so
/// held, with the stored record, and what to say. A duration other than the recorded one is
/// held too, and recorded, when `trapped` (the Rollout still matches D1, so hold would convert
/// it anyway); otherwise it is the user's edit, which is theirs to make. `None` when the steps
/// differ in anything else, or nothing is recorded.
pub fn hold_as_stored(rollout: &Value, old: &Value, trapped: bool) -> Option<(Value, String)> {
    let stored = old.pointer(STEPS)?.as_array()?;
    let mut record = read_record(old, HELD_PAUSES_ANNOTATION)?;
    let mut result = rollout.clone();
    let steps = result.pointer_mut(STEPS)?.as_array_mut()?;
    if steps.len() != stored.len() {
        return None;
    }
    let (mut again, mut replaced) = (Vec::new(), Vec::new());
    for (i, (step, was)) in steps.iter_mut().zip(stored).enumerate() {
        if step == was {
            continue;
        }
        let recorded = record.get_mut(&i.to_string())?;
        let duration = step
            .get_mut("pause")
            .and_then(Value::as_object_mut)?
            .remove("duration")?;
        if step != was {
            return None;
        }
        if duration != *recorded {
            if !trapped {
                return None;
            }
            replaced.push(step_with(i, recorded));
            *recorded = duration.clone();
        }
        again.push(step_with(i, &duration));
    }
    if again.is_empty() {
        return None;
    }
    // Pauses the next revision holds: the timed ones, when the Rollout still matches D1.
    let timed: Vec<String> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| trapped && s.pointer("/pause/duration").is_some_and(|d| !d.is_null()))
        .map(|(i, _)| i.to_string())
        .collect();
    // The stored record may name a pause put back out of the guard's sight (opted out, or
    // while the webhook was down): kept to the held pauses, as everywhere else.
    let dropped = retain_held(&mut record, &result);
    write_record(&mut result, record);
    let mut said = vec![format!(
        "hold: canary in flight, so the steps stay as stored: pauses at steps {} held again",
        again.join(", ")
    )];
    if !replaced.is_empty() {
        said.push(replaced_note(&replaced));
    }
    if !dropped.is_empty() {
        said.push(no_longer_held(&dropped));
    }
    if !timed.is_empty() {
        said.push(format!(
            "timed pauses at steps {} are left until the next revision",
            timed.join(", ")
        ));
    }
    Some((result, said.join("; ")))
}

/// A record key as a step index: the index as Go or anyone writes it, digits without a sign
/// or leading zeros (`"01"` would otherwise be a second entry for step 1).
fn step_index(key: &str) -> Option<usize> {
    key.parse::<usize>().ok().filter(|i| i.to_string() == key)
}

/// Each step of a Rollout as the record's indices see it, hashed: a pause without its
/// duration (hold turns a timed pause into an indefinite one in place), anything else as it
/// is, in canonical JSON (serde_json's maps are sorted).
fn step_keys(rollout: &Value) -> Vec<u64> {
    steps_of(rollout)
        .iter()
        .map(|step| {
            let mut step = step.clone();
            if let Some(pause) = step.get_mut("pause").and_then(Value::as_object_mut) {
                pause.remove("duration");
            }
            fnv1a(step.to_string().as_bytes())
        })
        .collect()
}

/// The fingerprint of steps for [`HELD_STEPS_ANNOTATION`]: stable across versions and
/// processes (FNV-1a, 64 bits, over the step hashes).
fn fingerprint(steps: &[u64]) -> String {
    let bytes: Vec<u8> = steps.iter().flat_map(|h| h.to_le_bytes()).collect();
    format!("{:016x}", fnv1a(&bytes))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Where each old step went among the new ones. A step matches a new one written exactly as
/// it is stored; a held pause matches better the timed pause it was (its recorded duration
/// put back), as a GitOps sync sends it, than an indefinite one, which may be a pause the
/// user wrote indefinite. So an inserted pause, timed or not, does not take a held one's
/// place.
fn align_steps(
    old: &Value,
    new: &Value,
    record: &Map<String, Value>,
) -> Option<Vec<Option<usize>>> {
    let hash = |step: &Value| fnv1a(step.to_string().as_bytes());
    let old_steps = steps_of(old);
    let stored: Vec<u64> = old_steps.iter().map(hash).collect();
    let restored: Vec<u64> = old_steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let duration = record.get(&i.to_string());
            match (duration, step.get("pause").and_then(Value::as_object)) {
                (Some(duration), Some(_)) => {
                    let mut step = step.clone();
                    step["pause"]["duration"] = duration.clone();
                    hash(&step)
                }
                _ => hash(step),
            }
        })
        .collect();
    let new: Vec<u64> = steps_of(new).iter().map(hash).collect();
    heaviest_common_subsequence(old_steps.len(), new.len(), |i, j| {
        if new[j] == restored[i] {
            2
        } else if new[j] == stored[i] {
            1
        } else {
            0
        }
    })
}

/// For each of `n` old items, where it is among `m` new ones along the common subsequence
/// of the largest total `weight` (0: no match). `None` for more steps than a review should
/// spend a quadratic table on.
fn heaviest_common_subsequence(
    n: usize,
    m: usize,
    weight: impl Fn(usize, usize) -> u32,
) -> Option<Vec<Option<usize>>> {
    const MAX_CELLS: usize = 1 << 18;
    if (n + 1).saturating_mul(m + 1) > MAX_CELLS {
        return None;
    }
    // best[i][j]: the heaviest common subsequence of old[i..] and new[j..].
    let width = m + 1;
    let mut best = vec![0u32; (n + 1) * width];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let skip = best[(i + 1) * width + j].max(best[i * width + j + 1]);
            let w = weight(i, j);
            best[i * width + j] = if w > 0 {
                skip.max(w + best[(i + 1) * width + j + 1])
            } else {
                skip
            };
        }
    }
    let mut moved = vec![None; n];
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        let w = weight(i, j);
        if w > 0 && best[i * width + j] == w + best[(i + 1) * width + j + 1] {
            moved[i] = Some(j);
            i += 1;
            j += 1;
        } else if best[(i + 1) * width + j] >= best[i * width + j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    Some(moved)
}

/// Writes the record of held pauses with the fingerprint of the steps it is indexed by, or
/// removes both when no entry is left.
fn write_record(rollout: &mut Value, record: Map<String, Value>) {
    if record.is_empty() {
        remove_annotation(rollout, HELD_PAUSES_ANNOTATION);
        remove_annotation(rollout, HELD_STEPS_ANNOTATION);
    } else {
        let stamp = fingerprint(&step_keys(rollout));
        set_annotation(
            rollout,
            HELD_PAUSES_ANNOTATION,
            Value::Object(record).to_string(),
        );
        set_annotation(rollout, HELD_STEPS_ANNOTATION, stamp);
    }
}

/// Hold, when there is nothing to hold: prune the record of held pauses to the steps that
/// are still held (indefinite) pauses, removing it when none is left. The pauses themselves
/// are left as they are, also when the Rollout no longer matches D1: putting a duration back
/// changes the steps (restarting an in-flight canary), and D1 depends on templates that may
/// be missing only for now; the record says what to restore by hand.
pub fn prune_held(rollout: &mut Value) -> Option<String> {
    let mut record = read_record(rollout, HELD_PAUSES_ANNOTATION)?;
    let dropped = retain_held(&mut record, rollout);
    if dropped.is_empty() {
        return None;
    }
    write_record(rollout, record);
    Some(format!("hold: {}", no_longer_held(&dropped)))
}

/// Keeps the record's entries for steps that are still held pauses (a `pause` without a
/// duration) and returns the others.
fn retain_held(record: &mut Map<String, Value>, rollout: &Value) -> Vec<(String, Value)> {
    let steps = steps_of(rollout);
    let is_held_pause = |index: &str| {
        step_index(index)
            .and_then(|i| steps.get(i))
            .and_then(|step| step.get("pause"))
            .and_then(Value::as_object)
            .is_some_and(|pause| pause.get("duration").is_none_or(Value::is_null))
    };
    let mut dropped = Vec::new();
    record.retain(|index, duration| {
        let keep = is_held_pause(index);
        if !keep {
            dropped.push((index.clone(), duration.clone()));
        }
        keep
    });
    dropped
}

/// Status guard: on a controller write while an `InconclusiveAnalysisRun` pause is present,
/// keep the step index, the stable ReplicaSet and the pause condition where they were, unless
/// the user asked for it (`promoteFull`, `abort`) or a new revision started.
pub fn status_guard(new: &mut Value, old: &Value) -> Option<String> {
    // `&Value` is a serde Deserializer: read the views without copying the statuses.
    let new_status = RolloutStatus::deserialize(new.get("status")?).ok()?;
    let old_status = RolloutStatus::deserialize(old.get("status")?).ok()?;
    if !(old_status.paused_inconclusive() || new_status.paused_inconclusive()) {
        return None;
    }
    // Asked for by a human: in the write that asks, or in the controller's write that acts on
    // it (a full canary is promoted in one write that also resets `promoteFull`).
    if [&old_status, &new_status]
        .iter()
        .any(|s| s.promote_full == Some(true) || s.abort == Some(true))
    {
        return None;
    }
    // A new revision started, or the steps were edited: Argo restarts the canary from step 0
    // and clears the Inconclusive pause itself (DOMAIN.md section 5), so the old step index
    // (maybe past the new steps' end) and pause must not be put back.
    let changed = |old: &Option<String>, new: &Option<String>| old.is_some() && new != old;
    if changed(&old_status.current_pod_hash, &new_status.current_pod_hash)
        || changed(&old_status.current_step_hash, &new_status.current_step_hash)
    {
        return None;
    }
    let old_raw = old.get("status").cloned().unwrap_or_default();
    let status = new.get_mut("status")?.as_object_mut()?;
    let mut kept = Vec::new();
    for field in ["currentStepIndex", "stableRS"] {
        let before = old_raw.get(field);
        if status.get(field) != before {
            kept.push(field);
            match before {
                Some(v) => status.insert(field.to_owned(), v.clone()),
                None => status.remove(field),
            };
        }
    }
    if !new_status.paused_inconclusive() {
        let lost: Vec<Value> = old_raw
            .get("pauseConditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| {
                c.get("reason").and_then(Value::as_str) == Some(RolloutStatus::INCONCLUSIVE_REASON)
            })
            .cloned()
            .collect();
        if !lost.is_empty() {
            let conditions = status
                .entry("pauseConditions")
                .or_insert_with(|| Value::Array(Vec::new()));
            if !conditions.is_array() {
                *conditions = Value::Array(Vec::new());
            }
            if let Some(list) = conditions.as_array_mut() {
                list.extend(lost);
            }
            kept.push("pauseConditions");
        }
    }
    if kept.is_empty() {
        return None;
    }
    Some(format!(
        "status guard: kept {} while analysis is Inconclusive; promote or abort the Rollout to go on",
        kept.join(", ")
    ))
}

/// Fail-closed: make an inconclusive measurement count as a failure, so the Rollout aborts
/// instead of pausing: `failureCondition := (F) || !(S)` for metrics with both conditions,
/// `marginal := pass` for Kayenta.
///
/// The record keeps, per metric, what the guard replaced, and only while the guard's edit is
/// still in place. A metric that no longer qualifies (a condition removed, a provider changed,
/// the metric gone) loses its entry; its original is put back when the field still holds
/// exactly what the guard wrote from it, and left as the user wrote it otherwise.
pub fn fail_closed(template: &mut Value) -> Option<String> {
    let recorded = read_record(template, FAIL_CLOSED_ANNOTATION);
    let old_record = recorded.clone().unwrap_or_default();
    let none = Vec::new();
    let metrics = match template.pointer("/spec/metrics") {
        // No metrics: a record of metrics that are all gone is dropped below.
        None => &none,
        Some(Value::Array(metrics)) => metrics,
        // Not a list: nothing here is read, so nothing is touched.
        Some(_) => return None,
    };
    // Argo refuses a template whose metric names repeat (`duplicate-metric-name`), and a
    // record keyed by name cannot tell such metrics apart: left as it is.
    let names: Vec<&str> = metrics
        .iter()
        .filter_map(|m| m.get("name")?.as_str())
        .collect();
    if names
        .iter()
        .enumerate()
        .any(|(i, n)| names[..i].contains(n))
    {
        return None;
    }
    // Entries their own metric still carries; the others may be taken over by a metric that
    // carries their condition edit under another name (renamed, or names swapped), or the
    // original would be lost with the name. Kayenta entries are not taken over: a marginal at
    // the pass is also what people write by hand. An entry the guard just wrote is carried by
    // its own metric, so the next pass takes nothing over and changes nothing.
    let claimed: Vec<String> = metrics
        .iter()
        .filter_map(|m| {
            let m = m.as_object()?;
            let name = m.get("name")?.as_str()?;
            let entry = old_record.get(name)?.as_object()?;
            still_edited(m, entry).then(|| name.to_owned())
        })
        .collect();
    let adoptable: Vec<&String> = old_record
        .keys()
        .filter(|name| !claimed.contains(name))
        .collect();
    let mut no_metrics = Vec::new();
    let metrics = match template.pointer_mut("/spec/metrics") {
        Some(Value::Array(metrics)) => metrics,
        _ => &mut no_metrics,
    };
    let mut renamed: Vec<(String, String)> = Vec::new();
    let mut record = Map::new();
    let mut closed: Vec<String> = Vec::new();
    let mut restored: Vec<String> = Vec::new();
    for metric in metrics.iter_mut() {
        let Some(m) = metric.as_object_mut() else {
            continue;
        };
        let name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut entry = old_record.get(&name).and_then(Value::as_object);
        if !claimed.contains(&name)
            && let Some(other) = adoptable.iter().find(|other| {
                **other != &name
                    && old_record[other.as_str()]
                        .as_object()
                        .is_some_and(|e| carries_condition_edit(m, e))
            })
        {
            entry = old_record[other.as_str()].as_object();
            renamed.push((format!("`{other}`"), format!("`{name}`")));
        }
        let mut kept = Map::new();
        let edits = [
            close_kayenta(m, entry, &mut kept),
            close_conditions(m, entry, &mut kept),
        ];
        if edits.contains(&Some(Edit::Closed)) {
            closed.push(format!("`{name}`"));
        }
        if edits.contains(&Some(Edit::Restored)) {
            restored.push(format!("`{name}`"));
        }
        if !kept.is_empty() {
            record.insert(name, Value::Object(kept));
        }
    }
    let dropped: Vec<String> = old_record
        .keys()
        .filter(|name| !record.contains_key(*name))
        .map(|name| format!("`{name}`"))
        .collect();
    let record_changed = record != old_record;
    if closed.is_empty() && restored.is_empty() && !record_changed {
        return None;
    }
    if record.is_empty() {
        // Only an annotation that was read as a record is removed; one that cannot be read was
        // not written by the guard in this form, and is left alone.
        if recorded.is_some() {
            remove_annotation(template, FAIL_CLOSED_ANNOTATION);
        }
    } else if record_changed {
        set_annotation(
            template,
            FAIL_CLOSED_ANNOTATION,
            Value::Object(record).to_string(),
        );
    }
    let mut said = Vec::new();
    if !closed.is_empty() {
        said.push(format!(
            "fail-closed: inconclusive {} now fails (aborts, not pauses); originals: {FAIL_CLOSED_ANNOTATION}",
            closed.join(", ")
        ));
    }
    if !restored.is_empty() {
        said.push(format!(
            "fail-closed: original put back for {}, whose edit no longer applies",
            restored.join(", ")
        ));
    }
    for (old, new) in &renamed {
        said.push(format!(
            "fail-closed: record of {old} now under {new} (renamed)"
        ));
    }
    let forgotten: Vec<String> = dropped
        .into_iter()
        .filter(|n| !restored.contains(n) && !renamed.iter().any(|(old, _)| old == n))
        .collect();
    if !forgotten.is_empty() {
        said.push(format!(
            "fail-closed: record of {} dropped (no longer the guard's edit)",
            forgotten.join(", ")
        ));
    }
    if said.is_empty() {
        said.push(format!("fail-closed: {FAIL_CLOSED_ANNOTATION} updated"));
    }
    Some(said.join("; "))
}

/// Whether a metric's failure condition is one the guard wrote from the condition recorded in
/// `entry`.
fn carries_condition_edit(m: &Map<String, Value>, entry: &Map<String, Value>) -> bool {
    entry
        .get("failureCondition")
        .and_then(Value::as_str)
        .zip(m.get("failureCondition").and_then(Value::as_str))
        .is_some_and(|(original, failure)| written_from(failure.trim(), original))
}

/// Whether a metric still carries the edit recorded in `entry`: a failure condition written
/// from the recorded one, or a Kayenta marginal at the recorded pass.
fn still_edited(m: &Map<String, Value>, entry: &Map<String, Value>) -> bool {
    let by_condition = carries_condition_edit(m, entry);
    let marginal = m
        .get("provider")
        .and_then(|p| p.pointer("/kayenta/threshold/marginal"))
        .and_then(Value::as_i64);
    let by_kayenta = entry.contains_key("marginal")
        && entry
            .get("pass")
            .and_then(Value::as_i64)
            .is_some_and(|pass| Some(pass) == marginal);
    by_condition || by_kayenta
}

/// What a fail-closed step did to one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Closed,
    Restored,
}

/// Kayenta: `marginal := pass` while `marginal < pass`. The record keeps the original marginal
/// and the pass it was raised to, so an edit of `pass` alone is told from an edit of the
/// marginal: while the marginal still equals the recorded pass it is the guard's value.
fn close_kayenta(
    m: &mut Map<String, Value>,
    entry: Option<&Map<String, Value>>,
    kept: &mut Map<String, Value>,
) -> Option<Edit> {
    let recorded_marginal = entry.and_then(|e| e.get("marginal"));
    let recorded_pass = entry.and_then(|e| e.get("pass"));
    let threshold = m
        .get_mut("provider")
        .and_then(|p| p.get_mut("kayenta"))
        .and_then(|k| k.get_mut("threshold"))
        .and_then(Value::as_object_mut)?;
    let (Some(pass), Some(marginal)) = (
        threshold.get("pass").and_then(Value::as_i64),
        threshold.get("marginal").and_then(Value::as_i64),
    ) else {
        // A threshold field removed or not a number: nothing the guard wrote to put back.
        return None;
    };
    if let Some(original) = recorded_marginal
        && marginal == pass
    {
        // As the guard left it.
        kept.insert("marginal".into(), original.clone());
        if let Some(p) = recorded_pass {
            kept.insert("pass".into(), p.clone());
        }
        return None;
    }
    let guard_wrote =
        recorded_marginal.is_some() && recorded_pass.and_then(Value::as_i64) == Some(marginal);
    let (original, original_value) = match recorded_marginal.and_then(Value::as_i64) {
        Some(r) if guard_wrote => (r, recorded_marginal.cloned()),
        _ => (marginal, None),
    };
    if original < pass {
        threshold.insert("marginal".into(), Value::from(pass));
        kept.insert(
            "marginal".into(),
            original_value.unwrap_or_else(|| Value::from(original)),
        );
        kept.insert("pass".into(), Value::from(pass));
        Some(Edit::Closed)
    } else if let Some(value) = original_value {
        // Only `pass` was edited, now at or below the original marginal: nothing to close.
        threshold.insert("marginal".into(), value);
        Some(Edit::Restored)
    } else {
        None
    }
}

/// Conditions: `failureCondition := (F) || !(S)` for a condition provider with both set.
/// The record keeps F. A failure condition the guard wrote from the recorded F for an earlier
/// success condition is rebuilt from F, or, when the metric no longer has both conditions (or
/// no longer a condition provider), set back to F.
fn close_conditions(
    m: &mut Map<String, Value>,
    entry: Option<&Map<String, Value>>,
    kept: &mut Map<String, Value>,
) -> Option<Edit> {
    let text = |m: &Map<String, Value>, k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let recorded = entry
        .and_then(|e| e.get("failureCondition"))
        .and_then(Value::as_str);
    let (s, f) = (text(m, "successCondition"), text(m, "failureCondition"));
    // The recorded F while the failure condition is still what the guard wrote from it.
    let original = recorded.filter(|r| f.as_deref().is_some_and(|f| written_from(f, r)));
    let (Some(s), Some(f)) = (s, f) else {
        return restore_failure(m, original);
    };
    if !has_condition_provider(m) {
        return restore_failure(m, original);
    }
    if is_fail_closed(&f, &s) {
        if let Some(original) = original {
            kept.insert("failureCondition".into(), Value::from(original));
        }
        return None;
    }
    // Already closed for an earlier success condition (the user edited only that one):
    // close the recorded original again, not the rewritten condition.
    let f = original.map_or(f, str::to_owned);
    m.insert("failureCondition".into(), Value::from(closed(&f, &s)));
    kept.insert("failureCondition".into(), Value::from(f));
    Some(Edit::Closed)
}

fn restore_failure(m: &mut Map<String, Value>, original: Option<&str>) -> Option<Edit> {
    let original = original?;
    m.insert("failureCondition".into(), Value::from(original));
    Some(Edit::Restored)
}

/// `(F) || !(S)`. A condition with `//` in it may end in an expr comment, which runs to the
/// end of the line and would swallow the closing parenthesis: each then closes on a line of
/// its own (`(F\n) || !(S\n)`), which is the same expression. (A `//` in a string literal
/// takes the same form, harmlessly.)
fn closed(f: &str, s: &str) -> String {
    if f.contains("//") || s.contains("//") {
        format!("({f}\n) || !({s}\n)")
    } else {
        format!("({f}) || !({s})")
    }
}

/// Whether `failure` is `(F) || !(S)` as the guard writes it from this F, for some S.
fn written_from(failure: &str, original: &str) -> bool {
    let Some(rest) = failure
        .strip_prefix('(')
        .and_then(|rest| rest.strip_prefix(original))
    else {
        return false;
    };
    [") || !(", "\n) || !("]
        .iter()
        .any(|middle| rest.strip_prefix(middle).is_some_and(|s| s.ends_with(')')))
}

/// Whether a failure condition is already `(F) || !(S)` for this success condition, in
/// either of the forms the guard writes (one line, or each condition closed on its own line).
pub fn is_fail_closed(failure: &str, success: &str) -> bool {
    if failure.contains("//") {
        // Only the form that closes each condition on its own line holds: the one-line form
        // (which this guard wrote before) has a comment swallowing a parenthesis, and is
        // written again from the recorded original.
        failure.ends_with(&format!("\n) || !({success}\n)"))
    } else {
        failure.ends_with(&format!(" || !({success})"))
    }
}

fn has_condition_provider(metric: &Map<String, Value>) -> bool {
    metric
        .get("provider")
        .and_then(Value::as_object)
        .is_some_and(|p| {
            p.len() == 1
                && p.keys()
                    .all(|k| !matches!(k.as_str(), "job" | "kayenta" | "plugin"))
        })
}

fn existing_record(object: &Value, key: &str) -> Map<String, Value> {
    read_record(object, key).unwrap_or_default()
}

/// An annotation's text.
fn annotation<'v>(object: &'v Value, key: &str) -> Option<&'v str> {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// A record annotation as a map, `None` when it is absent or not a JSON object.
fn read_record(object: &Value, key: &str) -> Option<Map<String, Value>> {
    annotation(object, key).and_then(|s| serde_json::from_str::<Map<String, Value>>(s).ok())
}

fn remove_annotation(object: &mut Value, key: &str) {
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(key);
    }
}

fn set_annotation(object: &mut Value, key: &str, value: String) {
    let Some(obj) = object.as_object_mut() else {
        return;
    };
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    if let Some(a) = annotations.as_object_mut() {
        a.insert(key.to_owned(), Value::from(value));
    }
}

/// A recorded pause duration as the user reads it: a string as written, a number of seconds
/// with its unit (`10` is `10s`).
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => format!("{n}s"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(before: &Value, after: &Value) -> Value {
        let patch = json_patch::diff(before, after);
        let mut v = before.clone();
        json_patch::patch(&mut v, &patch).unwrap();
        v
    }

    #[test]
    fn parses_guard_sets() {
        assert_eq!("auto".parse::<GuardSet>().unwrap(), GuardSet::AUTO);
        assert_eq!("none".parse::<GuardSet>().unwrap(), GuardSet::NONE);
        let s: GuardSet = "status, fail-closed".parse().unwrap();
        assert!(s.status && s.fail_closed && !s.hold);
        assert!("auto,hold".parse::<GuardSet>().is_err());
        // `none` with a guard is a contradiction, not the guard.
        for contradiction in ["none,hold", "hold, off", "none,auto"] {
            let e = contradiction.parse::<GuardSet>().unwrap_err();
            assert!(e.contains("cannot be combined"), "{contradiction}: {e}");
        }
        assert_eq!("none,off".parse::<GuardSet>().unwrap(), GuardSet::NONE);
        assert!("bogus".parse::<GuardSet>().unwrap_err().contains("bogus"));
        // The annotation's empty value has always meant none; `serve --guards` refuses it.
        assert_eq!("".parse::<GuardSet>().unwrap(), GuardSet::NONE);
        assert_eq!(
            GuardSet::AUTO
                .resolve(ControllerVersion::new(1, 8, 1))
                .to_string(),
            "hold"
        );
        assert_eq!(
            GuardSet::AUTO
                .resolve(ControllerVersion::new(1, 9, 0))
                .to_string(),
            "status"
        );
    }

    #[test]
    fn hold_makes_timed_pauses_indefinite_and_records_them() {
        let before = json!({"metadata": {"name": "r", "annotations": {"keep": "me"}},
            "spec": {"strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": {"duration": "5m"}}, {"pause": {"duration": 30}}]}}}});
        let mut after = before.clone();
        let trap = Trap {
            timed_pauses: vec![(1, 300), (2, 30)],
        };
        let said = hold(&mut after, &trap).unwrap();
        assert!(said.contains("1 (5m), 2 (30s)"), "{said}");
        assert_eq!(
            after["spec"]["strategy"]["canary"]["steps"][1],
            json!({"pause": {}})
        );
        let record: Value = serde_json::from_str(
            after["metadata"]["annotations"][HELD_PAUSES_ANNOTATION]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(record, json!({"1": "5m", "2": 30}));
        assert_eq!(after["metadata"]["annotations"]["keep"], "me");
        assert_eq!(apply(&before, &after), after);
        // Second pass: nothing left to hold.
        let mut again = after.clone();
        assert!(
            hold(
                &mut again,
                &Trap {
                    timed_pauses: vec![]
                }
            )
            .is_none()
        );
    }

    fn status(index: i64, stable: &str, hash: &str, reasons: &[&str]) -> Value {
        let conditions: Vec<_> = reasons
            .iter()
            .map(|r| json!({"reason": r, "startTime": "2026-01-01T00:00:00Z"}))
            .collect();
        json!({"metadata": {"name": "r"}, "status": {"currentStepIndex": index, "stableRS": stable,
            "currentPodHash": hash, "pauseConditions": conditions, "controllerPause": true}})
    }

    #[test]
    fn status_guard_keeps_the_rollout_where_it_is() {
        let old = status(1, "stable", "canary", &["InconclusiveAnalysisRun"]);
        let mut new = status(2, "stable", "canary", &[]);
        let said = status_guard(&mut new, &old).unwrap();
        assert!(
            said.contains("currentStepIndex") && said.contains("pauseConditions"),
            "{said}"
        );
        assert_eq!(new["status"]["currentStepIndex"], 1);
        assert_eq!(
            new["status"]["pauseConditions"][0]["reason"],
            "InconclusiveAnalysisRun"
        );
        // Guarding the guarded object changes nothing.
        let mut again = new.clone();
        assert!(status_guard(&mut again, &old).is_none());
        assert_eq!(again, new);
    }

    #[test]
    fn status_guard_blocks_promotion_to_stable() {
        let old = status(2, "stable", "canary", &["InconclusiveAnalysisRun"]);
        let mut new = status(2, "canary", "canary", &["InconclusiveAnalysisRun"]);
        assert!(status_guard(&mut new, &old).is_some());
        assert_eq!(new["status"]["stableRS"], "stable");
    }

    #[test]
    fn status_guard_lets_abort_full_promotion_and_new_revisions_through() {
        let old = status(1, "stable", "canary", &["InconclusiveAnalysisRun"]);
        let mut abort = status(0, "stable", "canary", &[]);
        abort["status"]["abort"] = json!(true);
        assert!(status_guard(&mut abort, &old).is_none());
        let mut full = status(2, "canary", "canary", &[]);
        full["status"]["promoteFull"] = json!(true);
        assert!(status_guard(&mut full, &old).is_none());
        let mut revision = status(0, "stable", "newer", &[]);
        assert!(status_guard(&mut revision, &old).is_none());
        // Edited steps (a new currentStepHash): Argo starts the canary again from step 0.
        let mut old = old;
        old["status"]["currentStepHash"] = json!("steps-a");
        let mut edited = status(0, "stable", "canary", &[]);
        edited["status"]["currentStepHash"] = json!("steps-b");
        assert!(status_guard(&mut edited, &old).is_none());
        let mut same_steps = status(2, "stable", "canary", &[]);
        same_steps["status"]["currentStepHash"] = json!("steps-a");
        assert!(status_guard(&mut same_steps, &old).is_some());
    }

    #[test]
    fn status_guard_ignores_healthy_rollouts() {
        let old = status(1, "stable", "canary", &["CanaryPauseStep"]);
        let mut new = status(2, "stable", "canary", &[]);
        assert!(status_guard(&mut new, &old).is_none());
    }

    #[test]
    fn fail_closed_turns_inconclusive_into_failure_once() {
        let before = json!({"metadata": {"name": "t"}, "spec": {"metrics": [
            {"name": "a", "successCondition": "result[0] >= 0.95", "failureCondition": "result[0] < 0.9", "provider": {"prometheus": {}}},
            {"name": "b", "successCondition": "x", "provider": {"prometheus": {}}},
            {"name": "k", "provider": {"kayenta": {"threshold": {"pass": 90, "marginal": 75}}}},
            {"name": "j", "successCondition": "x", "failureCondition": "y", "provider": {"job": {}}}
        ]}});
        let mut after = before.clone();
        let said = fail_closed(&mut after).unwrap();
        assert!(said.contains("`a`, `k`"), "{said}");
        assert_eq!(
            after["spec"]["metrics"][0]["failureCondition"],
            "(result[0] < 0.9) || !(result[0] >= 0.95)"
        );
        assert_eq!(
            after["spec"]["metrics"][2]["provider"]["kayenta"]["threshold"]["marginal"],
            90
        );
        assert_eq!(after["spec"]["metrics"][3], before["spec"]["metrics"][3]);
        let mut again = after.clone();
        assert!(fail_closed(&mut again).is_none());
        assert_eq!(apply(&before, &after), after);
    }

    /// An expr `//` comment runs to the end of its line: each condition closes on a line of
    /// its own, so the comment cannot swallow a parenthesis. Editing either condition later
    /// re-closes from the recorded original, in either form.
    #[test]
    fn fail_closed_keeps_comments_in_conditions_from_eating_parentheses() {
        let template = |success: &str, failure: &str| {
            json!({"metadata": {"name": "t"}, "spec": {"metrics": [{"name": "a",
                "successCondition": success, "failureCondition": failure,
                "provider": {"prometheus": {}}}]}})
        };
        let before = template("result[0] >= 0.95 // SLO", "result[0] < 0.9");
        let (after, said) = fail_closed_once(&before);
        assert!(said.is_some());
        assert_eq!(
            after["spec"]["metrics"][0]["failureCondition"],
            "(result[0] < 0.9\n) || !(result[0] >= 0.95 // SLO\n)"
        );
        assert_eq!(
            record_of(&after).unwrap()["a"]["failureCondition"],
            "result[0] < 0.9"
        );
        // The comment removed from S: back to the one-line form, from the recorded F.
        let mut edited = after.clone();
        edited["spec"]["metrics"][0]["successCondition"] = json!("result[0] >= 0.95");
        let (after, _) = fail_closed_once(&edited);
        assert_eq!(
            after["spec"]["metrics"][0]["failureCondition"],
            "(result[0] < 0.9) || !(result[0] >= 0.95)"
        );
        // The one-line form an earlier version wrote, broken by the comment: written again.
        let mut broken = after.clone();
        broken["spec"]["metrics"][0]["successCondition"] = json!("result[0] >= 0.95 // SLO");
        broken["spec"]["metrics"][0]["failureCondition"] =
            json!("(result[0] < 0.9) || !(result[0] >= 0.95 // SLO)");
        let (repaired, said) = fail_closed_once(&broken);
        assert!(said.is_some());
        assert_eq!(
            repaired["spec"]["metrics"][0]["failureCondition"],
            "(result[0] < 0.9\n) || !(result[0] >= 0.95 // SLO\n)"
        );
        // A comment in F alone.
        let (after, _) = fail_closed_once(&template("x", "y // z"));
        assert_eq!(
            after["spec"]["metrics"][0]["failureCondition"],
            "(y // z\n) || !(x\n)"
        );
    }

    fn record_of(v: &Value) -> Option<Value> {
        v.pointer("/metadata/annotations")
            .and_then(|a| a.get(FAIL_CLOSED_ANNOTATION))
            .map(|r| serde_json::from_str(r.as_str().unwrap()).unwrap())
    }

    /// Guards `object`, checks the patch applies back to the result and that guarding the
    /// result again changes nothing.
    fn fail_closed_once(object: &Value) -> (Value, Option<String>) {
        let mut after = object.clone();
        let said = fail_closed(&mut after);
        assert_eq!(apply(object, &after), after);
        let mut again = after.clone();
        assert_eq!(fail_closed(&mut again), None, "not idempotent: {after}");
        (after, said)
    }

    fn closed_template() -> Value {
        let mut t = json!({"metadata": {"name": "t", "annotations": {"keep": "me"}}, "spec": {"metrics": [
            {"name": "a", "successCondition": "result[0] >= 0.95", "failureCondition": "result[0] < 0.9", "provider": {"prometheus": {}}},
            {"name": "b", "successCondition": "x > 1", "failureCondition": "x < 0", "provider": {"web": {}}},
            {"name": "k", "provider": {"kayenta": {"threshold": {"pass": 90, "marginal": 75}}}}
        ]}});
        assert!(fail_closed(&mut t).is_some());
        t
    }

    #[test]
    fn fail_closed_carries_a_record_over_to_a_renamed_metric() {
        let closed = closed_template();
        let mut renamed = closed.clone();
        renamed["spec"]["metrics"][0]["name"] = json!("a2");
        // A renamed Kayenta metric takes nothing over (a marginal at the pass is also what
        // people write by hand): its entry is dropped, the threshold stays as it is.
        renamed["spec"]["metrics"][2]["name"] = json!("k2");
        let (after, said) = fail_closed_once(&renamed);
        let said = said.expect("the record moves with the metric");
        assert!(
            said.contains("record of `a` now under `a2` (renamed)"),
            "{said}"
        );
        assert!(said.contains("record of `k` dropped"), "{said}");
        let record = record_of(&after).unwrap();
        assert_eq!(record["a2"], record_of(&closed).unwrap()["a"]);
        assert!(
            record.get("a").is_none() && record.get("k2").is_none(),
            "{record}"
        );
        assert_eq!(after["spec"], renamed["spec"], "only the record changes");
        // Removing S from the renamed metric still puts the original F back.
        let mut without_s = after.clone();
        without_s["spec"]["metrics"][0]
            .as_object_mut()
            .unwrap()
            .remove("successCondition");
        let (restored, _) = fail_closed_once(&without_s);
        assert_eq!(
            restored["spec"]["metrics"][0]["failureCondition"],
            "result[0] < 0.9"
        );
        // A renamed metric the user rewrote takes nothing over: the entry is dropped.
        let mut rewritten = renamed.clone();
        rewritten["spec"]["metrics"][0]["failureCondition"] = json!("result[0] < 0.5");
        let (after, said) = fail_closed_once(&rewritten);
        let said = said.unwrap();
        assert!(said.contains("record of `a`, `k` dropped"), "{said}");
        assert_eq!(
            after["spec"]["metrics"][0]["failureCondition"],
            "(result[0] < 0.5) || !(result[0] >= 0.95)"
        );
    }

    #[test]
    fn fail_closed_follows_swapped_and_reused_names() {
        let closed = closed_template();
        let original = |t: &Value, name: &str| record_of(t).unwrap()[name].clone();
        // Names swapped: each entry follows the metric that carries its edit.
        let mut swapped = closed.clone();
        swapped["spec"]["metrics"][0]["name"] = json!("b");
        swapped["spec"]["metrics"][1]["name"] = json!("a");
        let (after, said) = fail_closed_once(&swapped);
        assert!(said.is_some());
        assert_eq!(original(&after, "b"), original(&closed, "a"));
        assert_eq!(original(&after, "a"), original(&closed, "b"));
        // Renamed, and a new metric takes the old name: the renamed one keeps the original.
        let mut reused = closed.clone();
        reused["spec"]["metrics"][0]["name"] = json!("a2");
        reused["spec"]["metrics"].as_array_mut().unwrap().push(json!(
            {"name": "a", "successCondition": "y > 1", "failureCondition": "y < 0", "provider": {"web": {}}}
        ));
        let (after, _) = fail_closed_once(&reused);
        assert_eq!(original(&after, "a2"), original(&closed, "a"));
        assert_eq!(original(&after, "a"), json!({"failureCondition": "y < 0"}));
        // Copied under a new name: both carry the edit, both keep the original.
        let mut copied = closed.clone();
        let copy = json!(closed["spec"]["metrics"][0].clone());
        copied["spec"]["metrics"][0]["name"] = json!("a2");
        let mut copy = copy;
        copy["name"] = json!("c");
        copied["spec"]["metrics"]
            .as_array_mut()
            .unwrap()
            .insert(0, copy);
        let (after, _) = fail_closed_once(&copied);
        assert_eq!(original(&after, "a2"), original(&closed, "a"));
        assert_eq!(original(&after, "c"), original(&closed, "a"));
    }

    #[test]
    fn fail_closed_gives_no_kayenta_record_to_another_metric() {
        let mut t = closed_template();
        // A metric the user closed by hand, then the guarded Kayenta metric deleted.
        t["spec"]["metrics"].as_array_mut().unwrap().push(json!(
            {"name": "u", "provider": {"kayenta": {"threshold": {"pass": 90, "marginal": 90}}}}
        ));
        t["spec"]["metrics"].as_array_mut().unwrap().remove(2);
        let (after, said) = fail_closed_once(&t);
        let said = said.unwrap();
        assert!(said.contains("record of `k` dropped"), "{said}");
        assert!(record_of(&after).unwrap().get("u").is_none());
    }

    #[test]
    fn fail_closed_leaves_a_template_with_repeated_metric_names_alone() {
        // Argo refuses it, and a record keyed by name cannot tell the two apart.
        let mut t = closed_template();
        t["spec"]["metrics"].as_array_mut().unwrap().push(json!(
            {"name": "a", "failureCondition": "(result[0] < 0.9) || !(z)", "provider": {"web": {}}}
        ));
        let before = t.clone();
        assert_eq!(fail_closed(&mut t), None);
        assert_eq!(t, before);
    }

    /// Found by fuzzing: a metric without a success condition whose failure condition has the
    /// guard's shape took over the entry the first pass wrote for another metric.
    #[test]
    fn fail_closed_takes_over_no_entry_it_just_wrote() {
        let t = json!({"metadata": {"name": "t"}, "spec": {"metrics": [
            {"name": "c", "successCondition": "result[0] < 0.9", "failureCondition": "result[0] < 0.9", "provider": {"prometheus": {}}},
            {"name": "d", "failureCondition": "(result[0] < 0.9) || !(x)", "provider": {"prometheus": {}}}
        ]}});
        let (after, said) = fail_closed_once(&t);
        assert!(said.is_some());
        assert_eq!(after["spec"]["metrics"][1], t["spec"]["metrics"][1]);
    }

    #[test]
    fn fail_closed_puts_the_original_back_when_a_condition_is_removed() {
        let closed = closed_template();
        let mut edited = closed.clone();
        edited["spec"]["metrics"][0]
            .as_object_mut()
            .unwrap()
            .remove("successCondition");
        let (after, said) = fail_closed_once(&edited);
        let said = said.expect("the guard's edit is undone");
        assert!(said.contains("original put back for `a`"), "{said}");
        assert_eq!(
            after["spec"]["metrics"][0]["failureCondition"],
            "result[0] < 0.9"
        );
        assert_eq!(after["spec"]["metrics"][1], closed["spec"]["metrics"][1]);
        let record = record_of(&after).unwrap();
        assert!(
            record.get("a").is_none() && record.get("b").is_some(),
            "{record}"
        );
        assert_eq!(after["metadata"]["annotations"]["keep"], "me");
    }

    #[test]
    fn fail_closed_keeps_a_failure_condition_the_user_rewrote() {
        let closed = closed_template();
        let mut edited = closed.clone();
        let a = edited["spec"]["metrics"][0].as_object_mut().unwrap();
        a.remove("successCondition");
        a.insert("failureCondition".into(), json!("result[0] < 0.5"));
        let (after, said) = fail_closed_once(&edited);
        assert!(said.unwrap().contains("record of `a` dropped"));
        assert_eq!(
            after["spec"]["metrics"][0]["failureCondition"],
            "result[0] < 0.5"
        );
        assert!(record_of(&after).unwrap().get("a").is_none());
        // The failure condition removed instead: nothing to put back either.
        let mut edited = closed.clone();
        edited["spec"]["metrics"][0]
            .as_object_mut()
            .unwrap()
            .remove("failureCondition");
        let (after, _) = fail_closed_once(&edited);
        assert!(
            after["spec"]["metrics"][0]
                .get("failureCondition")
                .is_none()
        );
        assert!(record_of(&after).unwrap().get("a").is_none());
    }

    #[test]
    fn fail_closed_forgets_removed_metrics_and_drops_an_empty_record() {
        let closed = closed_template();
        let mut edited = closed.clone();
        edited["spec"]["metrics"].as_array_mut().unwrap().remove(1);
        let (after, said) = fail_closed_once(&edited);
        assert!(said.unwrap().contains("record of `b` dropped"));
        assert_eq!(after["spec"]["metrics"], edited["spec"]["metrics"]);
        let record = record_of(&after).unwrap();
        assert!(record.get("b").is_none() && record.get("a").is_some());
        // Every guarded metric gone: the annotation goes, the others stay.
        let mut edited = closed.clone();
        edited["spec"]["metrics"] =
            json!([{"name": "c", "successCondition": "x", "provider": {"web": {}}}]);
        let (after, _) = fail_closed_once(&edited);
        assert_eq!(after["metadata"]["annotations"], json!({"keep": "me"}));
    }

    #[test]
    fn fail_closed_follows_kayenta_threshold_edits() {
        let closed = closed_template();
        assert_eq!(
            record_of(&closed).unwrap()["k"],
            json!({"marginal": 75, "pass": 90})
        );
        let threshold = "/spec/metrics/2/provider/kayenta/threshold";
        // `pass` raised alone: closed again from the original marginal, not the guard's 90.
        let mut raised = closed.clone();
        raised.pointer_mut(threshold).unwrap()["pass"] = json!(95);
        let (after, said) = fail_closed_once(&raised);
        assert!(said.unwrap().contains("`k`"));
        assert_eq!(
            after.pointer(threshold).unwrap(),
            &json!({"pass": 95, "marginal": 95})
        );
        assert_eq!(
            record_of(&after).unwrap()["k"],
            json!({"marginal": 75, "pass": 95})
        );
        // `pass` lowered to the original marginal or below: no band left, the original back.
        let mut lowered = closed.clone();
        lowered.pointer_mut(threshold).unwrap()["pass"] = json!(70);
        let (after, said) = fail_closed_once(&lowered);
        assert!(said.unwrap().contains("original put back for `k`"));
        assert_eq!(
            after.pointer(threshold).unwrap(),
            &json!({"pass": 70, "marginal": 75})
        );
        assert!(record_of(&after).unwrap().get("k").is_none());
        // The marginal edited by the user: theirs is closed and recorded.
        let mut own = closed.clone();
        own.pointer_mut(threshold).unwrap()["marginal"] = json!(80);
        let (after, _) = fail_closed_once(&own);
        assert_eq!(
            record_of(&after).unwrap()["k"],
            json!({"marginal": 80, "pass": 90})
        );
        // No longer Kayenta: the entry goes.
        let mut other = closed.clone();
        other["spec"]["metrics"][2]["provider"] = json!({"web": {}});
        let (after, _) = fail_closed_once(&other);
        assert!(record_of(&after).unwrap().get("k").is_none());
    }

    #[test]
    fn fail_closed_leaves_records_it_cannot_read_and_older_records_alone() {
        // A record written before the pass was kept, on a closed threshold: nothing to do.
        let older = json!({"metadata": {"annotations": {FAIL_CLOSED_ANNOTATION: r#"{"k":{"marginal":75}}"#}},
            "spec": {"metrics": [{"name": "k", "provider": {"kayenta": {"threshold": {"pass": 90, "marginal": 90}}}}]}});
        assert_eq!(fail_closed_once(&older), (older.clone(), None));
        let unreadable = json!({"metadata": {"annotations": {FAIL_CLOSED_ANNOTATION: "by hand"}},
            "spec": {"metrics": [{"name": "b", "successCondition": "x", "provider": {"web": {}}}]}});
        assert_eq!(fail_closed_once(&unreadable), (unreadable.clone(), None));
    }

    /// A held Rollout: `steps`, and the record of held pauses `record` with the fingerprint
    /// of those steps, as the guard writes them.
    fn held_rollout(steps: Value, record: &str) -> Value {
        let mut r = json!({"metadata": {"annotations": {HELD_PAUSES_ANNOTATION: record}},
               "spec": {"strategy": {"canary": {"steps": steps}}}});
        let stamp = fingerprint(&step_keys(&r));
        r["metadata"]["annotations"][HELD_STEPS_ANNOTATION] = json!(stamp);
        r
    }

    fn held_record(v: &Value) -> Option<Value> {
        v.pointer("/metadata/annotations")
            .and_then(|a| a.get(HELD_PAUSES_ANNOTATION))
            .map(|r| serde_json::from_str(r.as_str().unwrap()).unwrap())
    }

    /// Found by review: an edit that inserted or removed steps before held pauses left the
    /// record on the old indices, where it was pruned (the originals lost) or credited a
    /// pause the user wrote indefinite. The record now follows its steps.
    #[test]
    fn carry_held_moves_the_record_with_edited_steps() {
        let (sw, held) = (|w: i64| json!({"setWeight": w}), json!({"pause": {}}));
        let old = held_rollout(
            json!([sw(20), held, sw(50), held]),
            r#"{"1":"10m","3":600}"#,
        );
        // A step inserted in front.
        let mut new = old.clone();
        new["spec"]["strategy"]["canary"]["steps"] = json!([sw(10), sw(20), held, sw(50), held]);
        let edited = new.clone();
        let said = carry_held(&mut new, &old).unwrap();
        assert_eq!(held_record(&new), Some(json!({"2": "10m", "4": 600})));
        assert!(
            said.contains("moved with the edited steps: 1 to 2, 3 to 4"),
            "{said}"
        );
        assert_eq!(apply(&edited, &new), new);
        assert_eq!(
            prune_held(&mut new.clone()),
            None,
            "every entry on a held pause"
        );
        // Seen again (webhook reinvocation): the record differs from the old one, so it is
        // indexed by the new steps already and stays.
        let mut again = new.clone();
        assert_eq!(carry_held(&mut again, &old), None);

        // Two steps removed in front of the user's own indefinite pause: the held 1h goes
        // with its step, the 5m follows its own, the user's pause gets nothing.
        let old = held_rollout(
            json!([sw(20), held, sw(40), held, sw(60), held]),
            r#"{"1":"1h","5":"5m"}"#,
        );
        let mut new = old.clone();
        new["spec"]["strategy"]["canary"]["steps"] = json!([sw(40), held, sw(60), held]);
        let said = carry_held(&mut new, &old).unwrap();
        assert_eq!(held_record(&new), Some(json!({"3": "5m"})));
        assert!(
            said.contains("5 to 3") && said.contains("steps 1 (1h) are no longer held pauses"),
            "{said}"
        );

        // Every held step removed: the record goes.
        let mut new = old.clone();
        new["spec"]["strategy"]["canary"]["steps"] = json!([sw(100)]);
        assert!(carry_held(&mut new, &old).is_some());
        assert_eq!(held_record(&new), None);
    }

    #[test]
    fn carry_held_leaves_records_the_request_changed_and_unedited_steps() {
        let steps = json!([{"setWeight": 20}, {"pause": {}}]);
        let old = held_rollout(steps.clone(), r#"{"1":"10m"}"#);
        // Steps unchanged.
        let mut same = old.clone();
        assert_eq!(carry_held(&mut same, &old), None);
        // The record rewritten by the request: taken as written.
        let mut new = held_rollout(
            json!([{"setWeight": 5}, {"setWeight": 20}, {"pause": {}}]),
            r#"{"2":"10m"}"#,
        );
        assert_eq!(carry_held(&mut new, &old), None);
        // No record before (the first hold), or none now: nothing to carry.
        let mut new = held_rollout(json!([{"pause": {}}]), r#"{"1":"10m"}"#);
        let mut bare = old.clone();
        bare["metadata"]["annotations"] = json!({});
        assert_eq!(carry_held(&mut new, &bare), None);
        let mut none = bare.clone();
        none["spec"]["strategy"]["canary"]["steps"] = json!([]);
        assert_eq!(carry_held(&mut none, &old), None);
    }

    /// Found by review: held again as stored, the stored record went back out unpruned when
    /// a pause had been put back out of the guard's sight; and the warning promised that the
    /// next revision holds timed pauses also when the Rollout no longer matches.
    #[test]
    fn hold_as_stored_prunes_the_stored_record_and_promises_only_what_holds() {
        let timed = |d: &str| json!({"pause": {"duration": d}});
        let mut stored = held_rollout(
            json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, timed("10m")]),
            r#"{"1":"5m","3":"10m"}"#,
        );
        stored["status"] = json!({"currentPodHash": "new", "stableRS": "old"});
        let mut sync = stored.clone();
        sync["spec"]["strategy"]["canary"]["steps"][1] = timed("5m");
        for trapped in [true, false] {
            let (held, said) = hold_as_stored(&sync, &stored, trapped).unwrap();
            assert_eq!(held["spec"], stored["spec"]);
            assert_eq!(held_record(&held), Some(json!({"1": "5m"})));
            assert!(
                said.contains("steps 3 (10m) are no longer held pauses"),
                "{said}"
            );
            assert_eq!(
                said.contains("timed pauses at steps 3 are left until the next revision"),
                trapped,
                "{said}"
            );
            // Its own output: the steps as stored already, nothing to hold again.
            assert_eq!(hold_as_stored(&held, &stored, trapped), None);
        }
    }

    #[test]
    fn hold_says_which_record_entries_it_replaced() {
        // Step 1 holds a record entry (10m) but is a timed pause again, of 2m.
        let mut r = held_rollout(
            json!([{"setWeight": 20}, {"pause": {"duration": "2m"}}]),
            r#"{"1":"10m"}"#,
        );
        let said = hold(
            &mut r,
            &Trap {
                timed_pauses: vec![(1, 120)],
            },
        )
        .unwrap();
        assert_eq!(held_record(&r), Some(json!({"1": "2m"})));
        assert!(
            said.ends_with("; the record's earlier durations for steps 1 (10m) replaced"),
            "{said}"
        );
    }

    #[test]
    fn hold_says_which_record_entries_it_dropped() {
        // Step 3 was a held pause and is now a setWeight; step 4 is a new timed pause.
        let mut r = held_rollout(
            json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"setWeight": 60},
                   {"pause": {"duration": "2m"}}]),
            r#"{"1":"10m","3":600}"#,
        );
        let said = hold(
            &mut r,
            &Trap {
                timed_pauses: vec![(4, 120)],
            },
        )
        .unwrap();
        assert_eq!(held_record(&r), Some(json!({"1": "10m", "4": "2m"})));
        assert!(
            said.ends_with("; steps 3 (600s) are no longer held pauses, dropped from rollout-guard.io/held-pauses"),
            "{said}"
        );
    }

    #[test]
    fn heaviest_common_subsequence_maps_kept_steps_and_refuses_huge_tables() {
        let equal = |old: &'static [u8], new: &'static [u8]| {
            move |i: usize, j: usize| u32::from(old[i] == new[j])
        };
        let (old, new) = (&[1, 2, 3, 4][..], &[0, 1, 3, 4, 5][..]);
        assert_eq!(
            heaviest_common_subsequence(4, 5, equal(old, new)),
            Some(vec![Some(1), None, Some(2), Some(3)])
        );
        assert_eq!(heaviest_common_subsequence(0, 1, |_, _| 1), Some(vec![]));
        assert_eq!(heaviest_common_subsequence(1000, 1000, |_, _| 1), None);
        // A heavier match wins over an earlier lighter one.
        let weight = |_: usize, j: usize| if j == 1 { 2 } else { 1 };
        assert_eq!(
            heaviest_common_subsequence(1, 2, weight),
            Some(vec![Some(1)])
        );
    }

    /// Found by review: with durations left out of the comparison, a pause the user inserted
    /// beside held ones took a held pause's place, and its duration was lost.
    #[test]
    fn carry_held_keeps_held_pauses_apart_from_inserted_ones() {
        let (sw, held) = (|w: i64| json!({"setWeight": w}), json!({"pause": {}}));
        let timed = |d: &str| json!({"pause": {"duration": d}});
        // A timed pause inserted in front of a held one (kubectl edit).
        let old = held_rollout(json!([sw(20), held, sw(50)]), r#"{"1":"5m"}"#);
        let mut new = old.clone();
        new["spec"]["strategy"]["canary"]["steps"] = json!([sw(20), timed("1m"), held, sw(50)]);
        let (after, _) = hold_pass(&new, &old);
        assert_eq!(held_record(&after), Some(json!({"1": "1m", "2": "5m"})));
        // Between held ones.
        let old = held_rollout(
            json!([sw(20), held, held, held]),
            r#"{"1":"1m","2":"30s","3":"10m"}"#,
        );
        let mut new = old.clone();
        new["spec"]["strategy"]["canary"]["steps"] = json!([sw(20), held, timed("2m"), held, held]);
        let (after, _) = hold_pass(&new, &old);
        assert_eq!(
            held_record(&after),
            Some(json!({"1": "1m", "2": "2m", "3": "30s", "4": "10m"}))
        );
        // Git adds a pause written indefinite before the held one, and sends the held one
        // with its duration: the held one is the timed one.
        let old = held_rollout(json!([sw(20), held, held]), r#"{"2":"5m"}"#);
        let mut new = old.clone();
        new["spec"]["strategy"]["canary"]["steps"] = json!([sw(20), held, held, timed("5m")]);
        let (after, _) = hold_pass(&new, &old);
        assert_eq!(held_record(&after), Some(json!({"3": "5m"})));
        assert_eq!(hold_pass(&after, &old).0, after, "idempotent");
    }

    /// The guard's whole pass on a Rollout update, as `guard_rollout` runs it: carry, then
    /// hold the timed pauses or prune the record.
    fn hold_pass(new: &Value, old: &Value) -> (Value, Vec<String>) {
        let mut r = new.clone();
        let mut said: Vec<String> = carry_held(&mut r, old).into_iter().collect();
        let steps = r["spec"]["strategy"]["canary"]["steps"].as_array().unwrap();
        let timed: Vec<(usize, i64)> = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.pointer("/pause/duration").is_some())
            .map(|(i, _)| (i, 1))
            .collect();
        let held = if timed.is_empty() {
            prune_held(&mut r)
        } else {
            hold(
                &mut r,
                &Trap {
                    timed_pauses: timed,
                },
            )
        };
        said.extend(held);
        (r, said)
    }

    /// Found by review: a carried record plus newly held pauses can equal the old record by
    /// chance, and a second pass then carried it again; and a sync that only puts durations
    /// back reported drops that did not happen. The fingerprint settles both.
    #[test]
    fn hold_with_carry_is_idempotent_and_quiet_on_a_gitops_resync() {
        let (sw, held) = (|w: i64| json!({"setWeight": w}), json!({"pause": {}}));
        let timed = json!({"pause": {"duration": "10m"}});
        let old = held_rollout(
            json!([sw(20), held, sw(50), held]),
            r#"{"1":"10m","3":"10m"}"#,
        );
        let mut new = old.clone();
        new["spec"]["strategy"]["canary"]["steps"] = json!([sw(50), timed, sw(80), timed]);
        let (first, _) = hold_pass(&new, &old);
        assert_eq!(held_record(&first), Some(json!({"1": "10m", "3": "10m"})));
        let (second, said) = hold_pass(&first, &old);
        assert_eq!(second, first, "{said:?}");
        assert!(said.is_empty(), "{said:?}");

        // Git's durations put back on the same steps: held again, nothing said dropped.
        let mut resync = old.clone();
        resync["spec"]["strategy"]["canary"]["steps"] = json!([sw(20), timed, sw(50), timed]);
        let (after, said) = hold_pass(&resync, &old);
        assert_eq!(after, old);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(!said[0].contains("no longer held"), "{said:?}");
    }

    #[test]
    fn carry_held_needs_the_fingerprint_of_the_old_steps() {
        let steps = json!([{"setWeight": 20}, {"pause": {}}]);
        let old = held_rollout(steps, r#"{"1":"10m"}"#);
        let inserted = json!([{"setWeight": 5}, {"setWeight": 20}, {"pause": {}}]);
        // No fingerprint (a record written by hand), or one of other steps: as written.
        for stamp in [None, Some("0000000000000000")] {
            let mut o = old.clone();
            let annotations = o["metadata"]["annotations"].as_object_mut().unwrap();
            match stamp {
                None => annotations.remove(HELD_STEPS_ANNOTATION),
                Some(s) => annotations.insert(HELD_STEPS_ANNOTATION.into(), json!(s)),
            };
            let mut new = o.clone();
            new["spec"]["strategy"]["canary"]["steps"] = inserted.clone();
            assert_eq!(carry_held(&mut new, &o), None, "{stamp:?}");
        }
        // Keys that are not plain indices are not steps: dropped and said.
        let old = held_rollout(
            json!([{"setWeight": 20}, {"pause": {}}]),
            r#"{"1":"10m","01":"5m","+1":"1m"}"#,
        );
        let mut new = old.clone();
        new["spec"]["strategy"]["canary"]["steps"] = inserted;
        let said = carry_held(&mut new, &old).unwrap();
        assert_eq!(held_record(&new), Some(json!({"2": "10m"})));
        assert!(
            said.contains("1 to 2") && said.contains("steps +1 (1m), 01 (5m) are no longer held"),
            "{said}"
        );
        // Steps appended after the held ones: nothing moves, the fingerprint follows.
        let mut appended = old.clone();
        appended["metadata"]["annotations"][HELD_PAUSES_ANNOTATION] = json!(r#"{"1":"10m"}"#);
        let old = appended.clone();
        appended["spec"]["strategy"]["canary"]["steps"] =
            json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}]);
        let said = carry_held(&mut appended, &old).unwrap();
        assert!(said.contains("no held pause moved"), "{said}");
        assert_eq!(held_record(&appended), Some(json!({"1": "10m"})));
        assert_eq!(carry_held(&mut appended.clone(), &old), None);
    }

    #[test]
    fn prune_held_keeps_the_record_to_steps_still_held() {
        let held = json!({"metadata": {"annotations": {"keep": "me", HELD_PAUSES_ANNOTATION: r#"{"1":"5m","3":120}"#}},
            "spec": {"strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]}}}});
        let mut same = held.clone();
        assert_eq!(prune_held(&mut same), None, "all still held");
        assert_eq!(same, held);
        // Step 3 became a setWeight, and step 1 a timed pause the user chose.
        for (step, value, left) in [
            (3, json!({"setWeight": 80}), Some(json!({"1": "5m"}))),
            (
                1,
                json!({"pause": {"duration": "1m"}}),
                Some(json!({"3": 120})),
            ),
            (3, json!({"pause": null}), Some(json!({"1": "5m"}))),
        ] {
            let mut edited = held.clone();
            edited["spec"]["strategy"]["canary"]["steps"][step] = value;
            let mut after = edited.clone();
            let said = prune_held(&mut after).unwrap();
            assert!(said.contains(&format!("steps {step} ")), "{said}");
            assert_eq!(after["spec"], edited["spec"], "the steps are never touched");
            let record = after["metadata"]["annotations"][HELD_PAUSES_ANNOTATION]
                .as_str()
                .map(|r| serde_json::from_str::<Value>(r).unwrap());
            assert_eq!(record, left);
            assert_eq!(apply(&edited, &after), after);
            let mut again = after.clone();
            assert_eq!(prune_held(&mut again), None);
        }
        // No held pause left: the annotation goes, the others stay.
        let mut edited = held.clone();
        edited["spec"]["strategy"]["canary"]["steps"] = json!([{"setWeight": 100}]);
        let mut after = edited.clone();
        assert!(prune_held(&mut after).is_some());
        assert_eq!(after["metadata"]["annotations"], json!({"keep": "me"}));
        assert_eq!(apply(&edited, &after), after);
        // Nothing recorded, or a record that cannot be read: nothing to do.
        for annotations in [json!({}), json!({HELD_PAUSES_ANNOTATION: "1, 3"})] {
            let mut plain = edited.clone();
            plain["metadata"]["annotations"] = annotations;
            let before = plain.clone();
            assert_eq!(prune_held(&mut plain), None);
            assert_eq!(plain, before);
        }
    }
}
