#!/usr/bin/env python3
"""Writes the load-test fixtures under tests/fixtures/load/:

- rollout-update-review.json: an admission.k8s.io/v1 UPDATE review of a flagged Rollout
  (background analysis + timed pauses), about 16 KB, built on the captured GKE envelope
  (tests/fixtures/admission/gke_pod_create_admissionreview_v1.json: its uid, userInfo and
  field order), with `object` and `oldObject` as the API server sends them: compact JSON,
  metadata.managedFields (FieldsV1, derived from the fields each manager owns), the
  kubectl last-applied-configuration annotation, and the controller-written status.
- templates/analysis-templates.yaml: the AnalysisTemplates the Rollout names, for
  `rollout-guard serve --templates`. `success-rate` has both a success and a failure
  condition, so it can end Inconclusive during the timed pauses: the verdict is "warned"
  (inconclusive-timed-pause, D1).

Deterministic: running it again rewrites the same bytes.

    python3 benches/make_review.py
"""

import copy
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENVELOPE = ROOT / "tests/fixtures/admission/gke_pod_create_admissionreview_v1.json"
OUT = ROOT / "tests/fixtures/load"

NAMESPACE = "shop"
NAME = "checkout"


def container(name, image, port, env, probes=True):
    c = {
        "name": name,
        "image": image,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": env,
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
    }
    if probes:
        c["livenessProbe"] = {"httpGet": {"path": "/livez", "port": "http"}, "periodSeconds": 10}
        c["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5}
    return c


def rollout_spec(tag):
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "shop", "team": "payments"}
    containers = [
        container(NAME, "registry.example.com/shop/checkout:%s" % tag, 8080, [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "PAYMENTS_URL", "value": "http://payments.shop.svc:8080"},
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "checkout-db", "key": "password"}}},
        ]),
        container("cart-cache", "registry.example.com/shop/cart-cache:1.14.2", 8081, [
            {"name": "CACHE_TTL", "value": "30s"},
        ], probes=False),
    ]
    return {
        "replicas": 6,
        "revisionHistoryLimit": 5,
        "progressDeadlineSeconds": 600,
        "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
        "template": {
            "metadata": {
                "labels": labels,
                "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
            },
            "spec": {
                "serviceAccountName": NAME,
                "terminationGracePeriodSeconds": 30,
                "containers": containers,
            },
        },
        "strategy": {
            "canary": {
                "canaryService": "checkout-canary",
                "stableService": "checkout-stable",
                "maxSurge": "25%",
                "maxUnavailable": 0,
                "analysis": {
                    "templates": [{"templateName": "success-rate"}, {"templateName": "latency"}],
                    "startingStep": 1,
                    "args": [{"name": "service", "value": NAME}, {"name": "namespace", "value": NAMESPACE}],
                },
                "steps": [
                    {"setWeight": 10},
                    {"pause": {"duration": "5m"}},
                    {"setWeight": 30},
                    {"pause": {"duration": "10m"}},
                    {"setWeight": 60},
                    {"pause": {"duration": "10m"}},
                ],
            }
        },
    }


def fields_v1(value):
    """The FieldsV1 set of a JSON value as the API server writes it: `f:` for map keys,
    `k:{"name":...}` for list items keyed by name, `.` for a map that is itself owned."""
    if isinstance(value, dict):
        out = {}
        for key, child in value.items():
            out["f:" + key] = fields_v1_child(child)
        return out
    return {}


def fields_v1_child(child):
    if isinstance(child, dict):
        inner = fields_v1(child)
        return {".": {}, **inner} if inner else {}
    if isinstance(child, list) and child and isinstance(child[0], dict) and "name" in child[0]:
        return {
            "k:" + json.dumps({"name": item["name"]}, separators=(",", ":")): {".": {}, **fields_v1(item)}
            for item in child
        }
    return {}


def rollout(tag, generation, resource_version, status):
    spec = rollout_spec(tag)
    applied = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "annotations": {"notifications.argoproj.io/subscribe.on-rollout-aborted.slack": "payments-alerts"},
            "labels": {"app.kubernetes.io/name": NAME, "team": "payments"},
            "name": NAME,
            "namespace": NAMESPACE,
        },
        "spec": spec,
    }
    last_applied = json.dumps(applied, separators=(",", ":"), sort_keys=True) + "\n"
    metadata = {
        "name": NAME,
        "namespace": NAMESPACE,
        "uid": "6f3a2c1e-8b47-4d2a-9e0c-5a1f7d3b9c42",
        "resourceVersion": str(resource_version),
        "generation": generation,
        "creationTimestamp": "2026-10-02T08:14:51Z",
        "labels": {"app.kubernetes.io/name": NAME, "team": "payments"},
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": last_applied,
            "notifications.argoproj.io/subscribe.on-rollout-aborted.slack": "payments-alerts",
            "rollout.argoproj.io/revision": str(generation),
        },
        "managedFields": [
            {
                "manager": "kubectl-client-side-apply",
                "operation": "Update",
                "apiVersion": "argoproj.io/v1alpha1",
                "time": "2026-11-26T12:58:03Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {
                        "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {},
                                          "f:notifications.argoproj.io/subscribe.on-rollout-aborted.slack": {}},
                        "f:labels": {".": {}, "f:app.kubernetes.io/name": {}, "f:team": {}},
                    },
                    "f:spec": fields_v1(spec),
                },
            },
            {
                "manager": "rollouts-controller",
                "operation": "Update",
                "apiVersion": "argoproj.io/v1alpha1",
                "time": "2026-11-26T12:58:04Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:annotations": {"f:rollout.argoproj.io/revision": {}}}},
            },
            {
                "manager": "rollouts-controller",
                "operation": "Update",
                "apiVersion": "argoproj.io/v1alpha1",
                "time": "2026-11-26T12:58:04Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": fields_v1(status)},
                "subresource": "status",
            },
        ],
    }
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": metadata,
            "spec": spec, "status": status}


