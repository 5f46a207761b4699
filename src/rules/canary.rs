//! How many pods a canary has at a given step, as far as the rules need it (DOMAIN R2/D2).
//! The formulas mirror Argo's replica arithmetic for the cases the rules depend on; where
//! they are inferred rather than read from upstream tests, the comments say so.

use crate::model::{Canary, IntOrStr, ProgressThreshold, SetCanaryScale, Step};

/// What a step does to the ReplicaSets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Pause,
    /// setHeaderRoute / setMirrorRoute: traffic only.
    Route,
    SetWeight,
    SetCanaryScale,
    /// analysis, experiment, plugin: the step waits for something other than the clock.
    Blocking,
    /// A step with none of the known fields.
    Empty,
}

pub fn kind(step: &Step) -> StepKind {
    if step.pause.is_some() {
        StepKind::Pause
    } else if step.analysis.is_some() || step.experiment.is_some() || step.plugin.is_some() {
        StepKind::Blocking
    } else if step.set_weight.is_some() {
        StepKind::SetWeight
    } else if step.set_canary_scale.is_some() {
        StepKind::SetCanaryScale
    } else if step.set_header_route.is_some() || step.set_mirror_route.is_some() {
        StepKind::Route
    } else {
        StepKind::Empty
    }
}

/// Canary and stable pod counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pods {
    pub canary: i64,
    pub stable: i64,
}

/// Walks the steps, tracking weight and canary scale.
pub struct Walker<'a> {
    canary: &'a Canary,
    replicas: i64,
    weight: i64,
    scale: Option<SetCanaryScale>,
}

impl<'a> Walker<'a> {
    pub fn new(canary: &'a Canary, replicas: i64) -> Self {
        Self {
            canary,
            replicas,
            weight: 0,
            scale: None,
        }
    }

    pub fn apply(&mut self, step: &Step) {
        if let Some(w) = step.set_weight.as_ref().and_then(int) {
            self.weight = w.clamp(0, 100);
        }
        if let Some(s) = &step.set_canary_scale {
            self.scale = if s.match_traffic_weight == Some(true) {
                None
            } else {
                Some(SetCanaryScale::clone(s))
            };
        }
    }

    pub fn pods(&self) -> Pods {
        let r = self.replicas;
        if self.canary.traffic_routing.is_none() {
            // A basic canary: the closest split Argo can make. setCanaryScale only takes
            // effect with traffic routing (Argo docs).
            return basic_split(r, self.weight, self.max_surge());
        }
        let dynamic = self.canary.dynamic_stable_scale == Some(true);
        let canary = match &self.scale {
            // An explicit count is kept as is, except that dynamic stable scaling applies the
            // minimum to it too (upstream CalculateReplicaCountsForTrafficRoutedCanary).
            Some(SetCanaryScale {
                replicas: Some(n), ..
            }) => {
                if dynamic {
                    self.at_least_min(*n)
                } else {
                    *n
                }
            }
            Some(SetCanaryScale {
                weight: Some(w), ..
            }) => self.at_least_min(ceil_percent(r, *w)),
            _ => self.at_least_min(ceil_percent(r, self.weight)),
        };
        let stable = if dynamic {
            self.at_least_min(ceil_percent(r, 100 - self.weight))
        } else {
            r
        };
        Pods { canary, stable }
    }

    /// Upstream CheckMinPodsPerReplicaSet (traffic-routed canaries only): a count that is
    /// not zero is raised to `minPodsPerReplicaSet`.
    fn at_least_min(&self, count: i64) -> i64 {
        match self.canary.min_pods_per_replica_set {
            Some(min) if count != 0 => count.max(i64::from(min)),
            _ => count,
        }
    }

    fn max_surge(&self) -> i64 {
        match &self.canary.max_surge {
            None => ceil_percent(self.replicas, 25),
            Some(IntOrStr::Int(n)) => *n,
            Some(IntOrStr::Str(s)) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok())
            {
                Some(p) => ceil_percent(self.replicas, p),
                None => s.parse().unwrap_or(1),
            },
        }
    }
}

