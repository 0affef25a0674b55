// streamd: what both pages say of an event.
"use strict";

// eventTitle is an event's name in lists, marks and box captions: an
// object's label and its score ("person 0.64"), otherwise the type.
function eventTitle(e) {
  if (e.type !== "object") return e.type;
  return typeof e.score === "number" ? `${e.label} ${e.score.toFixed(2)}` : e.label;
}
