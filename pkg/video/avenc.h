// avenc: JPEG frames in, H.264 or MPEG-4 Part 2 in MP4 out, in memory, with
// FFmpeg's libraries. See writer.go for why it exists and how Go uses it.
#ifndef STREAMD_AVENC_H
#define STREAMD_AVENC_H

#include <stddef.h>
#include <stdint.h>

typedef struct sd_enc sd_enc;

// sd_enc_open opens an encoder; codec 0 is H.264 (libx264), 1 is MPEG-4
// Part 2. preset and crf (0: x264's default) are x264's (ignored for
// MPEG-4); threads 0 lets the encoder choose. On failure it returns NULL and writes a message to err.
sd_enc *sd_enc_open(int codec, int width, int height, int fps_num, int fps_den,
                    const char *preset, int crf, int threads, char *err, size_t errlen);
// sd_enc_jpeg decodes a JPEG into the current frame. 0 or an error (err set).
int sd_enc_jpeg(sd_enc *e, const uint8_t *data, int len, char *err, size_t errlen);
// sd_enc_repeat encodes the current frame n times.
int sd_enc_repeat(sd_enc *e, int n, char *err, size_t errlen);
// sd_enc_finish flushes the encoder and writes the MP4 index; *out and *outlen
// then hold the file, owned by e until sd_enc_free.
int sd_enc_finish(sd_enc *e, uint8_t **out, size_t *outlen, char *err, size_t errlen);
// sd_enc_free releases everything. NULL is allowed.
void sd_enc_free(sd_enc *e);

#endif
