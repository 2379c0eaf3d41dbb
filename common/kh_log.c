/* kh_log: one line per message to syslog (daemonised), to the journal
 * when stderr is the journal's stream, or to stderr with a timestamp.
 * "Is the journal's stream" is sd-daemon(3)'s check: systemd puts the
 * device and inode of the stream it connects to stderr in JOURNAL_STREAM;
 * a child that inherited the variable with stderr redirected elsewhere
 * must keep writing to stderr, or every line would vanish. */
#include "kh_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-journal.h>
#endif

static enum kh_log_level kh_log_level = KH_LOG_INFO;
static pthread_mutex_t kh_log_lock = PTHREAD_MUTEX_INITIALIZER;
static int kh_log_syslog;
static pthread_once_t kh_log_once = PTHREAD_ONCE_INIT;
static bool kh_log_journal;

void kh_log_use_syslog(void)
{
	openlog("keyholdd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	kh_log_syslog = 1;
}

void kh_log_set_level(enum kh_log_level lvl) { kh_log_level = lvl; }
enum kh_log_level kh_log_get_level(void) { return kh_log_level; }

bool kh_log_journal_stream_is(const char *env, dev_t dev, ino_t ino)
{
	unsigned long long d, i;
	char *end = NULL;

	if (env == NULL || env[0] < '0' || env[0] > '9')
		return false;
	d = strtoull(env, &end, 10);
	if (*end != ':' || end[1] < '0' || end[1] > '9')
		return false;
	i = strtoull(end + 1, &end, 10);
	if (*end != '\0')
		return false;
	return (dev_t)d == dev && (unsigned long long)(dev_t)d == d && (ino_t)i == ino &&
	       (unsigned long long)(ino_t)i == i;
}

bool kh_log_stderr_is_journal(void)
{
	struct stat st;
	const char *env = getenv("JOURNAL_STREAM");

	if (env == NULL || fstat(STDERR_FILENO, &st) != 0)
		return false;
	return kh_log_journal_stream_is(env, st.st_dev, st.st_ino);
}

static void kh_log_decide(void)
{
	kh_log_journal = kh_log_stderr_is_journal();
}

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

#ifdef HAVE_LIBSYSTEMD
/* The native protocol: the priority and the structured fields that are
 * set. False when the journal did not take it. */
static bool kh_log_journal_send(enum kh_log_level lvl, const char *func, const struct kh_log_fields *f,
				const char *msg)
{
	char text[1200], prio[16], code[128], method[96], key[96], who[300], id[64];
	struct iovec iov[8];
	int n = 0;

#define KH_IOV(buf, ...) \
	do { snprintf(buf, sizeof(buf), __VA_ARGS__); iov[n].iov_base = buf; iov[n].iov_len = strlen(buf); n++; } while (0)
	KH_IOV(text, "MESSAGE=%s: %s", func, msg);
	KH_IOV(prio, "PRIORITY=%d", (int)lvl);
	KH_IOV(code, "CODE_FUNC=%s", func);
	iov[n].iov_base = (void *)(uintptr_t)"SYSLOG_IDENTIFIER=keyholdd";
	iov[n].iov_len = strlen("SYSLOG_IDENTIFIER=keyholdd");
	n++;
	if (f->method != NULL)
		KH_IOV(method, "KEYHOLD_METHOD=%s", f->method);
	if (f->key != NULL)
		KH_IOV(key, "KEYHOLD_KEY=%s", f->key);
	if (f->principal != NULL)
		KH_IOV(who, "KEYHOLD_PRINCIPAL=%s", f->principal);
	if (f->message_id != NULL)
		KH_IOV(id, "MESSAGE_ID=%s", f->message_id);
#undef KH_IOV
	return sd_journal_sendv(iov, n) >= 0;
}
#endif

static void kh_log_emit(enum kh_log_level lvl, const char *func, const struct kh_log_fields *f, const char *msg)
{
	static const struct kh_log_fields none = { NULL, NULL, NULL, NULL };

	if (f == NULL)
		f = &none;
	if (kh_log_syslog) {
		syslog((int)lvl, "%s: %s", func, msg);
		return;
	}
	pthread_once(&kh_log_once, kh_log_decide);
	if (kh_log_journal) {
#ifdef HAVE_LIBSYSTEMD
		if (kh_log_journal_send(lvl, func, f, msg))
			return;
#endif
		/* The stream itself: journald reads a "<N>" prefix as the
		 * priority (SyslogLevelPrefix=, on by default) and stamps the
		 * time itself. */
		pthread_mutex_lock(&kh_log_lock);
		fprintf(stderr, "<%d>%s: %s\n", (int)lvl, func, msg);
		fflush(stderr);
		pthread_mutex_unlock(&kh_log_lock);
		return;
	}
	{
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		pthread_mutex_lock(&kh_log_lock);
		fprintf(stderr, "%s.%03ldZ keyholdd[%s] %s: %s\n", when, ts.tv_nsec / 1000000L, kh_log_tag(lvl), func, msg);
		pthread_mutex_unlock(&kh_log_lock);
	}
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
	kh_log_emit(lvl, func, NULL, msg);
}

void kh_log_event(enum kh_log_level lvl, const char *func, const struct kh_log_fields *f, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (lvl > kh_log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kh_log_emit(lvl, func, f, msg);
}
