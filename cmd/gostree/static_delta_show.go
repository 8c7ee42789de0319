package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gostree/gostree/ostree"
)

func newStaticDeltaShowCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "show DELTA",
		Short: "Dump information on a delta",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, to, err := parseDeltaArg(args[0])
			if err != nil {
				return err
			}
			r, err := g.openRepo()
			if err != nil {
				return err
			}
			defer r.Close()
			d, err := r.ReadStaticDelta(from, to)
			if err != nil {
				return err
			}
			return showStaticDelta(cmd.Context(), g.stdout, d, repoFetch(r.Path()), filepath.Join(r.Path(), "tmp"))
		},
	}
}

// repoFetch reads files of a local repository directory.
func repoFetch(root string) ostree.DeltaFetchFunc {
	return func(ctx context.Context, p string) (io.ReadCloser, error) {
		return os.Open(filepath.Join(root, filepath.FromSlash(p)))
	}
}

// showStaticDelta prints a delta as `ostree static-delta show`.
func showStaticDelta(ctx context.Context, w io.Writer, d *ostree.StaticDelta, fetch ostree.DeltaFetchFunc, tmp string) error {
	fmt.Fprintf(w, "Delta: %s\n", d.Name())
	fmt.Fprintf(w, "Signed: no\n")
	if d.From.IsZero() {
		fmt.Fprintf(w, "From <scratch>\n")
	} else {
		fmt.Fprintf(w, "From: %s\n", d.From)
	}
	fmt.Fprintf(w, "To: %s\n", d.To)
	endian := "little"
	if d.ByteSwapped {
		endian = "big"
	}
	fmt.Fprintf(w, "Endianness: %s\n", endian)
	fmt.Fprintf(w, "Timestamp: %d\n", d.Timestamp.Unix())
	fmt.Fprintf(w, "Number of parents: 0\n")
	var fbSize, fbUSize uint64
	for _, f := range d.Fallbacks {
		fbSize += f.Size
		fbUSize += f.USize
	}
	fmt.Fprintf(w, "Number of fallback entries: %d\n", len(d.Fallbacks))
	for _, f := range d.Fallbacks {
		fmt.Fprintf(w, "  %s\n", f.Object.Checksum)
	}
	fmt.Fprintf(w, "Total Fallback Size: %d (%s)\n", fbSize, formatGSize(fbSize))
	fmt.Fprintf(w, "Total Fallback Uncompressed Size: %d (%s)\n", fbUSize, formatGSize(fbUSize))
	fmt.Fprintf(w, "Number of parts: %d\n", len(d.Parts))
	var size, usize uint64
	for i, p := range d.Parts {
		size += p.Size
		usize += p.USize
		fmt.Fprintf(w, "PartMeta%d: nobjects=%d size=%d usize=%d\n", i, len(p.Objects), p.Size, p.USize)
		info, err := ostree.InspectStaticDeltaPart(ctx, d, i, fetch, tmp)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "PartPayload%d: nmodes=%d nxattrs=%d blobsize=%d opsize=%d\n", i, info.Modes, info.Xattrs, info.BlobSize, info.OpSize)
		o := info.Ops
		fmt.Fprintf(w, "PartPayloadOps%d: openspliceclose=%d open=%d write=%d setread=%d unsetread=%d close=%d bspatch=%d\n",
			i, o['S'], o['o'], o['w'], o['r'], o['R'], o['c'], o['B'])
	}
	fmt.Fprintf(w, "Total Part Size: %d (%s)\n", size, formatGSize(size))
	fmt.Fprintf(w, "Total Part Uncompressed Size: %d (%s)\n", usize, formatGSize(usize))
	fmt.Fprintf(w, "Total Size: %d (%s)\n", size+fbSize, formatGSize(size+fbSize))
	fmt.Fprintf(w, "Total Uncompressed Size: %d (%s)\n", usize+fbUSize, formatGSize(usize+fbUSize))
	return nil
}