/// The available canary pods out of `desired` at which `replicaProgressThreshold` counts as
/// met on a >= 1.9 controller: `Pod` counts pods, `Percent` is a share of `desired` (4 of 5
/// meets 80), and neither asks for more than `desired` (the CRD: when not satisfiable it is
/// 100% of the desired replicas). `None` for a value below 1 (Argo requires more than 0) or
/// another type: no threshold is assumed.
pub fn threshold_pods(threshold: &ProgressThreshold, desired: i64) -> Option<i64> {
    let value = threshold.value.filter(|v| *v > 0)?;
    let pods = match threshold.kind.as_deref()? {
        "Pod" => value,
        "Percent" => ceil_percent(desired, value),
        _ => return None,
    };
    Some(pods.min(desired))
}

fn int(v: &IntOrStr) -> Option<i64> {
    match v {
        IntOrStr::Int(n) => Some(*n),
        IntOrStr::Str(s) => s.parse().ok(),
    }
}

/// A basic canary's pods at `weight` (upstream approximateWeightedCanaryStableReplicaCounts):
/// of the splits of `replicas` (or `replicas + 1` when `max_surge` allows one more pod) into
/// canary and stable with the canary count rounded down or up, the first whose canary share is
/// closest to `weight`. Candidates in Argo's order: round-up unless that is every pod, then
/// round-down, each at `replicas` and then at `replicas + 1`. A round-down is left out when it
/// is equidistant with the round-up (then the larger wins) and when it is zero for a weight of
/// 1-99 (a canary of two or more pods, surge included, never gets none). So three replicas at
/// 70% make two canary pods, not three, and two replicas at 75% without surge make none.
fn basic_split(replicas: i64, weight: i64, max_surge: i64) -> Pods {
    if replicas <= 0 {
        return Pods {
            canary: 0,
            stable: 0,
        };
    }
    // In floating point, as upstream computes it, so ties and roundings agree.
    let exact = replicas as f64 * weight as f64 / 100.0;
    let (up, down) = (exact.ceil() as i64, exact.floor() as i64);
    let tied = |total: i64| (total as f64 * (weight as f64 / 100.0)).fract() == 0.5;
    let zero_allowed = weight == 0 || weight == 100 || (replicas == 1 && max_surge == 0);
    let down_allowed = down != 0 || zero_allowed;
    let surge = replicas.saturating_add(1);
    let options = [
        (up < replicas || zero_allowed).then_some((up, replicas)),
        (!tied(replicas) && down_allowed).then_some((down, replicas)),
        (max_surge > 0).then_some((up, surge)),
        (max_surge > 0 && !tied(surge) && down_allowed).then_some((down, surge)),
    ];
    let delta = |&(canary, total): &(i64, i64)| {
        (canary as f64 * 100.0 / total as f64 - weight as f64).abs()
    };
    // The first of the closest: a later option wins only when strictly closer.
    let best = options.into_iter().flatten().reduce(|best, next| {
        if delta(&next) < delta(&best) {
            next
        } else {
            best
        }
    });
    match best {
        // Clamped: past 2^53 pods the float rounding could leave the total.
        Some((canary, total)) => {
            let canary = canary.clamp(0, total);
            Pods {
                canary,
                stable: total - canary,
            }
        }
        None => Pods {
            canary: 0,
            stable: replicas,
        },
    }
}

