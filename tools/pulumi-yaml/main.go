// Command pulumi-language-yaml is Pulumi YAML's language host (github.com/pulumi/pulumi-yaml, pinned in
// tools/versions.env), served with one addition: the LanguageRuntime Link call.
//
// Why the addition: `pulumi package add` (CLI v3.274.1) generates the package's YAML "SDK" (a lock file
// under sdks/) with GeneratePackage and then calls Link on the project's language host, treating any error
// as fatal. pulumi-yaml v1.25.0, the newest release the Go module proxy here serves, does not implement
// Link, so the add fails with "linking package: method Link not implemented" and Pulumi.yaml is never
// updated. For YAML there is nothing to link (programs name resource types directly and the engine reads
// the package from Pulumi.yaml's `packages:`), so Link answers success with no import instructions, as
// later upstream releases do. Everything else is upstream's server, unchanged.
//
// Protocol: the engine starts this binary with its gRPC address as the last argument, reads the port we
// print on stdout, and stops us when it goes away (health check).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/pulumi/pulumi-yaml/pkg/server"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
)

// yamlHost is upstream's language host plus Link.
type yamlHost struct {
	pulumirpc.LanguageRuntimeServer
}

// Link has nothing to do for YAML: see the package comment.
func (yamlHost) Link(context.Context, *pulumirpc.LinkRequest) (*pulumirpc.LinkResponse, error) {
	return &pulumirpc.LinkResponse{}, nil
}

func main() {
	// The flags upstream's main accepts, so the engine's invocation means the same to both binaries.
	var tracing, root, compiler string
	flag.StringVar(&tracing, "tracing", "", "Emit tracing to a Zipkin-compatible tracing endpoint")
	flag.StringVar(&root, "root", "", "Root of the program execution")
	flag.StringVar(&compiler, "compiler", "", "[obsolete] Compiler to use to pre-process YAML")
	flag.Parse()
	logging.InitLogging(false, 0, false)
	cmdutil.InitTracing("pulumi-language-yaml", "pulumi-language-yaml", tracing)

	var engineAddress string
	var stop chan bool
	if args := flag.Args(); len(args) > 0 {
		engineAddress = args[0]
		stop = stopWhenEngineGoes(engineAddress)
	}

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: stop,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv,
				yamlHost{server.NewLanguageHost(engineAddress, tracing, false /* useRPCLoader */)})
			return nil
		},
	})
	if err != nil {
		cmdutil.Exit(fmt.Errorf("could not start language host RPC server: %w", err))
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		cmdutil.Exit(fmt.Errorf("language host RPC stopped serving: %w", err))
	}
}

// stopWhenEngineGoes returns a channel closed when the engine stops answering health checks or on SIGINT.
func stopWhenEngineGoes(engineAddress string) chan bool {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	stop := make(chan bool)
	go func() {
		<-ctx.Done()
		cancel()
		close(stop)
	}()
	if err := rpcutil.Healthcheck(ctx, engineAddress, 5*time.Minute, cancel); err != nil {
		cmdutil.Exit(fmt.Errorf("could not start health check host RPC server: %w", err))
	}
	return stop
}
