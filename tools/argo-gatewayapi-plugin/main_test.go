package main

// Unit tests of the stand-in plugin's logic (no apiserver, no controller): run by scripts/build-tools.sh
// before every build of the plugin, so a plugin that sets the wrong weights is never built.

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func route(rules ...[]any) *unstructured.Unstructured {
	list := []any{}
	for _, refs := range rules {
		list = append(list, map[string]any{"backendRefs": refs})
	}
	return &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"rules": list}}}
}

func ref(name string, weight any) map[string]any {
	m := map[string]any{"name": name, "port": int64(9898)}
	if weight != nil {
		m["weight"] = weight
	}
	return m
}

func weights(t *testing.T, r *unstructured.Unstructured) []map[string]int64 {
	t.Helper()
	rules, _, _ := unstructured.NestedSlice(r.Object, "spec", "rules")
	out := []map[string]int64{}
	for _, rule := range rules {
		w := map[string]int64{}
		for _, x := range rule.(map[string]any)["backendRefs"].([]any) {
			m := x.(map[string]any)
			w[m["name"].(string)] = weightOf(m)
		}
		out = append(out, w)
	}
	return out
}

func TestSetWeightsMovesBothRefsOfEverySplitRuleAndNothingElse(t *testing.T) {
	r := route(
		[]any{ref("podinfo-stable", int64(100)), ref("podinfo-canary", int64(0))},
		[]any{ref("other", int64(7))},
		[]any{ref("podinfo-canary", nil), ref("podinfo-stable", nil)},
	)
	changed, err := setWeights(r, "podinfo-canary", "podinfo-stable", 25, 100)
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	got := weights(t, r)
	want := []map[string]int64{
		{"podinfo-stable": 75, "podinfo-canary": 25},
		{"other": 7},
		{"podinfo-stable": 75, "podinfo-canary": 25},
	}
	for i := range want {
		for name, w := range want[i] {
			if got[i][name] != w {
				t.Fatalf("rule %d %s: got %d, want %d (all: %v)", i, name, got[i][name], w, got)
			}
		}
	}
}

func TestSetWeightsSaysUnchangedWhenTheRouteAlreadyHasThem(t *testing.T) {
	// The controller calls SetWeight on every reconcile: the route is written only on a change.
	r := route([]any{ref("s", float64(95)), ref("c", float64(5))}) // JSON numbers decode as float64
	changed, err := setWeights(r, "c", "s", 5, 100)
	if err != nil || changed {
		t.Fatalf("changed=%v err=%v, want no change", changed, err)
	}
	if changed, _ = setWeights(r, "c", "s", 0, 100); !changed {
		t.Fatal("a new weight must count as a change")
	}
}

func TestSetWeightsUsesTheRolloutsTotal(t *testing.T) {
	r := route([]any{ref("s", nil), ref("c", nil)})
	if _, err := setWeights(r, "c", "s", 50, 1000); err != nil {
		t.Fatal(err)
	}
	if got := weights(t, r)[0]; got["c"] != 50 || got["s"] != 950 {
		t.Fatalf("got %v, want c=50 s=950 of 1000", got)
	}
}

func TestSetWeightsRefusesARouteWithoutBothServices(t *testing.T) {
	r := route([]any{ref("s", int64(100))}, []any{ref("c", int64(0))})
	_, err := setWeights(r, "c", "s", 10, 100)
	if err == nil || !strings.Contains(err.Error(), "no rule has backendRefs to both c and s") {
		t.Fatalf("err=%v", err)
	}
}

func TestWeightOfIsOneWhenUnsetAsGatewayAPISays(t *testing.T) {
	if weightOf(map[string]any{}) != 1 || weightOf(map[string]any{"weight": int64(3)}) != 3 {
		t.Fatal("weightOf")
	}
}

func rollout(plugins map[string]json.RawMessage) *v1alpha1.Rollout {
	return &v1alpha1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "peer-argo"},
		Spec: v1alpha1.RolloutSpec{Strategy: v1alpha1.RolloutStrategy{Canary: &v1alpha1.CanaryStrategy{
			TrafficRouting: &v1alpha1.RolloutTrafficRouting{Plugins: plugins},
		}}},
	}
}

func TestConfigOfReadsUpstreamsShapeAndDefaultsTheNamespace(t *testing.T) {
	cfg, err := configOf(rollout(map[string]json.RawMessage{pluginName: json.RawMessage(`{"httpRoute": "podinfo"}`)}))
	if err != nil || cfg.HTTPRoute != "podinfo" || cfg.Namespace != "peer-argo" {
		t.Fatalf("cfg=%+v err=%v", cfg, err)
	}
	for _, bad := range []map[string]json.RawMessage{
		{},
		{pluginName: json.RawMessage(`{"namespace": "x"}`)},
		{pluginName: json.RawMessage(`not json`)},
	} {
		if _, err := configOf(rollout(bad)); err == nil {
			t.Fatalf("config %v accepted", bad)
		}
	}
}
