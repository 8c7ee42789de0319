package ostree

import "fmt"

// RepoMode is a repository storage mode.
type RepoMode int

// Repository modes.
const (
	ModeBare RepoMode = iota
	ModeArchive
	ModeBareUser
	ModeBareUserOnly
)

// String returns the mode as written in the repo config ("archive-z2" for
// archive).
func (m RepoMode) String() string {
	switch m {
	case ModeBare:
		return "bare"
	case ModeArchive:
		return "archive-z2"
	case ModeBareUser:
		return "bare-user"
	case ModeBareUserOnly:
		return "bare-user-only"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// ParseRepoMode parses a mode name; "archive" and "archive-z2" are the same.
func ParseRepoMode(s string) (RepoMode, error) {
	switch s {
	case "bare":
		return ModeBare, nil
	case "archive", "archive-z2":
		return ModeArchive, nil
	case "bare-user":
		return ModeBareUser, nil
	case "bare-user-only":
		return ModeBareUserOnly, nil
	case "bare-split-xattrs":
		return 0, fmt.Errorf("repository mode %q is not supported by gostree", s)
	}
	return 0, fmt.Errorf("invalid repository mode %q (want bare, bare-user, bare-user-only or archive)", s)
}
