package events

import (
	"fmt"
	"slices"
)

// DefaultInertia is how many consecutive detections the bottom-centre of
// an object's box must be inside a zone before the object counts as in
// it, Frigate's default: one box that jitters over a zone's edge does not
// enter it.
const DefaultInertia = 3

// DefaultAlertLabels are the labels whose events are alerts unless
// configured (Frigate's review.alerts.labels): a person or a car wants a
// look now, a bird can wait.
var DefaultAlertLabels = []string{"person", "car"}

// Zone is a named region of a camera's frame, a polygon in normalized
// coordinates (0..1 of the width and height). An object is in a zone when
// the bottom-centre of its box (where it stands) has been inside the
// polygon for Inertia detections in a row.
type Zone struct {
	Name    string
	Points  [][2]float64 // at least 3 vertices, in order
	Inertia int          // DefaultInertia when 0
}

// ValidateZone reports what is wrong with a zone's name or polygon.
func ValidateZone(z Zone) error {
	if z.Name == "" || len(z.Name) > MaxZoneLen {
		return fmt.Errorf("zone name %q: 1 to %d characters", clip(z.Name), MaxZoneLen)
	}
	if len(z.Points) < 3 {
		return fmt.Errorf("zone %q: %d points, a polygon needs at least 3", z.Name, len(z.Points))
	}
	for i, p := range z.Points {
		if !fraction(p[0]) || !fraction(p[1]) {
			return fmt.Errorf("zone %q: point %d [%g, %g] is not inside the frame (0..1)", z.Name, i, p[0], p[1])
		}
	}
	if z.Inertia < 0 {
		return fmt.Errorf("zone %q: inertia %d, want 1 or more", z.Name, z.Inertia)
	}
	return nil
}

// Review decides an object event's severity: an alert when its label is
// one of AlertLabels and, if AlertZones are given, the object has entered
// one of them; a detection otherwise.
type Review struct {
	// AlertLabels make alerts; nil: DefaultAlertLabels, empty (not nil):
	// no object event is an alert.
	AlertLabels []string
	// AlertZones, when not empty, make only objects that entered one of
	// them alerts (Frigate's required_zones); empty: anywhere.
	AlertZones []string
}

// severity returns the severity of an object of label that has entered
// zones.
func (r Review) severity(label string, zones []string) Severity {
	labels := r.AlertLabels
	if labels == nil {
		labels = DefaultAlertLabels
	}
	if !slices.Contains(labels, label) {
		return SeverityDetection
	}
	if len(r.AlertZones) == 0 {
		return SeverityAlert
	}
	for _, z := range zones {
		if slices.Contains(r.AlertZones, z) {
			return SeverityAlert
		}
	}
	return SeverityDetection
}

// inside reports whether the point (x, y) is inside the polygon (even-odd
// rule, by a ray cast to the right; a point on an edge may fall either
// way, which inertia makes harmless).
func inside(poly [][2]float64, x, y float64) bool {
	in := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		xi, yi := poly[i][0], poly[i][1]
		xj, yj := poly[j][0], poly[j][1]
		if (yi > y) != (yj > y) && x < (xj-xi)*(y-yi)/(yj-yi)+xi {
			in = !in
		}
	}
	return in
}

// zoneState follows one tracked object against the camera's zones.
type zoneState struct {
	streak  []int    // consecutive detections inside each zone, by index
	entered []string // zones entered, in order; each once
}

// observe takes the object's box on a detection and reports whether it
// entered a zone it had not entered before.
func (s *zoneState) observe(zones []Zone, b Box) (entered bool) {
	if len(zones) == 0 {
		return false
	}
	if s.streak == nil {
		s.streak = make([]int, len(zones))
	}
	x, y := b.X+b.W/2, b.Y+b.H
	for i, z := range zones {
		if !inside(z.Points, x, y) {
			s.streak[i] = 0
			continue
		}
		s.streak[i]++
		inertia := z.Inertia
		if inertia <= 0 {
			inertia = DefaultInertia
		}
		if s.streak[i] >= inertia && !slices.Contains(s.entered, z.Name) && len(s.entered) < MaxZones {
			s.entered = append(s.entered, z.Name)
			entered = true
		}
	}
	return entered
}
