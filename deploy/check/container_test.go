package check

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
)

// checkProxyEnv checks authproxy's environment: only variables authproxy reads, secrets only as mounted files
// (NAME_FILE) from the directory's Secret, and a configuration authproxy.LoadConfig accepts. It returns the
// environment as authproxy would see it (with stand-ins for secret values) and the Secret keys it uses.
func checkProxyEnv(t *testing.T, vars map[string]variable, d *appsv1.Deployment, c *corev1.Container, o variantObjects) (env map[string]string, used map[string]bool) {
	env, used = map[string]string{}, map[string]bool{}
	errorf := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: container %s: %s", o.where[d], c.Name, fmt.Sprintf(format, args...))
	}
	pod := &d.Spec.Template.Spec
	for _, e := range c.Env {
		base, file, err := resolveName(vars, e.Name)
		if err != nil {
			errorf("env %v", err)
			continue
		}
		if base == "" {
			continue
		}
		if _, dup := env[base]; dup {
			errorf("env %s is set twice (or as both %s and %s_FILE)", e.Name, base, base)
		}
		switch {
		case file:
			if e.ValueFrom != nil {
				errorf("env %s: want a path as its value", e.Name)
				continue
			}
			env[base] = standIn(t, base) // even when the file is wrong: report that once, not again as missing
			key, err := secretFile(pod, c, e.Value, o.secret)
			if err != nil {
				errorf("env %s=%s: %v", e.Name, e.Value, err)
				continue
			}
			used[key] = true
		case vars[base].secret:
			errorf("env %s is a secret: mount it from the Secret and set %s_FILE to its path", e.Name, e.Name)
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if _, ok := secretKeys(o.secret)[ref.Key]; ref.Name != o.secret.Name || !ok {
				errorf("env %s: secretKeyRef %s/%s is not in %s", e.Name, ref.Name, ref.Key, o.where[o.secret])
			}
			used[ref.Key] = true
			env[base] = standIn(t, base)
		case e.ValueFrom != nil:
			errorf("env %s: deploy/check understands only value and secretKeyRef for authproxy's variables", e.Name)
		default:
			if strings.Contains(e.Value, "$(") {
				errorf("env %s: deploy/check does not expand $(VAR) references", e.Name)
			}
			env[base] = e.Value
		}
	}
	for _, p := range configProblems(env) {
		errorf("authproxy.LoadConfig: %s", p)
	}
	for name, v := range vars {
		if _, set := env[name]; !set {
			env[name] = v.def
		}
	}
	return env, used
}

// secretFile returns the key of secret that the file p comes from through c's volume mounts, checking that the
// mount is read-only and that authproxy's user can read the file.
func secretFile(pod *corev1.PodSpec, c *corev1.Container, p string, secret *corev1.Secret) (string, error) {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return "", errors.New("want a clean absolute path")
	}
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 {
			return "", fmt.Errorf("volume %s is not in the pod", m.Name)
		}
		vs := pod.Volumes[i].Secret
		switch {
		case vs == nil:
			return "", fmt.Errorf("volume %s is not a Secret volume", m.Name)
		case vs.SecretName != secret.Name:
			return "", fmt.Errorf("volume %s mounts Secret %s; this directory's Secret is %s", m.Name, vs.SecretName, secret.Name)
		case m.SubPath != "" || m.SubPathExpr != "":
			return "", fmt.Errorf("volume mount %s uses subPath, which the kubelet never updates: a rotated secret would not arrive", m.Name)
		case !m.ReadOnly:
			return "", fmt.Errorf("volume mount %s: want readOnly: true", m.Name)
		}
		key, mode := rel, vs.DefaultMode
		if len(vs.Items) > 0 {
			j := slices.IndexFunc(vs.Items, func(it corev1.KeyToPath) bool { return it.Path == rel })
			if j < 0 {
				return "", fmt.Errorf("volume %s has no item with path %s", m.Name, rel)
			}
			key = vs.Items[j].Key
			if vs.Items[j].Mode != nil {
				mode = vs.Items[j].Mode
			}
		}
		if _, ok := secretKeys(secret)[key]; !ok {
			return "", fmt.Errorf("Secret %s has no key %s", secret.Name, key)
		}
		perm := int32(corev1.SecretVolumeSourceDefaultMode)
		if mode != nil {
			perm = *mode
		}
		fsGroup := pod.SecurityContext != nil && pod.SecurityContext.FSGroup != nil
		if perm&0o004 == 0 && !(perm&0o040 != 0 && fsGroup) {
			return "", fmt.Errorf("file mode %#o: the files are owned by root (or fsGroup), so authproxy's user cannot read them", perm)
		}
		return key, nil
	}
	return "", errors.New("no volume mount of the container holds this path")
}

