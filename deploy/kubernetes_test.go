// Package deploy_test checks the deployment files under deploy/ against
// each other, the Dockerfile and the config package, without a cluster, a
// Docker engine or the network.
//
// No Kubernetes schema validation: kubeconform and kubeval validate against
// JSON schemas they download from the internet, which neither this
// environment nor CI can reach, and kubectl's --dry-run=client needs an API
// server. So the manifests get a structural check instead (apiVersion, kind,
// metadata.name, and every field the deployment depends on), and
// TestK8sKustomizeBuild runs `kubectl kustomize` (offline) when kubectl is on
// PATH. The compose file gets the same treatment (no `docker compose config`
// without the compose plugin).
package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/tenantdrift/tenantdrift/config"
	"github.com/tenantdrift/tenantdrift/internal/schedule"
)

const (
	k8sDir         = "kubernetes"
	k8sComposeFile = "compose/compose.yaml"
	// k8sSecretExample and k8sSidecar are not manifests to apply: the first
	// holds placeholders, the second is a container entry to paste.
	k8sSecretExample = "secret.example.yaml"
	k8sSidecar       = "sidecar-snippet.yaml"
	k8sKustomization = "kustomization.yaml"
	// k8sConfigKey is the ConfigMap key holding tenantdrift.yaml.
	k8sConfigKey = "tenantdrift.yaml"
)

// k8sAPIVersions is the apiVersion each kind in deploy/kubernetes must use.
// A new kind must be added here, on purpose.
var k8sAPIVersions = map[string]string{
	"ConfigMap":      "v1",
	"Secret":         "v1",
	"Service":        "v1",
	"Deployment":     "apps/v1",
	"CronJob":        "batch/v1",
	"ServiceMonitor": "monitoring.coreos.com/v1",
	"Kustomization":  "kustomize.config.k8s.io/v1beta1",
}

// The subset of the Kubernetes API these tests read.
type (
	k8sObject struct {
		APIVersion string      `yaml:"apiVersion"`
		Kind       string      `yaml:"kind"`
		Metadata   k8sMetadata `yaml:"metadata"`
		Spec       yaml.Node   `yaml:"spec"`
		// ConfigMap and Secret.
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
		// Kustomization.
		Resources []string `yaml:"resources"`
	}
	k8sMetadata struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	k8sDeploymentSpec struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template k8sPodTemplate `yaml:"template"`
	}
	k8sCronJobSpec struct {
		Schedule                   string `yaml:"schedule"`
		TimeZone                   string `yaml:"timeZone"`
		ConcurrencyPolicy          string `yaml:"concurrencyPolicy"`
		StartingDeadlineSeconds    *int   `yaml:"startingDeadlineSeconds"`
		SuccessfulJobsHistoryLimit *int   `yaml:"successfulJobsHistoryLimit"`
		JobTemplate                struct {
			Spec struct {
				BackoffLimit          *int           `yaml:"backoffLimit"`
				ActiveDeadlineSeconds *int           `yaml:"activeDeadlineSeconds"`
				Template              k8sPodTemplate `yaml:"template"`
			} `yaml:"spec"`
		} `yaml:"jobTemplate"`
	}
	k8sPodTemplate struct {
		Metadata k8sMetadata `yaml:"metadata"`
		Spec     k8sPodSpec  `yaml:"spec"`
	}
	k8sPodSpec struct {
		SecurityContext               k8sSecurityContext `yaml:"securityContext"`
		TerminationGracePeriodSeconds *int               `yaml:"terminationGracePeriodSeconds"`
		RestartPolicy                 string             `yaml:"restartPolicy"`
		Containers                    []k8sContainer     `yaml:"containers"`
		Volumes                       []k8sVolume        `yaml:"volumes"`
	}
	k8sContainer struct {
		Name  string             `yaml:"name"`
		Image string             `yaml:"image"`
		Args  []string           `yaml:"args"`
		Ports []k8sContainerPort `yaml:"ports"`
		Env   []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		EnvFrom []struct {
			SecretRef *struct {
				Name string `yaml:"name"`
			} `yaml:"secretRef"`
		} `yaml:"envFrom"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
		LivenessProbe   *k8sProbe          `yaml:"livenessProbe"`
		ReadinessProbe  *k8sProbe          `yaml:"readinessProbe"`
		Resources       k8sResources       `yaml:"resources"`
		SecurityContext k8sSecurityContext `yaml:"securityContext"`
	}
	k8sContainerPort struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	}
	k8sProbe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			// Port is a number or a port name.
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
	}
	k8sResources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	}
	k8sSecurityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		RunAsUser                *int  `yaml:"runAsUser"`
		RunAsGroup               *int  `yaml:"runAsGroup"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		Capabilities             *struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
		SeccompProfile *struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	}
	k8sVolume struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name  string       `yaml:"name"`
			Items []k8sKeyPath `yaml:"items"`
		} `yaml:"configMap"`
	}
	k8sKeyPath struct {
		Key  string `yaml:"key"`
		Path string `yaml:"path"`
	}
)

