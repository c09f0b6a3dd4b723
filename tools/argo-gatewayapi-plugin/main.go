// Command argo-gatewayapi-plugin is our stand-in for Argo Rollouts' Gateway API traffic-router plugin
// (argoproj-labs/rollouts-plugin-trafficrouter-gatewayapi), whose module the Go module proxy reachable here does
// not serve. It is written against the RPC contract of the pinned argo-rollouts module
// (rollout/trafficrouting/plugin/rpc, utils/plugin/types), not from upstream's code, and does only what the
// bench needs of upstream's plugin:
//
//   - SetWeight sets, in every rule of the named HTTPRoute that has backendRefs to both the Rollout's
//     canaryService and stableService, the canary weight to the desired weight and the stable weight to the
//     rest of maxTrafficWeight (100 unless the Rollout says otherwise). Upstream's plugin does the same.
//   - VerifyWeight answers Verified without looking, as upstream's does.
//   - SetHeaderRoute, SetMirrorRoute and RemoveManagedRoutes change nothing and say so in the log, once each
//     (the controller calls RemoveManagedRoutes and SetWeight on every reconcile).
//
// Its config in a Rollout is upstream's shape under our plugin name:
//
//	trafficRouting: {plugins: {gateway-canary/gatewayapi: {httpRoute: podinfo, namespace: peer-argo}}}
//
// (namespace defaults to the Rollout's). The controller starts it as a subprocess over hashicorp go-plugin
// (net/rpc); it reaches the apiserver through KUBECONFIG, which it inherits from the controller's environment.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/rollout/trafficrouting/plugin/rpc"
	"github.com/argoproj/argo-rollouts/utils/plugin/types"
	"github.com/argoproj/argo-rollouts/utils/weightutil"
	goplugin "github.com/hashicorp/go-plugin"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
)

// pluginName is the key of trafficRouterPlugins in argo-rollouts-config and of trafficRouting.plugins in a Rollout.
const pluginName = "gateway-canary/gatewayapi"

var httpRoutes = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}

// config is the plugin's entry in a Rollout's trafficRouting.plugins (upstream's field names).
type config struct {
	HTTPRoute string `json:"httpRoute"`
	Namespace string `json:"namespace"`
}

type router struct {
	client                             dynamic.Interface
	headerOnce, mirrorOnce, removeOnce sync.Once
}

func (r *router) InitPlugin() types.RpcError {
	rules := clientcmd.NewDefaultClientConfigLoadingRules() // KUBECONFIG, as the controller was given
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return rpcError("no kubeconfig: %v", err)
	}
	if r.client, err = dynamic.NewForConfig(cfg); err != nil {
		return rpcError("dynamic client: %v", err)
	}
	return types.RpcError{}
}

func (r *router) UpdateHash(*v1alpha1.Rollout, string, string, []v1alpha1.WeightDestination) types.RpcError {
	return types.RpcError{}
}

func (r *router) SetWeight(ro *v1alpha1.Rollout, desired int32, _ []v1alpha1.WeightDestination) types.RpcError {
	cfg, err := configOf(ro)
	if err != nil {
		return rpcError("%v", err)
	}
	canary, stable := ro.Spec.Strategy.Canary.CanaryService, ro.Spec.Strategy.Canary.StableService
	routes := r.client.Resource(httpRoutes).Namespace(cfg.Namespace)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		route, err := routes.Get(ctx, cfg.HTTPRoute, metav1.GetOptions{})
		if err != nil {
			return err
		}
		changed, err := setWeights(route, canary, stable, desired, weightutil.MaxTrafficWeight(ro))
		if err != nil || !changed {
			return err
		}
		if _, err = routes.Update(ctx, route, metav1.UpdateOptions{}); err == nil {
			log.Printf("HTTPRoute %s/%s: %s=%d", cfg.Namespace, cfg.HTTPRoute, canary, desired)
		}
		return err
	})
	if err != nil {
		return rpcError("HTTPRoute %s/%s: %v", cfg.Namespace, cfg.HTTPRoute, err)
	}
	return types.RpcError{}
}