// secretKeys returns the keys of s, from data and stringData.
func secretKeys(s *corev1.Secret) map[string]bool {
	keys := map[string]bool{}
	for k := range s.Data {
		keys[k] = true
	}
	for k := range s.StringData {
		keys[k] = true
	}
	return keys
}

// checkProxyContainer checks authproxy's container: ports, probes, shutdown, resources and security context.
func checkProxyContainer(t *testing.T, vars map[string]variable, d *appsv1.Deployment, c *corev1.Container, env map[string]string, o variantObjects) {
	errorf := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: container %s: %s", o.where[d], c.Name, fmt.Sprintf(format, args...))
	}
	pod := &d.Spec.Template.Spec

	// The app is reached over the pod's loopback: the sidecar pattern.
	if u, err := url.Parse(env["AUTHPROXY_UPSTREAM"]); err != nil || !isLoopback(u.Hostname()) {
		errorf("AUTHPROXY_UPSTREAM %q: want the app on the pod's loopback, such as http://127.0.0.1:8080", env["AUTHPROXY_UPSTREAM"])
	}

	// Ports: "http" is AUTHPROXY_LISTEN's; the metrics port, if separate, is declared.
	listenPort := portOf(env["AUTHPROXY_LISTEN"])
	if _, p := findPort([]corev1.Container{*c}, intstr.FromString("http")); p == nil || fmt.Sprint(p.ContainerPort) != listenPort {
		errorf("want a port named http with containerPort %s (AUTHPROXY_LISTEN)", listenPort)
	}
	if m := env["AUTHPROXY_METRICS_LISTEN"]; m != "" {
		if _, p := findPort([]corev1.Container{*c}, intstr.Parse(portOf(m))); p == nil {
			errorf("AUTHPROXY_METRICS_LISTEN=%s but no containerPort %s", m, portOf(m))
		}
	}

	// Probes.
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
	} {
		switch g := pr.probe; {
		case g == nil || g.HTTPGet == nil:
			errorf("%s: want httpGet %s", pr.name, pr.path)
		case g.HTTPGet.Path != pr.path || g.HTTPGet.Port != intstr.FromString("http"):
			errorf("%s: httpGet %s on port %s, want %s on the named port http", pr.name, g.HTTPGet.Path, g.HTTPGet.Port.String(), pr.path)
		case env["AUTHPROXY_TLS_CERT_FILE"] == "" && g.HTTPGet.Scheme == corev1.URISchemeHTTPS:
			errorf("%s: scheme HTTPS but authproxy serves plain http (no AUTHPROXY_TLS_CERT_FILE)", pr.name)
		}
	}

	// Shutdown: the kubelet's preStop sleep (the image has no shell), then authproxy's drain, within the grace period.
	var preStop time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		switch h := c.Lifecycle.PreStop; {
		case h.Sleep != nil:
			preStop = time.Duration(h.Sleep.Seconds) * time.Second
		default:
			errorf("lifecycle.preStop: authproxy's image has no shell or tools; use sleep")
		}
	}
	drain := fallbackShutdownGrace
	if _, ok := vars["AUTHPROXY_SHUTDOWN_GRACE"]; ok {
		var err error
		if drain, err = time.ParseDuration(env["AUTHPROXY_SHUTDOWN_GRACE"]); err != nil {
			errorf("AUTHPROXY_SHUTDOWN_GRACE: %v", err)
		}
	}
	grace := time.Duration(corev1.DefaultTerminationGracePeriodSeconds) * time.Second
	if pod.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	}
	if grace < preStop+drain {
		errorf("terminationGracePeriodSeconds %v is shorter than preStop %v + AUTHPROXY_SHUTDOWN_GRACE %v: the kubelet would kill requests still draining", grace, preStop, drain)
	}

	// Resources.
	req, lim := c.Resources.Requests, c.Resources.Limits
	for _, q := range []struct {
		what string
		v    resource.Quantity
	}{
		{"requests.cpu", req[corev1.ResourceCPU]},
		{"requests.memory", req[corev1.ResourceMemory]},
		{"limits.memory", lim[corev1.ResourceMemory]},
	} {
		if q.v.IsZero() {
			errorf("resources.%s is not set", q.what)
		}
	}
	if r, l := req[corev1.ResourceMemory], lim[corev1.ResourceMemory]; !l.IsZero() && r.Cmp(l) > 0 {
		errorf("resources: memory request %s above its limit %s", r.String(), l.String())
	}

	// Security context: the container's, falling back to the pod's where Kubernetes does.
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if nonRoot := cmpOr(sc.RunAsNonRoot, psc.RunAsNonRoot); nonRoot == nil || !*nonRoot {
		errorf("securityContext: want runAsNonRoot: true")
	}
	if uid := cmpOr(sc.RunAsUser, psc.RunAsUser); uid != nil && *uid == 0 {
		errorf("securityContext: runAsUser 0")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		errorf("securityContext: want readOnlyRootFilesystem: true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		errorf("securityContext: want allowPrivilegeEscalation: false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		errorf("securityContext: privileged")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		errorf("securityContext.capabilities: want drop [ALL] and nothing added")
	}
	if sp := cmpOr(sc.SeccompProfile, psc.SeccompProfile); sp == nil || (sp.Type != corev1.SeccompProfileTypeRuntimeDefault && sp.Type != corev1.SeccompProfileTypeLocalhost) {
		errorf("securityContext.seccompProfile: want type RuntimeDefault")
	}
}

