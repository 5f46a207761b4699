{{/* Chart name, shortened to the 63 characters a label value allows. */}}
{{- define "rollout-guard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every resource name: the release name, with the chart name appended unless the
release name already contains it.
*/}}
{{- define "rollout-guard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "rollout-guard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{ include "rollout-guard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the pods; never change them after an install (selectors are immutable). */}}
{{- define "rollout-guard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rollout-guard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* ServiceAccount the pods run as. */}}
{{- define "rollout-guard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rollout-guard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Secret holding tls.crt and tls.key. */}}
{{- define "rollout-guard.tlsSecretName" -}}
{{- if .Values.tls.certManager.enabled }}
{{- printf "%s-tls" (include "rollout-guard.fullname" .) }}
{{- else }}
{{- required "tls.existingSecret is required when tls.certManager.enabled is false" .Values.tls.existingSecret }}
{{- end }}
{{- end }}

{{/* cert-manager Certificate whose CA cainjector copies into the webhooks' caBundle. */}}
{{- define "rollout-guard.injectCaFrom" -}}
{{- printf "%s/%s-serving" .Release.Namespace (include "rollout-guard.fullname" .) }}
{{- end }}

{{/* caBundle of the webhooks when cert-manager does not inject it. */}}
{{- define "rollout-guard.caBundle" -}}
{{- required "tls.caBundle is required when tls.certManager.enabled is false" .Values.tls.caBundle }}
{{- end }}

{{/*
Namespaces the webhooks skip: kube-system, the release's own namespace (a broken webhook must
not block its own repair) and namespaces labelled rollout-guard.io/ignore=true. Same as
`rollout-guard manifests`.
*/}}
{{- define "rollout-guard.namespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        - kube-system
        {{- if ne .Release.Namespace "kube-system" }}
        - {{ .Release.Namespace }}
        {{- end }}
    - key: rollout-guard.io/ignore
      operator: NotIn
      values:
        - "true"
{{- end }}

{{/* Rules of the validating and the object-mutating webhook. */}}
{{- define "rollout-guard.objectRules" -}}
rules:
  - apiGroups: ["argoproj.io"]
    apiVersions: ["v1alpha1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["rollouts", "analysistemplates"]
    scope: Namespaced
  - apiGroups: ["argoproj.io"]
    apiVersions: ["v1alpha1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["clusteranalysistemplates"]
    scope: Cluster
{{- end }}
