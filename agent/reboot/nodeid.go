package reboot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// AppID is gostree-agent's systemd application id (as in
// sd_id128_get_machine_app_specific(3)): NodeID derives the FleetLock
// client id from the machine id with it.
const AppID = "9143fd2d43334c24896858becd04ef4a"

// NodeID returns the default FleetLock client id of a machine: the
// app-specific id that systemd's sd_id128_get_machine_app_specific
// computes for AppID (HMAC-SHA256 keyed with the 16 machine-id bytes over
// the 16 AppID bytes, first 16 bytes, marked as a version 4 UUID), as 32
// lowercase hex digits. This is what Zincati does with its own app id: the
// lock server sees a stable id per node that cannot be turned back into
// the machine id (which machine-id(5) asks not to expose). machineID is the
// content of /etc/machine-id (32 hex digits, surrounding space ignored).
func NodeID(machineID string) (string, error) {
	base, err := parseID128(strings.TrimSpace(machineID))
	if err != nil {
		return "", fmt.Errorf("machine id: %w", err)
	}
	app, err := parseID128(AppID)
	if err != nil {
		panic(err)
	}
	id := appSpecificID(base, app)
	return hex.EncodeToString(id[:]), nil
}

func readNodeID(path string) (string, error) {
	if path == "" {
		path = DefaultMachineIDFile
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("fleet_lock needs a node id: %w (set the node id in the configuration)", err)
	}
	id, err := NodeID(string(b))
	if err != nil {
		return "", fmt.Errorf("fleet_lock needs a node id: %s: %w", path, err)
	}
	return id, nil
}

func parseID128(s string) ([16]byte, error) {
	var id [16]byte
	if s == "uninitialized" {
		return id, errors.New("\"uninitialized\" (first boot not complete)")
	}
	if len(s) != 32 {
		return id, fmt.Errorf("%q is not 32 hex digits", clip(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("%q is not 32 hex digits", clip(s))
	}
	if id == [16]byte{} {
		return id, errors.New("all zeros")
	}
	return id, nil
}

// appSpecificID is systemd's sd_id128_get_app_specific(base, app).
func appSpecificID(base, app [16]byte) [16]byte {
	m := hmac.New(sha256.New, base[:])
	m.Write(app[:])
	var id [16]byte
	copy(id[:], m.Sum(nil))
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}
