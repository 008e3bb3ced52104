package lease

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
)

// assign maps every partition to one of members (instance names, at least
// one): rendezvous hashing with bounded loads. Partitions are placed in
// order, each on the member with the highest hash of (instance, partition)
// that still has room: partitions/len(members) each, and one more for the
// first partitions%len(members) members to fill up. Every member
// computes the same result from the same member set, the counts differ by
// at most one, and a member joining or leaving moves little more than its
// own share.
func assign(partitions int, members []string) []string {
	out := make([]string, partitions)
	if len(members) == 0 {
		return out
	}
	ms := append([]string(nil), members...)
	sort.Strings(ms)
	seeds := make([]uint64, len(ms))
	for i, m := range ms {
		seeds[i] = hashString(m)
	}
	// Each member takes q partitions, and r of them one more.
	q, r := partitions/len(ms), partitions%len(ms)
	load := make([]int, len(ms))
	full := 0 // members holding q+1
	for p := range partitions {
		best, bestScore := -1, uint64(0)
		for i := range ms {
			if load[i] > q || load[i] == q && full == r {
				continue
			}
			s := score(seeds[i], p)
			if best < 0 || s > bestScore {
				best, bestScore = i, s
			}
		}
		load[best]++
		if load[best] == q+1 {
			full++
		}
		out[p] = ms[best]
	}
	return out
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// score is the rendezvous weight of a member (by the hash of its name) for
// partition p: FNV-1a mixed with the splitmix64 finalizer, because FNV's
// low bits alone change little between neighbouring partitions.
func score(seed uint64, p int) uint64 {
	x := seed ^ (uint64(p)+1)*0x9e3779b97f4a7c15
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// sanitizeKey turns an instance name into a KV key: letters, digits, '-',
// '_' and '=' are kept, anything else (dots included, since a key's tokens
// are subject tokens) becomes '_'. A name that had to change gets its hash
// appended, so that "a.b" and "a_b" stay two keys.
func sanitizeKey(s string) string {
	var b strings.Builder
	changed := s == ""
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '=':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
			changed = true
		}
	}
	if changed {
		fmt.Fprintf(&b, "-%08x", uint32(hashString(s)))
	}
	return b.String()
}
