// OpenCV's worker-thread count, which gocv v0.31 does not expose.
#include <opencv2/core.hpp>
#include "threads.h"

void streamd_cv_set_threads(int n) { cv::setNumThreads(n); }
int streamd_cv_threads(void) { return cv::getNumThreads(); }
