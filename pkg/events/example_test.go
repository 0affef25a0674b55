package events_test

import (
	"context"
	"fmt"
	"time"

	"github.com/streamd/streamd/pkg/events"
)

// A person walks through the scene for two seconds at 10 fps, coming closer;
// the detector misses every fifth frame. The tracker makes one event of it,
// and its end refers to the frame where the person looked biggest.
func ExampleTracker() {
	tr := events.NewTracker("lobby", events.TrackerOptions{})
	t0 := time.Date(2026, 11, 6, 10, 0, 0, 0, time.UTC)
	for i := range 150 { // 15 s of frames
		d := events.Detection{At: t0.Add(time.Duration(i) * 100 * time.Millisecond), Frame: events.FrameRef{Seq: uint64(i)}}
		if i < 20 && i%5 != 4 {
			d.Motion = []events.Box{{X: float64(i) / 25, Y: 0.3, W: 0.1, H: 0.2 + float64(i)/100}}
		}
		for _, e := range tr.Observe(d) {
			fmt.Printf("+%v %s %s: frame %d, boxes %v\n", e.Updated.Sub(t0), e.Type, e.Phase, e.Frame.Seq, e.Boxes)
		}
	}
	// Output:
	// +100ms motion start: frame 1, boxes [{0.04 0.3 0.1 0.21}]
	// +1.1s motion update: frame 11, boxes [{0.44 0.3 0.1 0.31}]
	// +11.8s motion end: frame 18, boxes [{0.72 0.3 0.1 0.38}]
}

// A web node applies records from Kafka and streams changes to a browser
// that reconnects with the Last-Event-ID it saw.
func ExampleStore_Subscribe() {
	s := events.NewStore(events.StoreOptions{})
	now := time.Now().UTC()
	e := events.Event{ID: events.NewID(now), Camera: "lobby", Type: events.TypeMotion, Phase: events.PhaseStart, Start: now, Updated: now}
	s.Apply(e)
	lastEventID := s.Seq() // the browser saw the start, then lost its connection

	e.Phase, e.Updated = events.PhaseUpdate, now.Add(time.Second)
	s.Apply(e)

	sub := s.Subscribe(lastEventID)
	defer sub.Close()
	c, _ := sub.Next(context.Background())
	fmt.Println(sub.Filled(), c.Seq == lastEventID+1, c.Event.Phase)
	// Output: true true update
}
