package local_test

import (
	"testing"

	"github.com/gostree/gostree/ostree/store"
	"github.com/gostree/gostree/ostree/store/local"
	"github.com/gostree/gostree/ostree/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dir string) store.Store { return local.New(dir) })
}
