/* kh_log: one line per message to journald (when JOURNAL_STREAM says
 * stderr is the journal) or stderr with a timestamp. */
#include "kh_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <time.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-journal.h>
#endif

static enum kh_log_level kh_log_level = KH_LOG_INFO;
static pthread_mutex_t kh_log_lock = PTHREAD_MUTEX_INITIALIZER;
static int kh_log_syslog;

void kh_log_use_syslog(void)
{
	openlog("keyholdd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	kh_log_syslog = 1;
}

void kh_log_set_level(enum kh_log_level lvl) { kh_log_level = lvl; }
enum kh_log_level kh_log_get_level(void) { return kh_log_level; }

static const char *kh_log_tag(enum kh_log_level lvl)
{
	switch (lvl) {
	case KH_LOG_ERR: return "error";
	case KH_LOG_WARN: return "warn";
	case KH_LOG_INFO: return "info";
	case KH_LOG_DEBUG: return "debug";
	}
	return "?";
}

void kh_log_write(enum kh_log_level lvl, const char *func, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (lvl > kh_log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (kh_log_syslog) {
		syslog((int)lvl, "%s: %s", func, msg);
		return;
	}
#ifdef HAVE_LIBSYSTEMD
	if (getenv("JOURNAL_STREAM") != NULL) {
		sd_journal_send("MESSAGE=%s: %s", func, msg, "PRIORITY=%d", (int)lvl,
				"CODE_FUNC=%s", func, "SYSLOG_IDENTIFIER=keyholdd", NULL);
		return;
	}
#endif
	{
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		pthread_mutex_lock(&kh_log_lock);
		fprintf(stderr, "%s.%03ldZ keyholdd[%s] %s: %s\n", when, ts.tv_nsec / 1000000L,
			kh_log_tag(lvl), func, msg);
		pthread_mutex_unlock(&kh_log_lock);
	}
}
