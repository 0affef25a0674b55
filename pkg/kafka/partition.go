package kafka

import (
	"hash/crc32"
	"slices"

	"github.com/IBM/sarama"
)

// CandidatePartitions returns the partitions a key's records are likely on,
// for readers that must find a camera without having seen it: where
// sarama's hash partitioner (FNV-1a, streamd's own producer) puts it, and
// where Java clients and kafka-python (murmur2) put it. kcat's default
// (librdkafka's consistent_random, CRC32) is added too. seen, the
// partitions the key was actually consumed from, come first.
func CandidatePartitions(key string, numPartitions int32, seen []int32) []int32 {
	out := slices.Clone(seen)
	add := func(p int32) {
		if p >= 0 && p < numPartitions && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if numPartitions <= 0 {
		return out
	}
	if p, err := sarama.NewHashPartitioner("").Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, numPartitions); err == nil {
		add(p)
	}
	add(int32((murmur2([]byte(key)) & 0x7fffffff) % uint32(numPartitions)))
	add(int32(crc32IEEE([]byte(key)) % uint32(numPartitions)))
	return out
}

// murmur2 is Kafka's Java client key hash (Utils.murmur2).
func murmur2(data []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := length &^ 3
	switch length % 4 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
