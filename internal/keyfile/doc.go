// Package keyfile reads and writes GLib key files (the INI dialect of
// ostree's repo config, origin files and remotes.d), keeping comments,
// group order and key order so that a file edited by gostree stays
// readable by ostree and by people.
package keyfile
