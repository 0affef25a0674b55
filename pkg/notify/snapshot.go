package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"

	"github.com/streamd/streamd/pkg/events"
	"github.com/streamd/streamd/pkg/kafka"
)

// snapshotWait bounds the search for a snapshot: the analyzer publishes it
// just before the event that names it, on another topic, so it may land a
// moment after the event is read.
const snapshotWait = 5 * time.Second

// snapshotScan is how many records of a partition are looked at from the
// snapshot's capture time on: other cameras' snapshots of the same moment.
const snapshotScan = 64

// findSnapshot reads e's snapshot (the snapshots topic's record keyed by
// its id, stamped with its frame's capture time). Nothing is kept in
// memory: the record is found from its time in every partition, so a
// notifier that starts late still finds old events' snapshots.
func findSnapshot(ctx context.Context, client sarama.Client, topic string, e events.Event) ([]byte, error) {
	deadline := time.Now().Add(snapshotWait)
	for {
		jpeg, err := scanSnapshot(client, topic, e)
		if err == nil || time.Now().After(deadline) {
			return jpeg, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

var errNoSnapshot = errors.New("no snapshot record")

func scanSnapshot(client sarama.Client, topic string, e events.Event) ([]byte, error) {
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("snapshot of event %s: %w", e.ID, err)
	}
	// The analysis keys a snapshot by its event id: the partitions that
	// key hashes to first, then the others (a producer with another
	// partitioner).
	order := kafka.CandidatePartitions(e.ID, int32(len(parts)), nil)
	for _, p := range parts {
		if !slices.Contains(order, p) {
			order = append(order, p)
		}
	}
	for _, p := range order {
		from, err := kafka.OffsetAt(client, topic, p, e.Frame.CapturedAt)
		if err != nil {
			return nil, fmt.Errorf("snapshot of event %s: %w", e.ID, err)
		}
		var found []byte
		err = kafka.Scan(client, topic, p, from, snapshotScan, snapshotWait, func(r kafka.Record) bool {
			if string(r.Key) == e.ID {
				found = r.Value
				return false
			}
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("snapshot of event %s: %w", e.ID, err)
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, fmt.Errorf("snapshot of event %s: %w", e.ID, errNoSnapshot)
}
