package heatmeta

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

type sleepRecorder struct{ waits []time.Duration }

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.waits = append(s.waits, d)
	return ctx.Err()
}

func outcome() Outcome {
	return Outcome{StatusCode: 0, Stdout: "staged 3a1c5e0f\nbooted\n", Stderr: "",
		Outputs: map[string]any{"booted_commit": commitA, "previous_commit": strings.Repeat("0", 64)}}
}

func TestSignalTempURL(t *testing.T) {
	sw := newFakeSwift(t)
	rec := &sleepRecorder{}
	s := &Signaller{Sleep: rec.sleep}
	tgt := SignalTarget{Transport: TempURLSignal, URL: sw.url("signal-obj"), Verb: "PUT"}
	sw.failNext = []int{503, 502}
	if err := s.Send(ctx, tgt, outcome()); err != nil {
		t.Fatal(err)
	}
	if sw.puts != 1 || len(rec.waits) != 2 {
		t.Fatalf("puts %d waits %v", sw.puts, rec.waits)
	}
	// Jittered exponential backoff: [0.5 s, 1 s) then [1 s, 2 s).
	if rec.waits[0] < 500*time.Millisecond || rec.waits[0] >= time.Second || rec.waits[1] < time.Second || rec.waits[1] >= 2*time.Second {
		t.Errorf("waits %v", rec.waits)
	}
	var body map[string]any
	if err := json.Unmarshal(sw.objects["signal-obj"], &body); err != nil {
		t.Fatal(err)
	}
	if body["deploy_status_code"] != float64(0) || body["booted_commit"] != commitA || body["deploy_stdout"] != "staged 3a1c5e0f\nbooted\n" {
		t.Errorf("body %v", body)
	}
	if sw.lastHdr.Get("Content-Type") != "application/json" {
		t.Errorf("content type %q", sw.lastHdr.Get("Content-Type"))
	}

	// Permanent: an expired TempURL (401) is not retried; the error has
	// no signature.
	rec.waits = nil
	bad := tgt
	bad.URL = strings.Replace(tgt.URL, "0123456789abcdef", "fedcba9876543210", 1)
	err := s.Send(ctx, bad, outcome())
	if err == nil || IsRetryable(err) || len(rec.waits) != 0 || strings.Contains(err.Error(), "fedcba98") || !strings.Contains(err.Error(), "401") {
		t.Errorf("expired URL: %v (waits %v)", err, rec.waits)
	}
	// Giving up after Attempts.
	s.Attempts = 3
	sw.failNext = []int{500, 500, 500}
	err = s.Send(ctx, tgt, outcome())
	if err == nil || !IsRetryable(err) || !strings.Contains(err.Error(), "giving up after 3") || strings.Contains(err.Error(), "temp_url_sig") {
		t.Errorf("give up: %v", err)
	}
	// Unreachable: retryable, redacted, and the context stops the wait.
	sw.srv.Close()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err = (&Signaller{Attempts: 5}).Send(cctx, tgt, outcome())
	if err == nil || strings.Contains(err.Error(), "0123456789abcdef") {
		t.Errorf("unreachable: %v", err)
	}
}

func TestSignalCFN(t *testing.T) {
	var got []byte
	var method, query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, query = r.Method, r.URL.RawQuery
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(200)
	}))
	defer srv.Close()
	u := srv.URL + "/v1/signal/arn%3Aopenstack%3Aheat%3A%3Aproj%3Astacks%2Fs%2Fid%2Fresources%2Fdep?Timestamp=2026-11-25T08%3A00%3A00Z&SignatureMethod=HmacSHA256&AWSAccessKeyId=AK&SignatureVersion=2&Signature=c2lnbmF0dXJl"
	w, err := ParseWanted(dep("ostree", map[string]any{"ostree_commit": commitA, "deploy_signal_transport": "CFN_SIGNAL", "deploy_signal_id": u}))
	if err != nil || w.Deployments[0].Err != nil {
		t.Fatal(err, w.Deployments[0].Err)
	}
	o := Outcome{StatusCode: 1, Stderr: "health check sshd.service failed", Outputs: map[string]any{"result": "rolled back"}}
	if err := (&Signaller{}).Send(ctx, w.Deployments[0].Signal, o); err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	json.Unmarshal(got, &body)
	if method != "POST" || !strings.Contains(query, "Signature=c2lnbmF0dXJl") || body["deploy_status_code"] != float64(1) || body["result"] != "rolled back" {
		t.Errorf("%s %s %v", method, query, body)
	}
}

