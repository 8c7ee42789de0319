// Package atomicfile is the one way gostree writes a file that must
// survive a crash: a temporary file in the destination directory is
// written and fsync'd, renamed over the destination, and the directory is
// fsync'd. A reader sees either the old file or the complete new one.
package atomicfile