// k8sImage is what the Dockerfile's final stage says about the image.
type k8sImage struct {
	UID, GID   int
	Expose     []string
	ConfigPath string // ENV TENANTDRIFT_CONFIG
	Cmd        string // CMD, as written
}

// k8sReadDockerfile reads ../Dockerfile's final stage.
func k8sReadDockerfile(t *testing.T) k8sImage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	require.NoError(t, err)
	var lines []string
	var acc strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			acc.WriteString(cont + " ")
			continue
		}
		acc.WriteString(line)
		if s := strings.TrimSpace(acc.String()); s != "" {
			lines = append(lines, s)
		}
		acc.Reset()
	}
	require.NoError(t, sc.Err())
	var final []string
	for _, l := range lines {
		if strings.HasPrefix(l, "FROM ") {
			final = nil
		}
		final = append(final, l)
	}
	var img k8sImage
	for _, l := range final {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch instr {
		case "USER":
			u, g, _ := strings.Cut(rest, ":")
			img.UID, err = strconv.Atoi(u)
			require.NoError(t, err, "Dockerfile USER %q: numeric uid", rest)
			img.GID = img.UID
			if g != "" {
				img.GID, err = strconv.Atoi(g)
				require.NoError(t, err, "Dockerfile USER %q: numeric gid", rest)
			}
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				img.Expose = append(img.Expose, strings.TrimSuffix(p, "/tcp"))
			}
		case "ENV":
			if v, ok := strings.CutPrefix(rest, config.EnvConfig+"="); ok {
				img.ConfigPath = strings.Trim(v, `"`)
			} else if v, ok := strings.CutPrefix(rest, config.EnvConfig+" "); ok {
				img.ConfigPath = strings.Trim(strings.TrimSpace(v), `"`)
			}
		case "CMD":
			img.Cmd = rest
		}
	}
	require.NotZero(t, img.UID, "Dockerfile: the final stage has a non-root USER")
	require.NotEmpty(t, img.Expose, "Dockerfile: the final stage EXPOSEs a port")
	require.NotEmpty(t, img.ConfigPath, "Dockerfile: the final stage sets ENV %s", config.EnvConfig)
	return img
}

// k8sPort is the port the daemon listens on: the Dockerfile's EXPOSE, which
// must be serve's default listen port.
func k8sPort(t *testing.T, img k8sImage) int {
	t.Helper()
	_, def, err := net.SplitHostPort(config.DefaultListen)
	require.NoError(t, err)
	require.Equal(t, []string{def}, img.Expose, "Dockerfile EXPOSE is serve's default port (config.DefaultListen %s)", config.DefaultListen)
	p, err := strconv.Atoi(def)
	require.NoError(t, err)
	return p
}

// k8sDecodeAll decodes every non-empty document of a YAML file into a T.
func k8sDecodeAll[T any](t *testing.T, file string) []T {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []T
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "%s: YAML", file)
		if len(n.Content) == 0 || n.Content[0].Tag == "!!null" {
			continue // an empty document (a trailing ---, comments only)
		}
		var v T
		require.NoError(t, n.Decode(&v), "%s: document at line %d", file, n.Line)
		docs = append(docs, v)
	}
	return docs
}

// k8sObjectIn loads deploy/kubernetes/<file>, which must hold one object of kind.
func k8sObjectIn(t *testing.T, file, kind string) k8sObject {
	t.Helper()
	objs := k8sDecodeAll[k8sObject](t, filepath.Join(k8sDir, file))
	require.Len(t, objs, 1, "%s holds one object", file)
	require.Equal(t, kind, objs[0].Kind, file)
	return objs[0]
}

func k8sSpec[T any](t *testing.T, obj k8sObject) T {
	t.Helper()
	var spec T
	require.NoError(t, obj.Spec.Decode(&spec), "%s %s: spec", obj.Kind, obj.Metadata.Name)
	return spec
}

// k8sYAMLFiles lists every .yaml and .yml file under deploy/.
func k8sYAMLFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return nil
	})
	require.NoError(t, err)
	return files
}

// TestK8sYAMLFilesParse decodes every document of every YAML file under
// deploy/ (yaml.v3 also rejects duplicate keys).
func TestK8sYAMLFilesParse(t *testing.T) {
	files := k8sYAMLFiles(t)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			docs := k8sDecodeAll[any](t, f)
			assert.NotEmpty(t, docs, "%s has at least one non-empty document", f)
		})
	}
}