def status(pod_hash, stable_hash, step):
    return {
        "HPAReplicas": 6,
        "availableReplicas": 6,
        "blueGreen": {},
        "canary": {},
        "conditions": [
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "message": "Rollout \"checkout\" has successfully progressed.",
             "lastTransitionTime": "2026-11-20T09:01:12Z", "lastUpdateTime": "2026-11-20T09:01:12Z"},
            {"type": "Available", "status": "True", "reason": "AvailableReason",
             "message": "Rollout has minimum availability",
             "lastTransitionTime": "2026-11-20T09:00:40Z", "lastUpdateTime": "2026-11-20T09:00:40Z"},
        ],
        "currentPodHash": pod_hash,
        "currentStepHash": "5c9d8b7f6",
        "currentStepIndex": step,
        "observedGeneration": "41",
        "phase": "Healthy",
        "readyReplicas": 6,
        "replicas": 6,
        "selector": "app.kubernetes.io/name=checkout",
        "stableRS": stable_hash,
        "updatedReplicas": 6,
    }


def main():
    envelope = json.loads(ENVELOPE.read_text())
    request = envelope["request"]
    old = rollout("v2.31.0", 41, 88231907, status("7d9f6c5b84", "7d9f6c5b84", 6))
    new = rollout("v2.32.0", 42, 88231907, status("7d9f6c5b84", "7d9f6c5b84", 6))
    gvk = {"group": "argoproj.io", "version": "v1alpha1", "kind": "Rollout"}
    gvr = {"group": "argoproj.io", "version": "v1alpha1", "resource": "rollouts"}
    # The envelope's own order (uid first: NullReviewer relies on it, as the API server writes it).
    review = {
        "kind": envelope["kind"],
        "apiVersion": envelope["apiVersion"],
        "request": {
            "uid": request["uid"],
            "kind": gvk,
            "resource": gvr,
            "requestKind": copy.deepcopy(gvk),
            "requestResource": copy.deepcopy(gvr),
            "name": NAME,
            "namespace": NAMESPACE,
            "operation": "UPDATE",
            "userInfo": request["userInfo"],
            "object": new,
            "oldObject": old,
            "dryRun": False,
            "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1",
                        "fieldManager": "kubectl-client-side-apply", "fieldValidation": "Strict"},
        },
    }
    OUT.mkdir(parents=True, exist_ok=True)
    text = json.dumps(review, separators=(",", ":"))
    (OUT / "rollout-update-review.json").write_text(text)

    templates = OUT / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "analysis-templates.yaml").write_text(TEMPLATES)
    print("rollout-update-review.json: %d bytes" % len(text.encode()))


# `success-rate` can end Inconclusive (a value between 0.90 and 0.95 meets neither condition);
# `latency` cannot (no failureCondition: anything not successful fails).
TEMPLATES = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
  namespace: shop
spec:
  args:
    - name: service
    - name: namespace
  metrics:
    - name: success-rate
      interval: 1m
      count: 10
      failureLimit: 2
      successCondition: result[0] >= 0.95
      failureCondition: result[0] < 0.90
      provider:
        prometheus:
          address: http://prometheus.observability.svc:9090
          query: |
            sum(rate(http_requests_total{service="{{args.service}}",namespace="{{args.namespace}}",code!~"5.."}[2m]))
            /
            sum(rate(http_requests_total{service="{{args.service}}",namespace="{{args.namespace}}"}[2m]))
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: latency
  namespace: shop
spec:
  args:
    - name: service
    - name: namespace
  metrics:
    - name: p99-latency
      interval: 1m
      count: 10
      failureLimit: 2
      successCondition: result[0] < 0.5
      provider:
        prometheus:
          address: http://prometheus.observability.svc:9090
          query: |
            histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="{{args.service}}",namespace="{{args.namespace}}"}[2m])))
"""

if __name__ == "__main__":
    main()