// setWeights sets the two backendRefs' weights in every rule that has both (a route with no such rule is an
// error) and says whether any weight changed: the controller asks on every reconcile, the route is written only
// when it changes.
func setWeights(route *unstructured.Unstructured, canary, stable string, desired, total int32) (bool, error) {
	rules, _, err := unstructured.NestedSlice(route.Object, "spec", "rules")
	if err != nil {
		return false, err
	}
	found, changed := 0, false
	for _, rule := range rules {
		refs, _ := rule.(map[string]any)["backendRefs"].([]any)
		var c, s map[string]any
		for _, ref := range refs {
			m, _ := ref.(map[string]any)
			switch m["name"] {
			case canary:
				c = m
			case stable:
				s = m
			}
		}
		if c != nil && s != nil {
			changed = changed || weightOf(c) != int64(desired) || weightOf(s) != int64(total-desired)
			c["weight"], s["weight"] = int64(desired), int64(total-desired)
			found++
		}
	}
	if found == 0 {
		return false, fmt.Errorf("no rule has backendRefs to both %s and %s", canary, stable)
	}
	return changed, unstructured.SetNestedSlice(route.Object, rules, "spec", "rules")
}

// weightOf a backendRef: 1 when unset, as Gateway API defines it.
func weightOf(ref map[string]any) int64 {
	switch w := ref["weight"].(type) {
	case int64:
		return w
	case float64:
		return int64(w)
	case nil:
		return 1
	}
	return -1
}

func (r *router) VerifyWeight(*v1alpha1.Rollout, int32, []v1alpha1.WeightDestination) (types.RpcVerified, types.RpcError) {
	return types.Verified, types.RpcError{} // as upstream's plugin: not checked
}

func (r *router) SetHeaderRoute(*v1alpha1.Rollout, *v1alpha1.SetHeaderRoute) types.RpcError {
	r.headerOnce.Do(func() { log.Print("SetHeaderRoute: not supported by this stand-in, nothing changed") })
	return types.RpcError{}
}

func (r *router) SetMirrorRoute(*v1alpha1.Rollout, *v1alpha1.SetMirrorRoute) types.RpcError {
	r.mirrorOnce.Do(func() { log.Print("SetMirrorRoute: not supported by this stand-in, nothing changed") })
	return types.RpcError{}
}

func (r *router) RemoveManagedRoutes(*v1alpha1.Rollout) types.RpcError {
	r.removeOnce.Do(func() { log.Print("RemoveManagedRoutes: this stand-in manages no routes, nothing changed") })
	return types.RpcError{}
}

func (r *router) Type() string { return pluginName }

func configOf(ro *v1alpha1.Rollout) (config, error) {
	var cfg config
	canary := ro.Spec.Strategy.Canary
	if canary == nil || canary.TrafficRouting == nil || canary.TrafficRouting.Plugins[pluginName] == nil {
		return cfg, fmt.Errorf("rollout %s/%s has no trafficRouting.plugins[%s]", ro.Namespace, ro.Name, pluginName)
	}
	if err := json.Unmarshal(canary.TrafficRouting.Plugins[pluginName], &cfg); err != nil {
		return cfg, fmt.Errorf("trafficRouting.plugins[%s]: %v", pluginName, err)
	}
	if cfg.HTTPRoute == "" {
		return cfg, fmt.Errorf("trafficRouting.plugins[%s].httpRoute is empty", pluginName)
	}
	if cfg.Namespace == "" {
		cfg.Namespace = ro.Namespace
	}
	return cfg, nil
}

func rpcError(format string, args ...any) types.RpcError {
	return types.RpcError{ErrorString: fmt.Sprintf(format, args...)}
}

func main() {
	log.SetOutput(os.Stderr) // go-plugin passes the plugin's stderr into the controller's log
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  1,
			MagicCookieKey:   "ARGO_ROLLOUTS_RPC_PLUGIN",
			MagicCookieValue: "trafficrouter",
		},
		Plugins: map[string]goplugin.Plugin{"RpcTrafficRouterPlugin": &rpc.RpcTrafficRouterPlugin{Impl: &router{}}},
	})
}
