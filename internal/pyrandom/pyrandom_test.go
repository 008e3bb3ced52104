package pyrandom

import (
	"math"
	"slices"
	"testing"
)

// The expected values were printed by CPython 3.11's random module.

func TestUint32MatchesCPython(t *testing.T) {
	tests := []struct {
		seed int64
		want []uint32
	}{
		{12345, []uint32{1789368711, 3146859322, 43676229, 3522623596, 3544234957}},
		{0, []uint32{3626764237, 1654615998, 3255389356}},
		{1<<40 + 5, []uint32{2166296868, 2220160828, 1153647273}}, // a two-word key
		{1 << 53, []uint32{2975893306, 2115941521, 4292708235}},
		{-7, []uint32{1390851128, 4071050724}}, // seeds by the absolute value
		{7, []uint32{1390851128, 4071050724}},
	}
	for _, tt := range tests {
		r := New(tt.seed)
		got := make([]uint32, len(tt.want))
		for i := range got {
			got[i] = r.GetRandBits(32)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Random(%d).getrandbits(32) x%d = %v, CPython %v", tt.seed, len(tt.want), got, tt.want)
		}
	}
}

func TestSampleMatchesCPython(t *testing.T) {
	tests := []struct {
		name    string
		seed    int64
		n, k    int
		want    []int
		setPath bool
	}{
		{"KSWIN defaults, pool method", 42, 70, 30,
			[]int{14, 3, 35, 31, 28, 17, 13, 43, 47, 57, 34, 5, 37, 27, 2, 1, 58, 63, 69, 32, 38, 54, 67, 12, 45, 41, 59, 26, 51, 65}, false},
		{"whole population", 7, 5, 5, []int{2, 1, 3, 0, 4}, false},
		{"set method, k > 5", 7, 1000, 10, []int{331, 970, 154, 404, 666, 49, 74, 840, 548, 96}, true},
		{"set method, k <= 5", 3, 30, 5, []int{7, 18, 17, 4, 11}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSampler(tt.n, tt.k)
			if s.usePool == tt.setPath {
				t.Fatalf("pool method %v for n=%d k=%d, CPython's choice is %v", s.usePool, tt.n, tt.k, !tt.setPath)
			}
			r := New(tt.seed)
			got := make([]int, tt.k)
			s.Sample(r, got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Random(%d).sample(range(%d), %d) = %v, CPython %v", tt.seed, tt.n, tt.k, got, tt.want)
			}
			// A second draw from a fresh generator is the same: the
			// sampler keeps no state between draws.
			r = New(tt.seed)
			again := make([]int, tt.k)
			s.Sample(r, again)
			if !slices.Equal(again, tt.want) {
				t.Errorf("second draw %v, want %v", again, tt.want)
			}
		})
	}
}

func TestRandBelowMatchesCPython(t *testing.T) {
	r := New(1)
	var got []int
	for _, n := range []int{1, 2, 3, 7, 100, 1000} {
		got = append(got, r.RandBelow(n))
	}
	if want := []int{0, 0, 1, 0, 63, 779}; !slices.Equal(got, want) {
		t.Errorf("Random(1)._randbelow(...) = %v, CPython %v", got, want)
	}
}

func TestRandomAndGaussMatchCPython(t *testing.T) {
	r := New(42)
	if a, b := r.Random(), r.Random(); a != 0.6394267984578837 || b != 0.025010755222666936 {
		t.Errorf("Random(42).random() x2 = %v %v, CPython 0.6394267984578837 0.025010755222666936", a, b)
	}
	r = New(12345)
	want := []float64{-0.12380079558885389, 0.07152496347566478, 0.3833691943171596, -0.7499970608869415}
	for i, w := range want {
		// Go's libm may round a last bit differently from C's.
		if g := r.Gauss(0, 1); math.Abs(g-w) > 4e-16*math.Max(1, math.Abs(w)) {
			t.Errorf("Random(12345).gauss(0, 1) #%d = %v, CPython %v", i, g, w)
		}
	}
}

func TestSampleAllocatesNothing(t *testing.T) {
	s := NewSampler(70, 30)
	r := New(0)
	dst := make([]int, 30)
	if n := testing.AllocsPerRun(100, func() { s.Sample(r, dst) }); n != 0 {
		t.Errorf("Sample allocates %v times per draw", n)
	}
}
