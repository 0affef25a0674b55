#ifndef STREAMD_VISION_THREADS_H
#define STREAMD_VISION_THREADS_H
#ifdef __cplusplus
extern "C" {
#endif
void streamd_cv_set_threads(int n);
int streamd_cv_threads(void);
#ifdef __cplusplus
}
#endif
#endif
