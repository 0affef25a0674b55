package kafka

import (
	"slices"
	"testing"
)

// The murmur2 values are kafka-python's (kafka.partitioner.default.murmur2),
// which match the Java client's.
func TestMurmur2MatchesKafkaClients(t *testing.T) {
	for key, want := range map[string]uint32{"lobby": 1641952590, "pattern": 132488383, "vtest": 685058798, "a": 584102524, "abcde": 461995741} {
		if got := murmur2([]byte(key)) & 0x7fffffff; got != want {
			t.Errorf("murmur2(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestCandidatePartitions(t *testing.T) {
	got := CandidatePartitions("lobby", 8, []int32{5})
	if got[0] != 5 || !slices.Contains(got, int32(1641952590%8)) || len(got) > 4 {
		t.Fatalf("candidates %v", got)
	}
	for _, p := range got {
		if p < 0 || p >= 8 {
			t.Fatalf("partition %d out of range", p)
		}
	}
}