func TestSignalHeat(t *testing.T) {
	fc := newFakeCloud(t)
	// Heat passes deploy_username and deploy_user_id; the id is used.
	tgt := SignalTarget{Transport: HeatSignal, AuthURL: fc.authURL(), UserID: fc.userID, Username: "stack-user", Password: fc.password,
		ProjectID: fc.projectID, StackID: fc.stack, ResourceName: fc.resource}
	rec := &sleepRecorder{}
	fc.failNext = []int{503}
	if err := (&Signaller{Sleep: rec.sleep}).Send(ctx, tgt, outcome()); err != nil {
		t.Fatal(err)
	}
	if len(fc.signals) != 1 || len(rec.waits) != 1 {
		t.Fatalf("signals %d waits %v", len(fc.signals), rec.waits)
	}
	var body map[string]any
	json.Unmarshal(fc.signals[0], &body)
	if body["previous_commit"] != strings.Repeat("0", 64) || body["deploy_status_code"] != float64(0) {
		t.Errorf("body %v", body)
	}
	bad := tgt
	bad.Password = "not-the-password-42"
	err := (&Signaller{Sleep: rec.sleep}).Send(ctx, bad, outcome())
	if err == nil || IsRetryable(err) || strings.Contains(err.Error(), "not-the-password-42") || !strings.Contains(err.Error(), "401") {
		t.Errorf("bad password: %v", err)
	}
	if s := bad.String() + bad.GoString(); strings.Contains(s, "not-the-password-42") {
		t.Errorf("printed password: %s", s)
	}
}

func TestSignalNoneAndZaqar(t *testing.T) {
	if err := (&Signaller{}).Send(ctx, SignalTarget{Transport: NoSignal}, outcome()); err != nil {
		t.Fatal(err)
	}
	err := (&Signaller{}).Send(ctx, SignalTarget{Transport: ZaqarSignal, QueueID: "q"}, outcome())
	if err == nil || IsRetryable(err) || !strings.Contains(err.Error(), "Zaqar") {
		t.Fatalf("zaqar: %v", err)
	}
}

func TestEncodeOutcomeTrims(t *testing.T) {
	line := "pulling objects ü 1234567890 <&>\n"
	big := strings.Repeat(line, 3<<20/len(line)) + "LAST STDOUT LINE\n"
	errs := strings.Repeat("e€", 400000) + "LAST STDERR LINE\n"
	o := Outcome{StatusCode: 2, Stdout: big, Stderr: errs, Outputs: map[string]any{"booted_commit": commitA}}
	b, err := EncodeOutcome(o, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxSignalBytes || len(b) < MaxSignalBytes*9/10 {
		t.Fatalf("body %d bytes, want just below %d", len(b), MaxSignalBytes)
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	so, se := body["deploy_stdout"].(string), body["deploy_stderr"].(string)
	if !strings.HasSuffix(so, "LAST STDOUT LINE\n") || !strings.HasSuffix(se, "LAST STDERR LINE\n") ||
		!strings.HasPrefix(so, trimMarker) || !strings.HasPrefix(se, trimMarker) || !utf8.ValidString(so) || !utf8.ValidString(se) {
		t.Errorf("trimmed wrong: stdout %q… stderr %q…", so[:40], se[:40])
	}
	if body["booted_commit"] != commitA || body["deploy_status_code"] != float64(2) {
		t.Errorf("outputs lost: %v", body["booted_commit"])
	}
	// Small bodies are untouched; tiny limits still hold.
	small, _ := EncodeOutcome(outcome(), 0)
	if strings.Contains(string(small), trimMarker) {
		t.Error("small body trimmed")
	}
	for _, max := range []int{300, 1000, 5000} {
		b, err := EncodeOutcome(o, max)
		if err != nil || len(b) > max || !json.Valid(b) {
			t.Errorf("max %d: %d bytes, %v", max, len(b), err)
		}
	}
	if _, err := EncodeOutcome(Outcome{Outputs: map[string]any{"x": strings.Repeat("y", 2000)}}, 1000); err == nil {
		t.Error("oversized outputs accepted")
	}
	if _, err := EncodeOutcome(Outcome{Outputs: map[string]any{"deploy_status_code": 0}}, 0); err == nil {
		t.Error("reserved output name accepted")
	}
}