/// Saturating: `replicas`, `weight` and `maxSurge` come from the object, unbounded.
fn ceil_percent(replicas: i64, percent: i64) -> i64 {
    replicas
        .saturating_mul(percent)
        .saturating_add(99)
        .div_euclid(100)
        .max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn canary(spec: Value) -> Canary {
        serde_json::from_value(spec).unwrap()
    }

    fn pods_after(c: &Canary, replicas: i64) -> Pods {
        let mut w = Walker::new(c, replicas);
        for s in &c.steps {
            w.apply(s);
        }
        w.pods()
    }

    #[test]
    fn one_replica_gets_its_canary_pod_at_any_weight_with_traffic_routing() {
        let c = canary(json!({"trafficRouting": {"nginx": {}}, "steps": [{"setWeight": 10}]}));
        assert_eq!(
            pods_after(&c, 1),
            Pods {
                canary: 1,
                stable: 1
            }
        );
    }

    /// Upstream CheckMinPodsPerReplicaSet: with traffic routing a non-zero count is raised to
    /// minPodsPerReplicaSet; a zero count, an explicit setCanaryScale count and a basic
    /// canary are left alone.
    #[test]
    fn min_pods_per_replica_set_raises_traffic_routed_counts() {
        let routed = |steps: Value, extra: Value| {
            let mut spec =
                json!({"trafficRouting": {"nginx": {}}, "minPodsPerReplicaSet": 2, "steps": steps});
            for (k, v) in extra.as_object().unwrap() {
                spec[k] = v.clone();
            }
            canary(spec)
        };
        let none = json!({});
        let c = routed(json!([{"setWeight": 10}]), none.clone());
        assert_eq!(
            pods_after(&c, 2),
            Pods {
                canary: 2,
                stable: 2
            }
        );
        assert_eq!(pods_after(&c, 20).canary, 2);
        assert_eq!(pods_after(&c, 50).canary, 5);
        let c = routed(json!([{"setWeight": 0}]), none.clone());
        assert_eq!(pods_after(&c, 4).canary, 0);
        let c = routed(json!([{"setCanaryScale": {"weight": 10}}]), none.clone());
        assert_eq!(pods_after(&c, 4).canary, 2);
        let c = routed(json!([{"setCanaryScale": {"replicas": 1}}]), none);
        assert_eq!(pods_after(&c, 4).canary, 1);
        let dynamic = json!({"dynamicStableScale": true});
        let c = routed(
            json!([{"setCanaryScale": {"replicas": 1}}]),
            dynamic.clone(),
        );
        assert_eq!(pods_after(&c, 4).canary, 2);
        let c = routed(json!([{"setWeight": 90}]), dynamic);
        assert_eq!(
            pods_after(&c, 10),
            Pods {
                canary: 9,
                stable: 2
            }
        );
        // A hand-written string is read; what the API server rejects is ignored, not fatal.
        let c = canary(
            json!({"trafficRouting": {"nginx": {}}, "minPodsPerReplicaSet": "2", "steps": [{"setWeight": 10}]}),
        );
        assert_eq!(pods_after(&c, 4).canary, 2);
        let c = canary(
            json!({"trafficRouting": {"nginx": {}}, "minPodsPerReplicaSet": {"x": 1}, "steps": [{"setWeight": 10}]}),
        );
        assert_eq!(pods_after(&c, 4).canary, 1);
        let basic = canary(json!({"minPodsPerReplicaSet": 2, "steps": [{"setWeight": 10}]}));
        assert_eq!(pods_after(&basic, 4).canary, 1);
    }

    /// Upstream's own expectations for its split of a basic canary (replicas, weight,
    /// maxSurge → canary, stable), from its replica tests.
    #[test]
    fn basic_canary_split_matches_upstream() {
        let cases = [
            (1, 0, 0, 0, 1),
            (1, 1, 0, 0, 1),
            (1, 49, 0, 0, 1),
            (1, 50, 0, 1, 0),
            (1, 99, 0, 1, 0),
            (1, 100, 0, 1, 0),
            (1, 0, 1, 0, 1),
            (1, 1, 1, 1, 1),
            (1, 50, 1, 1, 1),
            (1, 99, 1, 1, 1),
            (1, 100, 1, 1, 0),
            (2, 0, 0, 0, 2),
            (2, 1, 0, 1, 1),
            (2, 50, 0, 1, 1),
            (2, 99, 0, 1, 1),
            (2, 100, 0, 2, 0),
            (2, 1, 1, 1, 2),
            (2, 50, 1, 1, 1),
            (2, 99, 1, 2, 1),
            (2, 100, 1, 2, 0),
            (3, 10, 0, 1, 2),
            (3, 34, 0, 1, 2),
            (3, 49, 0, 1, 2),
            (3, 50, 0, 2, 1),
            (3, 10, 1, 1, 3),
            (3, 25, 1, 1, 3),
            (3, 33, 1, 1, 2),
            (3, 49, 1, 2, 2),
            (3, 50, 1, 2, 2),
            (10, 1, 0, 1, 9),
            (10, 14, 0, 1, 9),
            (10, 15, 0, 2, 8),
            (10, 99, 0, 9, 1),
            (10, 1, 1, 1, 10),
            (10, 18, 1, 2, 9),
            (10, 20, 1, 2, 8),
            (10, 24, 1, 3, 8),
            (10, 99, 1, 10, 1),
            (10, 100, 1, 10, 0),
        ];
        for (replicas, weight, surge, canary, stable) in cases {
            assert_eq!(
                basic_split(replicas, weight, surge),
                Pods { canary, stable },
                "replicas {replicas}, weight {weight}, maxSurge {surge}"
            );
        }
        assert_eq!(
            basic_split(0, 50, 1),
            Pods {
                canary: 0,
                stable: 0
            }
        );
        // Counts past f64's exact integers stay within the total.
        let huge = basic_split(92_233_720_368_547_758, 100, 1);
        assert!(
            huge.canary <= 92_233_720_368_547_758 && huge.stable >= 0,
            "{huge:?}"
        );
    }

    /// The closest split, not the round-up: three replicas at 70% (default surge, one pod)
    /// make two canary pods, and two at 75% without surge none, so neither is a full canary.
    #[test]
    fn a_basic_canary_is_full_only_when_argo_makes_it_so() {
        let c = canary(json!({"steps": [{"setWeight": 70}]}));
        assert_eq!(
            pods_after(&c, 3),
            Pods {
                canary: 2,
                stable: 1
            }
        );
        let c = canary(json!({"maxSurge": 0, "steps": [{"setWeight": 75}]}));
        assert_eq!(
            pods_after(&c, 2),
            Pods {
                canary: 0,
                stable: 2
            }
        );
    }

    #[test]
    fn basic_canary_with_default_surge_rounds_up() {
        let c = canary(json!({"steps": [{"setWeight": 10}]}));
        assert_eq!(pods_after(&c, 1).canary, 1);
        assert_eq!(pods_after(&c, 10).canary, 1);
        assert_eq!(pods_after(&c, 2).canary, 1);
    }

    #[test]
    fn basic_canary_without_surge_needs_weight_50_for_one_replica() {
        let c = canary(json!({"maxSurge": 0, "steps": [{"setWeight": 49}]}));
        assert_eq!(pods_after(&c, 1).canary, 0);
        let c = canary(json!({"maxSurge": "0%", "steps": [{"setWeight": 50}]}));
        assert_eq!(pods_after(&c, 1).canary, 1);
    }

    #[test]
    fn set_canary_scale_overrides_weight_with_traffic_routing_only() {
        let c = canary(
            json!({"trafficRouting": {"istio": {}}, "steps": [{"setWeight": 10}, {"setCanaryScale": {"replicas": 4}}]}),
        );
        assert_eq!(pods_after(&c, 4).canary, 4);
        let c = canary(
            json!({"trafficRouting": {"istio": {}}, "steps": [{"setCanaryScale": {"weight": 50}}, {"setCanaryScale": {"matchTrafficWeight": true}}]}),
        );
        assert_eq!(pods_after(&c, 4).canary, 0);
        let basic = canary(json!({"steps": [{"setCanaryScale": {"replicas": 4}}]}));
        assert_eq!(pods_after(&basic, 4).canary, 0);
    }

    fn threshold(v: Value) -> Option<Box<ProgressThreshold>> {
        canary(json!({ "replicaProgressThreshold": v })).replica_progress_threshold
    }

    #[test]
    fn progress_threshold_in_pods_or_percent_of_the_desired_pods() {
        let pods = |v: Value, desired: i64| threshold_pods(&threshold(v).unwrap(), desired);
        assert_eq!(pods(json!({"type": "Pod", "value": 3}), 10), Some(3));
        // 80% of 5 is 4 pods; 90% of 10 is 9; 50% of 3 rounds up to 2.
        assert_eq!(pods(json!({"type": "Percent", "value": 80}), 5), Some(4));
        assert_eq!(pods(json!({"type": "Percent", "value": 90}), 10), Some(9));
        assert_eq!(pods(json!({"type": "Percent", "value": 50}), 3), Some(2));
        // Never more than the desired pods.
        assert_eq!(pods(json!({"type": "Pod", "value": 20}), 10), Some(10));
        assert_eq!(pods(json!({"type": "Percent", "value": 150}), 10), Some(10));
        // No threshold: no or a non-positive value, a missing or unknown type.
        assert_eq!(pods(json!({"type": "Pod", "value": 0}), 10), None);
        assert_eq!(pods(json!({"type": "Pod"}), 10), None);
        assert_eq!(pods(json!({"value": 3}), 10), None);
        assert_eq!(pods(json!({"type": "percent", "value": 3}), 10), None);
    }

    #[test]
    fn a_mistyped_progress_threshold_leaves_parts_unset_instead_of_failing() {
        let t = |kind: Option<&str>, value: Option<i64>| {
            Some(Box::new(ProgressThreshold {
                kind: kind.map(Into::into),
                value,
            }))
        };
        let percent = Some("Percent");
        assert_eq!(
            threshold(json!({"type": "Percent", "value": "90"})),
            t(percent, Some(90))
        );
        assert_eq!(
            threshold(json!({"type": "Percent", "value": "90%"})),
            t(percent, None)
        );
        assert_eq!(threshold(json!({"type": 7, "value": 90.5})), t(None, None));
        assert_eq!(threshold(json!(90)), t(None, None));
        assert_eq!(threshold(Value::Null), None);
        // The lean reader, which the webhook uses, reads it the same way.
        let lean: Canary = crate::json::from_str(
            r#"{"replicaProgressThreshold": {"type": "Pod", "value": "3"}, "steps": []}"#,
        )
        .unwrap();
        assert_eq!(lean.replica_progress_threshold, t(Some("Pod"), Some(3)));
    }

    #[test]
    fn classifies_steps() {
        let c = canary(
            json!({"steps": [{"pause": {}, "setHeaderRoute": {}}, {"setMirrorRoute": {}},
            {"plugin": {}}, {"setWeight": 1}, {}]}),
        );
        let kinds: Vec<_> = c.steps.iter().map(kind).collect();
        assert_eq!(
            kinds,
            [
                StepKind::Pause,
                StepKind::Route,
                StepKind::Blocking,
                StepKind::SetWeight,
                StepKind::Empty
            ]
        );
    }

    /// A step analysis or an experiment waits for its run: a step that halts a Rollout
    /// whose scaling is held (DOMAIN D2), like a plugin step.
    #[test]
    fn analysis_and_experiment_steps_block() {
        let c = canary(
            json!({"steps": [{"analysis": {"templates": [{"templateName": "smoke"}]}},
            {"experiment": {"templates": []}}]}),
        );
        let kinds: Vec<_> = c.steps.iter().map(kind).collect();
        assert_eq!(kinds, [StepKind::Blocking, StepKind::Blocking]);
    }

    /// Upstream considers the split at `replicas + 1` only `if maxSurge > 0`: a negative
    /// maxSurge adds no surge pod, as 0 does (two replicas at 75% get no canary pod).
    #[test]
    fn a_negative_max_surge_allows_no_surge_pod() {
        let c = canary(json!({"maxSurge": -1, "steps": [{"setWeight": 75}]}));
        assert_eq!(
            pods_after(&c, 2),
            Pods {
                canary: 0,
                stable: 2
            }
        );
    }
}