var k8sNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// TestK8sManifestsStructure checks every object in deploy/kubernetes has a
// known kind with its apiVersion and a valid name, and that
// kustomization.yaml lists every manifest meant to be applied.
func TestK8sManifestsStructure(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var manifests []string
	for _, f := range files {
		base := filepath.Base(f)
		if base == k8sSidecar {
			continue // a container entry, checked by TestK8sSidecarSnippet
		}
		for i, obj := range k8sDecodeAll[k8sObject](t, f) {
			want, known := k8sAPIVersions[obj.Kind]
			if !assert.True(t, known, "%s[%d]: kind %q is one these tests know", base, i, obj.Kind) {
				continue
			}
			assert.Equal(t, want, obj.APIVersion, "%s[%d]: apiVersion of %s", base, i, obj.Kind)
			if obj.Kind == "Kustomization" {
				continue // no metadata needed
			}
			assert.Regexp(t, k8sNameRE, obj.Metadata.Name, "%s[%d]: metadata.name", base, i)
			assert.Equal(t, "tenantdrift", obj.Metadata.Labels["app.kubernetes.io/name"], "%s[%d]: app.kubernetes.io/name label", base, i)
		}
		if base != k8sKustomization && base != k8sSecretExample {
			manifests = append(manifests, base)
		}
	}

	kust := k8sObjectIn(t, k8sKustomization, "Kustomization")
	for _, r := range kust.Resources {
		assert.FileExists(t, filepath.Join(k8sDir, r), "kustomization.yaml resource")
	}
	assert.ElementsMatch(t, manifests, kust.Resources, "kustomization.yaml lists every manifest but the secret example and the sidecar snippet")
	assert.NotContains(t, kust.Resources, k8sSecretExample, "the placeholder Secret is never applied")
}

// k8sWant is what every tenantdrift container must satisfy.
type k8sWant struct {
	img        k8sImage
	port       int
	configMap  string // the ConfigMap's name
	secretName string // the Secret's name
}

func k8sWants(t *testing.T) k8sWant {
	t.Helper()
	img := k8sReadDockerfile(t)
	return k8sWant{
		img:        img,
		port:       k8sPort(t, img),
		configMap:  k8sObjectIn(t, "configmap.yaml", "ConfigMap").Metadata.Name,
		secretName: k8sObjectIn(t, k8sSecretExample, "Secret").Metadata.Name,
	}
}

// k8sCheckContainer checks what every tenantdrift container needs: image,
// the hardened security context (the container's own field, else the
// pod's), resources, and the config mounted where the image looks for it.
func k8sCheckContainer(t *testing.T, w k8sWant, pod k8sPodSpec, c k8sContainer) {
	t.Helper()
	assert.NotEmpty(t, c.Image, "image")

	sc, psc := c.SecurityContext, pod.SecurityContext
	pick := func(a, b *bool) *bool {
		if a != nil {
			return a
		}
		return b
	}
	pickInt := func(a, b *int) *int {
		if a != nil {
			return a
		}
		return b
	}
	if v := pick(sc.RunAsNonRoot, psc.RunAsNonRoot); assert.NotNil(t, v, "runAsNonRoot") {
		assert.True(t, *v, "runAsNonRoot")
	}
	if v := pickInt(sc.RunAsUser, psc.RunAsUser); assert.NotNil(t, v, "runAsUser") {
		assert.Equal(t, w.img.UID, *v, "runAsUser is the Dockerfile's USER uid")
	}
	if v := pickInt(sc.RunAsGroup, psc.RunAsGroup); assert.NotNil(t, v, "runAsGroup") {
		assert.Equal(t, w.img.GID, *v, "runAsGroup is the Dockerfile's USER gid")
	}
	if assert.NotNil(t, sc.ReadOnlyRootFilesystem, "readOnlyRootFilesystem") {
		assert.True(t, *sc.ReadOnlyRootFilesystem, "readOnlyRootFilesystem: the binary writes nothing")
	}
	if assert.NotNil(t, sc.AllowPrivilegeEscalation, "allowPrivilegeEscalation") {
		assert.False(t, *sc.AllowPrivilegeEscalation, "allowPrivilegeEscalation")
	}
	if assert.NotNil(t, sc.Capabilities, "capabilities") {
		assert.Contains(t, sc.Capabilities.Drop, "ALL", "capabilities.drop")
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = psc.SeccompProfile
	}
	if assert.NotNil(t, seccomp, "seccompProfile") {
		assert.Equal(t, "RuntimeDefault", seccomp.Type, "seccompProfile.type")
	}

	assert.NotEmpty(t, c.Resources.Requests["cpu"], "requests.cpu")
	assert.NotEmpty(t, c.Resources.Requests["memory"], "requests.memory")
	assert.NotEmpty(t, c.Resources.Limits["memory"], "limits.memory")
	assert.NotContains(t, c.Resources.Limits, "cpu", "no CPU limit: throttling would hit the bursty runs and the probe handlers")

	// The config: mounted at the directory of the image's TENANTDRIFT_CONFIG,
	// from the ConfigMap, under the file name the image expects.
	dir, file := path.Split(w.img.ConfigPath)
	var volume string
	for _, m := range c.VolumeMounts {
		if m.MountPath == strings.TrimSuffix(dir, "/") {
			volume = m.Name
			assert.True(t, m.ReadOnly, "config mount is read-only")
		}
	}
	if assert.NotEmpty(t, volume, "a volume is mounted at %s (the Dockerfile's %s directory)", dir, config.EnvConfig) {
		k8sCheckConfigVolume(t, w, pod.Volumes, volume, file)
	}
	for _, e := range c.Env {
		if e.Name == config.EnvConfig {
			assert.Equal(t, w.img.ConfigPath, e.Value, "env %s", config.EnvConfig)
		}
	}
}

