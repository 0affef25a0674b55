// Package metrics exposes streamd's Prometheus metrics. The hot path touches
// it through one hook (a per-viewer latency observer, resolved once per
// stream); every counter is read at scrape time from a Snapshot that the app
// assembles from its components, so no other package depends on this one.
package metrics

import (
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Snapshot is the state of the process at one scrape.
type Snapshot struct {
	Cameras  []Camera
	Producer *Producer // nil unless this process produces
	Consumer *Consumer // nil unless this process consumes
	Analyzer *Analyzer // nil unless this process analyzes
	Events   *Events   // nil unless this process serves events
	Reviews  *Reviews  // nil unless this process serves the review marks
	Recorder *Recorder // nil unless this process records
	Storage  []Storage // what the recording holds, per camera and tier (web nodes)
	// HTTPConnections is the client connections open now.
	HTTPConnections int64
	// Notify is each notification target's counters (notifier only).
	Notify []NotifyTarget
}

// NotifyTarget is one notification target's counters.
type NotifyTarget struct {
	Target    string // "webhook.<name>" or "mqtt"
	Delivered uint64 // messages delivered (MQTT: every publish acknowledged)
	Retried   uint64 // failed tries that were tried again
	Failed    uint64 // messages given up: refused for good, or out of tries
	Invalid   uint64 // records of the events topic that are not events
	// Dropped counts event changes the rules kept from the target, by
	// reason (rule, phase, cooldown, quiet_hours).
	Dropped map[string]uint64
	Up      float64 // 1 while the target delivers (MQTT: connected), else 0
	// Behind is how old the change being delivered is, seconds (0 when
	// the target is idle): a target that falls behind shows it here.
	Behind           float64
	SnapshotsMissing uint64 // MQTT: snapshots of new events not found
}

// Recorder is the recorder's counters.
type Recorder struct {
	FullBytes, ReducedBytes   int64  // record value bytes written, per tier
	FullFrames, ReducedFrames uint64 // frames written, per tier
	Chunks                    uint64 // full-tier records written
	Errors                    uint64 // failed writes (retried) and chunks that could not be encoded
	Invalid                   uint64 // frames topic records that are not frames
	Cameras                   []RecorderCamera
}

// RecorderCamera is the recorder's position on one camera.
type RecorderCamera struct {
	ID   string
	Lag  float64 // seconds from the capture time recorded up to, to now
	Lost uint64  // frames never recorded: removed by retention before the recorder read them
}

// Storage is what the recording holds of one camera in one tier.
type Storage struct {
	Camera, Tier string
	Bytes        int64   // held on the brokers (per replica)
	OldestAge    float64 // seconds from the oldest frame held to now
	BytesPerHour float64 // measured over what is held
}

// Analyzer is the analyzer's process-wide counters.
type Analyzer struct {
	Invalid            uint64 // records skipped: not a decodable image
	CameraLimitDropped uint64 // frames of cameras over the analyzer's camera limit
	ObjectErrors       uint64 // object detections that failed for the detector's own reasons
}

// Events is a viewer node's store of events.
type Events struct {
	Held, Active uint64
	Invalid      uint64 // records of the events topic that are not events
}

// Reviews is a viewer node's review marks.
type Reviews struct {
	Marks   uint64 // held now
	Invalid uint64 // records of the marks topic that are not marks
	Errors  uint64 // follows of the marks topic that failed (and were restarted)
}

// Camera returns the counters of camera id, adding them if the snapshot
// has none yet. Use the pointer at once: a later call may move it.
func (s *Snapshot) Camera(id string) *Camera {
	for i := range s.Cameras {
		if s.Cameras[i].ID == id {
			return &s.Cameras[i]
		}
	}
	s.Cameras = append(s.Cameras, Camera{ID: id})
	return &s.Cameras[len(s.Cameras)-1]
}

// Camera is one camera's counters. Producer-side fields are zero in a
// consumer, consumer-side fields zero in a producer.
type Camera struct {
	ID string
	// producer side
	Captured       uint64
	Published      uint64
	PublishDropped uint64  // refused by the producer: too large, backlog full
	EncodeSeconds  float64 // total JPEG encode time
	// consumer side
	Consumed          uint64
	ConsumedBytes     uint64
	SlowViewerDropped uint64 // frames skipped by slow viewers (summed over viewers)
	Viewers           int64
	// analyzer side
	Analyzed        uint64
	AnalysisSkipped uint64  // skipped to stay live: over the rate cap or older than max_lag
	DecodeSeconds   float64 // total time decoding for analysis
	MotionSeconds   float64 // total time detecting motion
	FaceSeconds     float64 // total time detecting faces
	AnalysisLag     float64 // now − capture time of the last analyzed frame, seconds
	MotionEvents    uint64  // events started
	FaceEvents      uint64
	FaceDetections  uint64 // faces found (summed over frames)
	// object detection
	ObjectSeconds    float64 // total time detecting objects
	ObjectEvents     uint64  // object events started
	ObjectDetections uint64  // objects found, before tracking (summed over frames)
	ObjectRuns       uint64  // inferences run
	ObjectsBusy      uint64  // detections skipped: every detector busy
}

// Producer is the Kafka producer's counters.
type Producer struct {
	Sent, Failed, TooLarge, Backlog uint64
}

// Consumer is the Kafka consumer's counters.
type Consumer struct {
	Consumed, Invalid, Errors uint64
	CameraLimitDropped        uint64
}

// Metrics owns a registry with streamd's metrics.
type Metrics struct {
	reg     *prometheus.Registry
	latency *prometheus.HistogramVec
}

// New returns a registry with build info, Go and process metrics, the
// capture→serve latency histogram, and the counters read from snapshot at
// every scrape.
func New(version string, snapshot func() Snapshot) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "streamd_build_info",
		Help:        "Build information; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	build.Set(1)
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "streamd_frame_latency_seconds",
		Help:    "Capture to serve latency of frames written to viewers.",
		Buckets: []float64{.002, .005, .01, .015, .02, .03, .04, .05, .075, .1, .15, .25, .5, 1, 2.5},
	}, []string{"camera"})
	reg.MustRegister(build, latency, &collector{snapshot: snapshot})
	return &Metrics{reg: reg, latency: latency}
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// LatencyObserver returns the latency recorder of one camera; resolve it
// once per stream, then call it per frame (it does not allocate).
func (m *Metrics) LatencyObserver(camera string) func(time.Duration) {
	o := m.latency.WithLabelValues(camera)
	return func(d time.Duration) { o.Observe(d.Seconds()) }
}

