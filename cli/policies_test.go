package cli

import (
	"context"
	"strings"
	"testing"
)

// TestPoliciesFlag: --policies takes registered policy names, rejects an
// unknown one and an empty list with a usage error naming the accepted
// ones.
func TestPoliciesFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--policies", "nope", "--experiments", "registers"}, `run: --policies: unknown policy "nope" (accepted: changed, all`},
		{[]string{"run", "--policies", ",", "--experiments", "registers"}, `run: --policies "," names no policy`},
	} {
		code, _, stderr := invoke(t, context.Background(), tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if got, err := selectPolicies("all,changed"); err != nil || len(got) != 2 {
		t.Errorf("selectPolicies(all,changed) = %v, %v", got, err)
	}
}