// k8sCheckConfigVolume checks that volume (declared in volumes, or, for the
// sidecar, documented) is the ConfigMap with its key at file.
func k8sCheckConfigVolume(t *testing.T, w k8sWant, volumes []k8sVolume, volume, file string) {
	t.Helper()
	i := slices.IndexFunc(volumes, func(v k8sVolume) bool { return v.Name == volume })
	if !assert.GreaterOrEqual(t, i, 0, "volume %s is declared", volume) {
		return
	}
	cm := volumes[i].ConfigMap
	if !assert.NotNil(t, cm, "volume %s is a configMap", volume) {
		return
	}
	assert.Equal(t, w.configMap, cm.Name, "volume %s is the ConfigMap of configmap.yaml", volume)
	if len(cm.Items) > 0 {
		assert.Contains(t, cm.Items, k8sKeyPath{Key: k8sConfigKey, Path: file}, "configMap item %s -> %s", k8sConfigKey, file)
	} else {
		assert.Equal(t, k8sConfigKey, file, "without items the key is the file name")
	}
}

// k8sCheckProbe checks an HTTP probe's path and that its port is the
// container's port (by name or number).
func k8sCheckProbe(t *testing.T, w k8sWant, c k8sContainer, p *k8sProbe, wantPath string) {
	t.Helper()
	if !assert.NotNil(t, p, "probe on %s", wantPath) || !assert.NotNil(t, p.HTTPGet, "httpGet probe on %s", wantPath) {
		return
	}
	assert.Equal(t, wantPath, p.HTTPGet.Path)
	port := p.HTTPGet.Port
	for _, cp := range c.Ports {
		if cp.Name == port {
			port = strconv.Itoa(cp.ContainerPort)
		}
	}
	assert.Equal(t, strconv.Itoa(w.port), port, "%s probe port is the daemon's port", wantPath)
}

// k8sCheckPort checks the container's port called name is the daemon's.
func k8sCheckPort(t *testing.T, w k8sWant, c k8sContainer, name string) {
	t.Helper()
	i := slices.IndexFunc(c.Ports, func(p k8sContainerPort) bool { return p.Name == name })
	if assert.GreaterOrEqual(t, i, 0, "port named %s", name) {
		assert.Equal(t, w.port, c.Ports[i].ContainerPort, "port %s is the Dockerfile's EXPOSE and config.DefaultListen", name)
	}
}

// TestK8sDeployment checks the daemon's Deployment.
func TestK8sDeployment(t *testing.T) {
	w := k8sWants(t)
	obj := k8sObjectIn(t, "deployment.yaml", "Deployment")
	spec := k8sSpec[k8sDeploymentSpec](t, obj)
	if assert.NotNil(t, spec.Replicas) {
		assert.GreaterOrEqual(t, *spec.Replicas, 1)
	}
	tmpl := spec.Template
	require.NotEmpty(t, spec.Selector.MatchLabels)
	for k, v := range spec.Selector.MatchLabels {
		assert.Equal(t, v, tmpl.Metadata.Labels[k], "selector label %s matches the pod template", k)
	}
	ann := tmpl.Metadata.Annotations
	assert.Equal(t, "true", ann["prometheus.io/scrape"])
	assert.Equal(t, strconv.Itoa(w.port), ann["prometheus.io/port"])
	assert.Equal(t, "/metrics", ann["prometheus.io/path"])

	require.Len(t, tmpl.Spec.Containers, 1)
	c := tmpl.Spec.Containers[0]
	k8sCheckContainer(t, w, tmpl.Spec, c)
	assert.Equal(t, []string{"serve"}, c.Args, "the Deployment runs the daemon")
	k8sCheckPort(t, w, c, "metrics")
	k8sCheckProbe(t, w, c, c.LivenessProbe, "/healthz")
	k8sCheckProbe(t, w, c, c.ReadinessProbe, "/readyz")
	k8sCheckSecretRef(t, w, c)

	// SIGTERM gets server.shutdown_grace, then a little more before SIGKILL.
	cfg := k8sLoadConfigMap(t)
	if assert.NotNil(t, tmpl.Spec.TerminationGracePeriodSeconds) {
		grace := time.Duration(*tmpl.Spec.TerminationGracePeriodSeconds) * time.Second
		assert.Greater(t, grace, cfg.Server.ShutdownGrace.D(), "terminationGracePeriodSeconds is above server.shutdown_grace")
		assert.LessOrEqual(t, grace, cfg.Server.ShutdownGrace.D()+15*time.Second, "…but only a bit above")
	}
}

