package otlphttp

import (
	"bytes"
	"errors"
	"testing"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzPartialSuccess feeds collector answers (untrusted bytes) to
// partialSuccess: it never panics, and for every well-formed
// ExportTraceServiceResponse in canonical form it reads what the
// protobuf library reads.
func FuzzPartialSuccess(f *testing.F) {
	for _, m := range []*collectorpb.ExportTraceServiceResponse{
		{},
		{PartialSuccess: &collectorpb.ExportTracePartialSuccess{}},
		{PartialSuccess: &collectorpb.ExportTracePartialSuccess{RejectedSpans: 3, ErrorMessage: "too old"}},
		{PartialSuccess: &collectorpb.ExportTracePartialSuccess{ErrorMessage: "warning only"}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0xff})
	f.Add([]byte{0x0a, 0x02, 0x08})
	f.Fuzz(func(t *testing.T, b []byte) {
		err := partialSuccess(b)
		var want collectorpb.ExportTraceServiceResponse
		if proto.Unmarshal(b, &want) != nil {
			return // malformed: any answer but a panic will do
		}
		if again, err := (proto.MarshalOptions{Deterministic: true}).Marshal(&want); err != nil || !bytes.Equal(again, b) {
			return // repeated or reordered fields: the library merges them, partialSuccess keeps the last
		}
		ps := want.GetPartialSuccess()
		var got *PartialSuccessError
		switch {
		case ps.GetRejectedSpans() == 0 && ps.GetErrorMessage() == "":
			if err != nil {
				t.Errorf("partialSuccess(%x) = %v, want nil", b, err)
			}
		case !errors.As(err, &got) || got.Rejected != ps.GetRejectedSpans() || got.Message != ps.GetErrorMessage():
			t.Errorf("partialSuccess(%x) = %v, want %d rejected, %q", b, err, ps.GetRejectedSpans(), ps.GetErrorMessage())
		}
	})
}
