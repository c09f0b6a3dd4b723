// Command pulumi-language-python is a small Python language host for the Pulumi engine.
//
// Why it exists: the upstream host (module github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3)
// is not served by the Go module proxy these machines reach, so gateway-canary builds this one against the
// pinned pulumi sdk/v3 instead. It implements the parts of the LanguageRuntime gRPC service that `pulumi
// preview/up/destroy/refresh` and the Automation API use, plus RunPlugin for plugins written in Python
// (policy packs, and the component provider in provider/ that other languages consume through `pulumi
// package add`), and delegates the real work to the upstream
// `pulumi-language-python-exec` script (shipped in the sdk/v3 module zip), exactly as the upstream host does:
// the script connects the Python program to the engine's resource monitor.
//
// Protocol, as the engine speaks it: the engine starts this binary with its own gRPC address as the last
// argument, reads the port we print on stdout, calls Handshake, then Run once per deployment.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	pbempty "google.golang.org/protobuf/types/known/emptypb"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
)

// version is set at build time to the pinned Pulumi release (-ldflags "-X main.version=...").
var version = "0.0.0-dev"

// userActionableExit is the exec script's exit code for "an error was already shown to the user".
const userActionableExit = 32

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	execScript string

	mu            sync.Mutex
	engineAddress string
}

func main() {
	// The engine passes its address as the last positional argument; older engines also pass flags such as
	// -tracing or -root. Keep the last argument that is not a flag.
	h := &host{}
	for _, a := range os.Args[1:] {
		if !strings.HasPrefix(a, "-") {
			h.engineAddress = a
		}
	}
	self, err := os.Executable()
	if err != nil {
		fail(err)
	}
	h.execScript = filepath.Join(filepath.Dir(self), "pulumi-language-python-exec")
	if _, err := os.Stat(h.execScript); err != nil {
		fail(fmt.Errorf("missing executor %s next to the language host: %w", h.execScript, err))
	}

	// Like every Pulumi plugin, stop serving when the engine goes away (e.g. `pulumi` was killed), so no
	// orphaned host is left behind.
	ctx, cancel := context.WithCancel(context.Background())
	if h.engineAddress != "" {
		go func() {
			if err := rpcutil.Healthcheck(ctx, h.engineAddress, 5*time.Minute, cancel); err != nil {
				cancel()
			}
		}()
	}
	stop := make(chan bool)
	go func() {
		<-ctx.Done()
		close(stop)
	}()

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: stop,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, h)
			return nil
		},
	})
	if err != nil {
		fail(fmt.Errorf("could not start the language host gRPC server: %w", err))
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fail(fmt.Errorf("language host stopped serving: %w", err))
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
	os.Exit(1)
}