// k8sCheckSecretRef checks the container takes its secrets from the Secret.
func k8sCheckSecretRef(t *testing.T, w k8sWant, c k8sContainer) {
	t.Helper()
	var refs []string
	for _, e := range c.EnvFrom {
		if e.SecretRef != nil {
			refs = append(refs, e.SecretRef.Name)
		}
	}
	assert.Contains(t, refs, w.secretName, "envFrom the Secret of secret.example.yaml")
}

// TestK8sCronJob checks the audit CronJob.
func TestK8sCronJob(t *testing.T) {
	w := k8sWants(t)
	obj := k8sObjectIn(t, "cronjob.yaml", "CronJob")
	spec := k8sSpec[k8sCronJobSpec](t, obj)
	_, err := schedule.Parse(spec.Schedule)
	assert.NoError(t, err, "schedule %q", spec.Schedule)
	assert.Len(t, strings.Fields(spec.Schedule), 5, "a 5-field cron schedule (Kubernetes has no @every)")
	assert.Equal(t, "Etc/UTC", spec.TimeZone)
	assert.Equal(t, "Forbid", spec.ConcurrencyPolicy)
	if assert.NotNil(t, spec.StartingDeadlineSeconds) {
		assert.Positive(t, *spec.StartingDeadlineSeconds)
	}
	if assert.NotNil(t, spec.SuccessfulJobsHistoryLimit) {
		assert.Positive(t, *spec.SuccessfulJobsHistoryLimit)
	}
	job := spec.JobTemplate.Spec
	if assert.NotNil(t, job.BackoffLimit) {
		assert.Zero(t, *job.BackoffLimit, "backoffLimit 0: exit 2 (drift) fails the Job at once")
	}
	if assert.NotNil(t, job.ActiveDeadlineSeconds) {
		assert.Positive(t, *job.ActiveDeadlineSeconds)
	}
	pod := job.Template.Spec
	assert.Equal(t, "Never", pod.RestartPolicy)
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	k8sCheckContainer(t, w, pod, c)
	require.NotEmpty(t, c.Args)
	assert.Equal(t, "audit", c.Args[0], "the CronJob runs one audit")
	assert.Contains(t, strings.Join(c.Args, " "), "--format json")
	assert.Nil(t, c.LivenessProbe, "audit serves no HTTP")
	assert.Nil(t, c.ReadinessProbe, "audit serves no HTTP")
	k8sCheckSecretRef(t, w, c)
}

// TestK8sSidecarSnippet checks the container entry to paste into an
// application's pod.
func TestK8sSidecarSnippet(t *testing.T) {
	w := k8sWants(t)
	docs := k8sDecodeAll[[]k8sContainer](t, filepath.Join(k8sDir, k8sSidecar))
	require.Len(t, docs, 1)
	require.Len(t, docs[0], 1, "one container entry")
	c := docs[0][0]
	// The pod is someone else's: the container must carry every setting,
	// and the config volume it mounts is the one the snippet documents.
	documented := k8sSidecarVolume(t)
	k8sCheckContainer(t, w, k8sPodSpec{Volumes: []k8sVolume{documented}}, c)
	assert.Equal(t, []string{"serve"}, c.Args)
	k8sCheckPort(t, w, c, "tenantdrift")
	k8sCheckProbe(t, w, c, c.LivenessProbe, "/healthz")
	assert.Nil(t, c.ReadinessProbe, "no readiness probe: a not-ready sidecar would take the application out of its Service")
	env := map[string]bool{}
	for _, e := range c.Env {
		env[e.Name] = true
	}
	for _, name := range []string{config.EnvLandlordDSN, config.EnvAppKey} {
		assert.True(t, env[name], "the sidecar sets %s", name)
	}
}

