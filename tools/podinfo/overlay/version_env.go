//go:build podinfo_version_env

// This file is not part of the wrapper module's build: scripts/build-tools.sh adds it to podinfo's
// pkg/version package with `go build -overlay` (and the podinfo_version_env tag), so one podinfo binary can
// report any version. /version answers version.VERSION, which upstream sets only at link time; the
// data-plane supervisor (scripts/testbed) starts one podinfo per pod with PODINFO_VERSION=<the image's tag>.
package version

import "os"

func init() {
	if v := os.Getenv("PODINFO_VERSION"); v != "" {
		VERSION = v
	}
}