func (h *host) Handshake(_ context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if req.GetEngineAddress() != "" {
		h.engineAddress = req.GetEngineAddress()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *pbempty.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

// GetRequiredPackages reports no packages: the toolchain installs every provider plugin and the engine
// loads them on demand when the program registers a resource. Automatic plugin download is off. The engine
// also asks this for a Python plugin folder before running it (`pulumi package add`, a YAML program's
// `packages:`): the component provider's own providers (kubernetes) load on demand the same way.
func (h *host) GetRequiredPackages(context.Context, *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

//nolint:staticcheck // the engine still falls back to this deprecated call.
func (h *host) GetRequiredPlugins(context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

// InstallDependencies is a no-op: the project's virtualenv is created by the Makefile, not by `pulumi install`.
// The engine calls it for a Python plugin folder too (IsPlugin) before running it; provider/ uses the same
// .venv.
func (h *host) InstallDependencies(*pulumirpc.InstallDependenciesRequest,
	grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	return nil
}

func (h *host) GetProgramDependencies(context.Context, *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	return &pulumirpc.GetProgramDependenciesResponse{}, nil
}

func (h *host) About(_ context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	python := pythonCommand(req.GetInfo())
	out, err := exec.Command(python, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("running %s --version: %w", python, err)
	}
	v := strings.TrimSpace(strings.TrimPrefix(string(out), "Python "))
	return &pulumirpc.AboutResponse{Executable: python, Version: v}, nil
}

// pythonCommand picks the interpreter the way the upstream host does for the pip toolchain: the
// `virtualenv` runtime option (relative to the root directory: the project's for Pulumi.yaml, the plugin's own
// folder for PulumiPlugin.yaml and PulumiPolicy.yaml), else PULUMI_PYTHON_CMD, else python3.
func pythonCommand(info *pulumirpc.ProgramInfo) string {
	if venv := virtualenv(info); venv != "" {
		return filepath.Join(venv, "bin", "python")
	}
	if cmd := os.Getenv("PULUMI_PYTHON_CMD"); cmd != "" {
		return cmd
	}
	return "python3"
}

// virtualenv is the absolute path of the `virtualenv` runtime option, "" when there is none.
func virtualenv(info *pulumirpc.ProgramInfo) string {
	if info == nil || info.GetOptions() == nil {
		return ""
	}
	v, ok := info.GetOptions().AsMap()["virtualenv"].(string)
	if !ok || v == "" {
		return ""
	}
	if !filepath.IsAbs(v) {
		v = filepath.Join(info.GetRootDirectory(), v)
	}
	return v
}

// checkedPython is pythonCommand, failing with a message that names the option when the virtualenv it
// points at has no interpreter (otherwise the engine reports a bare "fork/exec ...: no such file").
func checkedPython(info *pulumirpc.ProgramInfo) (string, error) {
	python := pythonCommand(info)
	if venv := virtualenv(info); venv != "" {
		if _, err := os.Stat(python); err != nil {
			return "", fmt.Errorf("the virtualenv runtime option names %s, which has no bin/python "+
				"(this host does not create virtualenvs; `make venv` creates the project's .venv)", venv)
		}
	}
	return python, nil
}

// Run executes the program once through the exec script, passing config the way the Python SDK reads it.
func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	h.mu.Lock()
	engine := h.engineAddress
	h.mu.Unlock()

	info := req.GetInfo()
	args := []string{"-u", h.execScript}
	add := func(k, v string) {
		if v != "" {
			args = append(args, "--"+k, v)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", engine)
	add("project", req.GetProject())
	add("stack", req.GetStack())
	add("pwd", req.GetPwd())
	add("dry_run", fmt.Sprintf("%v", req.GetDryRun()))
	add("parallel", fmt.Sprint(req.GetParallel()))
	add("organization", req.GetOrganization())
	if info != nil {
		add("root_directory", info.GetRootDirectory())
	}
	program := req.GetProgram()
	if info != nil && info.GetEntryPoint() != "" {
		program = filepath.Join(info.GetProgramDirectory(), info.GetEntryPoint())
	}
	if program == "" {
		program = "."
	}
	args = append(args, program)
	args = append(args, req.GetArgs()...)

	cfg, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, fmt.Errorf("serializing config: %w", err)
	}
	// An empty list, never JSON null: the Python SDK iterates over what it parses.
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	secrets, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, fmt.Errorf("serializing secret config keys: %w", err)
	}

	python, err := checkedPython(info)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), "PULUMI_CONFIG="+string(cfg), "PULUMI_CONFIG_SECRET_KEYS="+string(secrets))
	if req.GetPwd() != "" {
		cmd.Dir = req.GetPwd()
	}
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if exitErr.ExitCode() == userActionableExit {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{
				Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode()),
			}, nil
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not run the Python executor: %v", err)}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

// RunPlugin runs a plugin written in Python: a policy pack's analyzer (PulumiPolicy.yaml) or a resource
// provider such as a component provider (PulumiPlugin.yaml, provider/ in this repo). Like the upstream host,
// it runs `python <program directory> args...` (the directory's __main__.py; upstream's other form, a
// buildable pyproject.toml run through pulumi.run.plugin, is not supported) and streams its output back.
//
// The engine calls it from ExecPlugin whenever a plugin path is a folder instead of an executable: for
// `pulumi package add <folder>` (to read the provider's schema) and for every deployment whose program uses
// the package. The engine passes the plugin's folder as both root and program directory, its own address
// and flags as args, the environment to run with, and the program's project folder as pwd; the plugin
// prints its port on stdout, which reaches the engine through the stream. Cancelling the call (the engine
// closing the plugin) kills the process.
func (h *host) RunPlugin(req *pulumirpc.RunPluginRequest,
	server grpc.ServerStreamingServer[pulumirpc.RunPluginResponse],
) error {
	info := req.GetInfo()
	if info == nil || info.GetProgramDirectory() == "" {
		return fmt.Errorf("plugin %s: no program directory given", req.GetName())
	}
	python, err := checkedPython(info)
	if err != nil {
		return fmt.Errorf("plugin %s: %w", info.GetProgramDirectory(), err)
	}
	args := append([]string{"-u", info.GetProgramDirectory()}, req.GetArgs()...)
	cmd := exec.CommandContext(server.Context(), python, args...)
	cmd.Dir = req.GetPwd()
	cmd.Env = append(os.Environ(), req.GetEnv()...)

	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()
	cmd.Stdout, cmd.Stderr = stdout, stderr

	code := int32(0)
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return fmt.Errorf("running plugin %s: %w", info.GetProgramDirectory(), err)
		}
		code = int32(exitErr.ExitCode())
	}
	if err := closer.Close(); err != nil {
		return err
	}
	return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: code}})
}
