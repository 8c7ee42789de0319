// Package heatmeta is the agent's input and output towards OpenStack
// Heat: where metadata comes from, what a stack asks for, and how the
// result goes back. It keeps os-collect-config's and heat-config's data
// model (not their code).
//
// # Sources
//
// A Source fetches metadata documents (JSON objects). Each
// os-collect-config collector is one implementation:
//
//	heat_local    HeatLocalSource    /var/lib/heat-cfntools/cfn-init-data (first-boot copy, the bootstrap)
//	config_drive  ConfigDriveSource  a mounted config-2 drive: cfn-init-data from user_data, "gostree" server metadata
//	ec2           EC2Source          http://169.254.169.254/latest/meta-data (config drive first; immutable once cached)
//	cfn           CFNSource          Heat CFN API DescribeStackResource, EC2 signature v2 (POLL_SERVER_CFN)
//	heat          HeatSource         Heat API resource metadata, stack user's Keystone credentials (POLL_SERVER_HEAT)
//	request       RequestSource      a URL, in practice a Swift TempURL; conditional GET (POLL_TEMP_URL)
//	local         LocalSource        /var/lib/os-collect-config/local-data/* (one document per file)
//
// Fetch returns ErrNotModified when the server said so (304), an error
// wrapping ErrNotConfigured when settings are missing, or another error;
// IsRetryable sorts errors into transient and permanent. Errors never
// contain a TempURL signature, a password or a token (RedactURL).
//
// # Collector and cache
//
// A Collector polls the sources in the configured order (Config;
// DefaultCollectors). A failing source never blocks the others: its error
// is in Collection.Errors and its last cached documents stand in for it
// (Collection.Stale). Documents are deep-merged in order, as
// os-apply-config does (Merge): later sources override earlier ones, and
// a list such as "deployments" comes whole from the last document that
// has it.
//
// The metadata's "os-collect-config" key moves the agent to another
// transport, as Heat does when it switches a server from its bootstrap
// settings to POLL_TEMP_URL or POLL_SERVER_HEAT: only "collectors" and the
// heat, request and cfn connection settings are applied (ApplyTransport);
// other keys (command, cachedir, ...) are ignored and reported, and the
// ec2 service cannot change the transport. The settings live in the cached
// documents, so they survive restarts.
//
// The Cache keeps, per document key, the latest value (<key>.json), the
// first one ever seen (.orig) and the last applied one (.last), each
// written atomically with mode 0600 in a 0700 directory. A document is
// "changed" when it differs (as JSON) from .last; Collector.Commit, called
// once the agent acted on a Collection successfully, writes .last. A
// failed apply is therefore seen as changed again at the next poll.
//
// # What a stack asks for
//
// ParseWanted (or Collection.Wanted) reads the merged document:
//
//   - every item of "deployments" with group "ostree" (items of other
//     groups are ignored) becomes a DeploymentRequest: its inputs as a
//     typed Desired (ostree_commit required and exact, ostree_ref,
//     ostree_version, one of glance_image_id / swift_container (+
//     swift_prefix) / ostree_repo_url, reboot_policy with reboot_window,
//     reboot_time_zone, fleet_lock_url, fleet_lock_group, allow_downgrade)
//     and its deploy_* inputs as a SignalTarget. A bad input gives an
//     *InputError naming the deployment and the input, with the
//     SignalTarget still filled in so the failure can be reported;
//   - the top-level "gostree" key (an object with the same fields, or a
//     string holding one, as in Nova server metadata) is the
//     fire-and-forget request: nobody waits for a signal.
//
// # Signalling
//
// Signaller.Send reports an Outcome (deploy_status_code, deploy_stdout,
// deploy_stderr and outputs such as booted_commit/previous_commit) the
// way heat-config-notify does: TEMP_URL_SIGNAL (PUT to a Swift TempURL),
// CFN_SIGNAL (POST to a presigned URL), HEAT_SIGNAL (Keystone, then POST
// .../resources/{name}/signal), or nothing for NO_SIGNAL. The body stays
// below MaxSignalBytes by cutting the start of stdout/stderr (the tail is
// kept). Retryable failures are retried with jittered exponential
// backoff.
//
// # Differences from os-collect-config, on purpose
//
//   - A source that fails keeps contributing its last cached documents
//     (os-collect-config drops it for that run), so an unreachable Heat
//     does not make a deployment vanish from the merged view.
//   - Sources live between polls: the request source's conditional GET
//     (If-None-Match with the previous ETag; If-Modified-Since only
//     without one, because Swift applies both and Last-Modified has
//     one-second granularity) makes a steady-state poll one request
//     answered 304, and the heat source keeps its token.
//   - A transport change is followed within the same Collect (no
//     re-exec), and the bootstrap documents stay the lowest layer of the
//     transport settings.
//   - Deployments are not exploded into per-deployment cache keys: the
//     agent reads the ostree group itself; os-apply-config is not run.
//   - ec2 is not a default source; config_drive is a source of its own.
//
// The package logs nothing; callers log Collection.Errors, Ignored and
// the errors returned.
package heatmeta
