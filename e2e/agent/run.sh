#!/bin/bash
# e2e/agent/run.sh — the guest side of e2e/vm-agent-e2e.sh, run by the probe (vmtest-probe.service)
# from the config drive as vmtest/run.sh, its output on the serial console as "VMTEST| run.sh: ...".
#
# Without vmtest/want on the config drive: print the agent's state and return (the probe then
# powers off). With vmtest/want (a request key, "metadata:<commit>"): wait until the agent has
# finished that request (no job, last handled request = want), printing each phase it goes
# through; the agent may reboot the machine meanwhile (this script is then started again by the
# next boot's probe). Once finished, wait vmtest/settle seconds (the agent must stay idle: a
# blocked commit is not tried again), print `gostree-agent status` (text, then --json between
# BEGIN/END markers) and power off 2 s after the probe returned. After vmtest/wait seconds (default 900) without an outcome it
# prints the same and powers off anyway, so the host sees why.
cd=/run/config-drive/vmtest
want=$(cat "$cd/want" 2>/dev/null || true)
settle=$(cat "$cd/settle" 2>/dev/null || echo 0)
wait_max=$(cat "$cd/wait" 2>/dev/null || echo 900)

report() {
  echo "agent unit: $(systemctl is-active gostree-agent.service) healthcheck unit: $(systemctl is-active gostree-healthcheck.service)"
  gostree-agent status 2>&1
  echo "STATUS-JSON-BEGIN"
  gostree-agent status --json 2>&1
  echo "STATUS-JSON-END"
}

if [ -z "$want" ]; then
  # Give the agent a few polls to look at the metadata first.
  sleep "$settle"
  report
  exit 0
fi

done_want() { # the agent is idle and its last handled request is $want
  local s
  s=$(gostree-agent status 2>/dev/null) || return 1
  grep -q '^  Phase: *idle$' <<<"$s" && grep -q "^  Last: .* $want: " <<<"$s"
}
last_phase=
outcome=timeout
for ((i = 0; i < wait_max; i += 2)); do
  if done_want; then outcome=done; break; fi
  p=$(gostree-agent status 2>/dev/null | sed -n 's/^  Phase: *//p')
  if [ "$p" != "$last_phase" ]; then echo "agent phase=$p (t=$(cut -d' ' -f1 /proc/uptime))"; last_phase=$p; fi
  sleep 2
done
echo "agent outcome=$outcome for $want (t=$(cut -d' ' -f1 /proc/uptime))"
if [ "$outcome" = done ] && [ "$settle" -gt 0 ]; then
  sleep "$settle"
  echo "agent after ${settle} s: phase=$(gostree-agent status 2>/dev/null | sed -n 's/^  Phase: *//p')"
fi
report
sync
# Power off once the probe has returned (it prints "VMTEST end" after this script): a timer
# outside the probe's cgroup, which systemd empties when the probe ends.
systemd-run --quiet --on-active=2 --timer-property=AccuracySec=100ms /bin/systemctl poweroff ||
  systemctl poweroff --no-block