// k8sSidecarVolume parses the volume entry sidecar-snippet.yaml documents,
// as a comment block after "And under spec.template.spec.volumes".
func k8sSidecarVolume(t *testing.T) k8sVolume {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(k8sDir, k8sSidecar))
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(data), "# And under spec.template.spec.volumes")
	require.True(t, ok, "the snippet documents its volume")
	var block []string
	for _, line := range strings.Split(after, "\n")[1:] {
		body := strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ")
		if !strings.HasPrefix(line, "#") || (strings.TrimSpace(body) == "" && len(block) > 0) {
			break // the end of the comment block, or a blank comment line after it
		}
		if strings.TrimSpace(body) != "" {
			block = append(block, body)
		}
	}
	var vols []k8sVolume
	require.NoError(t, yaml.Unmarshal([]byte(strings.Join(block, "\n")), &vols), "the documented volume is YAML:\n%s", strings.Join(block, "\n"))
	require.Len(t, vols, 1)
	return vols[0]
}

// TestK8sServiceAndMonitor checks the Service selects the Deployment's pods
// on the daemon's port and the ServiceMonitor selects the Service.
func TestK8sServiceAndMonitor(t *testing.T) {
	w := k8sWants(t)
	dep := k8sSpec[k8sDeploymentSpec](t, k8sObjectIn(t, "deployment.yaml", "Deployment"))
	svcObj := k8sObjectIn(t, "service.yaml", "Service")
	svc := k8sSpec[struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	}](t, svcObj)
	require.NotEmpty(t, svc.Selector)
	for k, v := range svc.Selector {
		assert.Equal(t, v, dep.Template.Metadata.Labels[k], "Service selector %s matches the Deployment's pods", k)
	}
	require.Len(t, svc.Ports, 1)
	p := svc.Ports[0]
	assert.Equal(t, w.port, p.Port)
	assert.Contains(t, []string{"metrics", strconv.Itoa(w.port)}, p.TargetPort, "targetPort is the container's port")

	mon := k8sSpec[struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Endpoints []struct {
			Port string `yaml:"port"`
			Path string `yaml:"path"`
		} `yaml:"endpoints"`
	}](t, k8sObjectIn(t, "servicemonitor.yaml", "ServiceMonitor"))
	require.NotEmpty(t, mon.Selector.MatchLabels)
	for k, v := range mon.Selector.MatchLabels {
		assert.Equal(t, v, svcObj.Metadata.Labels[k], "ServiceMonitor selector %s matches the Service", k)
	}
	require.Len(t, mon.Endpoints, 1)
	assert.Equal(t, p.Name, mon.Endpoints[0].Port, "ServiceMonitor scrapes the Service's port by name")
	assert.Equal(t, "/metrics", mon.Endpoints[0].Path)
}

// TestK8sSecretExample checks the example Secret holds placeholders only,
// for the variables tenantdrift reads.
func TestK8sSecretExample(t *testing.T) {
	s := k8sObjectIn(t, k8sSecretExample, "Secret")
	assert.Empty(t, s.Data, "stringData only, so the placeholders stay readable")
	require.NotEmpty(t, s.StringData)
	known := []string{config.EnvLandlordDSN, config.EnvAppKey, config.EnvPreviousKeys, config.EnvSlackToken, config.EnvSlackWebhook}
	for k, v := range s.StringData {
		assert.Contains(t, known, k, "a variable tenantdrift reads")
		assert.Contains(t, v, "REPLACE_ME", "%s is a clearly fake placeholder", k)
	}
	assert.Contains(t, s.StringData, config.EnvLandlordDSN)
}

// k8sLoadConfigMap loads the ConfigMap's tenantdrift.yaml with config.Load,
// as the Deployment's container would: the environment is the example
// Secret plus the container's own env, nothing else, so a reference to any
// other variable fails.
func k8sLoadConfigMap(t *testing.T) *config.Config {
	t.Helper()
	cm := k8sObjectIn(t, "configmap.yaml", "ConfigMap")
	body, ok := cm.Data[k8sConfigKey]
	require.True(t, ok, "ConfigMap has key %s", k8sConfigKey)
	file := filepath.Join(t.TempDir(), k8sConfigKey)
	require.NoError(t, os.WriteFile(file, []byte(body), 0o600))

	env := map[string]string{}
	for k, v := range k8sObjectIn(t, k8sSecretExample, "Secret").StringData {
		env[k] = v
	}
	dep := k8sSpec[k8sDeploymentSpec](t, k8sObjectIn(t, "deployment.yaml", "Deployment"))
	for _, e := range dep.Template.Spec.Containers[0].Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	cfg, err := config.Load(config.Options{
		File:             file,
		LookupEnv:        func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		RequireLandlord:  true,
		ValidateSchedule: func(s string) error { _, err := schedule.Parse(s); return err },
	})
	require.NoError(t, err, "the ConfigMap's config loads")
	return cfg
}

