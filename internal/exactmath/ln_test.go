package exactmath

import (
	"math"
	"testing"
)

func TestLn(t *testing.T) {
	// x and the C library's log(x) as Python prints them with float.hex(),
	// for the default confidences and for some where Go's math.Log is one
	// ulp off.
	tests := []struct{ x, want float64 }{
		{0x1.f400000000000p+9, 0x1.ba18a998fffa0p+2},  // 1/0.001
		{0x1.9000000000000p+7, 0x1.5317a1b949c53p+2},  // 1/0.005
		{0x1.f400000000000p+10, 0x1.e6752f96f46dep+2}, // 2/0.001
		{0x1.9000000000000p+8, 0x1.7f7427b73e391p+2},  // 2/0.005
		{0x1.3880000000000p+13, 0x1.26bb1bbb55516p+3}, // 1/0.0001
		{0x1.4000000000000p+4, 0x1.7f7427b73e391p+1},  // 1/0.05
		{0x1.5555555555555p+0, 0x1.269621134db91p-2},  // 1/0.75
		{0x1.50d79435e50d8p+2, 0x1.a925ae2cbedfdp+0},  // 1/0.19
		{0x1.50d79435e50d8p+3, 0x1.2d4be3124857bp+1},  // 1/0.095
		{0x1.6524924924925p+8, 0x1.783360c1f8519p+2},  // 1/0.0028
		{1, 0},
		{2, math.Ln2},
		{0.5, -math.Ln2},
	}
	for _, tt := range tests {
		if got := Ln(tt.x); got != tt.want {
			t.Errorf("Ln(%v) = %v, want %v", tt.x, got, tt.want)
		}
	}
}
