{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "pea.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: release-chart unless the release already names it. */}}
{{- define "pea.fullname" -}}
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

{{- define "pea.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pea.labels" -}}
helm.sh/chart: {{ include "pea.chart" . }}
app.kubernetes.io/name: {{ include "pea.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pea
{{- end }}

{{/* Selector of the pea nodes. */}}
{{- define "pea.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pea.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: signal
{{- end }}

{{/* Selector of the built-in Redis. */}}
{{- define "pea.redis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pea.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end }}

{{- define "pea.redis.fullname" -}}
{{- printf "%s-redis" (include "pea.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pea.redis.builtin" -}}
{{- if not (or .Values.redis.url .Values.redis.cluster.seeds) }}true{{ end }}
{{- end }}

{{/* PEA_REDIS_URL for an external Redis Cluster; $(REDIS_PASSWORD) is expanded by Kubernetes. */}}
{{- define "pea.redis.clusterUrl" -}}
{{- $c := .Values.redis.cluster -}}
{{- $auth := "" -}}
{{- if .Values.redis.auth.existingSecret -}}
{{- $auth = printf "%s:$(REDIS_PASSWORD)@" .Values.redis.auth.username -}}
{{- end -}}
{{- $query := list -}}
{{- if and $c.tls.enabled $c.tls.caSecret -}}
{{- $query = append $query (printf "ssl_ca_certs=/etc/pea/redis-ca/%s" $c.tls.caKey) -}}
{{- end -}}
{{- if and $c.tls.enabled (not $c.tls.checkHostname) -}}
{{- $query = append $query "ssl_check_hostname=false" -}}
{{- end -}}
{{- printf "%s://%s%s" (ternary "rediss+cluster" "redis+cluster" $c.tls.enabled) $auth (join "," $c.seeds) -}}
{{- if $query }}?{{ join "&" $query }}{{ end -}}
{{- end }}

{{/* The Secret holding PEA_SECRET and the built-in Redis password. */}}
{{- define "pea.secretName" -}}
{{- default (include "pea.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{- define "pea.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pea.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "pea.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The URL people open: config.publicUrl, else the ingress host. */}}
{{- define "pea.publicUrl" -}}
{{- if .Values.config.publicUrl }}
{{- .Values.config.publicUrl | trimSuffix "/" }}
{{- else if .Values.ingress.enabled }}
{{- printf "%s://%s" (ternary "https" "http" .Values.ingress.tls.enabled) .Values.ingress.host }}
{{- end }}
{{- end }}

{{/*
Refuse values that would break a zero-downtime restart or leak a secret.
*/}}
{{- define "pea.validate" -}}
{{- $s := .Values.shutdown }}
{{- if le (int $s.terminationGracePeriodSeconds) (add (int $s.preStopSeconds) (int $s.drainTimeoutSeconds) | int) }}
{{- fail (printf "shutdown.terminationGracePeriodSeconds (%v) must be greater than shutdown.preStopSeconds + shutdown.drainTimeoutSeconds (%v + %v): the kubelet would kill pea before it has moved its peers" $s.terminationGracePeriodSeconds $s.preStopSeconds $s.drainTimeoutSeconds) }}
{{- end }}
{{- if contains "@" .Values.redis.url }}
{{- fail "redis.url must not hold credentials: put the password in a Secret and name it in redis.auth.existingSecret" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- end }}

{{/* Extra labels for pod templates, next to their selector labels. */}}
{{- define "pea.podLabels" -}}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: pea
{{- end }}