// checkNames checks the names Kubernetes would refuse at apply time: object, label, container, port and
// environment variable names.
func checkNames(t *testing.T, m manifest) {
	var problems []string
	add := func(what string, errs []string) {
		for _, e := range errs {
			problems = append(problems, what+": "+e)
		}
	}
	var meta *metav1.ObjectMeta
	var pod *corev1.PodTemplateSpec
	switch obj := m.obj.(type) {
	case *appsv1.Deployment:
		meta, pod = &obj.ObjectMeta, &obj.Spec.Template
	case *corev1.Service:
		meta = &obj.ObjectMeta
		for _, p := range obj.Spec.Ports {
			if p.Name != "" {
				add("port name "+p.Name, validation.IsValidPortName(p.Name))
			}
		}
	case *corev1.Secret:
		meta = &obj.ObjectMeta
		for k := range secretKeys(obj) {
			add("key "+k, validation.IsConfigMapKey(k))
		}
	case *policyv1.PodDisruptionBudget:
		meta = &obj.ObjectMeta
	}
	add("metadata.name "+meta.Name, validation.IsDNS1123Subdomain(meta.Name))
	if meta.Namespace != "" {
		problems = append(problems, "metadata.namespace: leave it out, so that kubectl apply -n chooses")
	}
	labelSets := []map[string]string{meta.Labels}
	if pod != nil {
		labelSets = append(labelSets, pod.Labels)
		for _, c := range pod.Spec.Containers {
			add("container "+c.Name, validation.IsDNS1123Label(c.Name))
			for _, p := range c.Ports {
				if p.Name != "" {
					add("container "+c.Name+" port "+p.Name, validation.IsValidPortName(p.Name))
				}
			}
			for _, e := range c.Env {
				add("container "+c.Name+" env "+e.Name, validation.IsEnvVarName(e.Name))
			}
		}
	}
	for _, set := range labelSets {
		for k, v := range set {
			add("label "+k, validation.IsQualifiedName(k))
			add("label "+k, validation.IsValidLabelValue(v))
		}
	}
	for _, p := range problems {
		t.Errorf("%s: %s", m.where, p)
	}
}

// findPort returns the container port that a Service's targetPort names or numbers.
func findPort(cs []corev1.Container, target intstr.IntOrString) (*corev1.Container, *corev1.ContainerPort) {
	for i := range cs {
		for j := range cs[i].Ports {
			p := &cs[i].Ports[j]
			if (target.Type == intstr.String && p.Name == target.StrVal) || (target.Type == intstr.Int && p.ContainerPort == target.IntVal) {
				return &cs[i], p
			}
		}
	}
	return nil, nil
}

// portOf returns the port of a host:port listen address.
func portOf(hostport string) string {
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return ""
	}
	return port
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// cmpOr returns the first non-nil pointer.
func cmpOr[T any](ps ...*T) *T {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}
