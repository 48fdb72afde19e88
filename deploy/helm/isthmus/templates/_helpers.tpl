{{/*
Chart name, truncated to a DNS label (63 characters).
*/}}
{{- define "isthmus.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Release-scoped prefix of every object that is not named after a topology service: the
release name, with the chart name unless the release already contains it.
*/}}
{{- define "isthmus.fullname" -}}
{{- $name := include "isthmus.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Labels on every object: chart, release, zone.
*/}}
{{- define "isthmus.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: isthmus
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
isthmus.io/zone: {{ .Values.zone.name }}
isthmus.io/zone-kind: {{ .Values.zone.kind }}
{{- end }}

{{/*
Selector labels of one component (call with (dict "root" $ "component" "gateway")).
*/}}
{{- define "isthmus.selectorLabels" -}}
app.kubernetes.io/name: {{ include "isthmus.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
An image reference: repository@digest when a digest is given, else repository:tag.
*/}}
{{- define "isthmus.image" -}}
{{- if .digest }}{{ printf "%s@%s" .repository .digest }}{{ else }}{{ printf "%s:%s" .repository .tag }}{{ end }}
{{- end }}

{{/*
Pod security context shared by every pod: non-root, no privilege, RuntimeDefault seccomp.
*/}}
{{- define "isthmus.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Container security context shared by every container.
*/}}
{{- define "isthmus.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
{{- end }}

{{/*
Resources: memory request = limit (no overcommit), CPU request only (no throttling).
*/}}
{{- define "isthmus.resources" -}}
requests:
  cpu: {{ .cpu | quote }}
  memory: {{ .memory | quote }}
limits:
  memory: {{ .memory | quote }}
{{- end }}

{{/*
The pod IP, for servers that bind their pod's address rather than every interface.
*/}}
{{- define "isthmus.podIPEnv" -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
{{- end }}

{{/*
checkov annotations: the checks this chart does not meet on purpose, each with its reason,
on the objects they concern (call with a list of check ids). Reasons live here only.
*/}}
{{- define "isthmus.checkovSkips" -}}
{{- $reasons := dict
  "CKV_K8S_11" "no CPU limits on purpose: CFS throttling adds tail latency; requests reserve CPU"
  "CKV_K8S_15" "IfNotPresent: images are pinned by digest at install (values image.digest)"
  "CKV_K8S_43" "the digest comes from values at install (image.digest); tags only for development"
  "CKV_K8S_38" "the peak-season job patches its RayService through the API: it needs its token"
  "CKV_K8S_8" "a run-to-completion pod (helm test): nothing to probe"
  "CKV_K8S_9" "a run-to-completion pod (helm test): nothing to probe"
}}
{{- range $i, $id := . }}
checkov.io/skip{{ add1 $i }}: {{ printf "%s=%s" $id (index $reasons $id) | quote }}
{{- end }}
{{- end }}
