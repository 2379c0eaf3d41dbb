/* svc_clock.c: the time keyhold judges expiry, renewal and revocation
 * freshness by; in KEYHOLD_TESTING builds a file may move it (tests step
 * through days without sleeping). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "kh_log.h"
#include "kh_util.h"
#include "core/svc_clock.h"

#ifdef KEYHOLD_TESTING
static char svc_clock_file[4096];
#endif

void svc_clock_init(void)
{
#ifdef KEYHOLD_TESTING
	const char *p = getenv("KEYHOLD_TEST_CLOCK");

	if (p != NULL && p[0] != '\0') {
		kh_strlcpy(svc_clock_file, p, sizeof(svc_clock_file));
		log_warn("test build: keyhold's clock is the real time plus the offset in %s", svc_clock_file);
	}
#endif
}

int64_t svc_now(void)
{
	int64_t now = (int64_t)time(NULL);
#ifdef KEYHOLD_TESTING
	if (svc_clock_file[0] != '\0') {
		FILE *f = fopen(svc_clock_file, "re");
		char buf[32];

		if (f != NULL) {
			if (fgets(buf, sizeof(buf), f) != NULL) {
				char *end = NULL;
				long long off;

				errno = 0;
				off = strtoll(buf, &end, 10);
				if (errno == 0 && end != buf && (*end == '\0' || *end == '\n') && off > -(1LL << 40) &&
				    off < (1LL << 40))
					now += off;
			}
			fclose(f);
		}
	}
#endif
	return now;
}

unsigned svc_test_freeze_take(const char *env)
{
#ifdef KEYHOLD_TESTING
	const char *p = getenv(env);
	FILE *f;
	char buf[32];
	unsigned long n = 0;

	if (p == NULL || p[0] == '\0' || (f = fopen(p, "re")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) != NULL)
		n = strtoul(buf, NULL, 10);
	fclose(f);
	if (unlink(p) != 0)
		return 0;
	log_warn("test build: %s: frozen for %lu s", env, n > 600 ? 600ul : n);
	return n > 600 ? 600u : (unsigned)n;
#else
	(void)env;
	return 0;
#endif
}
