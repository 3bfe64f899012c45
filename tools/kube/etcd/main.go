// Command etcd is the etcd server built from go.etcd.io/etcd/server/v3 (its own go.mod
// uses replace directives, so `go install` of it fails; this wrapper mirrors them).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