var (
	descCaptured = prometheus.NewDesc("streamd_camera_frames_captured_total", "Frames read from the source and encoded.", []string{"camera"}, nil)
	descProduced = prometheus.NewDesc("streamd_camera_frames_produced_total", "Frames handed to the Kafka producer.", []string{"camera"}, nil)
	descEncode   = prometheus.NewDesc("streamd_camera_encode_seconds_total", "Time spent encoding JPEG.", []string{"camera"}, nil)
	descConsumed = prometheus.NewDesc("streamd_camera_frames_consumed_total", "Frames received from Kafka.", []string{"camera"}, nil)
	descBytes    = prometheus.NewDesc("streamd_camera_bytes_consumed_total", "Image bytes received from Kafka.", []string{"camera"}, nil)
	descDropped  = prometheus.NewDesc("streamd_camera_frames_dropped_total", "Frames dropped, by reason: producer_refused (too large or backlog full) or slow_viewer (skipped for viewers that fell behind, summed over viewers).", []string{"camera", "reason"}, nil)
	descViewers  = prometheus.NewDesc("streamd_camera_viewers", "Viewers connected to the camera's stream.", []string{"camera"}, nil)
	descSent     = prometheus.NewDesc("streamd_kafka_produced_total", "Records acknowledged by the broker.", nil, nil)
	descProdErr  = prometheus.NewDesc("streamd_kafka_produce_errors_total", "Records the broker rejected or that could not be delivered.", nil, nil)
	descProdDrop = prometheus.NewDesc("streamd_kafka_produce_dropped_total", "Frames dropped before sending, by reason: too_large or backlog.", []string{"reason"}, nil)
	descConsRecs = prometheus.NewDesc("streamd_kafka_consumed_total", "Records consumed that became frames.", nil, nil)
	descConsBad  = prometheus.NewDesc("streamd_kafka_consume_invalid_total", "Records skipped: not an image or a bad key.", nil, nil)
	descConsErr  = prometheus.NewDesc("streamd_kafka_consume_errors_total", "Consumer group errors.", nil, nil)
	descCamLimit = prometheus.NewDesc("streamd_hub_camera_limit_dropped_total", "Frames of new cameras dropped because the camera limit was reached.", nil, nil)
	descAnalyzed = prometheus.NewDesc("streamd_camera_frames_analyzed_total", "Frames the analyzer looked at.", []string{"camera"}, nil)
	descAnSkip   = prometheus.NewDesc("streamd_camera_frames_analysis_skipped_total", "Frames the analyzer skipped to stay live (over its rate cap, or older than analyzer.max_lag).", []string{"camera"}, nil)
	descAnSecs   = prometheus.NewDesc("streamd_camera_analysis_seconds_total", "Time spent analyzing, by stage: decode, motion, faces, objects.", []string{"camera", "stage"}, nil)
	descAnLag    = prometheus.NewDesc("streamd_camera_analysis_lag_seconds", "Now minus the capture time of the last analyzed frame.", []string{"camera"}, nil)
	descEvents   = prometheus.NewDesc("streamd_camera_events_total", "Events started, by type.", []string{"camera", "type"}, nil)
	descFaces    = prometheus.NewDesc("streamd_camera_face_detections_total", "Faces detected, summed over analyzed frames.", []string{"camera"}, nil)
	descObjRuns  = prometheus.NewDesc("streamd_camera_object_inferences_total", "Object detections run (inferences of the model), on moving regions.", []string{"camera"}, nil)
	descObjects  = prometheus.NewDesc("streamd_camera_object_detections_total", "Objects detected before tracking, summed over the frames detection ran on.", []string{"camera"}, nil)
	descObjBusy  = prometheus.NewDesc("streamd_camera_object_detections_skipped_total", "Object detections not run because every detector was busy: the detector pool is behind.", []string{"camera"}, nil)
	descAnBad    = prometheus.NewDesc("streamd_analyzer_invalid_total", "Frames the analyzer could not decode.", nil, nil)
	descAnObjErr = prometheus.NewDesc("streamd_analyzer_object_errors_total", "Object detections that failed for the detector's own reasons (not a bad frame); /readyz names the failure while it lasts, and motion detection goes on.", nil, nil)
	descAnLimit  = prometheus.NewDesc("streamd_analyzer_camera_limit_dropped_total", "Frames of new cameras the analyzer did not analyze because it analyzes its camera limit already (1000).", nil, nil)
	descConns    = prometheus.NewDesc("streamd_http_connections", "Client connections open now.", nil, nil)
	descEvHeld   = prometheus.NewDesc("streamd_events_held", "Events this viewer node holds (events.history), by state.", []string{"state"}, nil)
	descEvBad    = prometheus.NewDesc("streamd_events_invalid_total", "Records of the events topic that were not valid events.", nil, nil)
	descRvMarks  = prometheus.NewDesc("streamd_review_marks", "Reviewed marks this viewer node holds (events.reviews_topic).", nil, nil)
	descRvBad    = prometheus.NewDesc("streamd_review_invalid_total", "Records of the review marks topic that were not marks.", nil, nil)
	descRvErr    = prometheus.NewDesc("streamd_review_errors_total", "Follows of the review marks topic that failed and were restarted.", nil, nil)
	descRecBytes = prometheus.NewDesc("streamd_recorder_bytes_total", "Recording bytes written, by tier.", []string{"tier"}, nil)
	descRecFrms  = prometheus.NewDesc("streamd_recorder_frames_total", "Frames recorded, by tier.", []string{"tier"}, nil)
	descRecLost  = prometheus.NewDesc("streamd_recorder_lost_frames_total", "Frames the recorder never recorded: the frames topic's retention removed them before it read them (it fell further behind than the retention).", []string{"camera"}, nil)
	descRecLag   = prometheus.NewDesc("streamd_recorder_lag_seconds", "Now minus the capture time up to which the recorder has recorded the camera (full tier while chunks wait for an encoder).", []string{"camera"}, nil)
	descRecErr   = prometheus.NewDesc("streamd_recorder_errors_total", "Recording writes that failed (and were retried) or chunks that could not be encoded.", nil, nil)
	descStBytes  = prometheus.NewDesc("streamd_recording_bytes", "Recording bytes held on the brokers, per camera and tier.", []string{"camera", "tier"}, nil)
	descStAge    = prometheus.NewDesc("streamd_recording_oldest_age_seconds", "How far back the recording goes, per camera and tier.", []string{"camera", "tier"}, nil)
	descStRate   = prometheus.NewDesc("streamd_recording_bytes_per_hour", "Recording bytes per hour, measured over what is held.", []string{"camera", "tier"}, nil)
	descNtDeliv  = prometheus.NewDesc("streamd_notify_delivered_total", "Messages a notification target acknowledged (webhook: a 2xx answer; MQTT: every publish acknowledged, events, states, snapshots and discovery).", []string{"target"}, nil)
	descNtRetry  = prometheus.NewDesc("streamd_notify_retried_total", "Failed tries of a message that were tried again (with back-off).", []string{"target"}, nil)
	descNtFail   = prometheus.NewDesc("streamd_notify_failed_total", "Messages given up: refused for good (a 4xx) or out of tries (notify retry attempts).", []string{"target"}, nil)
	descNtDrop   = prometheus.NewDesc("streamd_notify_dropped_total", "Event changes a target's rules kept from it, by reason: rule (cameras, types, labels, zones, severity), phase, cooldown, quiet_hours.", []string{"target", "reason"}, nil)
	descNtBad    = prometheus.NewDesc("streamd_notify_invalid_total", "Records of the events topic a target skipped: not valid events.", []string{"target"}, nil)
	descNtUp     = prometheus.NewDesc("streamd_notify_up", "1 while the target delivers (MQTT: connected), 0 while its deliveries fail.", []string{"target"}, nil)
	descNtBehind = prometheus.NewDesc("streamd_notify_behind_seconds", "Age of the event change the target is delivering (0 when idle): how far behind it is.", []string{"target"}, nil)
	descNtSnap   = prometheus.NewDesc("streamd_notify_snapshots_missing_total", "MQTT: snapshots of new events that were not found in the snapshots topic.", []string{"target"}, nil)
	allCollected = []*prometheus.Desc{descNtDeliv, descNtRetry, descNtFail, descNtDrop, descNtBad, descNtUp, descNtBehind, descNtSnap, descRecBytes, descRecFrms, descRecErr, descRecLag, descRecLost, descStBytes, descStAge, descStRate, descAnalyzed, descAnSkip, descAnSecs, descAnLag, descEvents, descFaces, descObjects, descObjRuns, descObjBusy, descAnBad, descAnObjErr, descAnLimit, descConns, descEvHeld, descEvBad, descRvMarks, descRvBad, descRvErr, descCaptured, descProduced, descEncode, descConsumed, descBytes, descDropped, descViewers, descSent, descProdErr, descProdDrop, descConsRecs, descConsBad, descConsErr, descCamLimit}
)

