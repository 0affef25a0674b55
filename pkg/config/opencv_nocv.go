//go:build nocv

package config

// OpenCV reports whether this binary was built with OpenCV (without the
// nocv build tag), and so can run the roles that capture or analyze video.
const OpenCV = false
