package ostree

import (
	"fmt"
	"strings"
)

// ObjectType is the type of an object in a repository.
type ObjectType int

// Object types, with ostree's numbering.
const (
	ObjFile            ObjectType = 1
	ObjDirTree         ObjectType = 2
	ObjDirMeta         ObjectType = 3
	ObjCommit          ObjectType = 4
	ObjTombstoneCommit ObjectType = 5
	ObjCommitMeta      ObjectType = 6
	ObjPayloadLink     ObjectType = 7
)

// IsMeta reports whether objects of type t are metadata (GVariant) objects.
func (t ObjectType) IsMeta() bool { return t >= ObjDirTree && t <= ObjCommitMeta }

// String returns ostree's name of the type ("file", "dirtree", ...).
func (t ObjectType) String() string {
	switch t {
	case ObjFile:
		return "file"
	case ObjDirTree:
		return "dirtree"
	case ObjDirMeta:
		return "dirmeta"
	case ObjCommit:
		return "commit"
	case ObjTombstoneCommit:
		return "tombstone-commit"
	case ObjCommitMeta:
		return "commitmeta"
	case ObjPayloadLink:
		return "payload-link"
	}
	return fmt.Sprintf("objtype(%d)", int(t))
}

// ParseObjectType parses ostree's name of an object type.
func ParseObjectType(s string) (ObjectType, error) {
	for t := ObjFile; t <= ObjPayloadLink; t++ {
		if t.String() == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("invalid object type %q", s)
}

// ObjectName identifies an object: checksum and type.
type ObjectName struct {
	Checksum Checksum
	Type     ObjectType
}

// String returns "CHECKSUM.TYPE", as ostree prints object names.
func (n ObjectName) String() string { return n.Checksum.String() + "." + n.Type.String() }

// ParseObjectName parses "CHECKSUM.TYPE".
func ParseObjectName(s string) (ObjectName, error) {
	c, t, ok := strings.Cut(s, ".")
	if !ok {
		return ObjectName{}, fmt.Errorf("invalid object name %q: want CHECKSUM.TYPE", s)
	}
	sum, err := ParseChecksum(c)
	if err != nil {
		return ObjectName{}, err
	}
	typ, err := ParseObjectType(t)
	if err != nil {
		return ObjectName{}, err
	}
	return ObjectName{sum, typ}, nil
}

// extension returns the file name extension of an object in a repo of the
// given mode.
func (t ObjectType) extension(archive bool) string {
	if t == ObjFile && archive {
		return "filez"
	}
	return t.String()
}

// LoosePath returns the path of an object relative to the repository root,
// e.g. "objects/ab/cdef….commit". Content objects in archive repositories
// use the ".filez" extension.
func LoosePath(n ObjectName, mode RepoMode) string {
	s := n.Checksum.String()
	return "objects/" + s[:2] + "/" + s[2:] + "." + n.Type.extension(mode == ModeArchive)
}
