// The C heap's arenas: see arenas.go.
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAMD_ARENAS 2

// Runs when the program loads, before Go starts its threads, so that every
// thread shares the same few arenas. MALLOC_ARENA_MAX in the environment
// (glibc's own setting) wins.
__attribute__((constructor)) static void streamd_limit_arenas(void) {
	if (getenv("MALLOC_ARENA_MAX") == NULL) {
		mallopt(M_ARENA_MAX, STREAMD_ARENAS);
	}
}

int streamd_arenas(void) { return STREAMD_ARENAS; }

// streamd_arenas_in_use counts the arenas glibc has made, from
// malloc_info's report (one <heap nr="N"> element each); -1 if it cannot
// tell.
int streamd_arenas_in_use(void) {
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL) {
		return -1;
	}
	int ok = malloc_info(0, f) == 0;
	fclose(f);
	int n = 0;
	for (char *p = buf; ok && (p = strstr(p, "<heap nr=")) != NULL; p++) {
		n++;
	}
	free(buf);
	return ok ? n : -1;
}

// streamd_churn allocates and frees n blocks of size bytes, as a decoder
// does with its frames.
void streamd_churn(int n, int size) {
	for (int i = 0; i < n; i++) {
		void *p = malloc(size);
		memset(p, 1, size);
		free(p);
	}
}
