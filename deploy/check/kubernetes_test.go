package check

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// variant is a directory of deploy/kubernetes and what it must hold.
type variant struct {
	dir         string
	kinds       []string // sorted
	store       string   // AUTHPROXY_SESSION_STORE
	minReplicas int32
}

// variants are the directories of deploy/kubernetes: each is applied on its own (kubectl apply -f DIR), so each
// must be complete.
var variants = []variant{
	{dir: "sidecar", kinds: []string{"Deployment", "Secret", "Service"}, store: "cookie", minReplicas: 1},
	{dir: "redis", kinds: []string{"Deployment", "PodDisruptionBudget", "Secret", "Service"}, store: "redis", minReplicas: 2},
}

// authproxyContainer is the name of authproxy's container in every Deployment.
const authproxyContainer = "authproxy"

// fallbackShutdownGrace is how long authproxy drained in-flight requests on SIGTERM before
// AUTHPROXY_SHUTDOWN_GRACE made it configurable; used only if that variable disappears.
const fallbackShutdownGrace = 20 * time.Second

// manifest is one object of a YAML file in deploy/kubernetes.
type manifest struct {
	where string // file:document
	kind  string
	obj   any // *appsv1.Deployment, *corev1.Service, *corev1.Secret or *policyv1.PodDisruptionBudget
}

