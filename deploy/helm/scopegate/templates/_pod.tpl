{{/* The pod template of the Deployment (mode deployment) and the DaemonSet (mode controlPlane). */}}
{{- define "scopegate.podTemplate" -}}
{{- $hostNet := eq .Values.mode "controlPlane" }}
{{- $listen := include "scopegate.listenHost" . }}
{{- $sync := .Values.sync.enabled }}
{{- $sidecar := and $sync (eq .Values.sync.mode "sidecar") }}
{{- $inProcess := and $sync (eq .Values.sync.mode "inProcess") -}}
metadata:
  labels:
    {{- include "scopegate.selectorLabels" . | nindent 4 }}
    app.kubernetes.io/component: authorization-webhook
    {{- if and $sync .Values.workloadIdentity.enabled }}
    azure.workload.identity/use: "true"
    {{- end }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "scopegate.config" . | sha256sum }}
    {{- if $sync }}
    checksum/sync-config: {{ include "scopegate.syncConfig" . | sha256sum }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "scopegate.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
  {{- if $hostNet }}
  # kube-apiserver on the same node calls https://127.0.0.1:{{ .Values.ports.webhook }}/authorize.
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  priorityClassName: {{ .Values.controlPlane.priorityClassName }}
  {{- with .Values.controlPlane.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.controlPlane.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- else }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- if .Values.affinity }}
  affinity:
    {{- toYaml .Values.affinity | nindent 4 }}
  {{- else if eq .Values.podAntiAffinity "preferred" }}
  affinity:
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 100
          podAffinityTerm:
            topologyKey: kubernetes.io/hostname
            labelSelector:
              matchLabels:
                {{- include "scopegate.selectorLabels" . | nindent 16 }}
  {{- else if eq .Values.podAntiAffinity "hard" }}
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "scopegate.selectorLabels" . | nindent 14 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- range . }}
    - {{ toYaml (merge (deepCopy .) (dict "labelSelector" (dict "matchLabels" (include "scopegate.selectorLabels" $ | fromYaml)))) | nindent 6 | trim }}
    {{- end }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- end }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  {{- if and $sync .Values.sync.initialSync }}
  initContainers:
    # The first sync before the webhook starts: a new pod never serves without the Azure assignments.
    - name: initial-sync
      image: {{ include "scopegate.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - sync
        - --config=/etc/scopegate/sync/sync.yaml
        - --once
        - --log-format={{ .Values.config.server.logFormat | default "json" }}
        {{- if .Values.sync.allowLargeDeletions }}
        - --allow-large-deletions
        {{- end }}
      {{- with include "scopegate.syncEnv" . }}
      env:
        {{- . | nindent 8 }}
      {{- end }}
      resources:
        {{- toYaml .Values.sync.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        {{- include "scopegate.syncMounts" . | nindent 8 }}
  {{- end }}
  containers:
    - name: scopegate
      image: {{ include "scopegate.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - serve
        - --config=/etc/scopegate/config/scopegate.yaml
        - --listen={{ $listen }}:{{ .Values.ports.webhook }}
        # Plain HTTP /livez, /readyz, /metrics.
        - --admin-listen={{ $listen }}:{{ .Values.ports.admin }}
        - --tls-cert-file=/etc/scopegate/tls/tls.crt
        - --tls-private-key-file=/etc/scopegate/tls/tls.key
        # Setting a client CA makes mTLS mandatory ...
        - --client-ca-file=/etc/scopegate/tls/client-ca.crt
        # ... and only these client names are accepted.
        - --allowed-client-names={{ join "," .Values.tls.allowedClientNames }}
        {{- if .Values.liveSource.enabled }}
        - --watch-cluster-rbac
        {{- end }}
        {{- if $inProcess }}
        - --sync-config=/etc/scopegate/sync/sync.yaml
        {{- end }}
        {{- range .Values.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      {{- $env := include "scopegate.syncEnv" . }}
      {{- if or .Values.extraEnv (and $inProcess $env) }}
      env:
        {{- if $inProcess }}{{ $env | nindent 8 }}{{ end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      ports:
        - name: webhook
          containerPort: {{ .Values.ports.webhook }}
          protocol: TCP
        - name: admin
          containerPort: {{ .Values.ports.admin }}
          protocol: TCP
      {{- range $probe := list "livenessProbe" "readinessProbe" }}
      {{- $p := deepCopy (get $.Values $probe) }}
      {{- if and $hostNet $p.httpGet }}
      {{- /* With hostNetwork the kubelet would probe the node IP; the admin server is on loopback. */}}
      {{- $_ := set $p "httpGet" (merge (dict "host" "127.0.0.1" "port" $.Values.ports.admin) $p.httpGet) }}
      {{- $_ := set $p.httpGet "port" $.Values.ports.admin }}
      {{- end }}
      {{ $probe }}:
        {{- toYaml $p | nindent 8 }}
      {{- end }}
      {{- if .Values.preStopSleepSeconds }}
      lifecycle:
        # Keep serving while the endpoint removal reaches kube-proxy.
        preStop:
          sleep:
            seconds: {{ .Values.preStopSleepSeconds }}
      {{- end }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/scopegate/config
          readOnly: true
        - name: policies
          mountPath: /etc/scopegate/policies
          readOnly: true
        - name: tls
          mountPath: /etc/scopegate/tls
          readOnly: true
        {{- if $inProcess }}
        {{- include "scopegate.syncMounts" . | nindent 8 }}
        {{- else if $sidecar }}
        - name: synced
          mountPath: {{ include "scopegate.syncDir" . }}
          readOnly: true
        {{- end }}
    {{- if $sidecar }}
    - name: sync
      image: {{ include "scopegate.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - sync
        - --config=/etc/scopegate/sync/sync.yaml
        - --interval={{ .Values.sync.interval }}
        - --admin-address={{ $listen }}:{{ .Values.sync.adminPort }}
        - --log-format={{ .Values.config.server.logFormat | default "json" }}
        {{- if .Values.sync.allowLargeDeletions }}
        - --allow-large-deletions
        {{- end }}
        {{- range .Values.sync.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      {{- with include "scopegate.syncEnv" . }}
      env:
        {{- . | nindent 8 }}
      {{- end }}
      ports:
        - name: sync-admin
          containerPort: {{ .Values.sync.adminPort }}
          protocol: TCP
      # Liveness only: a failing source keeps its last good files (reported on /readyz and
      # scopegate_sync_runs_total) and must not take the webhook out of the Service.
      livenessProbe:
        httpGet:
          {{- if $hostNet }}
          host: 127.0.0.1
          port: {{ .Values.sync.adminPort }}
          {{- else }}
          port: sync-admin
          {{- end }}
          path: /livez
          scheme: HTTP
        initialDelaySeconds: 5
        periodSeconds: 20
        timeoutSeconds: 2
        failureThreshold: 6
      resources:
        {{- toYaml .Values.sync.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        {{- include "scopegate.syncMounts" . | nindent 8 }}
    {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "scopegate.fullname" . }}-config
    # No subPath: kubelet updates the volume in place (..data symlink swap) and scopegate reloads it.
    - name: policies
      {{- if or .Values.policy.existingConfigMap (include "scopegate.ownsPolicyConfigMap" .) }}
      configMap:
        name: {{ include "scopegate.policyConfigMap" . }}
      {{- else }}
      emptyDir: {}
      {{- end }}
    # Serving certificate and key, and the CA of kube-apiserver's client certificate; renewals
    # reach the pod without a restart.
    - name: tls
      projected:
        defaultMode: 0440
        sources:
          - secret:
              name: {{ include "scopegate.tlsSecret" . }}
              items:
                - key: tls.crt
                  path: tls.crt
                - key: tls.key
                  path: tls.key
          - secret:
              name: {{ include "scopegate.clientCASecret" . }}
              items:
                - key: {{ include "scopegate.clientCAKey" . }}
                  path: client-ca.crt
    {{- if $sync }}
    - name: sync-config
      configMap:
        name: {{ include "scopegate.fullname" . }}-sync
    # What the sync writes and the webhook loads as a policy directory.
    - name: synced
      emptyDir:
        # Two generations of each source (the one published and the one being written).
        sizeLimit: 1Gi
    {{- with .Values.sync.credential.existingSecret }}
    - name: sync-credential
      secret:
        secretName: {{ . }}
        defaultMode: 0440
    {{- end }}
    {{- end }}
{{- end }}
