#include "avenc.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// membuf is a growable, seekable in-memory file: the MP4 muxer seeks back
// to patch sizes and appends its index at the end.
typedef struct {
	uint8_t *buf;
	size_t len, cap, pos;
} membuf;

static int mb_write(void *opaque, uint8_t *data, int n) {
	membuf *m = opaque;
	size_t end = m->pos + (size_t)n;
	if (end > m->cap) {
		size_t c = m->cap ? m->cap : 256 * 1024;
		while (c < end) c *= 2;
		uint8_t *b = realloc(m->buf, c);
		if (!b) return AVERROR(ENOMEM);
		m->buf = b;
		m->cap = c;
	}
	memcpy(m->buf + m->pos, data, (size_t)n);
	m->pos = end;
	if (end > m->len) m->len = end;
	return n;
}

static int64_t mb_seek(void *opaque, int64_t off, int whence) {
	membuf *m = opaque;
	int64_t base;
	switch (whence & ~AVSEEK_FORCE) {
	case AVSEEK_SIZE: return (int64_t)m->len;
	case SEEK_SET: base = 0; break;
	case SEEK_CUR: base = (int64_t)m->pos; break;
	case SEEK_END: base = (int64_t)m->len; break;
	default: return AVERROR(EINVAL);
	}
	if (base + off < 0) return AVERROR(EINVAL);
	m->pos = (size_t)(base + off);
	return (int64_t)m->pos;
}

struct sd_enc {
	AVFormatContext *fmt;
	AVIOContext *pb;
	uint8_t *iobuf;
	membuf mb;
	AVStream *st;
	AVCodecContext *enc;
	AVCodecContext *dec;
	AVPacket *pkt;
	AVFrame *in;   // the last decoded JPEG
	AVFrame *conv; // in, converted to the encoder's format and size
	AVFrame *cur;  // what is encoded: in or conv
	struct SwsContext *sws;
	int64_t pts;
	int header;
};

static int fail(char *err, size_t n, const char *what, int code) {
	char msg[AV_ERROR_MAX_STRING_SIZE] = {0};
	av_strerror(code, msg, sizeof msg);
	snprintf(err, n, "%s: %s", what, msg);
	return code;
}

sd_enc *sd_enc_open(int codec, int width, int height, int fps_num, int fps_den,
                    const char *preset, int crf, int threads, char *err, size_t errlen) {
	int rc;
	sd_enc *e = calloc(1, sizeof *e);
	if (!e) { snprintf(err, errlen, "out of memory"); return NULL; }
	const AVCodec *c = codec == 0 ? avcodec_find_encoder_by_name("libx264")
	                              : avcodec_find_encoder(AV_CODEC_ID_MPEG4);
	if (!c) {
		snprintf(err, errlen, "FFmpeg has no %s encoder", codec == 0 ? "libx264" : "mpeg4");
		goto bad;
	}
	e->enc = avcodec_alloc_context3(c);
	if (!e->enc) { snprintf(err, errlen, "out of memory"); goto bad; }
	e->enc->width = width;
	e->enc->height = height;
	e->enc->time_base = (AVRational){fps_den, fps_num};
	e->enc->framerate = (AVRational){fps_num, fps_den};
	// One key frame every two seconds: exports seek in steps of at most 2 s.
	e->enc->gop_size = (2 * fps_num + fps_den - 1) / fps_den;
	e->enc->thread_count = threads;
	if (codec == 0) {
		// JPEG frames are full-range 4:2:0: encode them as they decode, flagged
		// full range, with no conversion.
		e->enc->pix_fmt = AV_PIX_FMT_YUVJ420P;
		e->enc->color_range = AVCOL_RANGE_JPEG;
		if (preset && *preset) {
			rc = av_opt_set(e->enc->priv_data, "preset", preset, 0);
			if (rc < 0) { fail(err, errlen, "x264 preset", rc); goto bad; }
		}
		if (crf > 0) {
			char v[16];
			snprintf(v, sizeof v, "%d", crf);
			av_opt_set(e->enc->priv_data, "crf", v, 0);
		}
	} else {
		e->enc->pix_fmt = AV_PIX_FMT_YUV420P;
		e->enc->bit_rate = 0;
		e->enc->global_quality = FF_QP2LAMBDA * 5;
		e->enc->flags |= AV_CODEC_FLAG_QSCALE;
	}

	rc = avformat_alloc_output_context2(&e->fmt, NULL, "mp4", NULL);
	if (rc < 0) { fail(err, errlen, "mp4 muxer", rc); goto bad; }
	if (e->fmt->oformat->flags & AVFMT_GLOBALHEADER) e->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	rc = avcodec_open2(e->enc, c, NULL);
	if (rc < 0) { fail(err, errlen, "open encoder", rc); goto bad; }
	e->st = avformat_new_stream(e->fmt, NULL);
	if (!e->st) { snprintf(err, errlen, "out of memory"); goto bad; }
	e->st->time_base = e->enc->time_base;
	e->st->avg_frame_rate = e->enc->framerate;
	rc = avcodec_parameters_from_context(e->st->codecpar, e->enc);
	if (rc < 0) { fail(err, errlen, "stream parameters", rc); goto bad; }

	e->iobuf = av_malloc(64 * 1024);
	e->pb = avio_alloc_context(e->iobuf, 64 * 1024, 1, &e->mb, NULL, mb_write, mb_seek);
	if (!e->iobuf || !e->pb) { snprintf(err, errlen, "out of memory"); goto bad; }
	e->pb->seekable = AVIO_SEEKABLE_NORMAL;
	e->fmt->pb = e->pb;
	e->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;

	const AVCodec *d = avcodec_find_decoder(AV_CODEC_ID_MJPEG);
	if (!d) { snprintf(err, errlen, "FFmpeg has no JPEG decoder"); goto bad; }
	e->dec = avcodec_alloc_context3(d);
	if (!e->dec) { snprintf(err, errlen, "out of memory"); goto bad; }
	e->dec->thread_count = 1;
	rc = avcodec_open2(e->dec, d, NULL);
	if (rc < 0) { fail(err, errlen, "open JPEG decoder", rc); goto bad; }
	e->pkt = av_packet_alloc();
	e->in = av_frame_alloc();
	e->conv = av_frame_alloc();
	if (!e->pkt || !e->in || !e->conv) { snprintf(err, errlen, "out of memory"); goto bad; }
	return e;
bad:
	sd_enc_free(e);
	return NULL;
}