type collector struct{ snapshot func() Snapshot }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allCollected {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	for _, cam := range s.Cameras {
		if s.Producer != nil {
			ch <- prometheus.MustNewConstMetric(descCaptured, prometheus.CounterValue, float64(cam.Captured), cam.ID)
			ch <- prometheus.MustNewConstMetric(descProduced, prometheus.CounterValue, float64(cam.Published), cam.ID)
			ch <- prometheus.MustNewConstMetric(descEncode, prometheus.CounterValue, cam.EncodeSeconds, cam.ID)
			ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(cam.PublishDropped), cam.ID, "producer_refused")
		}
		if s.Consumer != nil {
			ch <- prometheus.MustNewConstMetric(descConsumed, prometheus.CounterValue, float64(cam.Consumed), cam.ID)
			ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(cam.ConsumedBytes), cam.ID)
			ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(cam.SlowViewerDropped), cam.ID, "slow_viewer")
			ch <- prometheus.MustNewConstMetric(descViewers, prometheus.GaugeValue, float64(cam.Viewers), cam.ID)
		}
	}
	if s.Analyzer != nil {
		for _, cam := range s.Cameras {
			ch <- prometheus.MustNewConstMetric(descAnalyzed, prometheus.CounterValue, float64(cam.Analyzed), cam.ID)
			ch <- prometheus.MustNewConstMetric(descAnSkip, prometheus.CounterValue, float64(cam.AnalysisSkipped), cam.ID)
			ch <- prometheus.MustNewConstMetric(descAnSecs, prometheus.CounterValue, cam.DecodeSeconds, cam.ID, "decode")
			ch <- prometheus.MustNewConstMetric(descAnSecs, prometheus.CounterValue, cam.MotionSeconds, cam.ID, "motion")
			ch <- prometheus.MustNewConstMetric(descAnSecs, prometheus.CounterValue, cam.FaceSeconds, cam.ID, "faces")
			ch <- prometheus.MustNewConstMetric(descAnLag, prometheus.GaugeValue, cam.AnalysisLag, cam.ID)
			ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(cam.MotionEvents), cam.ID, "motion")
			ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(cam.FaceEvents), cam.ID, "face")
			ch <- prometheus.MustNewConstMetric(descFaces, prometheus.CounterValue, float64(cam.FaceDetections), cam.ID)
			ch <- prometheus.MustNewConstMetric(descAnSecs, prometheus.CounterValue, cam.ObjectSeconds, cam.ID, "objects")
			ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(cam.ObjectEvents), cam.ID, "object")
			ch <- prometheus.MustNewConstMetric(descObjects, prometheus.CounterValue, float64(cam.ObjectDetections), cam.ID)
			ch <- prometheus.MustNewConstMetric(descObjRuns, prometheus.CounterValue, float64(cam.ObjectRuns), cam.ID)
			ch <- prometheus.MustNewConstMetric(descObjBusy, prometheus.CounterValue, float64(cam.ObjectsBusy), cam.ID)
		}
		ch <- prometheus.MustNewConstMetric(descAnBad, prometheus.CounterValue, float64(s.Analyzer.Invalid))
		ch <- prometheus.MustNewConstMetric(descAnLimit, prometheus.CounterValue, float64(s.Analyzer.CameraLimitDropped))
		ch <- prometheus.MustNewConstMetric(descAnObjErr, prometheus.CounterValue, float64(s.Analyzer.ObjectErrors))
	}
	ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(s.HTTPConnections))
	if r := s.Recorder; r != nil {
		ch <- prometheus.MustNewConstMetric(descRecBytes, prometheus.CounterValue, float64(r.FullBytes), "full")
		ch <- prometheus.MustNewConstMetric(descRecBytes, prometheus.CounterValue, float64(r.ReducedBytes), "reduced")
		ch <- prometheus.MustNewConstMetric(descRecFrms, prometheus.CounterValue, float64(r.FullFrames), "full")
		ch <- prometheus.MustNewConstMetric(descRecFrms, prometheus.CounterValue, float64(r.ReducedFrames), "reduced")
		ch <- prometheus.MustNewConstMetric(descRecErr, prometheus.CounterValue, float64(r.Errors))
		for _, c := range r.Cameras {
			ch <- prometheus.MustNewConstMetric(descRecLag, prometheus.GaugeValue, c.Lag, c.ID)
			ch <- prometheus.MustNewConstMetric(descRecLost, prometheus.CounterValue, float64(c.Lost), c.ID)
		}
	}
	for _, st := range s.Storage {
		ch <- prometheus.MustNewConstMetric(descStBytes, prometheus.GaugeValue, float64(st.Bytes), st.Camera, st.Tier)
		ch <- prometheus.MustNewConstMetric(descStAge, prometheus.GaugeValue, st.OldestAge, st.Camera, st.Tier)
		ch <- prometheus.MustNewConstMetric(descStRate, prometheus.GaugeValue, st.BytesPerHour, st.Camera, st.Tier)
	}
	if e := s.Events; e != nil {
		ch <- prometheus.MustNewConstMetric(descEvHeld, prometheus.GaugeValue, float64(e.Active), "active")
		ch <- prometheus.MustNewConstMetric(descEvHeld, prometheus.GaugeValue, float64(e.Held-e.Active), "ended")
		ch <- prometheus.MustNewConstMetric(descEvBad, prometheus.CounterValue, float64(e.Invalid))
	}
	if rv := s.Reviews; rv != nil {
		ch <- prometheus.MustNewConstMetric(descRvMarks, prometheus.GaugeValue, float64(rv.Marks))
		ch <- prometheus.MustNewConstMetric(descRvBad, prometheus.CounterValue, float64(rv.Invalid))
		ch <- prometheus.MustNewConstMetric(descRvErr, prometheus.CounterValue, float64(rv.Errors))
	}
	if p := s.Producer; p != nil {
		ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(p.Sent))
		ch <- prometheus.MustNewConstMetric(descProdErr, prometheus.CounterValue, float64(p.Failed))
		ch <- prometheus.MustNewConstMetric(descProdDrop, prometheus.CounterValue, float64(p.TooLarge), "too_large")
		ch <- prometheus.MustNewConstMetric(descProdDrop, prometheus.CounterValue, float64(p.Backlog), "backlog")
	}
	for _, t := range s.Notify {
		ch <- prometheus.MustNewConstMetric(descNtDeliv, prometheus.CounterValue, float64(t.Delivered), t.Target)
		ch <- prometheus.MustNewConstMetric(descNtRetry, prometheus.CounterValue, float64(t.Retried), t.Target)
		ch <- prometheus.MustNewConstMetric(descNtFail, prometheus.CounterValue, float64(t.Failed), t.Target)
		ch <- prometheus.MustNewConstMetric(descNtBad, prometheus.CounterValue, float64(t.Invalid), t.Target)
		ch <- prometheus.MustNewConstMetric(descNtUp, prometheus.GaugeValue, t.Up, t.Target)
		ch <- prometheus.MustNewConstMetric(descNtBehind, prometheus.GaugeValue, t.Behind, t.Target)
		for _, reason := range []string{"rule", "phase", "cooldown", "quiet_hours"} {
			ch <- prometheus.MustNewConstMetric(descNtDrop, prometheus.CounterValue, float64(t.Dropped[reason]), t.Target, reason)
		}
		if strings.HasPrefix(t.Target, "mqtt") {
			ch <- prometheus.MustNewConstMetric(descNtSnap, prometheus.CounterValue, float64(t.SnapshotsMissing), t.Target)
		}
	}
	if k := s.Consumer; k != nil {
		ch <- prometheus.MustNewConstMetric(descConsRecs, prometheus.CounterValue, float64(k.Consumed))
		ch <- prometheus.MustNewConstMetric(descConsBad, prometheus.CounterValue, float64(k.Invalid))
		ch <- prometheus.MustNewConstMetric(descConsErr, prometheus.CounterValue, float64(k.Errors))
		ch <- prometheus.MustNewConstMetric(descCamLimit, prometheus.CounterValue, float64(k.CameraLimitDropped))
	}
}
