package glance_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/gostree/gostree/glance"
	"github.com/gostree/gostree/internal/osauth/osauthtest"
	"github.com/gostree/gostree/ostree"
)

func TestParseSource(t *testing.T) {
	for in, want := range map[string]glance.Source{
		"swift://repo":                {Container: "repo"},
		"swift://repo/os/x86_64/":     {Container: "repo", Prefix: "os/x86_64"},
		"https://example.org/repo/":   {URL: "https://example.org/repo/"},
		"http://127.0.0.1:8080/v1/a/": {URL: "http://127.0.0.1:8080/v1/a/"},
	} {
		got, err := glance.ParseSource(in)
		if err != nil || got != want {
			t.Errorf("ParseSource(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "swift://", "swift://a/../b", "ftp://x/y", "/srv/repo", "https://", "swift://c//d"} {
		if s, err := glance.ParseSource(bad); err == nil {
			t.Errorf("ParseSource(%q) = %+v, want an error", bad, s)
		}
	}
}

func setup(t *testing.T) (*glance.Client, *gophercloud.ServiceClient) {
	t.Helper()
	osauthtest.Setup(t)
	c := osauthtest.Client(t)
	ic, err := openstack.NewImageV2(c.Provider, c.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return glance.New(ic), ic
}

func cleanup(t *testing.T, ic *gophercloud.ServiceClient, id string) {
	t.Cleanup(func() { images.Delete(context.Background(), ic, id) })
}

func TestPublishResolveList(t *testing.T) {
	gc, ic := setup(t)
	ctx := context.Background()
	ref := osauthtest.Name("exampleos/x86_64/stable")
	c1 := ostree.SumBytes([]byte("commit one"))
	c2 := ostree.SumBytes([]byte("commit two"))
	v1, err := gc.Publish(ctx, glance.PublishOptions{Commit: c1, Ref: ref, Version: "1.0", OSName: "exampleos",
		Source: glance.Source{Container: "repo", Prefix: "exampleos"}, Tags: []string{"channel:stable"}})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, ic, v1.ImageID)
	name := osauthtest.Name("exampleos-2.0")
	v2, err := gc.Publish(ctx, glance.PublishOptions{Name: name, Commit: c2, Ref: ref, Version: "2.0",
		Source: glance.Source{URL: "https://updates.example.org/repo/"}})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, ic, v2.ImageID)
	if v1.Name != "exampleos-1.0" || v1.Commit != c1 || v1.Source.String() != "swift://repo/exampleos" {
		t.Fatalf("published %+v", v1)
	}

	for _, key := range []string{v1.ImageID, v2.ImageID, name} {
		got, err := gc.Resolve(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		want := v1
		if key != v1.ImageID {
			want = v2
		}
		if got.ImageID != want.ImageID || got.Commit != want.Commit || got.Ref != ref || got.Version != want.Version || got.Source != want.Source || got.OSName != want.OSName {
			t.Fatalf("Resolve(%s) = %+v, want %+v", key, got, want)
		}
	}

	vs, err := gc.List(ctx, glance.ListOptions{Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].ImageID != v2.ImageID || vs[1].ImageID != v1.ImageID {
		t.Fatalf("List(ref) = %+v, want v2 then v1", vs)
	}
	vs, err = gc.List(ctx, glance.ListOptions{Ref: ref, Tags: []string{"channel:stable"}})
	if err != nil || len(vs) != 1 || vs[0].ImageID != v1.ImageID {
		t.Fatalf("List(ref, tag) = %+v, %v; want v1 only", vs, err)
	}
}

func TestResolveBadImages(t *testing.T) {
	gc, ic := setup(t)
	ctx := context.Background()

	plain, err := images.Create(ctx, ic, images.CreateOpts{Name: osauthtest.Name("plain"), DiskFormat: "raw", ContainerFormat: "bare",
		Properties: map[string]string{"os_distro": "debian"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, ic, plain.ID)
	_, err = gc.Resolve(ctx, plain.ID)
	if !errors.Is(err, glance.ErrNotPublished) || !strings.Contains(err.Error(), plain.ID) {
		t.Fatalf("image without ostree_* properties: %v", err)
	}

	bad, err := images.Create(ctx, ic, images.CreateOpts{Name: osauthtest.Name("bad"), DiskFormat: "raw", ContainerFormat: "bare",
		Properties: map[string]string{glance.PropCommit: "not-a-checksum", glance.PropRepo: "swift://repo"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, ic, bad.ID)
	if _, err := gc.Resolve(ctx, bad.ID); !errors.Is(err, glance.ErrNotPublished) || !strings.Contains(err.Error(), glance.PropCommit) {
		t.Fatalf("image with an invalid ostree_commit: %v", err)
	}
	noRepo, err := images.Create(ctx, ic, images.CreateOpts{Name: osauthtest.Name("norepo"), DiskFormat: "raw", ContainerFormat: "bare",
		Properties: map[string]string{glance.PropCommit: ostree.SumBytes(nil).String()}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, ic, noRepo.ID)
	if _, err := gc.Resolve(ctx, noRepo.ID); !errors.Is(err, glance.ErrNotPublished) || !strings.Contains(err.Error(), glance.PropRepo) {
		t.Fatalf("image without ostree_repo: %v", err)
	}

	if _, err := gc.Resolve(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, glance.ErrNotFound) {
		t.Fatalf("missing image ID: %v", err)
	}
	if _, err := gc.Resolve(ctx, osauthtest.Name("no-such-image")); !errors.Is(err, glance.ErrNotFound) {
		t.Fatalf("missing image name: %v", err)
	}

	name := osauthtest.Name("twice")
	for i := 0; i < 2; i++ {
		v, err := gc.Publish(ctx, glance.PublishOptions{Name: name, Commit: ostree.SumBytes([]byte{byte(i)}), Source: glance.Source{Container: "c"}})
		if err != nil {
			t.Fatal(err)
		}
		cleanup(t, ic, v.ImageID)
	}
	if _, err := gc.Resolve(ctx, name); !errors.Is(err, glance.ErrAmbiguous) {
		t.Fatalf("two images with one name: %v", err)
	}

	// Plain images never show up as versions.
	vs, err := gc.List(ctx, glance.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.ImageID == plain.ID || v.ImageID == bad.ID {
			t.Fatalf("List returned a non-OSTree image %s", v.ImageID)
		}
	}
}

func TestPublishBadInput(t *testing.T) {
	gc, _ := setup(t)
	ctx := context.Background()
	c := ostree.SumBytes([]byte("x"))
	for name, o := range map[string]glance.PublishOptions{
		"no commit":      {Source: glance.Source{Container: "c"}},
		"no source":      {Commit: c},
		"bad ref":        {Commit: c, Ref: "bad ref", Source: glance.Source{Container: "c"}},
		"bad tag":        {Commit: c, Tags: []string{"a/b"}, Source: glance.Source{Container: "c"}},
		"bad visibility": {Commit: c, Visibility: "everyone", Source: glance.Source{Container: "c"}},
	} {
		if v, err := gc.Publish(ctx, o); err == nil {
			gc.Delete(ctx, v.ImageID)
			t.Errorf("%s: published %+v", name, v)
		}
	}
}
