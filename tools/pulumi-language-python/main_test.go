package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

func programInfo(t *testing.T, root string, options map[string]any) *pulumirpc.ProgramInfo {
	t.Helper()
	opts, err := structpb.NewStruct(options)
	if err != nil {
		t.Fatal(err)
	}
	return &pulumirpc.ProgramInfo{RootDirectory: root, ProgramDirectory: root, EntryPoint: ".", Options: opts}
}

// A plugin's virtualenv is relative to the plugin's own folder (the engine passes it as the root directory):
// provider/PulumiPlugin.yaml's `../.venv` is the checkout's .venv.
func TestVirtualenvIsRelativeToTheRootDirectory(t *testing.T) {
	repo := t.TempDir()
	python := filepath.Join(repo, ".venv", "bin", "python")
	if err := os.MkdirAll(filepath.Dir(python), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(python, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := checkedPython(programInfo(t, filepath.Join(repo, "provider"), map[string]any{"virtualenv": "../.venv"}))
	if err != nil || got != python {
		t.Fatalf("checkedPython = %q, %v; want %q", got, err, python)
	}
	abs := programInfo(t, "/elsewhere", map[string]any{"virtualenv": filepath.Join(repo, ".venv")})
	if got := pythonCommand(abs); got != python {
		t.Fatalf("absolute virtualenv: pythonCommand = %q, want %q", got, python)
	}
}

func TestMissingVirtualenvNamesTheOption(t *testing.T) {
	root := t.TempDir()
	_, err := checkedPython(programInfo(t, root, map[string]any{"virtualenv": "venv"}))
	if err == nil || !strings.Contains(err.Error(), "virtualenv runtime option names "+filepath.Join(root, "venv")) {
		t.Fatalf("checkedPython error = %v", err)
	}
}

func TestWithoutVirtualenvPulumiPythonCmdThenPython3(t *testing.T) {
	info := programInfo(t, t.TempDir(), map[string]any{})
	t.Setenv("PULUMI_PYTHON_CMD", "")
	if got, err := checkedPython(info); err != nil || got != "python3" {
		t.Fatalf("checkedPython = %q, %v; want python3", got, err)
	}
	t.Setenv("PULUMI_PYTHON_CMD", "/opt/python")
	if got := pythonCommand(info); got != "/opt/python" {
		t.Fatalf("pythonCommand = %q, want /opt/python", got)
	}
}