// drain writes every packet the encoder has ready to the muxer.
static int drain(sd_enc *e, char *err, size_t errlen) {
	for (;;) {
		int rc = avcodec_receive_packet(e->enc, e->pkt);
		if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return 0;
		if (rc < 0) return fail(err, errlen, "encode", rc);
		av_packet_rescale_ts(e->pkt, e->enc->time_base, e->st->time_base);
		e->pkt->stream_index = e->st->index;
		rc = av_interleaved_write_frame(e->fmt, e->pkt);
		if (rc < 0) return fail(err, errlen, "write mp4", rc);
	}
}

int sd_enc_jpeg(sd_enc *e, const uint8_t *data, int len, char *err, size_t errlen) {
	int rc;
	av_packet_unref(e->pkt);
	e->pkt->data = (uint8_t *)data;
	e->pkt->size = len;
	rc = avcodec_send_packet(e->dec, e->pkt);
	e->pkt->data = NULL;
	e->pkt->size = 0;
	if (rc < 0) return fail(err, errlen, "decode JPEG", rc);
	av_frame_unref(e->in);
	rc = avcodec_receive_frame(e->dec, e->in);
	if (rc < 0) return fail(err, errlen, "decode JPEG", rc);
	if (e->in->format == e->enc->pix_fmt && e->in->width == e->enc->width && e->in->height == e->enc->height) {
		e->cur = e->in;
		return 0;
	}
	// Another sampling (4:2:2, 4:4:4, grey), range or size: convert.
	e->sws = sws_getCachedContext(e->sws, e->in->width, e->in->height, e->in->format,
	                              e->enc->width, e->enc->height, e->enc->pix_fmt,
	                              SWS_BILINEAR, NULL, NULL, NULL);
	if (!e->sws) { snprintf(err, errlen, "convert JPEG: unsupported format"); return AVERROR(EINVAL); }
	if (!e->conv->data[0]) {
		e->conv->format = e->enc->pix_fmt;
		e->conv->width = e->enc->width;
		e->conv->height = e->enc->height;
		rc = av_frame_get_buffer(e->conv, 0);
		if (rc < 0) return fail(err, errlen, "convert JPEG", rc);
	}
	rc = av_frame_make_writable(e->conv);
	if (rc < 0) return fail(err, errlen, "convert JPEG", rc);
	sws_scale(e->sws, (const uint8_t *const *)e->in->data, e->in->linesize, 0, e->in->height,
	          e->conv->data, e->conv->linesize);
	e->cur = e->conv;
	return 0;
}

int sd_enc_repeat(sd_enc *e, int n, char *err, size_t errlen) {
	int rc;
	if (!e->cur) { snprintf(err, errlen, "no frame"); return AVERROR(EINVAL); }
	if (!e->header) {
		rc = avformat_write_header(e->fmt, NULL);
		if (rc < 0) return fail(err, errlen, "write mp4 header", rc);
		e->header = 1;
	}
	for (int i = 0; i < n; i++) {
		e->cur->pts = e->pts++;
		e->cur->pict_type = AV_PICTURE_TYPE_NONE;
		rc = avcodec_send_frame(e->enc, e->cur);
		if (rc < 0) return fail(err, errlen, "encode", rc);
		rc = drain(e, err, errlen);
		if (rc < 0) return rc;
	}
	return 0;
}

int sd_enc_finish(sd_enc *e, uint8_t **out, size_t *outlen, char *err, size_t errlen) {
	int rc;
	if (!e->header) { snprintf(err, errlen, "no frames"); return AVERROR(EINVAL); }
	rc = avcodec_send_frame(e->enc, NULL);
	if (rc < 0) return fail(err, errlen, "flush encoder", rc);
	rc = drain(e, err, errlen);
	if (rc < 0) return rc;
	rc = av_write_trailer(e->fmt);
	if (rc < 0) return fail(err, errlen, "write mp4 index", rc);
	avio_flush(e->pb);
	*out = e->mb.buf;
	*outlen = e->mb.len;
	return 0;
}

void sd_enc_free(sd_enc *e) {
	if (!e) return;
	if (e->fmt) avformat_free_context(e->fmt);
	if (e->pb) {
		av_freep(&e->pb->buffer);
		avio_context_free(&e->pb);
	} else {
		av_free(e->iobuf);
	}
	avcodec_free_context(&e->enc);
	avcodec_free_context(&e->dec);
	av_packet_free(&e->pkt);
	av_frame_free(&e->in);
	av_frame_free(&e->conv);
	sws_freeContext(e->sws);
	free(e->mb.buf);
	free(e);
}
