package adwin

import "math"

// riverADWIN is a direct transcription of River 0.26's river/drift/adwin.py
// and of the AdaptiveWindowing helper it wraps (rust_src/adwin.rs, the port
// of the former river/drift/adwin_c.pyx), statement by statement and with
// River's names, written apart from window to check it on streams River
// never saw. The float64 conversions keep Go from fusing a multiply-add that
// River's code does not fuse.
type riverADWIN struct {
	delta             float64
	clock             int32
	max_buckets       int
	min_window_length int32
	grace_period      int32

	_drift_detected bool
	_helper         *riverAdaptiveWindowing
}

func newRiverADWIN(delta float64, clock int32, max_buckets int, min_window_length, grace_period int32) *riverADWIN {
	r := &riverADWIN{
		delta: delta, clock: clock, max_buckets: max_buckets,
		min_window_length: min_window_length, grace_period: grace_period,
	}
	r._reset()
	return r
}

func (r *riverADWIN) _reset() {
	r._drift_detected = false
	r._helper = newRiverAdaptiveWindowing(r.delta, r.clock, r.max_buckets, r.min_window_length, r.grace_period)
}

func (r *riverADWIN) update(x float64) {
	if r._drift_detected {
		r._reset()
	}
	r._drift_detected = r._helper.update(x)
}

type riverBucket struct {
	max_size    int
	current_idx int
	totals      []float64
	variances   []float64
}

func newRiverBucket(max_size int) *riverBucket {
	cap_ := max_size + 1
	return &riverBucket{max_size: max_size, totals: make([]float64, cap_), variances: make([]float64, cap_)}
}

func (b *riverBucket) insert_data(value, variance float64) {
	b.totals[b.current_idx] = value
	b.variances[b.current_idx] = variance
	b.current_idx++
}

func (b *riverBucket) compress(n_elements int) {
	remaining := b.current_idx - n_elements
	if remaining > 0 {
		copy(b.totals[0:], b.totals[n_elements:b.current_idx])
		copy(b.variances[0:], b.variances[n_elements:b.current_idx])
	}
	for i := remaining; i < b.current_idx; i++ {
		b.totals[i] = 0.0
		b.variances[i] = 0.0
	}
	b.current_idx -= n_elements
}

func (b *riverBucket) remove()                       { b.compress(1) }
func (b *riverBucket) total_at(index int) float64    { return b.totals[index] }
func (b *riverBucket) variance_at(index int) float64 { return b.variances[index] }

type riverAdaptiveWindowing struct {
	delta             float64
	clock             int32
	max_buckets       int
	min_window_length float64
	grace_period      float64

	total       float64
	variance    float64
	width       float64
	total_width float64

	n_buckets     int32
	max_n_buckets int32
	tick          int32
	n_detections  int32

	bucket_list []*riverBucket
}

func newRiverAdaptiveWindowing(delta float64, clock int32, max_buckets int, min_window_length, grace_period int32) *riverAdaptiveWindowing {
	return &riverAdaptiveWindowing{
		delta: delta, clock: clock, max_buckets: max_buckets,
		min_window_length: float64(min_window_length), grace_period: float64(grace_period),
		bucket_list: []*riverBucket{newRiverBucket(max_buckets)},
	}
}

func (a *riverAdaptiveWindowing) update(value float64) bool {
	a.insert_element(value, 0.0)
	return a.detect_change()
}

func (a *riverAdaptiveWindowing) insert_element(value, variance float64) {
	a.bucket_list[0].insert_data(value, variance)
	a.n_buckets++
	if a.n_buckets > a.max_n_buckets {
		a.max_n_buckets = a.n_buckets
	}
	a.width += 1.0
	incremental_variance := 0.0
	if a.width > 1.0 {
		delta_v := value - a.total/(a.width-1.0)
		incremental_variance = (a.width - 1.0) * delta_v * delta_v / a.width
	}
	a.variance += incremental_variance
	a.total += value
	a.compress_buckets()
}

func (a *riverAdaptiveWindowing) delete_element() float64 {
	last := len(a.bucket_list) - 1
	n := float64(uint64(1) << last)
	bucket := a.bucket_list[last]
	u, v := bucket.total_at(0), bucket.variance_at(0)
	mu := u / n

	a.width -= n
	a.total -= u
	mu_window := a.total / a.width
	inc := v + n*a.width*(mu-mu_window)*(mu-mu_window)/(n+a.width)
	a.variance -= inc

	a.bucket_list[last].remove()
	a.n_buckets--
	if a.bucket_list[last].current_idx == 0 {
		a.bucket_list = a.bucket_list[:last]
	}
	return n
}

func (a *riverAdaptiveWindowing) compress_buckets() {
	idx := 0
	for {
		k := a.bucket_list[idx].current_idx
		if k != a.max_buckets+1 {
			break
		}
		n1 := float64(uint64(1) << idx)
		t0, t1 := a.bucket_list[idx].total_at(0), a.bucket_list[idx].total_at(1)
		v0, v1 := a.bucket_list[idx].variance_at(0), a.bucket_list[idx].variance_at(1)
		mu1 := t0 / n1
		mu2 := t1 / n1
		total12 := t0 + t1
		temp := float64(n1 * 0.5 * (mu1 - mu2) * (mu1 - mu2))
		v12 := v0 + v1 + temp

		if idx+1 >= len(a.bucket_list) {
			a.bucket_list = append(a.bucket_list, newRiverBucket(a.max_buckets))
		}
		a.bucket_list[idx+1].insert_data(total12, v12)
		a.n_buckets++
		a.bucket_list[idx].compress(2)

		if a.bucket_list[idx+1].current_idx <= a.max_buckets {
			break
		}
		idx++
	}
}

func (a *riverAdaptiveWindowing) detect_change() bool {
	change_detected := false
	a.tick++

	if (a.tick%a.clock == 0) && (a.width > a.grace_period) {
		reduce_width := true
		for reduce_width {
			reduce_width = false
			exit_flag := false
			n0 := 0.0
			n1 := a.width
			u0 := 0.0
			u1 := a.total

			deque_len := len(a.bucket_list)
		outer:
			for idx := deque_len - 1; idx >= 0; idx-- {
				if exit_flag {
					break
				}
				bucket_size := float64(uint64(1) << idx)
				bucket_current_idx := a.bucket_list[idx].current_idx
				for k := 0; k < bucket_current_idx; k++ {
					n0 += bucket_size
					n1 -= bucket_size
					total_at := a.bucket_list[idx].total_at(k)
					u0 += total_at
					u1 -= total_at

					if idx == 0 && k == bucket_current_idx-1 {
						exit_flag = true
						break
					}

					delta_mean := (u0 / n0) - (u1 / n1)
					if n1 >= a.min_window_length && n0 >= a.min_window_length && a.evaluate_cut(n0, n1, delta_mean, a.delta) {
						reduce_width = true
						change_detected = true
						if a.width > 0.0 {
							a.delete_element()
							break outer
						}
					}
				}
			}
		}
	}

	a.total_width += a.width
	if change_detected {
		a.n_detections++
	}
	return change_detected
}

func (a *riverAdaptiveWindowing) evaluate_cut(n0, n1, delta_mean, delta float64) bool {
	delta_prime := math.Log(2.0 * math.Log(a.width) / delta)
	m_recip := 1.0/(n0-a.min_window_length+1.0) + 1.0/(n1-a.min_window_length+1.0)
	epsilon := math.Sqrt(2.0*m_recip*(a.variance/a.width)*delta_prime) + float64(2.0/3.0*delta_prime*m_recip)
	return math.Abs(delta_mean) > epsilon
}