// decodeManifest decodes one YAML document strictly into the typed object its apiVersion and kind name: an unknown
// kind, an unknown or misspelt field, a duplicate key or a value of the wrong type is an error.
func decodeManifest(doc []byte) (kind string, obj any, err error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return "", nil, err
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		obj = &appsv1.Deployment{}
	case "v1 Service":
		obj = &corev1.Service{}
	case "v1 Secret":
		obj = &corev1.Secret{}
	case "policy/v1 PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	default:
		return "", nil, fmt.Errorf("apiVersion %q kind %q: deploy/check knows only apps/v1 Deployment, v1 Service, v1 Secret and policy/v1 PodDisruptionBudget", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return "", nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return tm.Kind, obj, nil
}

// loadManifests decodes every YAML document under deploy/kubernetes, by directory relative to it.
func loadManifests(t *testing.T) map[string][]manifest {
	t.Helper()
	root := filepath.Join(repoRoot(), "deploy", "kubernetes")
	byDir := map[string][]manifest{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(p) != ".yaml" && filepath.Ext(p) != ".yml") {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for n := 1; ; n++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("%s: %v", rel, err)
				break
			}
			if js, err := yaml.YAMLToJSON(doc); err == nil && string(js) == "null" {
				continue // only comments
			}
			where := fmt.Sprintf("deploy/kubernetes/%s:%d", filepath.ToSlash(rel), n)
			kind, obj, err := decodeManifest(doc)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			dir := filepath.ToSlash(filepath.Dir(rel))
			byDir[dir] = append(byDir[dir], manifest{where: where, kind: kind, obj: obj})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return byDir
}

func TestDecodeManifestIsStrict(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		ok   bool
	}{
		{name: "valid", ok: true, doc: "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n"},
		{name: "misspelt field", doc: "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {port: [{port: 80}]}\n"},
		{name: "misspelt nested field", doc: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {template: {spec: {containers: [{name: a, imagePullPolicy: Always, livenesProbe: {}}]}}}\n"},
		{name: "duplicate key", doc: "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData: {a: b}\nstringData: {c: d}\n"},
		{name: "wrong type", doc: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {replicas: two}\n"},
		{name: "unknown kind", doc: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"},
		{name: "old apiVersion", doc: "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: a}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeManifest([]byte(tt.doc))
			if (err == nil) != tt.ok {
				t.Errorf("decodeManifest: error %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestKubernetes(t *testing.T) {
	vars := variables(t)
	byDir := loadManifests(t)
	for _, v := range variants {
		t.Run(v.dir, func(t *testing.T) {
			ms := byDir[v.dir]
			var kinds []string
			for _, m := range ms {
				kinds = append(kinds, m.kind)
			}
			slices.Sort(kinds)
			if !slices.Equal(kinds, v.kinds) {
				t.Fatalf("deploy/kubernetes/%s holds %v, want one each of %v", v.dir, kinds, v.kinds)
			}
			checkVariant(t, vars, ms, v.store, v.minReplicas)
		})
	}
	for dir := range byDir {
		if !slices.ContainsFunc(variants, func(v variant) bool { return v.dir == dir }) {
			t.Errorf("deploy/kubernetes/%s: add it to variants in deploy/check, so that it is checked as a whole", dir)
		}
	}
}

// variantObjects are the objects of one directory, one of each kind.
type variantObjects struct {
	deployment *appsv1.Deployment
	service    *corev1.Service
	secret     *corev1.Secret
	pdb        *policyv1.PodDisruptionBudget
	where      map[any]string
}

func checkVariant(t *testing.T, vars map[string]variable, ms []manifest, store string, minReplicas int32) {
	o := variantObjects{where: map[any]string{}}
	for _, m := range ms {
		o.where[m.obj] = m.where
		switch obj := m.obj.(type) {
		case *appsv1.Deployment:
			o.deployment = obj
		case *corev1.Service:
			o.service = obj
		case *corev1.Secret:
			o.secret = obj
		case *policyv1.PodDisruptionBudget:
			o.pdb = obj
		}
		checkNames(t, m)
	}
	d := o.deployment
	errorf := func(obj any, format string, args ...any) {
		t.Helper()
		t.Errorf("%s: %s", o.where[obj], fmt.Sprintf(format, args...))
	}

	pod := &d.Spec.Template
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
		errorf(d, "spec.selector %v does not select the pod template's labels %v", d.Spec.Selector, pod.Labels)
	}
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	if replicas < minReplicas {
		errorf(d, "replicas %d, want at least %d", replicas, minReplicas)
	}

	var proxy *corev1.Container
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if c.Name == authproxyContainer {
			proxy = c
			continue
		}
		for _, p := range c.Ports {
			errorf(d, "container %s (the app) lists port %d: the app must be reachable only through authproxy, on the pod's loopback", c.Name, p.ContainerPort)
		}
	}
	if proxy == nil {
		errorf(d, "no container named %q", authproxyContainer)
		return
	}
	if len(pod.Spec.InitContainers) > 0 {
		errorf(d, "init containers: deploy/check does not look at them yet")
	}

	env, used := checkProxyEnv(t, vars, d, proxy, o)
	checkProxyContainer(t, vars, d, proxy, env, o)

	if got := env["AUTHPROXY_SESSION_STORE"]; got != store {
		errorf(d, "AUTHPROXY_SESSION_STORE %q, want %q", got, store)
	}
	if store == "redis" && env["AUTHPROXY_REDIS_URL"] == "" {
		errorf(d, "AUTHPROXY_SESSION_STORE=redis without AUTHPROXY_REDIS_URL")
	}

	// The Service: selects these pods, and reaches authproxy's listening port and nothing else.
	svc := o.service
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
		errorf(svc, "spec.selector %v does not select the pods of %s", svc.Spec.Selector, o.where[d])
	}
	listenPort := portOf(env["AUTHPROXY_LISTEN"])
	for _, p := range svc.Spec.Ports {
		target := p.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(p.Port)
		}
		c, cp := findPort(pod.Spec.Containers, target)
		switch {
		case cp == nil:
			errorf(svc, "port %d: targetPort %s is no container's port", p.Port, target.String())
		case c.Name != authproxyContainer || fmt.Sprint(cp.ContainerPort) != listenPort:
			errorf(svc, "port %d: targetPort %s reaches %s:%d; the Service must reach only authproxy's AUTHPROXY_LISTEN port (%s)", p.Port, target.String(), c.Name, cp.ContainerPort, listenPort)
		}
	}

	// The Secret: placeholders only, and every key used.
	sec := o.secret
	if sec.Type != "" && sec.Type != corev1.SecretTypeOpaque {
		errorf(sec, "type %s, want Opaque", sec.Type)
	}
	values := map[string]string{}
	for k, v := range sec.Data {
		values[k] = string(v)
	}
	for k, v := range sec.StringData {
		values[k] = v
	}
	for k, v := range values {
		if !strings.Contains(v, "CHANGE ME") {
			errorf(sec, "key %s: a committed Secret holds placeholders marked CHANGE ME, never real values", k)
		}
		if !used[k] {
			errorf(sec, "key %s is used by no container of %s", k, o.where[d])
		}
	}

	// The PodDisruptionBudget: needed with several replicas, and must let a drain proceed.
	if pdb := o.pdb; pdb != nil {
		psel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || psel.Empty() || !psel.Matches(labels.Set(pod.Labels)) {
			errorf(pdb, "spec.selector %v does not select the pods of %s", pdb.Spec.Selector, o.where[d])
		}
		if m := pdb.Spec.MinAvailable; m != nil && m.Type == intstr.Int && m.IntVal >= replicas {
			errorf(pdb, "minAvailable %d with %d replicas: no node could ever be drained", m.IntVal, replicas)
		}
		if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
			errorf(pdb, "neither minAvailable nor maxUnavailable")
		}
	} else if replicas > 1 {
		errorf(d, "%d replicas and no PodDisruptionBudget", replicas)
	}
}