// TestK8sConfigMapLoads checks the ConfigMap's config loads and agrees with
// the manifests.
func TestK8sConfigMapLoads(t *testing.T) {
	w := k8sWants(t)
	cfg := k8sLoadConfigMap(t)
	assert.Equal(t, config.PresetLaravel, cfg.Registry.Preset)
	_, port, err := net.SplitHostPort(cfg.Server.Listen)
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(w.port), port, "server.listen is the port the manifests probe and scrape")
	assert.NotEmpty(t, string(cfg.Landlord.DSN), "landlord DSN from the Secret")
	assert.NotEmpty(t, string(cfg.Laravel.AppKey), "APP_KEY from the Secret")
}

// k8sCompose is the subset of a compose file these tests read.
type k8sCompose struct {
	Services map[string]struct {
		Image string `yaml:"image"`
		Build *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// k8sMount is one short-syntax compose volume, "source:target[:ro]".
type k8sMount struct{ Source, Target string }

func k8sMounts(t *testing.T, vols []string) []k8sMount {
	t.Helper()
	var out []k8sMount
	for _, v := range vols {
		parts := strings.Split(v, ":")
		require.GreaterOrEqual(t, len(parts), 2, "volume %q is source:target", v)
		out = append(out, k8sMount{Source: parts[0], Target: parts[1]})
	}
	return out
}

// TestK8sCompose checks the compose file against the Dockerfile, the
// Prometheus and Grafana configs it mounts, and the files it mounts.
func TestK8sCompose(t *testing.T) {
	w := k8sWants(t)
	docs := k8sDecodeAll[k8sCompose](t, k8sComposeFile)
	require.Len(t, docs, 1)
	c := docs[0]
	composeDir := filepath.Dir(k8sComposeFile)
	for _, name := range []string{"postgres", "tenantdrift", "prometheus", "grafana"} {
		require.Contains(t, c.Services, name)
	}

	// Every bind mount's source exists (named volumes are declared),
	// including the alerting rules (deploy/prometheus) and the dashboard
	// (deploy/grafana).
	for name, svc := range c.Services {
		for _, m := range k8sMounts(t, svc.Volumes) {
			if !strings.HasPrefix(m.Source, ".") && !strings.HasPrefix(m.Source, "/") {
				assert.Contains(t, c.Volumes, m.Source, "service %s: named volume %s is declared", name, m.Source)
				continue
			}
			_, err := os.Stat(filepath.Join(composeDir, m.Source))
			assert.NoError(t, err, "service %s mounts %s", name, m.Source)
		}
	}

	td := c.Services["tenantdrift"]
	if assert.NotNil(t, td.Build, "tenantdrift is built from the repository") {
		assert.FileExists(t, filepath.Join(composeDir, td.Build.Context, "Dockerfile"))
	}
	assert.Equal(t, []string{"serve"}, td.Command)
	published := map[string]bool{}
	for _, p := range td.Ports {
		published[p[strings.LastIndex(p, ":")+1:]] = true
	}
	assert.True(t, published[strconv.Itoa(w.port)], "tenantdrift publishes the daemon's port %d (got %v)", w.port, td.Ports)
	// The DSN names the postgres service and its database.
	u, err := url.Parse(td.Environment[config.EnvLandlordDSN])
	if assert.NoError(t, err) {
		assert.Contains(t, c.Services, u.Hostname(), "the landlord DSN's host is a compose service")
		assert.Equal(t, "/"+c.Services[u.Hostname()].Environment["POSTGRES_DB"], u.Path)
		assert.Equal(t, c.Services[u.Hostname()].Environment["POSTGRES_PASSWORD"], k8sPassword(u))
	}
	// The demo APP_KEY is a real 32-byte key (the dump's payloads need it).
	key, ok := strings.CutPrefix(td.Environment[config.EnvAppKey], "base64:")
	if assert.True(t, ok, "APP_KEY is base64:...") {
		raw, err := base64.StdEncoding.DecodeString(key)
		if assert.NoError(t, err) {
			assert.Len(t, raw, 32, "an aes-256-cbc key")
		}
	}
	// The dump's tenant databases live on the compose service, not on the
	// throwaway cluster it was dumped from.
	dump, err := os.ReadFile(filepath.Join(composeDir, "landlord.sql"))
	require.NoError(t, err)
	assert.Contains(t, string(dump), "COPY public.tenant_databases")
	assert.NotContains(t, string(dump), "127.0.0.1", "tenant_databases rows point at the postgres service")

	// Prometheus scrapes tenantdrift on that port and loads the mounted rules.
	prom := c.Services["prometheus"]
	mounts := map[string]string{} // target -> source
	for _, m := range k8sMounts(t, prom.Volumes) {
		mounts[m.Target] = m.Source
	}
	var promCfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	promFile := ""
	for target, source := range mounts {
		if strings.HasSuffix(target, "/prometheus.yml") {
			promFile = filepath.Join(composeDir, source)
		}
	}
	require.NotEmpty(t, promFile, "prometheus.yml is mounted")
	k8sUnmarshalFile(t, promFile, &promCfg)
	var targets []string
	for _, sc := range promCfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	assert.Contains(t, targets, net.JoinHostPort("tenantdrift", strconv.Itoa(w.port)), "Prometheus scrapes the tenantdrift service on the daemon's port")
	require.NotEmpty(t, promCfg.RuleFiles)
	for _, rf := range promCfg.RuleFiles {
		if assert.Contains(t, mounts, rf, "rule file %s is mounted", rf) {
			assert.Equal(t, "../prometheus/alerts.yml", mounts[rf], "the project's alerting rules")
		}
	}
	assert.Contains(t, prom.Command, "--config.file=/etc/prometheus/prometheus.yml")

	// Grafana: the provider's path holds the mounted dashboard, and the
	// data source is the prometheus service.
	graf := c.Services["grafana"]
	var provisioning, dashboardDir string
	for _, m := range k8sMounts(t, graf.Volumes) {
		switch {
		case m.Target == "/etc/grafana/provisioning":
			provisioning = filepath.Join(composeDir, m.Source)
		case m.Source == "../grafana/tenantdrift.json":
			dashboardDir = path.Dir(m.Target)
		}
	}
	require.NotEmpty(t, provisioning, "Grafana's provisioning directory is mounted")
	require.NotEmpty(t, dashboardDir, "deploy/grafana/tenantdrift.json is mounted")
	var providers struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	k8sUnmarshalFile(t, filepath.Join(provisioning, "dashboards", "tenantdrift.yaml"), &providers)
	require.Len(t, providers.Providers, 1)
	assert.Equal(t, dashboardDir, providers.Providers[0].Options.Path)
	var sources struct {
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	k8sUnmarshalFile(t, filepath.Join(provisioning, "datasources", "prometheus.yaml"), &sources)
	require.Len(t, sources.Datasources, 1)
	assert.Equal(t, "prometheus", sources.Datasources[0].Type)
	ds, err := url.Parse(sources.Datasources[0].URL)
	if assert.NoError(t, err) {
		assert.Contains(t, c.Services, ds.Hostname(), "the data source is a compose service")
	}
}

func k8sPassword(u *url.URL) string {
	p, _ := u.User.Password()
	return p
}

func k8sUnmarshalFile(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, v), file)
}

// TestK8sComposePrometheusConfig runs `promtool check config` on the compose
// demo's prometheus.yml with the rule file it loads, when promtool is
// installed: the rule_files path is the container's, so it is rewritten to
// a copy of the mounted file.
func TestK8sComposePrometheusConfig(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH: prometheus.yml is checked structurally only (TestK8sCompose)")
	}
	composeDir := filepath.Dir(k8sComposeFile)
	cfg, err := os.ReadFile(filepath.Join(composeDir, "prometheus.yml"))
	require.NoError(t, err)
	rules, err := os.ReadFile(filepath.Join(composeDir, "..", "prometheus", "alerts.yml"))
	require.NoError(t, err)
	dir := t.TempDir()
	local := filepath.Join(dir, "alerts.yml")
	require.NoError(t, os.WriteFile(local, rules, 0o600))
	const inContainer = "/etc/prometheus/alerts.yml"
	require.Contains(t, string(cfg), inContainer)
	file := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(file, bytes.ReplaceAll(cfg, []byte(inContainer), []byte(local)), 0o600))
	out, err := exec.CommandContext(t.Context(), promtool, "check", "config", file).CombinedOutput()
	require.NoError(t, err, "promtool check config:\n%s", out)
}

// TestK8sKustomizeBuild renders kustomization.yaml with `kubectl kustomize`,
// which needs no cluster and no network, when kubectl is installed.
func TestK8sKustomizeBuild(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH: kustomization.yaml is checked structurally only")
	}
	out, err := exec.CommandContext(t.Context(), kubectl, "kustomize", k8sDir).CombinedOutput()
	require.NoError(t, err, "kubectl kustomize %s:\n%s", k8sDir, out)
	kust := k8sObjectIn(t, k8sKustomization, "Kustomization")
	rendered := regexp.MustCompile(`(?m)^kind: `).FindAll(out, -1)
	assert.Len(t, rendered, len(kust.Resources), "one rendered object per resource")
}
